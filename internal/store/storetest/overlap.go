package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testOverlap: an LA cannot hold two plans of one type on one NHS number
// whose periods share a day (cpis.Plan.Overlaps); the store refuses the
// second, by create or by update, with Conflict naming the first.
func testOverlap(t *testing.T, open opener) {
	t.Run("create", func(t *testing.T) { testOverlapCreate(t, open) })
	t.Run("a withdrawn plan does not count", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		held := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		withdraw(t, ctx, s, held, baseTime().Add(time.Minute))
		again := create(t, ctx, s, newPlan(held.NHSNumber, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime().Add(2*time.Minute)))
		wantCurrent(t, ctx, s, again)
	})
	t.Run("update", func(t *testing.T) { testOverlapUpdate(t, open) })
	t.Run("concurrent creates", func(t *testing.T) { testOverlapRace(t, open) })
}

// testOverlapCreate creates a plan beside one the first LA holds on the
// child, from 2025-03-01 to 2025-08-31 inclusive.
func testOverlapCreate(t *testing.T, open opener) {
	const start, end = "2025-03-01", "2025-08-31"
	tests := []struct {
		name         string
		nhs          int // nhsNumber(t, nhs); the held plan is on 1
		authority    int // la(authority); the held plan is 0's
		typ          cpis.PlanType
		from, to     string
		wantConflict bool
	}{
		{"the same plan again", 1, 0, cpis.CPP, start, end, true},
		{"inside it", 1, 0, cpis.CPP, "2025-04-01", "2025-04-30", true},
		{"around it", 1, 0, cpis.CPP, "2025-01-01", "2025-12-31", true},
		{"starting on its last day", 1, 0, cpis.CPP, end, "2025-12-31", true},
		{"ending on its first day", 1, 0, cpis.CPP, "2024-09-01", start, true},
		{"starting the day after it ends", 1, 0, cpis.CPP, "2025-09-01", "2025-12-31", false},
		{"ending the day before it starts", 1, 0, cpis.CPP, "2024-09-01", "2025-02-28", false},
		{"another LA", 1, 1, cpis.CPP, start, end, false},
		{"another type", 1, 0, cpis.CLA, start, end, false},
		{"another child", 2, 0, cpis.CPP, start, end, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			held := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, start, end, baseTime()))
			p := newPlan(nhsNumber(t, tt.nhs), la(tt.authority), tt.typ, tt.from, tt.to, baseTime().Add(time.Minute))
			rec := writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated)
			rec.RequestID = uuid.NewString()
			got, replayed, err := s.CreatePlan(ctx, p, rec)
			if !tt.wantConflict {
				if err != nil || replayed {
					t.Fatalf("CreatePlan: replayed %v, error %v; want it stored", replayed, err)
				}
				wantCurrent(t, ctx, s, got)
				return
			}
			wantOverlap(t, "CreatePlan", err, held)
			_, err = s.Plan(ctx, p.ID)
			wantKind(t, "Plan of the refused plan", err, cpis.NotFound)
			wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: held.NHSNumber, Limit: 10}, []cpis.Plan{held})
			recs := searchAudit(t, ctx, s, store.AuditQuery{Patient: held.NHSNumber, Limit: 10})
			if len(recs) != 1 || recs[0].PlanIDs[0] != held.ID {
				t.Errorf("the audit trail holds %d records, want only the held plan's create: a refused write is not stored", len(recs))
			}
		})
	}
}

// testOverlapUpdate: an update may not make two plans overlap, but a plan
// never overlaps its own current version.
func testOverlapUpdate(t *testing.T, open opener) {
	// The other plan runs to 2025-06-30; the one updated, of type typ, from
	// 2025-07-15.
	tests := []struct {
		name         string
		typ          cpis.PlanType
		change       func(p *cpis.Plan)
		wantConflict bool
	}{
		{"moving its start onto the other's last day", cpis.CPP, func(p *cpis.Plan) { p.Start = cpis.MustDate("2025-06-30") }, true},
		{"moving its start to the day after the other ends", cpis.CPP, func(p *cpis.Plan) { p.Start = cpis.MustDate("2025-07-01") }, false},
		{"over its own period", cpis.CPP, func(p *cpis.Plan) { p.End = cpis.MustDate("2026-03-31") }, false},
		{"becoming the other's type", cpis.CLA, func(p *cpis.Plan) { p.Type = cpis.CPP }, false},
		{"becoming the other's type over its period", cpis.CLA, func(p *cpis.Plan) { p.Type, p.Start = cpis.CPP, cpis.MustDate("2025-06-01") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			nhs := nhsNumber(t, 1)
			other := create(t, ctx, s, newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-06-30", baseTime()))
			v1 := create(t, ctx, s, newPlan(nhs, la(0), tt.typ, "2025-07-15", "2025-12-31", baseTime().Add(time.Minute)))
			before := snap(t, ctx, s, v1.ID)
			p := v1
			p.LastUpdated = baseTime().Add(time.Hour)
			tt.change(&p)
			got, replayed, err := s.UpdatePlan(ctx, p, 1, writeRecord(p, cpis.ActionUpdate, "update", p.LastUpdated))
			if !tt.wantConflict {
				if err != nil || replayed {
					t.Fatalf("UpdatePlan: replayed %v, error %v; want it stored", replayed, err)
				}
				wantCurrent(t, ctx, s, got)
				return
			}
			wantOverlap(t, "UpdatePlan", err, other)
			unchanged(t, ctx, s, v1.ID, before)
		})
	}
}

// testOverlapRace creates one plan from many writers at once, each a
// different request (its own plan id and request id): exactly one is
// stored, and every other writer is told of it.
func testOverlapRace(t *testing.T, open opener) {
	const writers = 8
	ctx, s := t.Context(), open(t)
	nhs := nhsNumber(t, 1)
	stored := make([]cpis.Plan, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			p := newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime().Add(time.Duration(i)*time.Second))
			rec := writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated)
			rec.RequestID = uuid.NewString()
			stored[i], _, errs[i] = s.CreatePlan(ctx, p, rec)
		})
	}
	wg.Wait()
	var won []cpis.Plan
	for i, err := range errs {
		if err == nil {
			won = append(won, stored[i])
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d writers stored the plan, want exactly 1 (errors: %v)", len(won), errs)
	}
	for i, err := range errs {
		if err != nil {
			wantOverlap(t, fmt.Sprintf("writer %d", i), err, won[0])
		}
	}
	wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: nhs, Limit: 10}, won)
}

// wantOverlap fails unless err is the Conflict of a plan overlapping held:
// its message names held by id, and never the NHS number.
func wantOverlap(tb testing.TB, what string, err error, held cpis.Plan) {
	tb.Helper()
	wantKind(tb, what, err, cpis.Conflict)
	msg := err.Error()
	if !strings.Contains(msg, "Flag/"+held.ID) {
		tb.Errorf("%s: %q does not name the plan held, Flag/%s", what, msg, held.ID)
	}
	if strings.Contains(msg, string(held.NHSNumber)) {
		tb.Errorf("%s: the message holds the NHS number", what)
	}
}
