package register

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// WriteKind is what an LA asks of a plan.
type WriteKind int

// Write kinds.
const (
	// Create is a new plan; with a Reference, only if the LA holds no live
	// plan with that reference (If-None-Exist).
	Create WriteKind = iota + 1
	// Update is a new version of a plan named by ID, or by Reference (a
	// conditional update, which creates the plan when the LA holds none).
	Update
	// Delete withdraws a plan named by ID or by Reference: it becomes
	// entered-in-error.
	Delete
)

// Write is one write an LA asks for, from whichever entry point.
type Write struct {
	Kind      WriteKind
	ID        string    // the plan, for Update and Delete by id
	Reference string    // the plan by the LA's reference (conditional); for Create, If-None-Exist
	Expect    int       // the version the write changes (If-Match); 0 accepts any
	Plan      cpis.Plan // what Create and Update store, as the LA sent it
	RequestID string    // the idempotency key (X-Request-ID); "" for none
	Digest    string    // the digest of the import line it comes from; "" for any other write
}

// Outcome says what a write did.
type Outcome int

// Outcomes.
const (
	Created   Outcome = iota + 1
	Updated           // a new version
	Unchanged         // nothing written: the plan already says this, or exists (If-None-Exist)
	Deleted           // withdrawn now, or already withdrawn
	Ended             // ended by a full import
	Replayed          // a retry of a write already done: nothing new written
)

// Result is one write's outcome and the plan as it now stands.
type Result struct {
	Outcome Outcome
	Plan    cpis.Plan
}

// view is one LA's plans as a write transaction sees them: read from the
// store for a group of writes, then kept current as they are decided, so
// that the writes of a transaction Bundle or an import chunk see each
// other. What the decisions write waits in versions and recs for one Put.
// The LA's write lock (store.BeginWrite) keeps what was read true.
type view struct {
	la       string
	quiet    bool                               // no audit record for an unchanged plan (an import line)
	plans    map[string]cpis.Plan               // current versions by id: read, or decided here
	refs     map[string]string                  // the LA's live plans: reference -> id
	child    map[cpis.NHSNumber]map[string]bool // the LA's live plans on each NHS number
	versions []store.Version
	recs     []cpis.AuditRecord
}

func newView(la string) *view {
	return &view{la: la, plans: map[string]cpis.Plan{}, refs: map[string]string{}, child: map[cpis.NHSNumber]map[string]bool{}}
}

// load reads what writes will be decided on: the plans they name by id or
// reference, and the LA's live plans on every NHS number they touch.
func (v *view) load(ctx context.Context, tx store.WriteTx, writes []Write) error {
	nhs := map[cpis.NHSNumber]bool{}
	var refs []string
	for _, w := range writes {
		if w.ID != "" {
			if _, ok := v.plans[w.ID]; !ok && resourceID.MatchString(w.ID) {
				p, err := tx.Plan(ctx, w.ID)
				switch {
				case err == nil:
					v.add(p)
					nhs[p.NHSNumber] = true
				case cpis.KindOf(err) != cpis.NotFound:
					return err
				}
			}
		}
		for _, r := range []string{w.Reference, w.Plan.Reference} {
			if r != "" {
				refs = append(refs, r)
			}
		}
		if w.Plan.NHSNumber != "" {
			nhs[w.Plan.NHSNumber] = true
		}
	}
	if len(refs) > 0 {
		held, err := tx.ByReference(ctx, refs)
		if err != nil {
			return err
		}
		for _, p := range held {
			v.add(p)
			nhs[p.NHSNumber] = true
		}
	}
	if len(nhs) == 0 {
		return nil
	}
	numbers := make([]cpis.NHSNumber, 0, len(nhs))
	for n := range nhs {
		numbers = append(numbers, n)
	}
	held, err := tx.ChildPlans(ctx, numbers)
	if err != nil {
		return err
	}
	for _, p := range held {
		v.add(p)
	}
	return nil
}

// add records p as its plan's current version.
func (v *view) add(p cpis.Plan) {
	if old, ok := v.plans[p.ID]; ok {
		v.forget(old)
	}
	v.plans[p.ID] = p
	if p.EnteredInError || p.LA.Code != v.la {
		return
	}
	if p.Reference != "" {
		v.refs[p.Reference] = p.ID
	}
	if v.child[p.NHSNumber] == nil {
		v.child[p.NHSNumber] = map[string]bool{}
	}
	v.child[p.NHSNumber][p.ID] = true
}

// forget removes p from the indexes, before its next version replaces it.
func (v *view) forget(p cpis.Plan) {
	if v.refs[p.Reference] == p.ID {
		delete(v.refs, p.Reference)
	}
	delete(v.child[p.NHSNumber], p.ID)
}

// put decides p as its plan's new version, written by w with rec.
func (v *view) put(p cpis.Plan, w Write, rec cpis.AuditRecord) {
	v.add(p)
	v.versions = append(v.versions, store.Version{Plan: p, RequestID: w.RequestID, Digest: w.Digest})
	v.recs = append(v.recs, rec)
}

// own returns the current version of plan id if it is this LA's, and
// NotFound otherwise, word for word alike, so that ids cannot be probed.
func (v *view) own(op, id string) (cpis.Plan, error) {
	p, ok := v.plans[id]
	if !ok || p.LA.Code != v.la {
		return cpis.Plan{}, notYours(op)
	}
	return p, nil
}

// decide applies every rule of a write to what v holds, and records what
// it writes in v. w.Plan has passed checkPlan.
func (s *Service) decide(v *view, c Caller, w Write, op string) (Result, error) {
	switch w.Kind {
	case Create:
		if id, ok := v.refs[w.Reference]; w.Reference != "" && ok {
			return s.unchanged(v, c, cpis.ActionCreate, "create", v.plans[id]), nil
		}
		return s.create(v, c, w, op)
	case Update:
		id := w.ID
		if w.Reference != "" { // prepare made the plan's reference the condition's
			held, ok := v.refs[w.Reference]
			if !ok {
				if w.Expect != 0 {
					return Result{}, cpis.E(op, cpis.PreconditionFailed, cpis.Expr("http.If-Match"), "If-Match names a version of a plan your local authority does not hold")
				}
				return s.create(v, c, w, op)
			}
			id = held
		}
		cur, err := v.own(op, id)
		if err != nil {
			return Result{}, err
		}
		return s.update(v, c, cur, w, op)
	case Delete:
		id := w.ID
		if w.Reference != "" {
			id = v.refs[w.Reference]
		}
		cur, err := v.own(op, id)
		if err != nil {
			return Result{}, err
		}
		return s.withdraw(v, c, cur, w, op)
	}
	return Result{}, cpis.E(op, cpis.Other, "unknown write kind")
}

// create decides a new plan.
func (s *Service) create(v *view, c Caller, w Write, op string) (Result, error) {
	plan := w.Plan
	if err := v.free(plan, op); err != nil {
		return Result{}, err
	}
	plan.ID, plan.Version, plan.LastUpdated = s.newID(), 1, stamp(c.At)
	v.put(plan, w, s.record(c, cpis.ActionCreate, "create", plan.NHSNumber, []cpis.Plan{plan}))
	return Result{Outcome: Created, Plan: plan}, nil
}

// update decides a new version of cur. A plan that would not change is
// left as it is: re-sending a file writes nothing.
func (s *Service) update(v *view, c Caller, cur cpis.Plan, w Write, op string) (Result, error) {
	plan := w.Plan
	switch {
	case w.ID != "" && plan.ID != "" && plan.ID != cur.ID:
		return Result{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.id"), "the resource id in the body does not match the id in the URL")
	case cur.EnteredInError:
		return Result{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.status"), "this plan was withdrawn (entered in error) and cannot change: create a new plan")
	case cur.NHSNumber != plan.NHSNumber:
		return Result{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.subject"), "a plan cannot move to another NHS number: delete it and create a plan on the right one")
	case w.Expect != 0 && cur.Version != w.Expect:
		return Result{}, cpis.E(op, cpis.PreconditionFailed, cpis.Expr("http.If-Match"), "the plan is not at the version If-Match names: read it again")
	case cur.SameContent(plan):
		return s.unchanged(v, c, cpis.ActionUpdate, "update", cur), nil
	}
	plan.ID = cur.ID
	if err := v.free(plan, op); err != nil {
		return Result{}, err
	}
	plan.Version, plan.LastUpdated = cur.Version+1, stamp(c.At)
	v.put(plan, w, s.record(c, cpis.ActionUpdate, "update", plan.NHSNumber, []cpis.Plan{plan}))
	return Result{Outcome: Updated, Plan: plan}, nil
}

// withdraw decides that cur is entered in error. Withdrawing a withdrawn
// plan changes nothing but is recorded: the LA did ask.
func (s *Service) withdraw(v *view, c Caller, cur cpis.Plan, w Write, op string) (Result, error) {
	rec := s.record(c, cpis.ActionDelete, "delete", cur.NHSNumber, []cpis.Plan{cur})
	if cur.EnteredInError {
		v.recs = append(v.recs, rec)
		return Result{Outcome: Deleted, Plan: cur}, nil
	}
	if w.Expect != 0 && cur.Version != w.Expect {
		return Result{}, cpis.E(op, cpis.PreconditionFailed, cpis.Expr("http.If-Match"), "the plan is not at the version If-Match names: read it again")
	}
	cur.Version, cur.EnteredInError, cur.LastUpdated = cur.Version+1, true, stamp(c.At)
	v.put(cur, w, rec) // a retry of a withdrawal by reference finds it by its key
	return Result{Outcome: Deleted, Plan: cur}, nil
}

// endPlan decides that cur ended the day before day (or on its start day,
// if that is later): the LA's full extract no longer holds it.
func (s *Service) endPlan(v *view, c Caller, cur cpis.Plan, day cpis.Date) Result {
	cur.End = day.AddDays(-1)
	if cur.End.Before(cur.Start) {
		cur.End = cur.Start
	}
	cur.Version, cur.LastUpdated = cur.Version+1, stamp(c.At)
	v.put(cur, Write{}, s.record(c, cpis.ActionUpdate, "update", cur.NHSNumber, []cpis.Plan{cur}))
	return Result{Outcome: Ended, Plan: cur}
}

// unchanged is a write that leaves p as it is. A single write answers with
// p, so its request is recorded; an unchanged import line is not (its
// answer carries no plan data, and re-sending a file must cost nothing).
func (s *Service) unchanged(v *view, c Caller, action cpis.AuditAction, interaction string, p cpis.Plan) Result {
	if !v.quiet {
		v.recs = append(v.recs, s.record(c, action, interaction, p.NHSNumber, []cpis.Plan{p}))
	}
	return Result{Outcome: Unchanged, Plan: p}
}

// free checks that plan may take its place among the LA's live plans: its
// reference is not another plan's, and it overlaps no plan of the same type
// on the same child (cpis.Plan.Overlaps: the same plan posted twice).
func (v *view) free(plan cpis.Plan, op string) error {
	if id, ok := v.refs[plan.Reference]; plan.Reference != "" && ok && id != plan.ID {
		return cpis.E(op, cpis.Conflict, cpis.Expr("Flag.identifier"), fmt.Sprintf(
			"this local authority already holds a plan with this reference: Flag/%s; update that plan instead", id))
	}
	for _, id := range slices.Sorted(maps.Keys(v.child[plan.NHSNumber])) {
		if held := v.plans[id]; id != plan.ID && plan.Overlaps(held) {
			return cpis.E(op, cpis.Conflict, cpis.Expr("Flag.period"), fmt.Sprintf(
				"this local authority already holds a %s for this child whose period overlaps: Flag/%s; change that plan instead", held.Type, id))
		}
	}
	return nil
}
