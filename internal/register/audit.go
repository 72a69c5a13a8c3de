package register

import (
	"context"
	"slices"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// record fills in what every audit record carries.
func (s *Service) record(c Caller, action cpis.AuditAction, interaction string, nhs cpis.NHSNumber, plans []cpis.Plan) cpis.AuditRecord {
	actor := c.Principal.Actor
	if la, ok := s.las.Lookup(actor.OrgCode); ok && actor.Kind == cpis.LASystem {
		actor.OrgName = la.Name // the register's, not the token's
	}
	rec := cpis.AuditRecord{
		ID:          s.newID(),
		Recorded:    stamp(c.At),
		Action:      action,
		Interaction: interaction,
		Outcome:     cpis.OutcomeSuccess,
		Actor:       actor,
		Patient:     nhs,
		RequestID:   c.RequestID,
		TraceID:     c.TraceID,
		Source:      s.source,
	}
	for _, pl := range plans {
		rec.PlanIDs = append(rec.PlanIDs, pl.ID)
		if !slices.Contains(rec.LACodes, pl.LA.Code) {
			rec.LACodes = append(rec.LACodes, pl.LA.Code)
		}
	}
	return rec
}

// audited records one read of plan data for one patient and returns only
// once the record is committed. A health user's read that returned plans is
// an access: it appears in the child's "previously viewed by" history, and
// in unscheduled care its ASNs are committed with it.
func (s *Service) audited(ctx context.Context, c Caller, r reader, action cpis.AuditAction, interaction string, nhs cpis.NHSNumber, plans []cpis.Plan) error {
	rec := s.record(c, action, interaction, nhs, plans)
	rec.Access = r.health && len(plans) > 0
	rec.Unscheduled = rec.Access && r.unscheduled
	rec.ASNs = s.notifications(rec, plans)
	if action == cpis.ActionExecute {
		rec.Query = c.Query
	}
	return s.audit.Record(ctx, rec)
}

// auditedSearch records a search: one record for the patient searched for,
// or, for an LA listing its own plans, one for each patient found (one
// record with no patient when nothing was found).
func (s *Service) auditedSearch(ctx context.Context, c Caller, r reader, nhs cpis.NHSNumber, plans []cpis.Plan) error {
	if nhs != "" || len(plans) == 0 {
		return s.audited(ctx, c, r, cpis.ActionExecute, "search-type", nhs, plans)
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
		rec := s.record(c, cpis.ActionExecute, "search-type", n, byPatient[n])
		rec.Query = c.Query
		recs = append(recs, rec)
	}
	return s.audit.Record(ctx, recs...)
}
