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

// viewed returns r as the record of a read that returned plans.
func viewed(r cpis.AuditRecord, plans ...cpis.Plan) cpis.AuditRecord {
	r.PlanIDs, r.LACodes = nil, nil
	for _, p := range plans {
		r.PlanIDs = append(r.PlanIDs, p.ID)
		r.LACodes = append(r.LACodes, p.LA.Code)
	}
	return r
}

// accessHistory runs AccessHistory, failing the test on an error.
func accessHistory(tb testing.TB, ctx context.Context, s store.Store, q store.AccessQuery) []cpis.AuditRecord {
	tb.Helper()
	got, err := s.AccessHistory(ctx, q)
	if err != nil {
		tb.Fatalf("AccessHistory: %v", err)
	}
	return got
}

func testAccessHistory(t *testing.T, open opener) {
	t.Run("newest first", func(t *testing.T) { testAccessOrder(t, open) })
	t.Run("only accesses to plans the reader may see", func(t *testing.T) { testAccessScope(t, open) })
	t.Run("an LA's own plan, withdrawn, shows it nothing more", func(t *testing.T) { testAccessProbe(t, open) })
}

// testAccessOrder: the newest accesses, ties by id, up to the limit; other
// records never push accesses out.
func testAccessOrder(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	x, y, z := nhsNumber(t, 1), nhsNumber(t, 2), nhsNumber(t, 3)
	live := map[cpis.NHSNumber]cpis.Plan{}
	for _, nhs := range []cpis.NHSNumber{x, y, z} {
		live[nhs] = create(t, ctx, s, newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime().Add(-time.Hour)))
	}
	access := func(nhs cpis.NHSNumber, user string, when time.Time) cpis.AuditRecord {
		return viewed(accessRecord(nhs, user, "RXX01", when), live[nhs])
	}
	var xAccess []cpis.AuditRecord // oldest first
	var batch []cpis.AuditRecord
	for i := range 30 {
		r := access(x, fmt.Sprintf("5550000000%02d", i), baseTime().Add(time.Duration(i)*time.Minute))
		xAccess = append(xAccess, r)
		batch = append(batch, r)
	}
	// Newer records that are not x's accesses must not push them out.
	for i := range 5 {
		notAccess := access(x, "555000000099", baseTime().Add(time.Hour+time.Duration(i)*time.Second))
		notAccess.Access, notAccess.Unscheduled = false, false
		batch = append(batch, notAccess, access(y, "555000000099", baseTime().Add(time.Hour)))
	}
	// Three accesses to z at one instant, stored in two batches.
	var tied []cpis.AuditRecord
	for _, n := range []int{2, 3, 1} {
		r := access(z, "555000000001", baseTime())
		r.ID = seq(n)
		tied = append(tied, r)
	}
	appendAudit(t, ctx, s, append(batch, tied[0])...)
	appendAudit(t, ctx, s, tied[1:]...)

	tests := []struct {
		name string
		q    store.AccessQuery
		want []cpis.AuditRecord
	}{
		{"the 25 newest of 30", store.AccessQuery{NHSNumber: x, Limit: cpis.AccessHistoryLength}, reversed(xAccess)[:25]},
		{"fewer than the limit", store.AccessQuery{NHSNumber: x, Limit: 40}, reversed(xAccess)},
		{"the same for the plans' LA", store.AccessQuery{NHSNumber: x, LACode: la(0).Code, Limit: 40}, reversed(xAccess)},
		{"ties by id, descending", store.AccessQuery{NHSNumber: z, Limit: 25}, []cpis.AuditRecord{tied[1], tied[0], tied[2]}},
		{"limit 2 of a tie", store.AccessQuery{NHSNumber: z, Limit: 2}, []cpis.AuditRecord{tied[1], tied[0]}},
		{"no accesses", store.AccessQuery{NHSNumber: nhsNumber(t, 4), Limit: 25}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRecords(t, "AccessHistory", accessHistory(t, ctx, s, tt.q), tt.want)
		})
	}
}

// testAccessScope: a record is shown only while one of the plans it
// returned is not entered in error and, to an LA, is that LA's.
func testAccessScope(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	child := nhsNumber(t, 1)
	plan := func(authority cpis.LocalAuthority, typ cpis.PlanType) cpis.Plan {
		return create(t, ctx, s, newPlan(child, authority, typ, "2025-01-01", "2025-12-31", baseTime().Add(-time.Hour)))
	}
	a1, a2, b1, b2 := plan(la(0), cpis.CPP), plan(la(0), cpis.CLA), plan(la(1), cpis.CPP), plan(la(1), cpis.CLA)
	gone := cpis.Plan{ID: uuid.NewString(), LA: la(0)} // never stored
	rec := func(n int, plans ...cpis.Plan) cpis.AuditRecord {
		r := viewed(accessRecord(child, "555000000001", "RXX01", baseTime().Add(time.Duration(n)*time.Minute)), plans...)
		r.ID = seq(n)
		return r
	}
	r := []cpis.AuditRecord{
		rec(0, a1),     // LA 0's live plan
		rec(1, b1),     // LA 1's live plan
		rec(2, a2),     // LA 0's plan, withdrawn below
		rec(3, a2, b1), // one plan withdrawn below, one live
		rec(4, a1, b1), // both LAs' live plans
		rec(5, b2),     // LA 1's plan, withdrawn below
		rec(6),         // no plan returned
		rec(7, gone),   // a plan the store does not hold
		rec(8, a1),     // not an access
	}
	r[8].Access = false
	appendAudit(t, ctx, s, r...)
	pick := func(idx ...int) []cpis.AuditRecord {
		var out []cpis.AuditRecord
		for _, i := range idx {
			out = append(out, r[i])
		}
		return out
	}
	health := store.AccessQuery{NHSNumber: child, Limit: 25}
	wantRecords(t, "AccessHistory before the withdrawals", accessHistory(t, ctx, s, health), pick(5, 4, 3, 2, 1, 0))
	withdraw(t, ctx, s, a2, baseTime().Add(time.Hour))
	withdraw(t, ctx, s, b2, baseTime().Add(time.Hour))

	tests := []struct {
		name string
		q    store.AccessQuery
		want []cpis.AuditRecord
	}{
		{"health readers: an access to withdrawn plans only is gone", health, pick(4, 3, 1, 0)},
		{"LA 0: accesses that returned its live plans", store.AccessQuery{NHSNumber: child, LACode: la(0).Code, Limit: 25}, pick(4, 0)},
		{"LA 1: one withdrawn plan and one live plan of its own stay", store.AccessQuery{NHSNumber: child, LACode: la(1).Code, Limit: 25}, pick(4, 3, 1)},
		{"an LA with no plan on the child", store.AccessQuery{NHSNumber: child, LACode: la(2).Code, Limit: 25}, nil},
		{"the limit counts shown records only", store.AccessQuery{NHSNumber: child, LACode: la(0).Code, Limit: 1}, pick(4)},
		{"the limit for health readers", store.AccessQuery{NHSNumber: child, Limit: 3}, pick(4, 3, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantRecords(t, "AccessHistory", accessHistory(t, ctx, s, tt.q), tt.want)
		})
	}
}

// testAccessProbe is the leak this rule closes: an LA creates a plan on a
// child another LA holds, to learn who viewed the child. It sees only the
// views that returned its own plan, and none once it withdraws the plan.
func testAccessProbe(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	child := nhsNumber(t, 1)
	held := create(t, ctx, s, newPlan(child, la(0), cpis.CLA, "2025-01-01", "2025-12-31", baseTime().Add(-time.Hour)))
	before := viewed(accessRecord(child, "555000000001", "RXX01", baseTime()), held)
	appendAudit(t, ctx, s, before)
	probe := create(t, ctx, s, newPlan(child, la(1), cpis.CPP, "2025-01-01", "2025-12-31", baseTime().Add(time.Minute)))
	after := viewed(accessRecord(child, "555000000002", "RXX02", baseTime().Add(2*time.Minute)), held, probe)
	appendAudit(t, ctx, s, after)
	prober := store.AccessQuery{NHSNumber: child, LACode: la(1).Code, Limit: 25}
	wantRecords(t, "AccessHistory while the plan stands", accessHistory(t, ctx, s, prober), []cpis.AuditRecord{after})
	withdraw(t, ctx, s, probe, baseTime().Add(3*time.Minute))
	wantRecords(t, "AccessHistory once it is withdrawn", accessHistory(t, ctx, s, prober), nil)
	holder := store.AccessQuery{NHSNumber: child, LACode: la(0).Code, Limit: 25}
	wantRecords(t, "AccessHistory of the LA that holds the child", accessHistory(t, ctx, s, holder), []cpis.AuditRecord{after, before})
}
