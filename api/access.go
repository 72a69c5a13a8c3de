package api

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// reader is a caller allowed to read plans, and how: a health user sees
// plans within their display window without the child's date of birth; an
// LA system sees its own plans whatever their dates.
type reader struct {
	p           *auth.Principal
	health      bool
	unscheduled bool // the read notifies the responsible LA
	view        fhir.View
}

// reader decides whether the caller may read plans at all.
func (s *Server) reader(c echo.Context, op string) (reader, error) {
	p := principal(c)
	switch {
	case p.MayReadPlans():
		u, err := unscheduledAccess(c, p, op)
		return reader{p: p, health: true, unscheduled: u, view: fhir.HealthView}, err
	case p.MayReadOwnPlans():
		return reader{p: p, view: fhir.OwnerView}, nil
	}
	return reader{}, cpis.E(op, cpis.AccessDenied,
		"viewing CP-IS information needs a role with activity B0107 or B0170 and scope user/Flag.read, or a local authority system token")
}

// maySee reports whether r may see plan p on the given day.
func (r reader) maySee(p cpis.Plan, today cpis.Date) bool {
	if r.health {
		return p.VisibleToHealth(today)
	}
	return p.LA.Code == r.p.LACode
}

// unscheduledAccess reads IsUnscheduledAccessEvent. Without it, a role that
// holds B0107 reads as unscheduled care (the ED default); true needs B0107
// and false (no notification to the LA) needs B0170.
func unscheduledAccess(c echo.Context, p *auth.Principal, op string) (bool, error) {
	switch h := strings.ToLower(strings.TrimSpace(c.Request().Header.Get(headerUnscheduled))); h {
	case "":
		return p.Can(cpis.ActivityUnscheduledView), nil
	case "true":
		if !p.Can(cpis.ActivityUnscheduledView) {
			return false, cpis.E(op, cpis.AccessDenied, cpis.Expr("http.IsUnscheduledAccessEvent"), "an unscheduled-care access needs a role with activity B0107")
		}
		return true, nil
	case "false":
		if !p.Can(cpis.ActivityScheduledView) {
			return false, cpis.E(op, cpis.AccessDenied, cpis.Expr("http.IsUnscheduledAccessEvent"), "a scheduled-care access (no notification to the LA) needs a role with activity B0170")
		}
		return false, nil
	}
	return false, cpis.E(op, cpis.InvalidValue, cpis.Expr("http.IsUnscheduledAccessEvent"), "IsUnscheduledAccessEvent must be true or false")
}

// audited records one read of plan data for one patient and returns only
// once the record is committed. A health user's read that returned plans is
// an access: it appears in the child's "previously viewed by" history.
func (s *Server) audited(c echo.Context, r reader, action cpis.AuditAction, interaction string, nhs cpis.NHSNumber, plans []cpis.Plan) error {
	rec := s.record(c, r.p, action, interaction, nhs, plans)
	rec.Access = r.health && len(plans) > 0
	rec.Unscheduled = rec.Access && r.unscheduled
	if action == cpis.ActionExecute {
		rec.Query = c.Request().URL.RequestURI()
	}
	return s.Audit.Record(c.Request().Context(), rec)
}

// auditedSearch records a search: one record for each patient searched for,
// or, for an LA listing its own plans, for each patient found (one record
// with no patient when nothing was found).
func (s *Server) auditedSearch(c echo.Context, r reader, nhs cpis.NHSNumber, plans []cpis.Plan) error {
	if nhs != "" || len(plans) == 0 {
		return s.audited(c, r, cpis.ActionExecute, "search-type", nhs, plans)
	}
	var order []cpis.NHSNumber
	byPatient := map[cpis.NHSNumber][]cpis.Plan{}
	for _, p := range plans {
		if _, seen := byPatient[p.NHSNumber]; !seen {
			order = append(order, p.NHSNumber)
		}
		byPatient[p.NHSNumber] = append(byPatient[p.NHSNumber], p)
	}
	recs := make([]cpis.AuditRecord, 0, len(order))
	for _, n := range order {
		rec := s.record(c, r.p, cpis.ActionExecute, "search-type", n, byPatient[n])
		rec.Query = c.Request().URL.RequestURI()
		recs = append(recs, rec)
	}
	return s.Audit.Record(c.Request().Context(), recs...)
}

// writeRecord is the audit record of a write, stored by the store in the
// same transaction as the write itself.
func (s *Server) writeRecord(c echo.Context, p *auth.Principal, action cpis.AuditAction, interaction string, plan cpis.Plan) cpis.AuditRecord {
	return s.record(c, p, action, interaction, plan.NHSNumber, []cpis.Plan{plan})
}

// record fills in what every audit record carries.
func (s *Server) record(c echo.Context, p *auth.Principal, action cpis.AuditAction, interaction string, nhs cpis.NHSNumber, plans []cpis.Plan) cpis.AuditRecord {
	rec := cpis.AuditRecord{
		ID:          s.NewID(),
		Recorded:    s.stamp(),
		Action:      action,
		Interaction: interaction,
		Outcome:     cpis.OutcomeSuccess,
		Actor:       p.Actor,
		Patient:     nhs,
		RequestID:   requestID(c),
		Source:      s.BaseURL,
	}
	for _, pl := range plans {
		rec.PlanIDs = append(rec.PlanIDs, pl.ID)
		if !slices.Contains(rec.LACodes, pl.LA.Code) {
			rec.LACodes = append(rec.LACodes, pl.LA.Code)
		}
	}
	return rec
}
