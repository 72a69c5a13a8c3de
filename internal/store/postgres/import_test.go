package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// benchRecord is the audit record of one health user's search of nhs that
// returned a plan. (It outlived the store benchmarks, now cmd/cpisbench;
// partitions_test.go builds its records with it.)
func benchRecord(nhs cpis.NHSNumber, now time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID: uuid.NewString(), Recorded: now, Action: cpis.ActionExecute, Interaction: "search-type",
		Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000001", Name: "Test Practitioner",
			RoleProfileID: "555021935107", RoleCode: "S8001:G8005:R8000", RoleName: "Clinical Practitioner Access Role",
			OrgCode: "RXX01", OrgName: "Test Hospital", Activities: []string{cpis.ActivityUnscheduledView}},
		Patient: nhs, PlanIDs: []string{uuid.NewString()}, Query: "/Flag?patient=" + string(nhs),
		RequestID: uuid.NewString(), Access: true, Unscheduled: true, LACodes: []string{"ZLA01"},
	}
}

// importChunk is a size that makes a batch larger than a few rows; COPY has
// no chunks of its own, but the tests are shared in spirit with SQLite's.
const importChunk = 500

// importPlans returns n valid plans of every type, the first two on one
// NHS number, each updated at its own microsecond.
func importPlans(n int) []cpis.Plan {
	start := cpis.MustDate("2025-01-01")
	at := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	plans := make([]cpis.Plan, n)
	for i := range plans {
		p := plan(testNHS(max(0, i-1)))
		p.Version, p.LastUpdated = 7, at.Add(time.Duration(i)*time.Microsecond) // an import stores version 1 whatever it is given
		p.Type, p.Start, p.End = cpis.PlanTypes[i%3], start.AddDays(i%90), start.AddDays(i%90+200)
		p.LA, p.OfficePhone = cpis.TrustDirectory()[i%6].LocalAuthority, "020 7946 0102"
		if p.Type == cpis.UCPP {
			p.BirthDate = cpis.Date{}
		}
		plans[i] = p
	}
	return plans
}

// countPlans counts the rows of plans and plan_versions.
func countPlans(tb testing.TB, s *postgres.Store) [2]int {
	tb.Helper()
	return [2]int{countIn(tb, s, "plans"), countIn(tb, s, "plan_versions")}
}

func TestImportPlans(t *testing.T) {
	url := pgtest.MigratedURL(t)
	for _, n := range []int{1, 2, 2*importChunk + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := open(t, url)
			defer s.Close()
			exec(t, connect(t, url), `DELETE FROM plans; DELETE FROM plan_versions`)
			plans := importPlans(n)
			if err := s.ImportPlans(t.Context(), plans); err != nil {
				t.Fatalf("ImportPlans: %v", err)
			}
			if got := countPlans(t, s); got != [2]int{n, n} {
				t.Errorf("plans, versions = %v, want %d each", got, n)
			}
			for _, want := range plans {
				want.Version = 1
				got, err := s.Plan(t.Context(), want.ID)
				if err != nil {
					t.Fatalf("Plan: %v", err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("Plan (-want +got):\n%s", diff)
				}
			}
			hist, err := s.PlanHistory(t.Context(), plans[n-1].ID)
			if err != nil || len(hist) != 1 {
				t.Errorf("PlanHistory: %d versions, %v; want 1", len(hist), err)
			}
			page, err := s.SearchPlans(t.Context(), store.PlanQuery{NHSNumber: plans[0].NHSNumber, VisibleOn: plans[0].Start, Limit: 10})
			if want := min(n, 2); err != nil || len(page.Plans) != want {
				t.Errorf("SearchPlans: %d plans, %v; want %d", len(page.Plans), err, want)
			}
		})
	}
}

func TestImportPlansAllOrNothing(t *testing.T) {
	url := pgtest.MigratedURL(t)
	tests := []struct {
		name   string
		stored int // plans imported before
		change func(stored, batch []cpis.Plan)
		want   cpis.Kind
	}{
		{"a plan breaking a rule, last", 0, func(_, b []cpis.Plan) { b[len(b)-1].End = b[len(b)-1].Start.AddDays(-1) }, cpis.Invalid},
		{"a plan with no id", 0, func(_, b []cpis.Plan) { b[3].ID = "" }, cpis.Invalid},
		{"a plan with no time of update", 0, func(_, b []cpis.Plan) { b[3].LastUpdated = time.Time{} }, cpis.Invalid},
		{"an id already stored", 1, func(s, b []cpis.Plan) { b[importChunk+1].ID = s[0].ID }, cpis.Conflict},
		{"one id twice", 0, func(_, b []cpis.Plan) { b[importChunk+1].ID = b[0].ID }, cpis.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, url)
			defer s.Close()
			exec(t, connect(t, url), `DELETE FROM plans; DELETE FROM plan_versions`)
			all := importPlans(tt.stored + importChunk + 2)
			stored, batch := all[:tt.stored], all[tt.stored:]
			if err := s.ImportPlans(t.Context(), stored); err != nil {
				t.Fatalf("ImportPlans (before): %v", err)
			}
			tt.change(stored, batch)
			err := s.ImportPlans(t.Context(), batch)
			if got := cpis.KindOf(err); err == nil || got != tt.want {
				t.Errorf("ImportPlans: error %v (kind %q), want kind %q", err, got, tt.want)
			}
			if got := countPlans(t, s); got != [2]int{tt.stored, tt.stored} {
				t.Errorf("plans, versions = %v after a failed import, want %d each", got, tt.stored)
			}
		})
	}
}

func TestImportPlansNone(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	if err := s.ImportPlans(t.Context(), nil); err != nil {
		t.Errorf("ImportPlans(nil): %v", err)
	}
}
