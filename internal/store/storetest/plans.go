package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

func testCreatePlan(t *testing.T, open opener) {
	t.Run("stores version 1", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		p := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		want := p
		want.Version = 1
		wantPlan(t, "CreatePlan", create(t, ctx, s, p), want)
		got, err := s.Plan(ctx, p.ID)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		wantPlan(t, "Plan", got, want)
		got, err = s.PlanVersion(ctx, p.ID, 1)
		if err != nil {
			t.Fatalf("PlanVersion: %v", err)
		}
		wantPlan(t, "PlanVersion", got, want)
	})
	t.Run("keeps every field of a UCPP", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		p := newPlan(nhsNumber(t, 2), la(5), cpis.UCPP, "2025-03-01", "2025-09-30", baseTime())
		p.OfficePhone = ""
		want := p
		want.Version = 1
		create(t, ctx, s, p)
		got, err := s.Plan(ctx, p.ID)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		wantPlan(t, "Plan", got, want)
	})
	// The retry is the same plan again: the replay is answered before the
	// overlap check, which would refuse it.
	t.Run("replays a request id", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		nhs := nhsNumber(t, 3)
		p := newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		rec := writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated)
		rec.RequestID = uuid.NewString()
		first, _, err := s.CreatePlan(ctx, p, rec)
		if err != nil {
			t.Fatalf("CreatePlan: %v", err)
		}
		// A retry is a new request to the server: new plan id, new time.
		retry := p
		retry.ID = uuid.NewString()
		retry.LastUpdated = p.LastUpdated.Add(time.Second)
		rec2 := writeRecord(retry, cpis.ActionCreate, "create", retry.LastUpdated)
		rec2.RequestID = rec.RequestID
		got, replayed, err := s.CreatePlan(ctx, retry, rec2)
		if err != nil || !replayed {
			t.Fatalf("CreatePlan again: replayed %v, error %v; want replayed", replayed, err)
		}
		wantPlan(t, "replayed CreatePlan", got, first)
		_, err = s.Plan(ctx, retry.ID)
		wantKind(t, "Plan of the retry's id", err, cpis.NotFound)
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: nhs, Limit: 10}, []cpis.Plan{first})
	})
	t.Run("a request id of another LA is not a replay", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		nhs := nhsNumber(t, 4)
		a := newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
		b := newPlan(nhs, la(1), cpis.CLA, "2025-02-01", "2025-11-30", baseTime().Add(time.Minute))
		requestID := uuid.NewString()
		var stored []cpis.Plan
		for _, p := range []cpis.Plan{b, a} {
			rec := writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated)
			rec.RequestID = requestID
			got, replayed, err := s.CreatePlan(ctx, p, rec)
			if err != nil || replayed {
				t.Fatalf("CreatePlan for %s: replayed %v, error %v", p.LA.Code, replayed, err)
			}
			stored = append(stored, got)
		}
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: nhs, Limit: 10}, stored)
	})
	t.Run("no request id is never a replay", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		nhs := nhsNumber(t, 5)
		a := create(t, ctx, s, newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime().Add(time.Minute)))
		b := create(t, ctx, s, newPlan(nhs, la(0), cpis.CPP, "2024-01-01", "2024-12-31", baseTime()))
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: nhs, Limit: 10}, []cpis.Plan{a, b})
	})
}

func testUpdatePlan(t *testing.T, open opener) {
	t.Run("new version keeps the old one", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		next := v1
		next.End = cpis.MustDate("2025-10-31")
		next.OfficePhone = ""
		next.LastUpdated = baseTime().Add(time.Hour)
		want := next
		want.Version = 2
		wantPlan(t, "UpdatePlan", update(t, ctx, s, next, 1), want)
		wantCurrent(t, ctx, s, want)
		got, err := s.PlanVersion(ctx, v1.ID, 1)
		if err != nil {
			t.Fatalf("PlanVersion 1: %v", err)
		}
		wantPlan(t, "PlanVersion 1", got, v1)
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{want, v1})
	})
	t.Run("a corrected NHS number moves the plan", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		wrong, right := nhsNumber(t, 1), nhsNumber(t, 2)
		v1 := create(t, ctx, s, newPlan(wrong, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		next := v1
		next.NHSNumber, next.LastUpdated = right, baseTime().Add(time.Hour)
		v2 := update(t, ctx, s, next, 1)
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: wrong, Limit: 10}, nil)
		wantSearch(t, ctx, s, store.PlanQuery{NHSNumber: right, Limit: 10}, []cpis.Plan{v2})
		wantCurrent(t, ctx, s, v2)
	})
	t.Run("replays a request id", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 2), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		next := v1
		next.End = cpis.MustDate("2025-10-31")
		next.LastUpdated = baseTime().Add(time.Hour)
		rec := writeRecord(next, cpis.ActionUpdate, "update", next.LastUpdated)
		rec.RequestID = uuid.NewString()
		v2, replayed, err := s.UpdatePlan(ctx, next, 1, rec)
		if err != nil || replayed {
			t.Fatalf("UpdatePlan: replayed %v, error %v", replayed, err)
		}
		// The retry still says If-Match 1: the replay must win over the
		// version check, or a retried update would fail.
		next.LastUpdated = next.LastUpdated.Add(time.Second)
		rec.ID, rec.Recorded = uuid.NewString(), next.LastUpdated
		got, replayed, err := s.UpdatePlan(ctx, next, 1, rec)
		if err != nil || !replayed {
			t.Fatalf("UpdatePlan again: replayed %v, error %v; want replayed", replayed, err)
		}
		wantPlan(t, "replayed UpdatePlan", got, v2)
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{v2, v1})
	})
	t.Run("refused", func(t *testing.T) { testUpdateRefused(t, open) })
	t.Run("concurrent writers", func(t *testing.T) { testConcurrentUpdates(t, open) })
}

func testUpdateRefused(t *testing.T, open opener) {
	tests := []struct {
		name   string
		change func(p *cpis.Plan)
		expect int
		want   cpis.Kind
	}{
		{"stale version", func(p *cpis.Plan) {}, 1, cpis.PreconditionFailed},
		{"future version", func(p *cpis.Plan) {}, 5, cpis.PreconditionFailed},
		{"another LA", func(p *cpis.Plan) { p.LA = la(1) }, 2, cpis.ForbiddenUpdate},
		{"missing plan", func(p *cpis.Plan) { p.ID = uuid.NewString() }, 2, cpis.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
			v1.LastUpdated = baseTime().Add(time.Minute)
			update(t, ctx, s, v1, 1)
			before := snap(t, ctx, s, v1.ID)
			p := v1
			p.End = cpis.MustDate("2025-08-31")
			p.LastUpdated = baseTime().Add(time.Hour)
			tt.change(&p)
			_, _, err := s.UpdatePlan(ctx, p, tt.expect, writeRecord(p, cpis.ActionUpdate, "update", p.LastUpdated))
			wantKind(t, "UpdatePlan", err, tt.want)
			unchanged(t, ctx, s, v1.ID, before)
		})
	}
}

// testConcurrentUpdates races writers holding the same version: exactly
// one may win, whatever the backend's locking.
func testConcurrentUpdates(t *testing.T, open opener) {
	const writers = 8
	ctx, s := t.Context(), open(t)
	v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			p := v1
			p.End = cpis.MustDate("2025-12-01").AddDays(i)
			p.LastUpdated = baseTime().Add(time.Duration(i+1) * time.Minute)
			rec := writeRecord(p, cpis.ActionUpdate, "update", p.LastUpdated)
			rec.RequestID = uuid.NewString()
			_, _, errs[i] = s.UpdatePlan(ctx, p, 1, rec)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			continue
		}
		if k := cpis.KindOf(err); k != cpis.PreconditionFailed {
			t.Errorf("writer %d: error kind %q (%v), want %q", i, k, err, cpis.PreconditionFailed)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won, want exactly 1", won)
	}
	hist, err := s.PlanHistory(ctx, v1.ID)
	if err != nil {
		t.Fatalf("PlanHistory: %v", err)
	}
	if len(hist) != 2 || hist[0].Version != 2 {
		t.Fatalf("history has %d versions (newest %d), want 2", len(hist), hist[0].Version)
	}
}

func testDeletePlan(t *testing.T, open opener) {
	t.Run("marks entered in error as a new version", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		at := baseTime().Add(time.Hour)
		want := v1
		want.Version, want.EnteredInError, want.LastUpdated = 2, true, at
		got, err := s.DeletePlan(ctx, v1.ID, v1.LA.Code, 1, at, writeRecord(v1, cpis.ActionDelete, "delete", at))
		if err != nil {
			t.Fatalf("DeletePlan: %v", err)
		}
		wantPlan(t, "DeletePlan", got, want)
		wantCurrent(t, ctx, s, want)
		wantHistory(t, ctx, s, v1.ID, []cpis.Plan{want, v1})
	})
	t.Run("any version", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
		v1.LastUpdated = baseTime().Add(time.Minute)
		v2 := update(t, ctx, s, v1, 1)
		at := baseTime().Add(time.Hour)
		got, err := s.DeletePlan(ctx, v1.ID, v1.LA.Code, 0, at, writeRecord(v1, cpis.ActionDelete, "delete", at))
		if err != nil {
			t.Fatalf("DeletePlan: %v", err)
		}
		want := v2
		want.Version, want.EnteredInError, want.LastUpdated = 3, true, at
		wantPlan(t, "DeletePlan", got, want)
	})
	t.Run("twice", func(t *testing.T) { testDeleteTwice(t, open) })
	t.Run("refused", func(t *testing.T) { testDeleteRefused(t, open) })
}

// testDeleteTwice: a second delete, a plain retry with the same If-Match or
// one with none, succeeds and changes nothing.
func testDeleteTwice(t *testing.T, open opener) {
	for _, expect := range []int{1, 0} {
		t.Run(fmt.Sprintf("expect version %d", expect), func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
			at := baseTime().Add(time.Hour)
			first, err := s.DeletePlan(ctx, v1.ID, v1.LA.Code, 1, at, writeRecord(v1, cpis.ActionDelete, "delete", at))
			if err != nil {
				t.Fatalf("DeletePlan: %v", err)
			}
			before := snap(t, ctx, s, v1.ID)
			later := at.Add(time.Hour)
			got, err := s.DeletePlan(ctx, v1.ID, v1.LA.Code, expect, later, writeRecord(v1, cpis.ActionDelete, "delete", later))
			if err != nil {
				t.Fatalf("DeletePlan again: %v", err)
			}
			wantPlan(t, "second DeletePlan", got, first)
			unchanged(t, ctx, s, v1.ID, before)
		})
	}
}

func testDeleteRefused(t *testing.T, open opener) {
	tests := []struct {
		name    string
		id      func(id string) string
		laCode  string
		expect  int
		want    cpis.Kind
		deleted bool // the plan is already entered in error
	}{
		{"stale version", func(id string) string { return id }, la(0).Code, 1, cpis.PreconditionFailed, false},
		{"another LA", func(id string) string { return id }, la(1).Code, 2, cpis.ForbiddenUpdate, false},
		{"another LA, any version", func(id string) string { return id }, la(1).Code, 0, cpis.ForbiddenUpdate, false},
		{"another LA, already deleted", func(id string) string { return id }, la(1).Code, 0, cpis.ForbiddenUpdate, true},
		{"missing plan", func(string) string { return uuid.NewString() }, la(0).Code, 0, cpis.NotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
			v1.LastUpdated = baseTime().Add(time.Minute)
			update(t, ctx, s, v1, 1)
			if tt.deleted {
				at := baseTime().Add(2 * time.Minute)
				if _, err := s.DeletePlan(ctx, v1.ID, v1.LA.Code, 2, at, writeRecord(v1, cpis.ActionDelete, "delete", at)); err != nil {
					t.Fatalf("DeletePlan: %v", err)
				}
			}
			before := snap(t, ctx, s, v1.ID)
			at := baseTime().Add(time.Hour)
			_, err := s.DeletePlan(ctx, tt.id(v1.ID), tt.laCode, tt.expect, at, writeRecord(v1, cpis.ActionDelete, "delete", at))
			wantKind(t, "DeletePlan", err, tt.want)
			unchanged(t, ctx, s, v1.ID, before)
		})
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
