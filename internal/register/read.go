package register

import (
	"context"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// ReadPlan returns the current version of plan id, if the caller may see it
// (otherwise NotFound, whether or not the plan exists), audited as a read.
func (s *Service) ReadPlan(ctx context.Context, c Caller, id string) (Shown, error) {
	const op = "register.ReadPlan"
	r, plan, today, err := s.readablePlan(ctx, c, id, "read", op)
	if err != nil {
		return Shown{}, err
	}
	if err := s.audited(ctx, c, r, cpis.ActionRead, "read", plan.NHSNumber, []cpis.Plan{plan}); err != nil {
		return Shown{}, err
	}
	return s.shown(r, today, []cpis.Plan{plan}, false), nil
}

// ReadPlanVersion returns version v of plan id, as ReadPlan. Health readers
// never see a withdrawn version.
func (s *Service) ReadPlanVersion(ctx context.Context, c Caller, id string, v int) (Shown, error) {
	const op = "register.ReadPlanVersion"
	r, current, today, err := s.readablePlan(ctx, c, id, "vread", op)
	if err != nil {
		return Shown{}, err
	}
	if v < 1 {
		return Shown{}, cpis.E(op, cpis.NotFound, "no such version of this plan")
	}
	plan, err := s.store.PlanVersion(ctx, current.ID, v)
	if err != nil {
		return Shown{}, cpis.E(op, err)
	}
	if r.health && plan.EnteredInError {
		return Shown{}, cpis.E(op, cpis.NotFound, "no such version of this plan")
	}
	if err := s.audited(ctx, c, r, cpis.ActionRead, "vread", plan.NHSNumber, []cpis.Plan{plan}); err != nil {
		return Shown{}, err
	}
	return s.shown(r, today, []cpis.Plan{plan}, false), nil
}

// PlanHistory returns every version of plan id, newest first, as ReadPlan.
func (s *Service) PlanHistory(ctx context.Context, c Caller, id string) (Shown, error) {
	const op = "register.PlanHistory"
	r, current, today, err := s.readablePlan(ctx, c, id, "history-instance", op)
	if err != nil {
		return Shown{}, err
	}
	versions, err := s.store.PlanHistory(ctx, current.ID)
	if err != nil {
		return Shown{}, cpis.E(op, err)
	}
	if err := s.audited(ctx, c, r, cpis.ActionRead, "history-instance", current.NHSNumber, versions); err != nil {
		return Shown{}, err
	}
	return s.shown(r, today, versions, false), nil
}

// readablePlan returns the caller as a reader and the current version of
// plan id, if the caller may see it; otherwise NotFound, whether or not
// the plan exists.
func (s *Service) readablePlan(ctx context.Context, c Caller, id, interaction, op string) (reader, cpis.Plan, cpis.Date, error) {
	r, err := s.reader(c, op)
	if err != nil {
		return r, cpis.Plan{}, cpis.Date{}, s.refused(ctx, c, interaction, "", err)
	}
	if err := checkID(op, id); err != nil {
		return r, cpis.Plan{}, cpis.Date{}, err
	}
	plan, err := s.store.Plan(ctx, id)
	if err != nil {
		return r, cpis.Plan{}, cpis.Date{}, cpis.E(op, err)
	}
	today := cpis.Today(c.At)
	if !r.maySee(plan, today) {
		return r, cpis.Plan{}, cpis.Date{}, cpis.E(op, cpis.NotFound, "no plan with this id")
	}
	return r, plan, today, nil
}

// SearchPlans finds plans for q, narrowed to what the caller may see: a
// health user searches one child by NHS number and sees plans within their
// display window; an LA lists its own plans. No match is an empty result.
// The search is audited, one record per patient.
func (s *Service) SearchPlans(ctx context.Context, c Caller, q store.PlanQuery) (Shown, error) {
	const op = "register.SearchPlans"
	r, err := s.reader(c, op)
	if err != nil {
		return Shown{}, s.refused(ctx, c, "search-type", q.NHSNumber, err)
	}
	q.Today = cpis.Today(c.At)
	if r.health {
		if q.NHSNumber == "" {
			return Shown{}, cpis.E(op, cpis.MissingValue, cpis.Expr("patient"), "a search needs the patient's NHS number: patient, patient:identifier or subject:identifier")
		}
		q.VisibleOn = q.Today
	} else {
		q.LACode = r.p.LACode
	}
	page, err := s.store.SearchPlans(ctx, q)
	if err != nil {
		return Shown{}, cpis.E(op, err)
	}
	if err := s.auditedSearch(ctx, c, r, q.NHSNumber, page.Plans); err != nil {
		return Shown{}, err
	}
	return s.shown(r, q.Today, page.Plans, page.More), nil
}

// careTeamLimit bounds the plans one child's CareTeam search returns: a
// child has a handful.
const careTeamLimit = 100

// CareTeams answers the national CP-IS API's question for one NHS number:
// the plans the caller may see, with their LA contacts (a health user's
// within the display window; an LA's own). Audited as a search.
func (s *Service) CareTeams(ctx context.Context, c Caller, nhs cpis.NHSNumber) (Shown, error) {
	const op = "register.CareTeams"
	r, err := s.reader(c, op)
	if err != nil {
		return Shown{}, s.refused(ctx, c, "search-type", nhs, err)
	}
	if nhs == "" {
		return Shown{}, cpis.E(op, cpis.MissingValue, cpis.Expr("patient:identifier"), "a CareTeam search needs the patient's NHS number: patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<nhs>")
	}
	today := cpis.Today(c.At)
	q := store.PlanQuery{NHSNumber: nhs, Today: today, Limit: careTeamLimit}
	if r.health {
		q.VisibleOn = today
	} else {
		q.LACode = r.p.LACode
	}
	page, err := s.store.SearchPlans(ctx, q)
	if err != nil {
		return Shown{}, cpis.E(op, err)
	}
	if err := s.auditedSearch(ctx, c, r, nhs, page.Plans); err != nil {
		return Shown{}, err
	}
	return s.shown(r, today, page.Plans, false), nil
}
