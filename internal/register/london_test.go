package register_test

import (
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Through the register, on a real store: a health user's search and read
// judge status and display window on the UK day of the request's instant
// (Europe/London), so between 23:00 and 00:00 UTC in summer it is already
// tomorrow. Fixed instants only.

func instant(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func TestHealthReadsJudgeTheLondonDay(t *testing.T) {
	cpp := func(end string) cpis.Plan {
		p := plan()
		p.End = cpis.MustDate(end)
		p.Start = p.End.AddDays(-100)
		return p
	}
	ucpp := func(end string) cpis.Plan {
		p := cpp(end)
		p.Type, p.BirthDate = cpis.UCPP, cpis.Date{}
		return p
	}
	tests := []struct {
		name   string
		plan   cpis.Plan
		at     string
		today  string
		shown  bool
		status cpis.Status // when shown
	}{
		{"BST: ends today, 23:30 BST", cpp("2026-07-14"), "2026-07-14T22:30:00Z", "2026-07-14", true, cpis.Active},
		{"BST: ended yesterday, 00:30 BST", cpp("2026-07-14"), "2026-07-14T23:30:00Z", "2026-07-15", true, cpis.Inactive},
		{"GMT: ends today, 23:30", cpp("2026-01-14"), "2026-01-14T23:30:00Z", "2026-01-14", true, cpis.Active},
		{"GMT: ended yesterday, 00:30", cpp("2026-01-14"), "2026-01-15T00:30:00Z", "2026-01-15", true, cpis.Inactive},
		{"CPP ended 2025-07-14: 364th day, 23:59 BST", cpp("2025-07-14"), "2026-07-13T22:59:00Z", "2026-07-13", true, cpis.Inactive},
		{"CPP ended 2025-07-14: window closed, 00:00 BST", cpp("2025-07-14"), "2026-07-13T23:00:00Z", "2026-07-14", false, ""},
		{"CPP ended 2025-01-15: 364th day, 23:59 GMT", cpp("2025-01-15"), "2026-01-14T23:59:00Z", "2026-01-14", true, cpis.Inactive},
		{"CPP ended 2025-01-15: window closed, 00:00 GMT", cpp("2025-01-15"), "2026-01-15T00:00:00Z", "2026-01-15", false, ""},
		{"UCPP ended 2026-06-15: 28th day, 23:59 BST", ucpp("2026-06-15"), "2026-07-13T22:59:00Z", "2026-07-13", true, cpis.Inactive},
		{"UCPP ended 2026-06-15: window closed, 00:00 BST", ucpp("2026-06-15"), "2026-07-13T23:00:00Z", "2026-07-14", false, ""},
		{"UCPP ended 2025-12-18: 28th day, 23:59 GMT", ucpp("2025-12-18"), "2026-01-15T23:59:00Z", "2026-01-15", true, cpis.Inactive},
		{"UCPP ended 2025-12-18: window closed, 00:00 GMT", ucpp("2025-12-18"), "2026-01-16T00:00:00Z", "2026-01-16", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, created, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: tt.plan})
			if err != nil {
				t.Fatal(err)
			}
			id := created.Plans[0].ID
			c := healthCaller("R8000", cpis.ActivityScheduledView)
			c.At = instant(t, tt.at)

			got, err := f.svc.SearchPlans(t.Context(), c, store.PlanQuery{NHSNumber: tt.plan.NHSNumber, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			if got.Today.String() != tt.today {
				t.Errorf("search at %s judged on %s, want the London day %s", tt.at, got.Today, tt.today)
			}
			if len(got.Plans) != map[bool]int{true: 1, false: 0}[tt.shown] {
				t.Fatalf("search at %s found %d plans, want shown %v", tt.at, len(got.Plans), tt.shown)
			}
			if tt.shown {
				if s := got.Plans[0].StatusOn(got.Today); s != tt.status {
					t.Errorf("search at %s: status %s, want %s", tt.at, s, tt.status)
				}
			}

			// The store's status filter agrees with StatusOn on the London day.
			for _, st := range []cpis.Status{cpis.Active, cpis.Inactive} {
				byStatus, err := f.svc.SearchPlans(t.Context(), c, store.PlanQuery{NHSNumber: tt.plan.NHSNumber, Statuses: []cpis.Status{st}, Limit: 10})
				if err != nil {
					t.Fatal(err)
				}
				if want := tt.shown && st == tt.status; (len(byStatus.Plans) == 1) != want || len(byStatus.Plans) > 1 {
					t.Errorf("search for status %s at %s found %d plans, want found %v", st, tt.at, len(byStatus.Plans), want)
				}
			}

			// A read by id sees the same.
			read, err := f.svc.ReadPlan(t.Context(), c, id)
			switch {
			case tt.shown && err != nil:
				t.Errorf("read at %s: %v, want the plan", tt.at, err)
			case tt.shown && read.Plans[0].StatusOn(read.Today) != tt.status:
				t.Errorf("read at %s: status %s on %s, want %s", tt.at, read.Plans[0].StatusOn(read.Today), read.Today, tt.status)
			case !tt.shown && cpis.KindOf(err) != cpis.NotFound:
				t.Errorf("read at %s: %v, want not found after the window", tt.at, err)
			}
		})
	}
}
