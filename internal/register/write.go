package register

import (
	"context"
	"errors"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// MayWrite reports whether the caller may write plans at all (an LA
// system): an entry point asks before it reads what the caller sent. Every
// write checks it again.
func (s *Service) MayWrite(c Caller) error {
	_, err := writer(c, "register.MayWrite")
	return err
}

// Apply carries out one write of the caller's, alone in its own
// transaction, with its audit record: a create (POST /Flag, optionally
// If-None-Exist), an update by id or by the LA's reference (PUT), a
// withdrawal (DELETE). A plan that is not the caller's is NotFound, word for
// word as one that does not exist, so that ids cannot be probed. A retry of
// a write already stored (the same request id, the same write) is answered
// with what it stored (Replayed); a request id the LA already used for a
// different write is a Conflict. The plan comes back as the LA sees it.
func (s *Service) Apply(ctx context.Context, c Caller, w Write) (Result, Shown, error) {
	const op = "register.Apply"
	p, err := writer(c, op)
	if err != nil {
		return Result{}, Shown{}, err
	}
	if w, err = s.prepare(p, w, op); err != nil {
		return Result{}, Shown{}, err
	}
	w.RequestID = c.RequestID
	var res Result
	err = s.inTx(ctx, p.LACode, func(tx store.WriteTx) error {
		var err error
		res, err = s.applyIn(ctx, tx, c, newView(p.LACode), w, op)
		return err
	})
	if err != nil {
		return Result{}, Shown{}, err
	}
	return res, written(c, res.Plan), nil
}

// applyIn decides w in tx and stores what it writes.
func (s *Service) applyIn(ctx context.Context, tx store.WriteTx, c Caller, v *view, w Write, op string) (Result, error) {
	if res, ok, err := replay(ctx, tx, w, op); err != nil || ok {
		return res, err
	}
	if err := v.load(ctx, tx, []Write{w}); err != nil {
		return Result{}, cpis.E(op, err)
	}
	res, err := s.decide(v, c, w, op)
	if err != nil {
		return Result{}, err
	}
	if err := tx.Put(ctx, v.versions, v.recs); err != nil {
		return Result{}, cpis.E(op, err)
	}
	v.versions, v.recs = nil, nil
	return res, nil
}

// inTx runs f in a write transaction on LA la's plans and commits it.
func (s *Service) inTx(ctx context.Context, la string, f func(tx store.WriteTx) error) error {
	tx, err := s.store.BeginWrite(ctx, la)
	if err != nil {
		return cpis.E("register.write", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := f(tx); err != nil {
		return err
	}
	return wrap("register.write", tx.Commit(ctx))
}

// replay answers a write whose request id this LA already used: with what
// that write stored, if it was this write; otherwise Conflict.
func replay(ctx context.Context, tx store.WriteTx, w Write, op string) (Result, bool, error) {
	if w.RequestID == "" {
		return Result{}, false, nil
	}
	stored, ok, err := tx.Replay(ctx, w.RequestID)
	if err != nil || !ok {
		return Result{}, false, wrap(op, err)
	}
	same := (w.ID == "" || stored.ID == w.ID) && (w.Reference == "" || stored.Reference == w.Reference)
	switch w.Kind {
	case Delete:
		if same && stored.EnteredInError {
			return Result{Outcome: Deleted, Plan: stored}, true, nil
		}
	case Create:
		same = same && stored.SameContent(w.Plan) && (w.Reference != "" || stored.Version == 1)
	default:
		same = same && stored.SameContent(w.Plan)
	}
	if !same || w.Kind == Delete {
		return Result{}, false, cpis.E(op, cpis.Conflict, cpis.Expr("http.X-Request-ID"),
			"this X-Request-ID was already used for a different write: send a new X-Request-ID for a new request")
	}
	return Result{Outcome: Replayed, Plan: stored}, true, nil
}

// prepare checks what w asks before anything is read: the plan it writes
// passes every rule of its own, and names a local authority of the register,
// the caller's; the conditions name a reference that can be one.
func (s *Service) prepare(p *auth.Principal, w Write, op string) (Write, error) {
	if w.Reference != "" && !cpis.ValidReference(w.Reference) {
		return w, cpis.E(op, cpis.InvalidSearch, cpis.Expr("identifier"), "the LA's plan reference must be 1 to 64 of A-Z a-z 0-9 . _ -")
	}
	if w.Kind != Create && w.Kind != Update {
		return w, nil
	}
	if w.Reference != "" {
		// A write conditional on a reference stores that reference.
		if w.Plan.Reference != "" && w.Plan.Reference != w.Reference {
			return w, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.identifier"), "the plan's reference differs from the one the write is conditional on")
		}
		w.Plan.Reference = w.Reference
	}
	plan, err := s.checkPlan(p, w.Plan, op)
	if err != nil {
		return w, err
	}
	w.Plan = plan
	return w, nil
}

// written is a plan the caller just wrote, as it sees it: the responsible
// LA sees everything it sent.
func written(c Caller, p cpis.Plan) Shown {
	return Shown{Plans: []cpis.Plan{p}, View: cpis.OwnerView, Today: cpis.Today(c.At)}
}

// checkPlan applies every rule a plan written by LA p must satisfy on its
// own: the SOP's rules, that its LA is in the register of local authorities
// (whose name it takes: a differing name sent by the client is refused), and
// that p is that LA. It returns the plan with the register's name.
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

// notYours answers "no such plan" and "another LA's plan" alike, word for
// word, so that an LA cannot probe which ids are taken.
func notYours(op string) error {
	return cpis.E(op, cpis.NotFound, "no plan with this id or reference among your local authority's plans")
}
