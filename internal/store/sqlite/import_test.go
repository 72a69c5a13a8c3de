package sqlite

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testNHSNumbers returns n valid NHS numbers of the 999 test range.
func testNHSNumbers(n int) []cpis.NHSNumber {
	var out []cpis.NHSNumber
	for i := 0; len(out) < n; i++ {
		if nhs, err := cpis.ParseNHSNumber(withCheckDigit(fmt.Sprintf("999%06d", i))); err == nil {
			out = append(out, nhs)
		}
	}
	return out
}

// withCheckDigit appends the Modulus 11 check digit to nine digits (an
// invalid one, 'X', when there is none).
func withCheckDigit(nine string) string {
	sum := 0
	for i := range 9 {
		sum += int(nine[i]-'0') * (10 - i)
	}
	check := (11 - sum%11) % 11
	if check == 10 {
		return nine + "X"
	}
	return nine + string(rune('0'+check))
}

// importPlans returns n valid plans of every type, the first two on one
// NHS number, each updated at its own microsecond.
func importPlans(n int) []cpis.Plan {
	nhs := testNHSNumbers(n)
	start := cpis.MustDate("2025-01-01")
	at := time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)
	plans := make([]cpis.Plan, n)
	for i := range plans {
		p := testPlan(nhs[max(0, i-1)], at.Add(time.Duration(i)*time.Microsecond))
		p.Version = 7 // an import stores version 1 whatever it is given
		p.Type, p.Start, p.End = cpis.PlanTypes[i%3], start.AddDays(i%90), start.AddDays(i%90+200)
		p.LA = cpis.TrustDirectory()[i%6].LocalAuthority
		if p.Type == cpis.UCPP {
			p.BirthDate = cpis.Date{}
		}
		plans[i] = p
	}
	return plans
}

// countPlans counts the rows of plans and plan_versions.
func countPlans(tb testing.TB, s *Store) [2]int {
	tb.Helper()
	var n [2]int
	for i, table := range []string{"plans", "plan_versions"} {
		if err := s.r.QueryRowContext(tb.Context(), `SELECT count(*) FROM `+table).Scan(&n[i]); err != nil {
			tb.Fatal(err)
		}
	}
	return n
}

func TestImportPlans(t *testing.T) {
	for _, n := range []int{1, 2, importChunk, 2*importChunk + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := openTemp(t)
			defer s.Close()
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
	tests := []struct {
		name   string
		stored int // plans imported before
		change func(stored, batch []cpis.Plan)
		want   cpis.Kind
	}{
		{"a plan breaking a rule, in the last chunk", 0, func(_, b []cpis.Plan) { b[len(b)-1].End = b[len(b)-1].Start.AddDays(-1) }, cpis.Invalid},
		{"a plan with no id", 0, func(_, b []cpis.Plan) { b[3].ID = "" }, cpis.Invalid},
		{"a plan with no time of update", 0, func(_, b []cpis.Plan) { b[3].LastUpdated = time.Time{} }, cpis.Invalid},
		{"an id already stored, in the second chunk", 1, func(s, b []cpis.Plan) { b[importChunk+1].ID = s[0].ID }, cpis.Conflict},
		{"one id twice", 0, func(_, b []cpis.Plan) { b[importChunk+1].ID = b[0].ID }, cpis.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTemp(t)
			defer s.Close()
			all := importPlans(tt.stored + importChunk + 2)
			stored, batch := all[:tt.stored], all[tt.stored:]
			if err := s.ImportPlans(t.Context(), stored); err != nil {
				t.Fatalf("ImportPlans (before): %v", err)
			}
			tt.change(stored, batch)
			wantKind(t, "ImportPlans", s.ImportPlans(t.Context(), batch), tt.want)
			if got := countPlans(t, s); got != [2]int{tt.stored, tt.stored} {
				t.Errorf("plans, versions = %v after a failed import, want %d each", got, tt.stored)
			}
		})
	}
}

func TestImportPlansNone(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	if err := s.ImportPlans(t.Context(), nil); err != nil {
		t.Errorf("ImportPlans(nil): %v", err)
	}
}
