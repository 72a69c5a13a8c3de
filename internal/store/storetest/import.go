package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// bigImport is more plans than one statement of any backend carries (SQLite
// inserts 500 rows per statement), so that a failure late in the import must
// undo what earlier statements of the same transaction wrote.
const bigImport = 1_203

// importPlans returns n valid plans of every type, the first two on one NHS
// number, each updated at its own microsecond, all but every seventh with a
// reference, which each of the six LAs uses once.
func importPlans(tb testing.TB, n int) []cpis.Plan {
	start := cpis.MustDate("2025-01-01")
	plans := make([]cpis.Plan, n)
	for i := range plans {
		from, to := start.AddDays(i%90), start.AddDays(i%90+200)
		plans[i] = newPlan(nhsNumber(tb, max(0, i-1)), la(i%6), cpis.PlanTypes[i%3], from.String(), to.String(),
			baseTime().Add(time.Duration(i)*time.Microsecond))
		plans[i].Version = 7 // an import stores version 1 whatever it is given
		if i%7 != 0 {
			plans[i].Reference = fmt.Sprintf("IMP-%d", i/6)
		}
	}
	return plans
}

// importer returns s as a store.Importer, or skips: importing is optional.
func importer(t *testing.T, s store.Store) store.Importer {
	t.Helper()
	im, ok := s.(store.Importer)
	if !ok {
		t.Skip("this store does not import plans in bulk")
	}
	return im
}

// testImportPlans: every plan is stored as its version 1, exactly as given,
// and found by search.
func testImportPlans(t *testing.T, open opener) {
	for _, n := range []int{1, 2, bigImport} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := open(t)
			plans := importPlans(t, n)
			if err := importer(t, s).ImportPlans(t.Context(), plans); err != nil {
				t.Fatalf("ImportPlans: %v", err)
			}
			for _, want := range plans {
				want.Version = 1
				hist, err := s.PlanHistory(t.Context(), want.ID)
				if err != nil {
					t.Fatalf("PlanHistory: %v", err)
				}
				if diff := cmp.Diff([]cpis.Plan{want}, hist); diff != "" {
					t.Fatalf("PlanHistory (-want +got):\n%s", diff)
				}
			}
			page, err := s.SearchPlans(t.Context(), store.PlanQuery{NHSNumber: plans[0].NHSNumber, VisibleOn: plans[0].Start, Limit: 10})
			if want := min(n, 2); err != nil || len(page.Plans) != want {
				t.Errorf("SearchPlans: %d plans, %v; want %d", len(page.Plans), err, want)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		if err := importer(t, open(t)).ImportPlans(t.Context(), nil); err != nil {
			t.Errorf("ImportPlans(nil): %v", err)
		}
	})
}

// testImportAllOrNothing: one bad plan anywhere fails the whole import and
// leaves what was stored before as it was.
func testImportAllOrNothing(t *testing.T, open opener) {
	const late = bigImport - 200 // beyond the first statement
	tests := []struct {
		name   string
		stored int // plans imported before
		change func(stored, batch []cpis.Plan)
		want   cpis.Kind
	}{
		{"a plan breaking a rule, last", 0, func(_, b []cpis.Plan) { b[len(b)-1].End = b[len(b)-1].Start.AddDays(-1) }, cpis.Invalid},
		{"a plan with no id", 0, func(_, b []cpis.Plan) { b[3].ID = "" }, cpis.Invalid},
		{"a plan with no time of update", 0, func(_, b []cpis.Plan) { b[3].LastUpdated = time.Time{} }, cpis.Invalid},
		{"an id already stored, late", 1, func(s, b []cpis.Plan) { b[late].ID = s[0].ID }, cpis.Conflict},
		{"one id twice", 0, func(_, b []cpis.Plan) { b[late].ID = b[0].ID }, cpis.Conflict},
		// Plan i of importPlans is LA i%6's: 6 and late-late%6 are the first LA's.
		{"a reference twice among an LA's plans", 0, func(_, b []cpis.Plan) {
			b[late-late%6].Reference = b[6].Reference
		}, cpis.Conflict},
		{"a reference an LA's stored plan holds", 7, func(s, b []cpis.Plan) {
			b[late-(late+7)%6].Reference = s[6].Reference // b[i] is plan i+7
		}, cpis.Conflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			im := importer(t, s)
			all := importPlans(t, tt.stored+bigImport)
			stored, batch := all[:tt.stored], all[tt.stored:]
			if err := im.ImportPlans(t.Context(), stored); err != nil {
				t.Fatalf("ImportPlans (before): %v", err)
			}
			tt.change(stored, batch)
			wantKind(t, "ImportPlans", im.ImportPlans(t.Context(), batch), tt.want)
			for _, p := range stored {
				if hist, err := s.PlanHistory(t.Context(), p.ID); err != nil || len(hist) != 1 {
					t.Errorf("plan stored before: %d versions, %v; want 1", len(hist), err)
				}
			}
			for _, p := range batch {
				if p.ID == "" || (tt.stored > 0 && p.ID == stored[0].ID) {
					continue
				}
				if _, err := s.Plan(t.Context(), p.ID); cpis.KindOf(err) != cpis.NotFound {
					t.Fatalf("a plan of the failed import: %v, want NotFound", err)
				}
			}
		})
	}
}
