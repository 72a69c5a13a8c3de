package register

import (
	"context"
	"errors"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// MayWrite reports whether the caller may write plans at all (an LA
// system): an entry point asks before it reads what the caller sent. Every
// write checks it again.
func (s *Service) MayWrite(c Caller) error {
	_, err := writer(c, "register.MayWrite")
	return err
}

// CreatePlan stores a new plan from its responsible LA, with the audit
// record of the write in the same transaction, and returns it as the LA
// sees it. A retry of a create already stored (the same request id and the
// same content) returns the stored plan with replayed true; a request id
// the LA already used for a different write is a Conflict.
func (s *Service) CreatePlan(ctx context.Context, c Caller, plan cpis.Plan) (Shown, bool, error) {
	const op = "register.CreatePlan"
	p, err := writer(c, op)
	if err != nil {
		return Shown{}, false, err
	}
	plan, err = s.checkPlan(p, plan, op)
	if err != nil {
		return Shown{}, false, err
	}
	plan.ID, plan.Version, plan.LastUpdated = s.newID(), 1, stamp(c.At)
	rec := s.record(c, cpis.ActionCreate, "create", plan.NHSNumber, []cpis.Plan{plan})
	stored, replayed, err := s.store.CreatePlan(ctx, plan, rec)
	if err != nil {
		return Shown{}, false, cpis.E(op, err)
	}
	if replayed && (stored.Version != 1 || !stored.SameContent(plan)) {
		return Shown{}, false, reusedRequestID(op)
	}
	return written(c, stored), replayed, nil
}

// UpdatePlan replaces plan id with a new version; expect is the version the
// LA is changing (from If-Match). A plan that is not the caller's is
// NotFound, exactly as one that does not exist, so that ids cannot be
// probed. It returns the new version as the LA sees it.
func (s *Service) UpdatePlan(ctx context.Context, c Caller, id string, plan cpis.Plan, expect int) (Shown, error) {
	const op = "register.UpdatePlan"
	p, err := writer(c, op)
	if err != nil {
		return Shown{}, err
	}
	plan, err = s.checkPlan(p, plan, op)
	if err != nil {
		return Shown{}, err
	}
	if plan.ID != "" && plan.ID != id {
		return Shown{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.id"), "the resource id in the body does not match the id in the URL")
	}
	current, err := s.ownPlan(ctx, p, id, op)
	if err != nil {
		return Shown{}, err
	}
	if current.EnteredInError {
		return Shown{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.status"), "this plan was withdrawn (entered in error) and cannot change: create a new plan")
	}
	if current.NHSNumber != plan.NHSNumber {
		return Shown{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.subject"), "a plan cannot move to another NHS number: delete it and create a plan on the right one")
	}
	plan.ID, plan.LastUpdated = id, stamp(c.At)
	rec := s.record(c, cpis.ActionUpdate, "update", plan.NHSNumber, []cpis.Plan{plan})
	stored, replayed, err := s.store.UpdatePlan(ctx, plan, expect, rec)
	if err != nil {
		return Shown{}, notYours(op, err)
	}
	if replayed && (stored.ID != id || !stored.SameContent(plan)) {
		return Shown{}, reusedRequestID(op)
	}
	return written(c, stored), nil
}

// DeletePlan withdraws plan id: it becomes entered-in-error as a new
// version, and health users no longer see it. expect 0 accepts any
// version. Withdrawing a withdrawn plan changes nothing and succeeds.
func (s *Service) DeletePlan(ctx context.Context, c Caller, id string, expect int) (cpis.Plan, error) {
	const op = "register.DeletePlan"
	p, err := writer(c, op)
	if err != nil {
		return cpis.Plan{}, err
	}
	current, err := s.ownPlan(ctx, p, id, op)
	if err != nil {
		return cpis.Plan{}, err
	}
	at := stamp(c.At)
	current.EnteredInError, current.LastUpdated = true, at
	rec := s.record(c, cpis.ActionDelete, "delete", current.NHSNumber, []cpis.Plan{current})
	stored, err := s.store.DeletePlan(ctx, current.ID, p.LACode, expect, at, rec)
	if err != nil {
		return cpis.Plan{}, notYours(op, err)
	}
	return stored, nil
}

// written is a plan the caller just wrote, as it sees it: the responsible
// LA sees everything it sent.
func written(c Caller, p cpis.Plan) Shown {
	return Shown{Plans: []cpis.Plan{p}, View: cpis.OwnerView, Today: cpis.Today(c.At)}
}

// checkPlan applies every rule a plan written by LA p must satisfy: the
// SOP's rules, that its LA is in the register of local authorities (whose
// name it takes: a differing name sent by the client is refused), and that
// p is that LA. It returns the plan with the register's name.
func (s *Service) checkPlan(p *auth.Principal, plan cpis.Plan, op string) (cpis.Plan, error) {
	errs := []error{plan.Validate()}
	la, known := s.las.Lookup(plan.LA.Code)
	switch {
	case plan.LA.Code != "" && !known:
		errs = append(errs, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.author.identifier.value"), "the author is not a local authority in the register of local authorities"))
	case known && plan.LA.Name != "" && plan.LA.Name != la.Name:
		errs = append(errs, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.author.display"),
			"the local authority's name comes from the register: leave author.display out, or send it exactly as the register holds it ("+la.Name+")"))
	}
	if err := errors.Join(errs...); err != nil {
		return cpis.Plan{}, err
	}
	if plan.LA.Code != p.LACode {
		return cpis.Plan{}, cpis.E(op, cpis.ForbiddenUpdate, cpis.Expr("Flag.author"), "a local authority may write only plans it is responsible for: the author must be your own LA")
	}
	plan.LA = la
	return plan, nil
}

// ownPlan returns the current version of plan id if LA p is responsible for
// it, and NotFound otherwise.
func (s *Service) ownPlan(ctx context.Context, p *auth.Principal, id, op string) (cpis.Plan, error) {
	if err := checkID(op, id); err != nil {
		return cpis.Plan{}, notYours(op, err)
	}
	current, err := s.store.Plan(ctx, id)
	if err != nil {
		return cpis.Plan{}, notYours(op, err)
	}
	if current.LA.Code != p.LACode {
		return cpis.Plan{}, notYours(op, cpis.E(op, cpis.ForbiddenUpdate))
	}
	return current, nil
}

// notYours answers "no such plan" and "another LA's plan" (from ownPlan, or
// from the store, which checks again) alike, word for word, so that an LA
// cannot probe which ids are taken.
func notYours(op string, err error) error {
	switch cpis.KindOf(err) {
	case cpis.ForbiddenUpdate, cpis.NotFound:
		return cpis.E(op, cpis.NotFound, "no plan with this id among your local authority's plans")
	}
	return cpis.E(op, err)
}

func reusedRequestID(op string) error {
	return cpis.E(op, cpis.Conflict, cpis.Expr("http.X-Request-ID"),
		"this X-Request-ID was already used for a different write: send a new X-Request-ID for a new request")
}
