package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// searchToday is the day the status and visibility cases are judged on.
const searchToday = "2025-06-15"

// planSet stores the search fixtures and keeps their current versions by name.
type planSet struct {
	s     store.Store
	plans map[string]cpis.Plan
}

// at is a fixture's last-update time: minutes after baseTime.
func at(minutes int) time.Time { return baseTime().Add(time.Duration(minutes) * time.Minute) }

// seedSearch stores plans for three kinds of search: a child (x) with plans
// in every status, a mother (m) with unborn plans, and five children of one
// LA (y) whose update times tie in pairs, to check the id tie-break.
func seedSearch(t *testing.T, ctx context.Context, s store.Store) planSet {
	set := planSet{s, map[string]cpis.Plan{}}
	x, m := nhsNumber(t, 1), nhsNumber(t, 2)
	set.add(t, ctx, "x-active-cpp", newPlan(x, la(0), cpis.CPP, "2025-01-01", "2025-12-31", at(1)))
	set.add(t, ctx, "x-future-cla", newPlan(x, la(1), cpis.CLA, "2025-07-01", "2026-06-30", at(2)))
	// Ended 2024-06-20: shown until 2025-06-19 (end+364).
	set.add(t, ctx, "x-ended-cpp", newPlan(x, la(0), cpis.CPP, "2023-06-01", "2024-06-20", at(3)))
	set.add(t, ctx, "x-deleted-cla", newPlan(x, la(0), cpis.CLA, "2025-01-01", "2025-12-31", at(4)))
	set.remove(t, ctx, "x-deleted-cla", at(5))
	set.add(t, ctx, "x-updated-cpp", newPlan(x, la(2), cpis.CPP, "2025-02-01", "2025-10-31", at(6)))
	set.change(t, ctx, "x-updated-cpp", func(p *cpis.Plan) { p.End, p.LastUpdated = cpis.MustDate("2025-09-30"), at(7) })
	// Ended 2025-05-20: shown until 2025-06-17 (end+28).
	set.add(t, ctx, "m-ended-ucpp", newPlan(m, la(1), cpis.UCPP, "2025-01-10", "2025-05-20", at(8)))
	set.add(t, ctx, "m-active-ucpp", newPlan(m, la(1), cpis.UCPP, "2025-05-21", "2025-09-01", at(9)))
	ys := []struct {
		name, id string
		typ      cpis.PlanType
		minutes  int
	}{
		{"y1", "00000000-0000-4000-8000-000000000001", cpis.CPP, 10},
		{"y2", "00000000-0000-4000-8000-000000000003", cpis.CLA, 11},
		{"y3", "00000000-0000-4000-8000-000000000002", cpis.CPP, 11},
		{"y4", "00000000-0000-4000-8000-000000000005", cpis.CLA, 12},
		{"y5", "00000000-0000-4000-8000-000000000004", cpis.CPP, 12},
	}
	for i, y := range ys {
		p := newPlan(nhsNumber(t, 10+i), la(3), y.typ, "2025-01-01", "2025-12-31", at(y.minutes))
		p.ID = y.id
		set.add(t, ctx, y.name, p)
	}
	return set
}

func (set planSet) add(t *testing.T, ctx context.Context, name string, p cpis.Plan) {
	t.Helper()
	set.plans[name] = create(t, ctx, set.s, p)
}

func (set planSet) change(t *testing.T, ctx context.Context, name string, f func(*cpis.Plan)) {
	t.Helper()
	p := set.plans[name]
	f(&p)
	set.plans[name] = update(t, ctx, set.s, p, p.Version)
}

func (set planSet) remove(t *testing.T, ctx context.Context, name string, when time.Time) {
	t.Helper()
	set.plans[name] = withdraw(t, ctx, set.s, set.plans[name], when)
}

func (set planSet) named(names []string) []cpis.Plan {
	out := []cpis.Plan{}
	for _, n := range names {
		out = append(out, set.plans[n])
	}
	return out
}

// searchCase is one query and the fixtures it must return, in order.
type searchCase struct {
	name string
	q    store.PlanQuery
	want []string
	more bool
}

func testSearchPlans(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	set := seedSearch(t, ctx, s)
	groups := map[string][]searchCase{
		"by patient and LA": patientCases(t),
		"status":            statusCases(t),
		"visibility":        visibilityCases(t),
		"last updated":      updatedCases(t),
		"order and paging":  pagingCases(),
	}
	for group, cases := range groups {
		t.Run(group, func(t *testing.T) {
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					if tt.q.Limit == 0 {
						tt.q.Limit = 100
					}
					page, err := s.SearchPlans(ctx, tt.q)
					if err != nil {
						t.Fatalf("SearchPlans: %v", err)
					}
					wantPlans(t, "SearchPlans", page.Plans, set.named(tt.want))
					if page.More != tt.more {
						t.Errorf("More = %v, want %v", page.More, tt.more)
					}
				})
			}
		})
	}
	t.Run("no match is an empty page", func(t *testing.T) {
		for _, q := range []store.PlanQuery{
			{NHSNumber: nhsNumber(t, 99), Limit: 10},
			{LACode: la(5).Code, Limit: 10},
			{NHSNumber: nhsNumber(t, 1), LACode: la(3).Code, Limit: 10},
		} {
			page, err := s.SearchPlans(ctx, q)
			if err != nil {
				t.Fatalf("SearchPlans: %v", err)
			}
			if page.Plans == nil || len(page.Plans) != 0 || page.More {
				t.Errorf("SearchPlans = %+v, want a non-nil empty page", page)
			}
		}
	})
}

func patientCases(t *testing.T) []searchCase {
	x, m := nhsNumber(t, 1), nhsNumber(t, 2)
	return []searchCase{
		{"one patient, newest first", store.PlanQuery{NHSNumber: x},
			[]string{"x-updated-cpp", "x-deleted-cla", "x-ended-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"another patient", store.PlanQuery{NHSNumber: m}, []string{"m-active-ucpp", "m-ended-ucpp"}, false},
		{"one LA, every patient", store.PlanQuery{LACode: la(1).Code},
			[]string{"m-active-ucpp", "m-ended-ucpp", "x-future-cla"}, false},
		{"patient and LA", store.PlanQuery{NHSNumber: x, LACode: la(0).Code},
			[]string{"x-deleted-cla", "x-ended-cpp", "x-active-cpp"}, false},
		{"one type", store.PlanQuery{NHSNumber: x, Types: []cpis.PlanType{cpis.CLA}},
			[]string{"x-deleted-cla", "x-future-cla"}, false},
		{"two types", store.PlanQuery{NHSNumber: x, Types: []cpis.PlanType{cpis.UCPP, cpis.CPP}},
			[]string{"x-updated-cpp", "x-ended-cpp", "x-active-cpp"}, false},
		{"a type the patient has none of", store.PlanQuery{NHSNumber: m, Types: []cpis.PlanType{cpis.CPP}}, nil, false},
		{"every field at once", store.PlanQuery{
			NHSNumber: x, LACode: la(0).Code, Types: []cpis.PlanType{cpis.CPP},
			Statuses: []cpis.Status{cpis.Active, cpis.Inactive}, Today: cpis.MustDate(searchToday),
			VisibleOn: cpis.MustDate(searchToday), UpdatedFrom: at(1), UpdatedBefore: at(4), Order: store.OldestFirst,
		}, []string{"x-active-cpp", "x-ended-cpp"}, false},
	}
}

func statusCases(t *testing.T) []searchCase {
	x := nhsNumber(t, 1)
	on := func(day string, st ...cpis.Status) store.PlanQuery {
		return store.PlanQuery{NHSNumber: x, Statuses: st, Today: cpis.MustDate(day)}
	}
	return []searchCase{
		{"active", on(searchToday, cpis.Active), []string{"x-updated-cpp", "x-active-cpp"}, false},
		{"inactive before start and after end", on(searchToday, cpis.Inactive), []string{"x-ended-cpp", "x-future-cla"}, false},
		{"entered in error", on(searchToday, cpis.EnteredInError), []string{"x-deleted-cla"}, false},
		{"active or entered in error", on(searchToday, cpis.EnteredInError, cpis.Active),
			[]string{"x-updated-cpp", "x-deleted-cla", "x-active-cpp"}, false},
		{"every status", on(searchToday, cpis.Active, cpis.Inactive, cpis.EnteredInError),
			[]string{"x-updated-cpp", "x-deleted-cla", "x-ended-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"active on the start date", on("2025-07-01", cpis.Active), []string{"x-updated-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"inactive the day before the start", on("2025-06-30", cpis.Inactive), []string{"x-ended-cpp", "x-future-cla"}, false},
		{"active on the end date", on("2025-09-30", cpis.Active), []string{"x-updated-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"inactive the day after the end", on("2025-10-01", cpis.Inactive), []string{"x-updated-cpp", "x-ended-cpp"}, false},
	}
}

func visibilityCases(t *testing.T) []searchCase {
	x, m := nhsNumber(t, 1), nhsNumber(t, 2)
	vis := func(nhs cpis.NHSNumber, day string) store.PlanQuery {
		return store.PlanQuery{NHSNumber: nhs, VisibleOn: cpis.MustDate(day)}
	}
	return []searchCase{
		{"entered in error is never shown", vis(x, searchToday),
			[]string{"x-updated-cpp", "x-ended-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"CPP on end+364", vis(x, "2025-06-19"), []string{"x-updated-cpp", "x-ended-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"CPP not on end+365", vis(x, "2025-06-20"), []string{"x-updated-cpp", "x-future-cla", "x-active-cpp"}, false},
		{"CLA on end+364", vis(x, "2027-06-29"), []string{"x-future-cla"}, false},
		{"CLA not on end+365", vis(x, "2027-06-30"), nil, false},
		{"UCPP on end+28", vis(m, "2025-06-17"), []string{"m-active-ucpp", "m-ended-ucpp"}, false},
		{"UCPP not on end+29", vis(m, "2025-06-18"), []string{"m-active-ucpp"}, false},
		{"an LA's deleted plan is hidden too", store.PlanQuery{LACode: la(0).Code, VisibleOn: cpis.MustDate("2025-01-01")},
			[]string{"x-ended-cpp", "x-active-cpp"}, false},
	}
}

func updatedCases(t *testing.T) []searchCase {
	x := nhsNumber(t, 1)
	return []searchCase{
		{"from inclusive, before exclusive", store.PlanQuery{NHSNumber: x, UpdatedFrom: at(3), UpdatedBefore: at(7)},
			[]string{"x-deleted-cla", "x-ended-cpp"}, false},
		{"from only", store.PlanQuery{NHSNumber: x, UpdatedFrom: at(5)}, []string{"x-updated-cpp", "x-deleted-cla"}, false},
		{"before only", store.PlanQuery{NHSNumber: x, UpdatedBefore: at(2)}, []string{"x-active-cpp"}, false},
		{"from, across patients", store.PlanQuery{LACode: la(3).Code, UpdatedFrom: at(12)}, []string{"y4", "y5"}, false},
		{"a microsecond before", store.PlanQuery{NHSNumber: x, UpdatedFrom: at(7).Add(-time.Microsecond), UpdatedBefore: at(7).Add(time.Microsecond)},
			[]string{"x-updated-cpp"}, false},
		{"empty range", store.PlanQuery{NHSNumber: x, UpdatedFrom: at(3), UpdatedBefore: at(3)}, nil, false},
	}
}

func pagingCases() []searchCase {
	lay := func(o store.Order, limit int) store.PlanQuery {
		return store.PlanQuery{LACode: la(3).Code, Order: o, Limit: limit}
	}
	return []searchCase{
		{"newest first, ties by id descending", lay(store.NewestFirst, 10), []string{"y4", "y5", "y2", "y3", "y1"}, false},
		{"oldest first, ties by id ascending", lay(store.OldestFirst, 10), []string{"y1", "y3", "y2", "y5", "y4"}, false},
		{"first page", lay(store.NewestFirst, 2), []string{"y4", "y5"}, true},
		{"a page of exactly all", lay(store.NewestFirst, 5), []string{"y4", "y5", "y2", "y3", "y1"}, false},
		{"one short of all", lay(store.OldestFirst, 4), []string{"y1", "y3", "y2", "y5"}, true},
		{"after a key, ties by id descending", after(store.NewestFirst, at(12), "00000000-0000-4000-8000-000000000004"), []string{"y2", "y3"}, true},
		{"after a key, ties by id ascending", after(store.OldestFirst, at(11), "00000000-0000-4000-8000-000000000002"), []string{"y2", "y5"}, true},
		{"after the last key", after(store.NewestFirst, at(11), "00000000-0000-4000-8000-000000000002"), []string{"y1"}, false},
		{"after a key no plan has", after(store.NewestFirst, at(11), "00000000-0000-4000-8000-000000000002a"), []string{"y3", "y1"}, false},
		{"after the end", after(store.OldestFirst, at(12), "00000000-0000-4000-8000-000000000005"), nil, false},
		{"after the end, newest first", after(store.NewestFirst, at(10), "00000000-0000-4000-8000-000000000001"), nil, false},
	}
}

// after is a page of two of LA 3's plans after the key (at, id).
func after(o store.Order, at time.Time, id string) store.PlanQuery {
	return store.PlanQuery{LACode: la(3).Code, Order: o, Limit: 2, After: &store.PlanKey{LastUpdated: at, ID: id}}
}

// wantSearch checks that q returns exactly want, on one page.
func wantSearch(tb testing.TB, ctx context.Context, s store.Store, q store.PlanQuery, want []cpis.Plan) {
	tb.Helper()
	page, err := s.SearchPlans(ctx, q)
	if err != nil {
		tb.Fatalf("SearchPlans: %v", err)
	}
	wantPlans(tb, "SearchPlans", page.Plans, want)
	if page.More {
		tb.Errorf("SearchPlans: More is set, want one page")
	}
}
