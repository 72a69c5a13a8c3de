package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testPlanTraversal follows a search page by page, as a client follows next
// links, while the register changes between pages: a plan already seen is
// updated, one not yet seen is updated (or withdrawn), and one is created.
// Page 1 runs on the current plans; later pages start after the last plan
// of the page before, as of the instant page 1 ran. The pages together must
// hold exactly the plans as of page 1, each once, in order.
func testPlanTraversal(t *testing.T, open opener) {
	for _, order := range []store.Order{store.NewestFirst, store.OldestFirst} {
		t.Run(orderName(order), func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			owner := la(4)
			var before []cpis.Plan // the register as of page 1
			for i := range 7 {
				// Minutes 1, 2, 3, 3, 4, 5, 6: one tie, for the id tie-break.
				minutes := i + 1 - min(1, i/3)
				before = append(before, create(t, ctx, s, newPlan(nhsNumber(t, 20+i), owner, cpis.CPP, "2025-01-01", "2025-12-31", at(minutes))))
			}
			sortPlans(before, order)
			asOf := at(10) // page 1 ran after every write above, before any below
			clock := at(20)
			tick := func() time.Time { clock = clock.Add(time.Minute); return clock }

			q := store.PlanQuery{LACode: owner.Code, Order: order, Limit: 2}
			var got []cpis.Plan
			for pages := 1; ; pages++ {
				page, err := s.SearchPlans(ctx, q)
				if err != nil {
					t.Fatalf("page %d: SearchPlans: %v", pages, err)
				}
				got = append(got, page.Plans...)
				if !page.More || len(got) >= len(before) { // the second is a failure, shown below
					break
				}
				changeBetweenPages(t, ctx, s, before, got, pages, tick)
				q.AsOf, q.After = asOf, store.KeyOf(page.Plans[len(page.Plans)-1])
			}
			wantPlans(t, "the pages together", got, before)
		})
	}
}

// changeBetweenPages updates the last plan already seen and the first not
// yet seen (withdrawing it instead after page 2), and creates a plan.
func changeBetweenPages(t *testing.T, ctx context.Context, s store.Store, before, seen []cpis.Plan, page int, tick func() time.Time) {
	t.Helper()
	current := func(id string) cpis.Plan {
		p, err := s.Plan(ctx, id)
		if err != nil {
			t.Fatalf("Plan: %v", err)
		}
		return p
	}
	p := current(seen[len(seen)-1].ID) // the plan the next page starts after
	p.End, p.LastUpdated = p.End.AddDays(-1), tick()
	update(t, ctx, s, p, p.Version)
	if next := before[len(seen)]; page == 2 {
		withdraw(t, ctx, s, next, tick())
	} else {
		p := current(next.ID)
		p.End, p.LastUpdated = p.End.AddDays(-1), tick()
		update(t, ctx, s, p, p.Version)
	}
	create(t, ctx, s, newPlan(nhsNumber(t, 40+page), before[0].LA, cpis.CLA, "2025-01-01", "2025-12-31", tick()))
}

// sortPlans sorts plans in a search's order.
func sortPlans(plans []cpis.Plan, order store.Order) {
	slices.SortFunc(plans, func(a, b cpis.Plan) int {
		c := a.LastUpdated.Compare(b.LastUpdated)
		if c == 0 {
			c = compareStrings(a.ID, b.ID)
		}
		if order == store.NewestFirst {
			c = -c
		}
		return c
	})
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func orderName(o store.Order) string {
	if o == store.OldestFirst {
		return "oldest first"
	}
	return "newest first"
}

// asOfSet is the register testAsOf searches: each plan's versions by name,
// and the versions current at asOfInstant.
type asOfSet struct {
	at map[string]cpis.Plan // the version of each plan as of asOfInstant
}

// asOfInstant is the instant testAsOf searches the register as of.
func asOfInstant() time.Time { return at(5) }

// seedAsOf stores plans of one child and one LA, changed before and after
// asOfInstant.
func seedAsOf(t *testing.T, ctx context.Context, s store.Store) asOfSet {
	x, y, owner := nhsNumber(t, 1), nhsNumber(t, 2), la(4)
	set := asOfSet{at: map[string]cpis.Plan{}}
	kept := create(t, ctx, s, newPlan(x, owner, cpis.CPP, "2025-01-01", "2025-12-31", at(2)))
	// Changed before and after: its version as of then is the middle one,
	// a CPP; now it is a CLA. The owner's CPPs on x do not overlap (nor do
	// its CLAs), as the register would refuse plans that do.
	changed := create(t, ctx, s, newPlan(x, owner, cpis.CPP, "2024-07-01", "2024-12-31", at(1)))
	changed.End, changed.LastUpdated = cpis.MustDate("2024-11-30"), at(3)
	changed = update(t, ctx, s, changed, 1)
	later := changed
	later.Type, later.LastUpdated = cpis.CLA, at(6)
	update(t, ctx, s, later, 2)
	withdrawn := create(t, ctx, s, newPlan(x, owner, cpis.CLA, "2025-01-01", "2025-12-31", at(1)))
	withdraw(t, ctx, s, withdrawn, at(7))
	// Shown to health users as of then (end+364 is 2025-06-29); its end moved
	// back since, so that today it is past its display window (end+364 is
	// 2025-04-30).
	ended := create(t, ctx, s, newPlan(x, owner, cpis.CPP, "2022-06-01", "2024-06-30", at(4)))
	shortened := ended
	shortened.End, shortened.LastUpdated = cpis.MustDate("2024-05-01"), at(8)
	update(t, ctx, s, shortened, 1)
	edge := create(t, ctx, s, newPlan(x, owner, cpis.UCPP, "2025-03-01", "2025-09-30", asOfInstant()))
	create(t, ctx, s, newPlan(x, owner, cpis.CPP, "2026-01-01", "2026-12-31", at(6))) // created after
	// Moved to another child since (the store allows it; the api does not),
	// by another LA, so that only the searches by child meet it.
	moved := create(t, ctx, s, newPlan(x, la(5), cpis.CPP, "2025-01-01", "2025-12-31", at(1)))
	moved.NHSNumber, moved.LastUpdated = y, at(9)
	update(t, ctx, s, moved, 1)
	for name, p := range map[string]cpis.Plan{"kept": kept, "changed": changed, "withdrawn": withdrawn, "ended": ended, "edge": edge} {
		set.at[name] = p
	}
	return set
}

func (set asOfSet) named(names ...string) []cpis.Plan {
	out := []cpis.Plan{}
	for _, n := range names {
		out = append(out, set.at[n])
	}
	return out
}

// testAsOf pins what a search as of an earlier instant returns: each
// plan's newest version written by then, to which the query applies, but
// never a plan that may not be shown now.
func testAsOf(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	set := seedAsOf(t, ctx, s)
	x, y, owner := nhsNumber(t, 1), nhsNumber(t, 2), la(4).Code
	today := cpis.MustDate(searchToday)
	tests := []struct {
		name string
		q    store.PlanQuery
		want []string
		more bool
	}{
		{"an LA's plans as they were, newest first", store.PlanQuery{LACode: owner},
			[]string{"edge", "ended", "changed", "kept", "withdrawn"}, false},
		{"oldest first", store.PlanQuery{LACode: owner, Order: store.OldestFirst},
			[]string{"withdrawn", "kept", "changed", "ended", "edge"}, false},
		{"a child's plans as they were", store.PlanQuery{NHSNumber: x},
			[]string{"edge", "ended", "changed", "kept", "withdrawn"}, false},
		{"never what health users may not see now", store.PlanQuery{NHSNumber: x, VisibleOn: today},
			[]string{"edge", "changed", "kept"}, false},
		{"a plan moved since is shown on neither child", store.PlanQuery{NHSNumber: y}, nil, false},
		{"types apply to the version as of then", store.PlanQuery{LACode: owner, Types: []cpis.PlanType{cpis.CLA}},
			[]string{"withdrawn"}, false},
		{"statuses apply to the version as of then", store.PlanQuery{NHSNumber: x, Statuses: []cpis.Status{cpis.EnteredInError}, Today: today},
			nil, false},
		{"last updated applies to the version as of then", store.PlanQuery{LACode: owner, UpdatedFrom: at(3)},
			[]string{"edge", "ended", "changed"}, false},
		{"a page", store.PlanQuery{LACode: owner, Limit: 2}, []string{"edge", "ended"}, true},
		{"the page after a key", store.PlanQuery{LACode: owner, Limit: 2, After: store.KeyOf(set.at["ended"])},
			[]string{"changed", "kept"}, true},
		{"the last page", store.PlanQuery{LACode: owner, Limit: 2, After: store.KeyOf(set.at["kept"])},
			[]string{"withdrawn"}, false},
		{"oldest first after a key", store.PlanQuery{LACode: owner, Order: store.OldestFirst, Limit: 2, After: store.KeyOf(set.at["changed"])},
			[]string{"ended", "edge"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.AsOf = asOfInstant()
			if tt.q.Limit == 0 {
				tt.q.Limit = 100
			}
			page, err := s.SearchPlans(ctx, tt.q)
			if err != nil {
				t.Fatalf("SearchPlans: %v", err)
			}
			wantPlans(t, "SearchPlans", page.Plans, set.named(tt.want...))
			if page.More != tt.more {
				t.Errorf("More = %v, want %v", page.More, tt.more)
			}
		})
	}
	t.Run("before anything was written", func(t *testing.T) {
		page, err := s.SearchPlans(ctx, store.PlanQuery{LACode: owner, AsOf: at(0), Limit: 10})
		if err != nil || page.Plans == nil || len(page.Plans) != 0 || page.More {
			t.Errorf("SearchPlans = %+v, %v; want a non-nil empty page", page, err)
		}
	})
}

// testAuditTraversal follows an audit search page by page with Before
// while records are appended between pages: the pages together hold
// exactly the records as of page 1, each once, newest first.
func testAuditTraversal(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	nhs := nhsNumber(t, 1)
	var before []cpis.AuditRecord // oldest first
	for i := range 7 {
		// Seconds 0, 1, 2, 2, 2, 3, 4: a three-way tie, for the id tie-break.
		r := accessRecord(nhs, "555000000001", "RXX01", baseTime().Add(time.Duration(i-min(2, max(0, i-2)))*time.Second))
		r.ID = seq(i)
		before = append(before, r)
	}
	appendAudit(t, ctx, s, before...)
	q := store.AuditQuery{Patient: nhs, Limit: 2}
	var got []cpis.AuditRecord
	for pages := 1; pages <= len(before); pages++ {
		recs, err := s.SearchAudit(ctx, q)
		if err != nil {
			t.Fatalf("page %d: SearchAudit: %v", pages, err)
		}
		got = append(got, recs...)
		if len(recs) < q.Limit {
			break
		}
		later := accessRecord(nhs, "555000000002", "RXX02", baseTime().Add(time.Duration(pages)*time.Hour))
		other := accessRecord(nhsNumber(t, 2), "555000000002", "RXX02", baseTime())
		appendAudit(t, ctx, s, later, other)
		q.Before = store.AuditKeyOf(recs[len(recs)-1])
	}
	wantRecords(t, "the pages together", got, reversed(before))
}

// keysetRefusals are pages a store cannot run: a key without an id.
func keysetRefusals(t *testing.T, ctx context.Context, s store.Store) {
	nhs := nhsNumber(t, 1)
	t.Run("SearchPlans/a key without an id", func(t *testing.T) {
		_, err := s.SearchPlans(ctx, store.PlanQuery{NHSNumber: nhs, Limit: 10, After: &store.PlanKey{LastUpdated: baseTime()}})
		wantKind(t, "SearchPlans", err, cpis.Invalid)
	})
	t.Run("SearchAudit/a key without an id", func(t *testing.T) {
		_, err := s.SearchAudit(ctx, store.AuditQuery{Patient: nhs, Limit: 10, Before: &store.AuditKey{Recorded: baseTime()}})
		wantKind(t, "SearchAudit", err, cpis.Invalid)
	})
}
