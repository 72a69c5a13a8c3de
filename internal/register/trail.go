package register

import (
	"context"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Trail is a page of the audit trail.
type Trail struct {
	Records []cpis.AuditRecord
	More    bool             // further records match after these
	Query   store.AuditQuery // the query as run, narrowed to what the caller may see
}

// AuditTrail answers a search of the audit trail, narrowed to what the
// caller may see: an auditor searches its own organisation's trail by
// patient, agent and date; a health user who may view CP-IS, and the
// responsible LA, see one child's "previously viewed by" list (the 25 most
// recent accesses). Reading the trail is itself audited, but is not an
// access.
func (s *Service) AuditTrail(ctx context.Context, c Caller, q store.AuditQuery) (Trail, error) {
	const op = "register.AuditTrail"
	recs, err := s.trail(ctx, c, &q, op)
	if err != nil {
		return Trail{}, s.refused(ctx, c, "search-type", q.Patient, err)
	}
	rec := s.record(c, cpis.ActionExecute, "search-type", q.Patient, nil)
	rec.Query = c.Query
	if err := s.audit.Record(ctx, rec); err != nil {
		return Trail{}, err
	}
	return Trail{Records: recs, More: len(recs) == q.Limit && s.mayAudit(c.Principal), Query: q}, nil
}

// trail returns the records the caller may see for query q, narrowing q
// to what its role allows.
func (s *Service) trail(ctx context.Context, c Caller, q *store.AuditQuery, op string) ([]cpis.AuditRecord, error) {
	p := c.Principal
	if s.mayAudit(p) {
		q.OrgCode = p.OrgCode // an auditor sees its own organisation's trail only
		recs, err := s.store.SearchAudit(ctx, *q)
		return recs, wrap(op, err)
	}
	if !p.MayReadPlans() && !p.MayReadOwnPlans() {
		return nil, cpis.E(op, cpis.AccessDenied, "the access history is shown to practitioners who may view CP-IS, to the responsible LA, and the audit trail to auditors")
	}
	if q.Patient == "" {
		return nil, cpis.E(op, cpis.MissingValue, cpis.Expr("patient"), "the access history needs the patient's NHS number: patient or patient:identifier")
	}
	if q.ActorUserID != "" || !q.RecordedFrom.IsZero() || !q.RecordedBefore.IsZero() || q.Before != nil {
		return nil, cpis.E(op, cpis.AccessDenied, "only auditors may search the audit trail by agent, date or page")
	}
	// The history shows only accesses to plans not withdrawn since, and to
	// an LA only those to its own plans (store.AccessQuery).
	q.Limit = min(q.Limit, cpis.AccessHistoryLength)
	aq := store.AccessQuery{NHSNumber: q.Patient, Limit: q.Limit}
	if !p.MayReadPlans() {
		aq.LACode = p.LACode
	}
	recs, err := s.store.AccessHistory(ctx, aq)
	return recs, wrap(op, err)
}

// wrap names op on a store error, and is nil for nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return cpis.E(op, err)
}
