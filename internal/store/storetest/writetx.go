package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// refusedFixture is what testPutRefused's cases write against: the first
// LA's plan p at version 2, written with request id requestID and holding
// reference "HELD"; and another LA's plan o.
type refusedFixture struct {
	p, o      cpis.Plan
	requestID string
}

// testPutRefused: a Put the store refuses is of the contract's kind, and
// leaves the transaction good only for a rollback: nothing it or an
// earlier Put of the transaction wrote is stored.
func testPutRefused(t *testing.T, open opener) {
	fresh := func(nhs int) cpis.Plan {
		p := newPlan(nhsNumber(t, nhs), la(0), cpis.CLA, "2025-01-01", "2025-12-31", baseTime().Add(time.Hour))
		p.Version = 1
		return p
	}
	withRef := func(p cpis.Plan, ref string) cpis.Plan { p.Reference = ref; return p }
	tests := []struct {
		name     string
		versions func(f refusedFixture) []store.Version
		want     cpis.Kind
	}{
		{"a new plan's id taken", func(f refusedFixture) []store.Version {
			p := fresh(5)
			p.ID = f.p.ID
			return versions(p)
		}, cpis.Conflict},
		{"another LA's plan's id taken", func(f refusedFixture) []store.Version {
			p := fresh(5)
			p.ID = f.o.ID
			return versions(p)
		}, cpis.Conflict},
		{"a stale version", func(f refusedFixture) []store.Version {
			p := f.p
			p.LastUpdated = p.LastUpdated.Add(time.Hour)
			return versions(p) // version 2 again
		}, cpis.Conflict},
		{"a version skipped", func(f refusedFixture) []store.Version {
			return versions(next(next(f.p, baseTime().Add(time.Hour), nil), baseTime().Add(time.Hour), nil))
		}, cpis.Conflict},
		{"a version 2 of a plan not stored", func(f refusedFixture) []store.Version {
			return versions(next(fresh(5), baseTime().Add(time.Hour), nil))
		}, cpis.Conflict},
		{"a request id the LA used", func(f refusedFixture) []store.Version {
			return []store.Version{{Plan: fresh(5), RequestID: f.requestID}}
		}, cpis.Conflict},
		{"a request id twice in one call", func(f refusedFixture) []store.Version {
			id := uuid.NewString()
			return []store.Version{{Plan: fresh(5), RequestID: id}, {Plan: fresh(6), RequestID: id}}
		}, cpis.Conflict},
		{"a reference another plan holds", func(f refusedFixture) []store.Version {
			return versions(withRef(fresh(5), "HELD"))
		}, cpis.Conflict},
		{"a reference another plan holds, by a new version", func(f refusedFixture) []store.Version {
			q := fresh(5)
			return versions(q, next(q, q.LastUpdated.Add(time.Minute), func(q *cpis.Plan) { q.Reference = "HELD" }))
		}, cpis.Conflict},
		{"a reference twice in one call", func(f refusedFixture) []store.Version {
			return versions(withRef(fresh(5), "NEW"), withRef(fresh(6), "NEW"))
		}, cpis.Conflict},
		{"a plan of another LA", func(f refusedFixture) []store.Version {
			p := fresh(5)
			p.LA = la(1)
			return versions(p)
		}, cpis.Invalid},
		{"a version of another LA's plan", func(f refusedFixture) []store.Version {
			return versions(next(f.o, baseTime().Add(time.Hour), func(p *cpis.Plan) { p.LA = la(0) }))
		}, cpis.Invalid},
		{"no id", func(f refusedFixture) []store.Version { p := fresh(5); p.ID = ""; return versions(p) }, cpis.Invalid},
		{"version 0", func(f refusedFixture) []store.Version { p := fresh(5); p.Version = 0; return versions(p) }, cpis.Invalid},
		{"no time", func(f refusedFixture) []store.Version { p := fresh(5); p.LastUpdated = time.Time{}; return versions(p) }, cpis.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			f := seedRefused(t, ctx, s)
			before := []snapshot{snap(t, ctx, s, f.p.ID), snap(t, ctx, s, f.o.ID)}
			tx := begin(t, ctx, s, la(0).Code)
			earlier := fresh(7) // stored by the transaction before the refused Put
			putIn(t, ctx, tx, versions(earlier), writeRecord(earlier, cpis.ActionCreate, "create", earlier.LastUpdated))
			probe := writeRecord(f.p, cpis.ActionUpdate, "update", baseTime().Add(2*time.Hour))
			probe.Actor.UserID = "probe"
			wantKind(t, "Put", tx.Put(ctx, tt.versions(f), []cpis.AuditRecord{probe}), tt.want)
			_, err := tx.Plan(ctx, f.p.ID)
			wantKind(t, "Plan after a refused Put", err, tt.want)
			wantKind(t, "Commit after a refused Put", tx.Commit(ctx), tt.want)
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("Rollback: %v", err)
			}
			unchanged(t, ctx, s, f.p.ID, before[0])
			unchanged(t, ctx, s, f.o.ID, before[1])
			_, err = s.Plan(ctx, earlier.ID)
			wantKind(t, "Plan of a plan the transaction stored", err, cpis.NotFound)
			wantRecords(t, "the audit trail of the refused transaction",
				searchAudit(t, ctx, s, store.AuditQuery{OrgCode: la(0).Code, RecordedFrom: earlier.LastUpdated, Limit: 10}), nil)
		})
	}
}

func seedRefused(t *testing.T, ctx context.Context, s store.Store) refusedFixture {
	f := refusedFixture{requestID: uuid.NewString()}
	p := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
	f.p = next(p, baseTime().Add(time.Minute), func(p *cpis.Plan) { p.Reference = "HELD" })
	put(t, ctx, s, p.LA.Code, []store.Version{{Plan: f.p, RequestID: f.requestID}})
	f.o = create(t, ctx, s, newPlan(nhsNumber(t, 2), la(1), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
	return f
}

// testReplay: a version stored with a request id is found by it, by its LA
// only, and a request id serves one write.
func testReplay(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	requestID := uuid.NewString()
	v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
	v2 := next(v1, baseTime().Add(time.Minute), func(p *cpis.Plan) { p.End = cpis.MustDate("2025-10-31") })
	put(t, ctx, s, v1.LA.Code, []store.Version{{Plan: v2, RequestID: requestID}})
	put(t, ctx, s, v1.LA.Code, versions(next(v2, baseTime().Add(2*time.Minute), nil)))
	// Another LA may use the same request id: ids are the LA's.
	o := newPlan(nhsNumber(t, 2), la(1), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
	o.Version = 1
	put(t, ctx, s, o.LA.Code, []store.Version{{Plan: o, RequestID: requestID}})

	replay := func(laCode, requestID string) (cpis.Plan, bool) {
		t.Helper()
		tx := begin(t, ctx, s, laCode)
		defer tx.Rollback(ctx)
		p, ok, err := tx.Replay(ctx, requestID)
		if err != nil {
			t.Fatalf("Replay: %v", err)
		}
		return p, ok
	}
	t.Run("the version the write stored, though no longer current", func(t *testing.T) {
		got, ok := replay(la(0).Code, requestID)
		if !ok {
			t.Fatal("Replay found nothing")
		}
		wantPlan(t, "Replay", got, v2)
	})
	t.Run("by its own LA", func(t *testing.T) {
		got, ok := replay(la(1).Code, requestID)
		if !ok {
			t.Fatal("Replay found nothing")
		}
		wantPlan(t, "Replay", got, o)
		if _, ok := replay(la(2).Code, requestID); ok {
			t.Error("Replay by an LA that never used the request id found a version")
		}
	})
	t.Run("an unused or empty request id", func(t *testing.T) {
		for _, id := range []string{uuid.NewString(), ""} {
			if _, ok := replay(la(0).Code, id); ok {
				t.Errorf("Replay(%q) found a version", id)
			}
		}
	})
	t.Run("within the transaction that stored it", func(t *testing.T) {
		tx := begin(t, ctx, s, la(0).Code)
		p := newPlan(nhsNumber(t, 3), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		p.Version = 1
		id := uuid.NewString()
		putIn(t, ctx, tx, []store.Version{{Plan: p, RequestID: id}})
		got, ok, err := tx.Replay(ctx, id)
		if err != nil || !ok {
			t.Fatalf("Replay: %v, %v; want the version", ok, err)
		}
		wantPlan(t, "Replay", got, p)
	})
}

// testWriteTx: the life of a write transaction.
func testWriteTx(t *testing.T, open opener) {
	t.Run("Rollback leaves nothing", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		before := snap(t, ctx, s, v1.ID)
		p := newPlan(nhsNumber(t, 2), la(0), cpis.CLA, "2025-01-01", "2025-12-31", baseTime())
		p.Version = 1
		tx := begin(t, ctx, s, la(0).Code)
		probe := writeRecord(p, cpis.ActionCreate, "create", baseTime().Add(time.Hour))
		putIn(t, ctx, tx, []store.Version{{Plan: p, RequestID: uuid.NewString()}}, probe)
		putIn(t, ctx, tx, versions(next(v1, baseTime().Add(time.Hour), nil)))
		if err := tx.Rollback(ctx); err != nil {
			t.Fatalf("Rollback: %v", err)
		}
		_, err := s.Plan(ctx, p.ID)
		wantKind(t, "Plan of a plan rolled back", err, cpis.NotFound)
		unchanged(t, ctx, s, v1.ID, before)
		wantRecords(t, "SearchAudit", searchAudit(t, ctx, s, store.AuditQuery{RecordedFrom: probe.Recorded, Limit: 10}), nil)
	})
	t.Run("Rollback after the end does nothing", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		tx := begin(t, ctx, s, la(0).Code)
		commit(t, ctx, tx)
		for range 2 {
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("Rollback after Commit: %v", err)
			}
		}
		if err := tx.Commit(ctx); err == nil {
			t.Error("a second Commit succeeded")
		}
		_, err := tx.Plan(ctx, uuid.NewString())
		if err == nil || cpis.KindOf(err) == cpis.NotFound {
			t.Errorf("Plan after the end: %v, want the error of an ended transaction", err)
		}
	})
	t.Run("another transaction sees nothing before the commit", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		p := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		p.Version = 1
		tx := begin(t, ctx, s, la(0).Code)
		putIn(t, ctx, tx, versions(p))
		_, err := s.Plan(ctx, p.ID)
		wantKind(t, "Plan outside the transaction", err, cpis.NotFound)
		commit(t, ctx, tx)
		wantCurrent(t, ctx, s, p)
	})
	t.Run("no LA", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		tx, err := s.BeginWrite(ctx, "")
		if err == nil {
			tx.Rollback(ctx)
		}
		wantKind(t, "BeginWrite", err, cpis.Invalid)
	})
}

// readsFixture is what testWriteTxReads reads: the first LA's plans on
// children x, y and z, and another LA's.
type readsFixture struct {
	x, y, z                                   cpis.NHSNumber
	live, withdrawn, unreferenced, ended, ucp cpis.Plan // the first LA's
	other                                     cpis.Plan // another LA's, on x, with live's reference
}

// day is the day Current is asked about.
var readsDay = cpis.MustDate("2025-06-01")

func seedReads(t *testing.T, ctx context.Context, s store.Store) readsFixture {
	f := readsFixture{x: nhsNumber(t, 1), y: nhsNumber(t, 2), z: nhsNumber(t, 3)}
	plan := func(nhs cpis.NHSNumber, authority int, typ cpis.PlanType, start, end, ref string) cpis.Plan {
		p := newPlan(nhs, la(authority), typ, start, end, baseTime())
		p.Reference = ref
		return create(t, ctx, s, p)
	}
	f.live = plan(f.x, 0, cpis.CPP, "2025-01-01", "2025-12-31", "R-1")
	f.withdrawn = withdraw(t, ctx, s, plan(f.x, 0, cpis.CLA, "2025-01-01", "2025-12-31", "R-2"), baseTime().Add(time.Minute))
	f.unreferenced = plan(f.y, 0, cpis.CLA, "2025-01-01", "2025-06-01", "")
	f.ended = plan(f.z, 0, cpis.CPP, "2024-01-01", "2025-05-31", "R-3")
	f.ucp = plan(f.z, 0, cpis.UCPP, "2025-05-01", "2025-10-31", "R-4")
	f.other = plan(f.x, 1, cpis.CPP, "2025-01-01", "2025-12-31", "R-1")
	return f
}

// testWriteTxReads: what a write transaction reads of its LA's plans,
// including what it has itself stored.
func testWriteTxReads(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	f := seedReads(t, ctx, s)
	t.Run("committed", func(t *testing.T) {
		tx := begin(t, ctx, s, la(0).Code)
		defer tx.Rollback(ctx)
		wantReads(t, ctx, tx, f, nil)
	})
	t.Run("with its own writes", func(t *testing.T) {
		tx := begin(t, ctx, s, la(0).Code)
		defer tx.Rollback(ctx)
		added := newPlan(f.y, la(0), cpis.CPP, "2025-03-01", "2026-02-28", baseTime().Add(time.Hour))
		added.Version, added.Reference = 1, "R-2" // the withdrawn plan's
		changed := next(f.live, baseTime().Add(time.Hour), func(p *cpis.Plan) { p.End = cpis.MustDate("2025-11-30") })
		gone := next(f.ucp, baseTime().Add(time.Hour), func(p *cpis.Plan) { p.EnteredInError = true })
		putIn(t, ctx, tx, versions(added, changed, gone))
		g := f
		g.live, g.ucp = changed, gone
		wantReads(t, ctx, tx, g, []cpis.Plan{added})
	})
	t.Run("another LA's", func(t *testing.T) {
		tx := begin(t, ctx, s, la(1).Code)
		defer tx.Rollback(ctx)
		wantByReference(t, ctx, tx, []string{"R-1", "R-3"}, map[string]cpis.Plan{"R-1": f.other})
		wantChildPlans(t, ctx, tx, []cpis.NHSNumber{f.x, f.y, f.z}, []cpis.Plan{f.other})
	})
	t.Run("Current stops at fn's error", func(t *testing.T) {
		tx := begin(t, ctx, s, la(0).Code)
		defer tx.Rollback(ctx)
		stop := errors.New("stop")
		calls := 0
		err := tx.Current(ctx, cpis.Date{}, func(cpis.Plan) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("Current: %v after %d calls, want fn's error after 1", err, calls)
		}
		// The transaction is still good.
		if _, err := tx.Plan(ctx, f.live.ID); err != nil {
			t.Errorf("Plan after Current stopped: %v", err)
		}
	})
}

// wantReads checks every read of tx, a transaction of the first LA, against
// f, as changed in it, and the plans it added (all on f.y, referenced as
// the withdrawn plan was, live after readsDay).
func wantReads(t *testing.T, ctx context.Context, tx store.WriteTx, f readsFixture, added []cpis.Plan) {
	t.Helper()
	for _, p := range append([]cpis.Plan{f.live, f.withdrawn, f.other, f.ucp}, added...) {
		got, err := tx.Plan(ctx, p.ID)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		wantPlan(t, "Plan", got, p)
	}
	_, err := tx.Plan(ctx, uuid.NewString())
	wantKind(t, "Plan of no plan", err, cpis.NotFound)

	refs := map[string]cpis.Plan{"R-1": f.live, "R-3": f.ended}
	child := []cpis.Plan{f.live, f.unreferenced, f.ended}
	current := []cpis.Plan{f.live, f.unreferenced}
	if !f.ucp.EnteredInError {
		refs["R-4"] = f.ucp
		child, current = append(child, f.ucp), append(current, f.ucp)
	}
	for _, p := range added {
		refs[p.Reference] = p
		child, current = append(child, p), append(current, p)
	}
	wantByReference(t, ctx, tx, []string{"R-1", "R-2", "R-3", "R-4", "R-9", ""}, refs)
	wantByReference(t, ctx, tx, nil, map[string]cpis.Plan{})
	wantChildPlans(t, ctx, tx, []cpis.NHSNumber{f.x, f.y, f.z}, child)
	wantChildPlans(t, ctx, tx, []cpis.NHSNumber{f.x}, []cpis.Plan{f.live})
	wantChildPlans(t, ctx, tx, nil, nil)
	wantCurrent2(t, ctx, tx, readsDay, current)
	wantCurrent2(t, ctx, tx, readsDay.AddDays(1), slices.DeleteFunc(slices.Clone(current), func(p cpis.Plan) bool { return p.ID == f.unreferenced.ID }))
	wantCurrent2(t, ctx, tx, cpis.Date{}, child)
}

func wantByReference(t *testing.T, ctx context.Context, tx store.WriteTx, refs []string, want map[string]cpis.Plan) {
	t.Helper()
	got, err := tx.ByReference(ctx, refs)
	if err != nil {
		t.Fatalf("ByReference: %v", err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ByReference(%q) mismatch (-want +got):\n%s", refs, diff)
	}
}

func wantChildPlans(t *testing.T, ctx context.Context, tx store.WriteTx, nhs []cpis.NHSNumber, want []cpis.Plan) {
	t.Helper()
	got, err := tx.ChildPlans(ctx, nhs)
	if err != nil {
		t.Fatalf("ChildPlans: %v", err)
	}
	wantSamePlans(t, "ChildPlans", got, want)
}

// wantCurrent2 checks what WriteTx.Current gives for day.
func wantCurrent2(t *testing.T, ctx context.Context, tx store.WriteTx, day cpis.Date, want []cpis.Plan) {
	t.Helper()
	var got []cpis.Plan
	if err := tx.Current(ctx, day, func(p cpis.Plan) error { got = append(got, p); return nil }); err != nil {
		t.Fatalf("Current: %v", err)
	}
	wantSamePlans(t, "Current("+day.String()+")", got, want)
}

// wantSamePlans compares lists of plans in any order.
func wantSamePlans(t *testing.T, what string, got, want []cpis.Plan) {
	t.Helper()
	byID := cmpopts.SortSlices(func(a, b cpis.Plan) bool { return a.ID < b.ID })
	if diff := cmp.Diff(want, got, byID, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// testReferences: an LA's live plans never share a reference, other LAs'
// plans are not its concern, and a withdrawn plan gives its reference up.
func testReferences(t *testing.T, open opener) {
	newRef := func(t *testing.T, nhs, authority int, ref string, at time.Time) cpis.Plan {
		p := newPlan(nhsNumber(t, nhs), la(authority), cpis.CPP, "2025-01-01", "2025-12-31", at)
		p.Version, p.Reference = 1, ref
		return p
	}
	t.Run("another LA's reference is not the LA's", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		other := create(t, ctx, s, newRef(t, 1, 1, "SAME", baseTime()))
		mine := create(t, ctx, s, newRef(t, 2, 0, "SAME", baseTime()))
		withdraw(t, ctx, s, mine, baseTime().Add(time.Minute))
		wantCurrent(t, ctx, s, other)
	})
	t.Run("reusable once withdrawn", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		first := create(t, ctx, s, newRef(t, 1, 0, "R", baseTime()))
		withdraw(t, ctx, s, first, baseTime().Add(time.Minute))
		second := create(t, ctx, s, newRef(t, 2, 0, "R", baseTime().Add(2*time.Minute)))
		// And the withdrawn plan cannot come back holding it.
		back := next(withdrawnVersion(t, ctx, s, first.ID), baseTime().Add(3*time.Minute), func(p *cpis.Plan) { p.EnteredInError = false })
		wantKind(t, "Put of the withdrawn plan, back", tryPut(ctx, s, la(0).Code, versions(back)), cpis.Conflict)
		wantCurrent(t, ctx, s, second)
	})
	t.Run("released and taken in one call", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		a := create(t, ctx, s, newRef(t, 1, 0, "A", baseTime()))
		b := create(t, ctx, s, newRef(t, 2, 0, "B", baseTime()))
		at := baseTime().Add(time.Minute)
		gone := next(a, at, func(p *cpis.Plan) { p.EnteredInError = true })
		moved := next(b, at, func(p *cpis.Plan) { p.Reference = "A" })
		fresh := newRef(t, 3, 0, "B", at)
		put(t, ctx, s, la(0).Code, versions(gone, moved, fresh))
		for _, p := range []cpis.Plan{gone, moved, fresh} {
			wantCurrent(t, ctx, s, p)
		}
	})
}

// withdrawnVersion returns plan id's current version, which is withdrawn.
func withdrawnVersion(t *testing.T, ctx context.Context, s store.Store, id string) cpis.Plan {
	t.Helper()
	p, err := s.Plan(ctx, id)
	if err != nil || !p.EnteredInError {
		t.Fatalf("Plan: %+v, %v; want a withdrawn plan", p, err)
	}
	return p
}
