package api

import (
	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// searchAuditEvents serves the access history (GET /AuditEvent?patient=...):
// the 25 most recent views of a child's plans, shown to health users who may
// view CP-IS and to the child's responsible LA. An auditor may also search
// every AuditEvent of its own organisation by agent and date. Reading the
// trail is itself audited, but is not an access.
func (s *Server) searchAuditEvents(c echo.Context) error {
	const op = "api.searchAuditEvents"
	p := principal(c)
	q, warnings, err := search.ParseAuditSearch(c.QueryParams(), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	recs, err := s.auditTrail(c, p, &q, op)
	if err != nil {
		return err
	}
	rec := s.record(c, p, cpis.ActionExecute, "search-type", q.Patient, nil)
	rec.Query = c.Request().URL.RequestURI()
	if err := s.Audit.Record(c.Request().Context(), rec); err != nil {
		return err
	}
	entries := make([]proto.Message, len(recs))
	for i, r := range recs {
		entries[i] = fhir.AuditEventResource(r, s.BaseURL)
	}
	more := len(recs) == q.Limit && p.MayAudit()
	return s.writeSearchset(c, "AuditEvent", entries, warnings, search.EncodeAudit(q), q.Offset, q.Limit, more)
}

// auditTrail returns the records the caller may see for query q, narrowing q
// to what its role allows.
func (s *Server) auditTrail(c echo.Context, p *auth.Principal, q *store.AuditQuery, op string) ([]cpis.AuditRecord, error) {
	ctx := c.Request().Context()
	if p.MayAudit() {
		q.OrgCode = p.OrgCode // an auditor sees its own organisation's trail only
		recs, err := s.Store.SearchAudit(ctx, *q)
		if err != nil {
			return nil, cpis.E(op, err)
		}
		return recs, nil
	}
	if !p.MayReadPlans() && !p.MayReadOwnPlans() {
		return nil, cpis.E(op, cpis.AccessDenied, "the access history is shown to practitioners who may view CP-IS, to the responsible LA and to auditors")
	}
	if q.Patient == "" {
		return nil, cpis.E(op, cpis.MissingValue, cpis.Expr("patient"), "the access history needs the patient's NHS number: patient or patient:identifier")
	}
	if q.ActorUserID != "" || !q.RecordedFrom.IsZero() || !q.RecordedBefore.IsZero() || q.Offset > 0 {
		return nil, cpis.E(op, cpis.AccessDenied, "only auditors may search the audit trail by agent, date or page")
	}
	if p.MayReadOwnPlans() {
		page, err := s.Store.SearchPlans(ctx, store.PlanQuery{NHSNumber: q.Patient, LACode: p.LACode, Limit: 1})
		if err != nil {
			return nil, cpis.E(op, err)
		}
		if len(page.Plans) == 0 {
			return nil, cpis.E(op, cpis.AccessDenied, "an LA sees the access history only of children it holds a plan for")
		}
	}
	q.Limit = min(q.Limit, cpis.AccessHistoryLength)
	recs, err := s.Store.AccessHistory(ctx, q.Patient, q.Limit)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	return recs, nil
}
