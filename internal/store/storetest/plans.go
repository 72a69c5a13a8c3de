package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testPut: what Put stores is each plan's current version, and every
// version stays in its history.
func testPut(t *testing.T, open opener) {
	t.Run("version 1", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		p := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		p.Reference = "CP-2025/001_a"
		want := create(t, ctx, s, p)
		wantCurrent(t, ctx, s, want)
		got, err := s.PlanVersion(ctx, p.ID, 1)
		if err != nil {
			t.Fatalf("PlanVersion: %v", err)
		}
		wantPlan(t, "PlanVersion", got, want)
		wantHistory(t, ctx, s, p.ID, []cpis.Plan{want})
	})
	t.Run("every field of a UCPP", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		p := newPlan(nhsNumber(t, 2), la(5), cpis.UCPP, "2025-03-01", "2025-09-30", baseTime())
		p.OfficePhone = ""
		wantCurrent(t, ctx, s, create(t, ctx, s, p))
	})
	t.Run("a new version keeps the old one", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		v2 := next(v1, baseTime().Add(time.Hour), func(p *cpis.Plan) {
			p.End, p.OfficePhone, p.Reference = cpis.MustDate("2025-10-31"), "", "REF-1"
		})
		put(t, ctx, s, v1.LA.Code, versions(v2))
		wantCurrent(t, ctx, s, v2)
		got, err := s.PlanVersion(ctx, v1.ID, 1)
		if err != nil {
			t.Fatalf("PlanVersion 1: %v", err)
		}
		wantPlan(t, "PlanVersion 1", got, v1)
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{v2, v1})
	})
	t.Run("a corrected NHS number moves the plan", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		wrong, right := nhsNumber(t, 1), nhsNumber(t, 2)
		v1 := create(t, ctx, s, newPlan(wrong, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		v2 := next(v1, baseTime().Add(time.Hour), func(p *cpis.Plan) { p.NHSNumber = right })
		put(t, ctx, s, v1.LA.Code, versions(v2))
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: wrong, Limit: 10}, nil)
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: right, Limit: 10}, []cpis.Plan{v2})
	})
	t.Run("a withdrawal is a version", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		v2 := withdraw(t, ctx, s, v1, baseTime().Add(time.Hour))
		want := next(v1, baseTime().Add(time.Hour), func(p *cpis.Plan) { p.EnteredInError = true })
		wantPlan(t, "the withdrawal", v2, want)
		wantCurrent(t, ctx, s, want)
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{want, v1})
	})
	t.Run("one plan's versions in one call", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		v1.Version = 1
		v2 := next(v1, baseTime().Add(time.Minute), func(p *cpis.Plan) { p.End = cpis.MustDate("2025-11-30") })
		v3 := next(v2, baseTime().Add(2*time.Minute), func(p *cpis.Plan) { p.Reference = "R" })
		other := newPlan(nhsNumber(t, 2), la(0), cpis.CLA, "2025-01-01", "2025-12-31", baseTime())
		other.Version = 1
		put(t, ctx, s, v1.LA.Code, versions(v1, other, v2, v3))
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{v3, v2, v1})
		wantCurrent(t, ctx, s, other)
	})
	t.Run("in bulk", func(t *testing.T) { testPutBulk(t, open) })
}

// testPutBulk stores more plans in one call than any one statement of a
// backend would carry, in several calls of one transaction, new plans and
// new versions mixed, each with its audit record.
func testPutBulk(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	const n = 1_503
	owner := la(2)
	plans := make([]cpis.Plan, n)
	recs := make([]cpis.AuditRecord, n)
	for i := range plans {
		plans[i] = newPlan(nhsNumber(t, i), owner, cpis.PlanTypes[i%3], "2025-01-01", "2025-08-31", baseTime().Add(time.Duration(i)*time.Microsecond))
		plans[i].Version, plans[i].Reference = 1, fmt.Sprintf("B-%d", i)
		recs[i] = writeRecord(plans[i], cpis.ActionCreate, "create", plans[i].LastUpdated)
	}
	tx := begin(t, ctx, s, owner.Code)
	putIn(t, ctx, tx, versions(plans[:1000]...), recs[:1000]...)
	var changed []store.Version
	for i := range 1000 {
		if i%2 == 0 {
			plans[i] = next(plans[i], baseTime().Add(time.Hour), func(p *cpis.Plan) { p.Reference = fmt.Sprintf("B-%d-2", i) })
			changed = append(changed, store.Version{Plan: plans[i], RequestID: uuid.NewString()})
		}
	}
	changed = append(changed, versions(plans[1000:]...)...)
	putIn(t, ctx, tx, changed, recs[1000:]...)
	commit(t, ctx, tx)
	for _, p := range plans {
		wantCurrent(t, ctx, s, p)
	}
	if got := allAudit(t, ctx, s, store.AuditQuery{OrgCode: owner.Code}); len(got) != n {
		t.Errorf("the audit trail holds %d records of the LA, want %d", len(got), n)
	}
}

func testReads(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(2), cpis.CLA, "2024-01-01", "2025-12-31", baseTime()))
	p := v1
	p.End, p.LastUpdated = cpis.MustDate("2025-06-30"), baseTime().Add(time.Minute)
	v2 := update(t, ctx, s, p, 1)
	p.OfficePhone, p.LastUpdated = "", baseTime().Add(2*time.Minute)
	v3 := update(t, ctx, s, p, 2)

	t.Run("history newest first", func(t *testing.T) {
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{v3, v2, v1})
	})
	t.Run("every version", func(t *testing.T) {
		for _, want := range []cpis.Plan{v1, v2, v3} {
			got, err := s.PlanVersion(ctx, v1.ID, want.Version)
			if err != nil {
				t.Fatalf("PlanVersion %d: %v", want.Version, err)
			}
			wantPlan(t, "PlanVersion", got, want)
		}
	})
	t.Run("not found", func(t *testing.T) {
		missing := uuid.NewString()
		_, err := s.Plan(ctx, missing)
		wantKind(t, "Plan", err, cpis.NotFound)
		_, err = s.PlanVersion(ctx, missing, 1)
		wantKind(t, "PlanVersion of a missing plan", err, cpis.NotFound)
		_, err = s.PlanVersion(ctx, v1.ID, 4)
		wantKind(t, "PlanVersion of a missing version", err, cpis.NotFound)
		_, err = s.PlanVersion(ctx, v1.ID, 0)
		wantKind(t, "PlanVersion 0", err, cpis.NotFound)
		_, err = s.PlanHistory(ctx, missing)
		wantKind(t, "PlanHistory", err, cpis.NotFound)
	})
}

// begin starts a write transaction of laCode, rolled back when tb ends
// unless committed before.
func begin(tb testing.TB, ctx context.Context, s store.Store, laCode string) store.WriteTx {
	tb.Helper()
	tx, err := s.BeginWrite(ctx, laCode)
	if err != nil {
		tb.Fatalf("BeginWrite: %v", err)
	}
	tb.Cleanup(func() {
		if err := tx.Rollback(context.Background()); err != nil {
			tb.Errorf("Rollback: %v", err)
		}
	})
	return tx
}

// putIn runs Put in tx, failing the test on an error.
func putIn(tb testing.TB, ctx context.Context, tx store.WriteTx, vs []store.Version, recs ...cpis.AuditRecord) {
	tb.Helper()
	if err := tx.Put(ctx, vs, recs); err != nil {
		tb.Fatalf("Put: %v", err)
	}
}

// commit commits tx, failing the test on an error.
func commit(tb testing.TB, ctx context.Context, tx store.WriteTx) {
	tb.Helper()
	if err := tx.Commit(ctx); err != nil {
		tb.Fatalf("Commit: %v", err)
	}
}

// wantCurrent checks Plan returns want as the current version.
func wantCurrent(tb testing.TB, ctx context.Context, s store.Store, want cpis.Plan) {
	tb.Helper()
	got, err := s.Plan(ctx, want.ID)
	if err != nil {
		tb.Fatalf("Plan: %v", err)
	}
	wantPlan(tb, "Plan", got, want)
}

// wantHistory checks PlanHistory returns want, newest first.
func wantHistory(tb testing.TB, ctx context.Context, s store.Store, id string, want []cpis.Plan) {
	tb.Helper()
	got, err := s.PlanHistory(ctx, id)
	if err != nil {
		tb.Fatalf("PlanHistory: %v", err)
	}
	wantPlans(tb, "PlanHistory", got, want)
}
