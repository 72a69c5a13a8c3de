package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testEvents: the event log (store.Events): every plan version stored and
// every ASN sent, in commit order, and what reads and removes it.
func testEvents(t *testing.T, open opener) {
	t.Run("PlanVersions", func(t *testing.T) { testEventPlanVersions(t, open) })
	t.Run("Queries", func(t *testing.T) { testEventQueries(t, open) })
	t.Run("Traversal", func(t *testing.T) { testEventTraversal(t, open) })
	t.Run("Stamps", func(t *testing.T) { testEventStamps(t, open) })
	t.Run("Horizon", func(t *testing.T) { testEventHorizon(t, open) })
	t.Run("NothingUncommitted", func(t *testing.T) { testEventsUncommitted(t, open) })
	t.Run("ASNs", func(t *testing.T) { testASNs(t, open) })
	t.Run("ASNCoalescing", func(t *testing.T) { testASNCoalescing(t, open) })
	t.Run("ASNAllOrNothing", func(t *testing.T) { testASNAllOrNothing(t, open) })
	t.Run("Import", func(t *testing.T) { testEventImport(t, open) })
	t.Run("DeleteEventsBefore", func(t *testing.T) { testDeleteEventsBefore(t, open) })
	t.Run("Refusals", func(t *testing.T) { testEventRefusals(t, open) })
}

// second returns the instant n seconds after baseTime.
func second(n int) time.Time { return baseTime().Add(time.Duration(n) * time.Second) }

// unscheduledAccess returns the audit record of a health user's access in
// unscheduled care, by organisation org at sent, to nhs's plans of the LAs
// laCodes, with the ASN it sends each of those LAs: every field set, the
// default coalescing window.
func unscheduledAccess(nhs cpis.NHSNumber, org string, sent time.Time, laCodes ...string) cpis.AuditRecord {
	r := accessRecord(nhs, "555000000001", org, sent)
	r.LACodes, r.PlanIDs = laCodes, nil
	for _, code := range laCodes {
		a := cpis.ASN{
			ID: uuid.NewString(), AuditID: r.ID, Sent: sent, NHSNumber: nhs, LACode: code,
			PlanIDs: []string{uuid.NewString(), uuid.NewString()},
			OrgCode: org, OrgName: r.Actor.OrgName, UserName: r.Actor.Name, RoleName: r.Actor.RoleName,
			CoalesceWindow: cpis.DefaultASNCoalesceWindow,
		}
		r.ASNs, r.PlanIDs = append(r.ASNs, a), append(r.PlanIDs, a.PlanIDs...)
	}
	return r
}

// inWindow returns r with every ASN's coalescing window set to w.
func inWindow(r cpis.AuditRecord, w time.Duration) cpis.AuditRecord {
	r.ASNs = slices.Clone(r.ASNs)
	for i := range r.ASNs {
		r.ASNs[i].CoalesceWindow = w
	}
	return r
}

// withoutASNs returns r as SearchAudit reads it back: the log holds its ASNs.
func withoutASNs(recs ...cpis.AuditRecord) []cpis.AuditRecord {
	out := make([]cpis.AuditRecord, len(recs))
	for i, r := range recs {
		r.ASNs = nil
		out[i] = r
	}
	return out
}

// planEvent is the event of storing version p, as read back.
func planEvent(p cpis.Plan) store.Event {
	return store.Event{Kind: store.PlanChanged, LACode: p.LA.Code, NHSNumber: p.NHSNumber, Plan: p}
}

// planEvents are the events of storing plans, in order.
func planEvents(plans ...cpis.Plan) []store.Event {
	out := make([]store.Event, len(plans))
	for i, p := range plans {
		out[i] = planEvent(p)
	}
	return out
}

// asnEvent is the event of sending a, as read back: without its window.
func asnEvent(a cpis.ASN) store.Event {
	a.CoalesceWindow = 0
	return store.Event{Kind: store.ASNSent, LACode: a.LACode, NHSNumber: a.NHSNumber, ASN: a}
}

// asnEvents are the events of every ASN of recs, in order.
func asnEvents(recs ...cpis.AuditRecord) []store.Event {
	var out []store.Event
	for _, r := range recs {
		for _, a := range r.ASNs {
			out = append(out, asnEvent(a))
		}
	}
	return out
}

// events runs q (a page of 1,000 if q.Limit is 0), failing the test on an
// error, and checks that every instant it returns is in UTC.
func events(tb testing.TB, ctx context.Context, s store.Store, q store.EventQuery) store.EventPage {
	tb.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	page, err := s.Events(ctx, q)
	if err != nil {
		tb.Fatalf("Events: %v", err)
	}
	for i, e := range page.Events {
		what := fmt.Sprintf("Events[%d]", i)
		wantUTC(tb, what+".Stamp", e.Stamp)
		switch e.Kind {
		case store.PlanChanged:
			wantUTC(tb, what+".Plan.LastUpdated", e.Plan.LastUpdated)
		case store.ASNSent:
			wantUTC(tb, what+".ASN.Sent", e.ASN.Sent)
		}
	}
	if !page.Horizon.IsZero() {
		wantUTC(tb, "Horizon", page.Horizon)
	}
	return page
}

// eventLog returns the whole log, oldest first, following its pages, and
// checks it is in order: positions increase and stamps never decrease.
func eventLog(tb testing.TB, ctx context.Context, s store.Store) []store.Event {
	tb.Helper()
	q := store.EventQuery{Order: store.OldestFirst, Limit: 1000}
	var out []store.Event
	for {
		page := events(tb, ctx, s, q)
		if len(out) > 0 && len(page.Events) > 0 && page.Events[0].Position <= out[len(out)-1].Position {
			// Following such pages might never end.
			tb.Fatalf("the page after position %d starts at %d", out[len(out)-1].Position, page.Events[0].Position)
		}
		out = append(out, page.Events...)
		if !page.More {
			break
		}
		q.After = store.EventKeyOf(page.Events[len(page.Events)-1])
	}
	for i, e := range out {
		switch {
		case e.Position < 1:
			tb.Errorf("event %d has position %d, want 1 or more", i, e.Position)
		case i > 0 && e.Position <= out[i-1].Position:
			tb.Errorf("event %d has position %d, after %d", i, e.Position, out[i-1].Position)
		case i > 0 && e.Stamp.Before(out[i-1].Stamp):
			tb.Errorf("event %d (position %d) has stamp %v, before the previous one's %v", i, e.Position, e.Stamp, out[i-1].Stamp)
		}
	}
	return out
}

// wantEvents compares events whole, where they sit in the log included.
func wantEvents(tb testing.TB, what string, got, want []store.Event) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// wantLogged compares events by what they record, ignoring where they sit
// in the log (Position and Stamp), which the caller cannot know.
func wantLogged(tb testing.TB, what string, got, want []store.Event) {
	tb.Helper()
	ignore := cmpopts.IgnoreFields(store.Event{}, "Position", "Stamp")
	if diff := cmp.Diff(want, got, ignore, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// wantStamps checks the stamps of events, in order.
func wantStamps(tb testing.TB, got []store.Event, want ...time.Time) {
	tb.Helper()
	stamps := make([]time.Time, len(got))
	for i, e := range got {
		stamps[i] = e.Stamp
	}
	if diff := cmp.Diff(want, stamps); diff != "" {
		tb.Errorf("stamps mismatch (-want +got):\n%s", diff)
	}
}

// testEventPlanVersions: every version a write transaction stores is an
// event, once, in the order the transactions committed, with the version
// whole; a write storing no version adds none.
func testEventPlanVersions(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	x, y := nhsNumber(t, 1), nhsNumber(t, 2)
	if log := eventLog(t, ctx, s); len(log) != 0 {
		t.Fatalf("a new store's log holds %d events", len(log))
	}
	a := create(t, ctx, s, newPlan(x, la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
	// One transaction, three Puts: two versions of a, a new plan, and
	// nothing but an audit record.
	b := newPlan(y, la(0), cpis.CLA, "2025-01-01", "2025-12-31", second(2))
	b.Version = 1
	a2 := next(a, second(2), func(p *cpis.Plan) { p.End = cpis.MustDate("2025-11-30") })
	a3 := next(a2, second(3), func(p *cpis.Plan) { p.EnteredInError = true })
	tx := begin(t, ctx, s, la(0).Code)
	putIn(t, ctx, tx, versions(b, a2))
	putIn(t, ctx, tx, nil, writeRecord(a2, cpis.ActionRead, "read", second(3)))
	putIn(t, ctx, tx, versions(a3))
	commit(t, ctx, tx)
	// An audited request that changed nothing.
	put(t, ctx, s, la(0).Code, nil, writeRecord(b, cpis.ActionRead, "read", second(4)))
	c := create(t, ctx, s, newPlan(y, la(1), cpis.CPP, "2025-01-01", "2025-12-31", second(4)))
	moved := update(t, ctx, s, next(b, second(5), func(p *cpis.Plan) { p.NHSNumber = x }), 1)

	log := eventLog(t, ctx, s)
	wantLogged(t, "the log", log, planEvents(a, b, a2, a3, c, moved))
	// A transaction's events share its stamp: its latest writer's time.
	wantStamps(t, log, second(1), second(3), second(3), second(3), second(4), second(5))
}

// testEventQueries: what each field of an EventQuery selects, and paging.
func testEventQueries(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	x, y := nhsNumber(t, 1), nhsNumber(t, 2)
	a := create(t, ctx, s, newPlan(x, la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
	b := create(t, ctx, s, newPlan(y, la(1), cpis.CPP, "2025-01-01", "2025-12-31", second(2)))
	r1 := unscheduledAccess(x, "RXX01", second(3), la(0).Code)
	appendAudit(t, ctx, s, r1)
	a2 := next(a, second(4), func(p *cpis.Plan) { p.End = cpis.MustDate("2025-11-30") })
	c := newPlan(y, la(0), cpis.CLA, "2025-01-01", "2025-12-31", second(4))
	c.Version = 1
	put(t, ctx, s, la(0).Code, versions(a2, c))
	r2 := unscheduledAccess(y, "RXX02", second(5), la(1).Code, la(0).Code)
	appendAudit(t, ctx, s, r2)
	b2 := update(t, ctx, s, next(b, second(6), nil), 1)

	e := eventLog(t, ctx, s)
	want := append(planEvents(a, b), asnEvent(r1.ASNs[0]))
	want = append(append(want, planEvents(a2, c)...), asnEvents(r2)...)
	wantLogged(t, "the log", e, append(want, planEvent(b2)))
	wantStamps(t, e, second(1), second(2), second(3), second(4), second(4), second(5), second(5), second(6))
	if len(e) != 8 {
		t.FailNow()
	}
	pick := func(idx ...int) []store.Event {
		var out []store.Event
		for _, i := range idx {
			out = append(out, e[i])
		}
		return out
	}
	key := func(i int) *store.EventKey { return store.EventKeyOf(e[i]) }
	oldest := store.OldestFirst
	tests := []struct {
		name string
		q    store.EventQuery
		want []store.Event
		more bool
	}{
		{"everything, oldest first", store.EventQuery{Order: oldest}, pick(0, 1, 2, 3, 4, 5, 6, 7), false},
		{"everything, newest first", store.EventQuery{Order: store.NewestFirst}, pick(7, 6, 5, 4, 3, 2, 1, 0), false},
		{"plan changes", store.EventQuery{Kind: store.PlanChanged, Order: oldest}, pick(0, 1, 3, 4, 7), false},
		{"ASNs", store.EventQuery{Kind: store.ASNSent, Order: oldest}, pick(2, 5, 6), false},
		{"an LA's", store.EventQuery{LACode: la(0).Code, Order: oldest}, pick(0, 2, 3, 4, 6), false},
		{"an LA's ASNs", store.EventQuery{Kind: store.ASNSent, LACode: la(1).Code}, pick(5), false},
		{"a child's", store.EventQuery{NHSNumber: x, Order: oldest}, pick(0, 2, 3), false},
		{"a child's, of one LA", store.EventQuery{NHSNumber: y, LACode: la(0).Code, Order: oldest}, pick(4, 6), false},
		{"an ASN by id", store.EventQuery{Kind: store.ASNSent, ASNID: r2.ASNs[0].ID}, pick(5), false},
		{"an ASN by id, of another LA", store.EventQuery{Kind: store.ASNSent, ASNID: r2.ASNs[0].ID, LACode: la(0).Code}, nil, false},
		{"no such ASN", store.EventQuery{Kind: store.ASNSent, ASNID: uuid.NewString()}, nil, false},
		{"from, inclusive", store.EventQuery{From: second(4), Order: oldest}, pick(3, 4, 5, 6, 7), false},
		{"before, exclusive", store.EventQuery{Before: second(4), Order: oldest}, pick(0, 1, 2), false},
		{"between", store.EventQuery{From: second(2), Before: second(5), Order: oldest}, pick(1, 2, 3, 4), false},
		{"between, newest first", store.EventQuery{From: second(2), Before: second(5)}, pick(4, 3, 2, 1), false},
		{"a first page", store.EventQuery{Order: oldest, Limit: 3}, pick(0, 1, 2), true},
		{"a first page, newest first", store.EventQuery{Limit: 3}, pick(7, 6, 5), true},
		{"after a key, in a shared stamp", store.EventQuery{Order: oldest, After: key(3), Limit: 3}, pick(4, 5, 6), true},
		{"after the second of a shared stamp", store.EventQuery{Order: oldest, After: key(4), Limit: 2}, pick(5, 6), true},
		{"the last page, as long as the rest", store.EventQuery{Order: oldest, After: key(5), Limit: 2}, pick(6, 7), false},
		{"newest first after a key, in a shared stamp", store.EventQuery{After: key(6), Limit: 2}, pick(5, 4), true},
		{"newest first after the second of a shared stamp", store.EventQuery{After: key(5), Limit: 2}, pick(4, 3), true},
		{"newest first, the last page", store.EventQuery{After: key(2), Limit: 5}, pick(1, 0), false},
		{"after a key, with filters", store.EventQuery{Kind: store.PlanChanged, LACode: la(0).Code, Order: oldest, After: key(3)}, pick(4), false},
		{"after a key and from", store.EventQuery{Order: oldest, After: key(1), From: second(4)}, pick(3, 4, 5, 6, 7), false},
		{"after the newest", store.EventQuery{Order: oldest, After: key(7)}, nil, false},
		{"newest first after the oldest", store.EventQuery{After: key(0)}, nil, false},
		{"a page as long as the matches", store.EventQuery{Kind: store.ASNSent, Order: oldest, Limit: 3}, pick(2, 5, 6), false},
		{"no match", store.EventQuery{NHSNumber: nhsNumber(t, 3)}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := events(t, ctx, s, tt.q)
			wantEvents(t, "Events", page.Events, tt.want)
			if page.More != tt.more {
				t.Errorf("More = %v, want %v", page.More, tt.more)
			}
		})
	}
}

// testEventTraversal follows the log page by page with After while events
// commit between pages, some with writer's times earlier than any before.
// Oldest first, the pages reach every event, the later ones included, each
// once; newest first, they hold the log as of page 1, each event once.
func testEventTraversal(t *testing.T, open opener) {
	for _, order := range []store.Order{store.OldestFirst, store.NewestFirst} {
		t.Run(orderName(order), func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			for i := range 5 {
				create(t, ctx, s, newPlan(nhsNumber(t, i), la(i%2), cpis.CPP, "2025-01-01", "2025-12-31", second(10+i)))
			}
			asOfPage1 := eventLog(t, ctx, s)
			q := store.EventQuery{Order: order, Limit: 2}
			var got []store.Event
			for pages := 1; ; pages++ {
				page := events(t, ctx, s, q)
				got = append(got, page.Events...)
				if !page.More || pages > 20 {
					break
				}
				if pages <= 3 {
					// Between pages: a plan written at a time before every
					// other, and an ASN.
					create(t, ctx, s, newPlan(nhsNumber(t, 10+pages), la(0), cpis.CLA, "2025-01-01", "2025-12-31", second(pages)))
					appendAudit(t, ctx, s, unscheduledAccess(nhsNumber(t, 20+pages), "RXX01", second(pages), la(1).Code))
				}
				q.After = store.EventKeyOf(page.Events[len(page.Events)-1])
			}
			want := eventLog(t, ctx, s)
			if order == store.NewestFirst {
				want = asOfPage1
				slices.Reverse(want)
			}
			wantEvents(t, "the pages together", got, want)
		})
	}
}

// testEventStamps: a transaction's events share one stamp, its latest
// writer's time, unless that is not after the previous transaction's
// stamp: then one microsecond after it. So stamps never go back, whatever
// the writers' clocks do.
func testEventStamps(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	micro := time.Microsecond
	create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(10)))
	// The writer's time goes back: a plan, then an ASN.
	back := create(t, ctx, s, newPlan(nhsNumber(t, 2), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(5)))
	appendAudit(t, ctx, s, unscheduledAccess(nhsNumber(t, 3), "RXX01", second(1), la(1).Code))
	// Two versions written at different times, the latest first.
	p, q := newPlan(nhsNumber(t, 4), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(30)), newPlan(nhsNumber(t, 5), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(20))
	p.Version, q.Version = 1, 1
	put(t, ctx, s, la(0).Code, versions(p, q))
	// As late as the previous transaction.
	create(t, ctx, s, newPlan(nhsNumber(t, 6), la(1), cpis.CPP, "2025-01-01", "2025-12-31", second(30)))
	// Later than every other: three ASNs in one call, the latest last.
	appendAudit(t, ctx, s, unscheduledAccess(nhsNumber(t, 7), "RXX01", second(60), la(0).Code, la(1).Code),
		unscheduledAccess(nhsNumber(t, 8), "RXX01", second(70), la(0).Code))

	log := eventLog(t, ctx, s)
	wantStamps(t, log, second(10), second(10).Add(micro), second(10).Add(2*micro), second(30), second(30),
		second(30).Add(micro), second(70), second(70), second(70))
	if len(log) > 1 {
		wantPlan(t, "the plan written back in time", log[1].Plan, back)
	}
}

// testEventHorizon: a poller asking from a page's Horizon gets exactly the
// events committed since the page, whatever their writers' times.
func testEventHorizon(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	oldest := store.OldestFirst
	empty := events(t, ctx, s, store.EventQuery{Order: oldest})
	if len(empty.Events) != 0 || empty.More || !empty.Horizon.IsZero() {
		t.Errorf("Events of an empty log = %+v; want no events, no more and a zero Horizon", empty)
	}
	p1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
	p2 := create(t, ctx, s, newPlan(nhsNumber(t, 2), la(1), cpis.CPP, "2025-01-01", "2025-12-31", second(2)))
	first := events(t, ctx, s, store.EventQuery{Order: oldest})
	wantLogged(t, "the first poll", first.Events, planEvents(p1, p2))
	horizon := second(2).Add(time.Microsecond)
	if !first.Horizon.Equal(horizon) {
		t.Errorf("Horizon = %v, want %v: one microsecond after the newest stamp", first.Horizon, horizon)
	}
	// The horizon is the log's, whatever the query matches.
	for _, q := range []store.EventQuery{{}, {LACode: la(5).Code}, {Kind: store.ASNSent}, {Order: oldest, Limit: 1}} {
		if h := events(t, ctx, s, q).Horizon; !h.Equal(horizon) {
			t.Errorf("Events(%+v).Horizon = %v, want %v", q, h, horizon)
		}
	}

	// Committed after the poll: written before its horizon, at it, after it.
	p3 := create(t, ctx, s, newPlan(nhsNumber(t, 3), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(0)))
	r := unscheduledAccess(nhsNumber(t, 4), "RXX01", horizon, la(5).Code)
	appendAudit(t, ctx, s, r)
	p4 := create(t, ctx, s, newPlan(nhsNumber(t, 5), la(1), cpis.CPP, "2025-01-01", "2025-12-31", second(9)))
	since := events(t, ctx, s, store.EventQuery{Order: oldest, From: first.Horizon})
	wantLogged(t, "the poll from the horizon", since.Events, append(append(planEvents(p3), asnEvents(r)...), planEvent(p4)))
	before := events(t, ctx, s, store.EventQuery{Order: oldest, Before: first.Horizon})
	wantEvents(t, "the events before the horizon", before.Events, first.Events)
	if want := second(9).Add(time.Microsecond); !since.Horizon.Equal(want) {
		t.Errorf("the second poll's Horizon = %v, want %v", since.Horizon, want)
	}
	again := events(t, ctx, s, store.EventQuery{Order: oldest, From: since.Horizon})
	if len(again.Events) != 0 || !again.Horizon.Equal(since.Horizon) {
		t.Errorf("a poll with nothing new = %+v; want no events and the same Horizon %v", again, since.Horizon)
	}
}

// testEventsUncommitted: a write transaction's events are seen once it
// commits, never if it does not.
func testEventsUncommitted(t *testing.T, open opener) {
	fresh := func(t *testing.T, nhs int) cpis.Plan {
		p := newPlan(nhsNumber(t, nhs), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(nhs))
		p.Version = 1
		return p
	}
	// Each case ends a transaction that has stored fresh(2) and a new
	// version of the seeded plan, without committing it.
	tests := []struct {
		name string
		// end is given the context the transaction began with, and its cancel.
		end func(ctx context.Context, cancel func(), tx store.WriteTx, seeded cpis.Plan) error
	}{
		{"rolled back", func(ctx context.Context, _ func(), tx store.WriteTx, _ cpis.Plan) error {
			return tx.Rollback(ctx)
		}},
		{"a Put refused after one that was not", func(ctx context.Context, _ func(), tx store.WriteTx, seeded cpis.Plan) error {
			stale := next(seeded, second(5), nil)
			if err := tx.Put(ctx, versions(stale), nil); err == nil {
				return fmt.Errorf("a stale version was stored")
			}
			if err := tx.Commit(ctx); err == nil {
				return fmt.Errorf("a Commit after a refused Put succeeded")
			}
			return tx.Rollback(ctx)
		}},
		{"a request gone before the commit", func(ctx context.Context, cancel func(), tx store.WriteTx, _ cpis.Plan) error {
			cancel()
			if err := tx.Commit(ctx); err == nil {
				return fmt.Errorf("a Commit with a cancelled context succeeded")
			}
			return tx.Rollback(ctx)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			seeded := create(t, ctx, s, fresh(t, 1))
			txCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			tx := begin(t, txCtx, s, la(0).Code)
			putIn(t, txCtx, tx, versions(fresh(t, 2), next(seeded, second(3), nil)))
			if err := tt.end(txCtx, cancel, tx, seeded); err != nil {
				t.Fatal(err)
			}
			wantLogged(t, "the log", eventLog(t, ctx, s), planEvents(seeded))
			// The next commit's events follow the seeded plan's.
			later := create(t, ctx, s, fresh(t, 4))
			wantLogged(t, "the log after a later write", eventLog(t, ctx, s), planEvents(seeded, later))
		})
	}
	t.Run("not seen before the commit", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		p := fresh(t, 1)
		tx := begin(t, ctx, s, la(0).Code)
		putIn(t, ctx, tx, versions(p))
		// Another reader, while the transaction is open.
		if page := events(t, ctx, s, store.EventQuery{}); len(page.Events) != 0 || !page.Horizon.IsZero() {
			t.Errorf("Events during the transaction = %+v; want nothing", page)
		}
		commit(t, ctx, tx)
		wantLogged(t, "the log", eventLog(t, ctx, s), planEvents(p))
	})
}

// testASNs: AppendAudit stores the ASNs of its records in the log, whole,
// and the records as ever.
func testASNs(t *testing.T, open opener) {
	t.Run("every field round-trips", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		full := unscheduledAccess(nhsNumber(t, 1), "RXX01", second(1), la(0).Code, la(1).Code)
		// An ASN with only what identifies it: no names, no plans, no window.
		bare := accessRecord(nhsNumber(t, 2), "555000000002", "RXX02", second(2))
		bare.ASNs = []cpis.ASN{{ID: uuid.NewString(), AuditID: bare.ID, Sent: second(2), NHSNumber: bare.Patient,
			LACode: la(2).Code, OrgCode: "RXX02"}}
		appendAudit(t, ctx, s, full, bare)
		wantLogged(t, "the log", eventLog(t, ctx, s), asnEvents(full, bare))
		wantRecords(t, "SearchAudit", searchAudit(t, ctx, s, store.AuditQuery{Limit: 10}), withoutASNs(bare, full))
	})
	t.Run("a record without ASNs sends none", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		plain := accessRecord(nhsNumber(t, 1), "555000000001", "RXX01", second(1))
		appendAudit(t, ctx, s, plain)
		// No event, and the log's horizon is still that of an empty log.
		if page := events(t, ctx, s, store.EventQuery{}); len(page.Events) != 0 || !page.Horizon.IsZero() {
			t.Errorf("Events = %+v; want an empty log", page)
		}
		sending := unscheduledAccess(nhsNumber(t, 2), "RXX01", second(2), la(0).Code)
		another := accessRecord(nhsNumber(t, 3), "555000000001", "RXX01", second(3))
		appendAudit(t, ctx, s, another, sending)
		wantLogged(t, "the log", eventLog(t, ctx, s), asnEvents(sending))
	})
	t.Run("in a write transaction's records, none is sent", func(t *testing.T) {
		// Put stores audit records only: ASNs are sent by reads.
		ctx, s := t.Context(), open(t)
		p := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1))
		p.Version = 1
		put(t, ctx, s, la(0).Code, versions(p), writeRecord(p, cpis.ActionCreate, "create", second(1)))
		wantLogged(t, "the log", eventLog(t, ctx, s), planEvents(p))
	})
	t.Run("concurrent accesses in one window send one", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		const n = 8
		nhs := nhsNumber(t, 1)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.AppendAudit(ctx, []cpis.AuditRecord{unscheduledAccess(nhs, "RXX01", second(1), la(0).Code)})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("AppendAudit: %v", err)
			}
		}
		if log := eventLog(t, ctx, s); len(log) != 1 {
			t.Errorf("the log holds %d ASNs, want 1", len(log))
		}
		if recs := searchAudit(t, ctx, s, store.AuditQuery{Limit: 100}); len(recs) != n {
			t.Errorf("the audit trail holds %d records, want %d", len(recs), n)
		}
	})
}

// testASNCoalescing: an ASN is not sent when it coalesces
// (cpis.ASN.CoalescesWith) with one the log holds, or one the same call
// sent before it; its record is stored all the same.
func testASNCoalescing(t *testing.T, open opener) {
	x, y := nhsNumber(t, 1), nhsNumber(t, 2)
	hour := func(h float64) time.Time { return second(0).Add(time.Duration(h * float64(time.Hour))) }
	// acc is an access to x by RXX01 of the first LA's plans, unless changed.
	acc := func(at time.Time, change ...func(*cpis.AuditRecord)) cpis.AuditRecord {
		r := unscheduledAccess(x, "RXX01", at, la(0).Code)
		for _, f := range change {
			f(&r)
		}
		return r
	}
	window := func(w time.Duration) func(*cpis.AuditRecord) {
		return func(r *cpis.AuditRecord) { *r = inWindow(*r, w) }
	}
	otherOrg := func(r *cpis.AuditRecord) { *r = unscheduledAccess(x, "RXX02", r.ASNs[0].Sent, la(0).Code) }
	otherLA := func(r *cpis.AuditRecord) { *r = unscheduledAccess(x, "RXX01", r.ASNs[0].Sent, la(1).Code) }
	otherChild := func(r *cpis.AuditRecord) { *r = unscheduledAccess(y, "RXX01", r.ASNs[0].Sent, la(0).Code) }
	bothLAs := func(r *cpis.AuditRecord) { *r = unscheduledAccess(x, "RXX01", r.ASNs[0].Sent, la(0).Code, la(1).Code) }
	tests := []struct {
		name  string
		calls [][]cpis.AuditRecord // AppendAudit calls, in order
		sent  []bool               // whether each ASN of the calls, in order, is sent
	}{
		{"within the window of a stored ASN", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(23.9))}}, []bool{true, false}},
		{"at the same instant", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(0))}}, []bool{true, false}},
		{"at the window's end", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(24))}}, []bool{true, true}},
		{"within one call", [][]cpis.AuditRecord{{acc(hour(0)), acc(hour(1))}}, []bool{true, false}},
		{"within one call, after a stored ASN", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(1)), acc(hour(2))}}, []bool{true, false, false}},
		{"with a later ASN stored first", [][]cpis.AuditRecord{{acc(hour(1))}, {acc(hour(0))}}, []bool{true, false}},
		{"with a later ASN in one call", [][]cpis.AuditRecord{{acc(hour(1)), acc(hour(0))}}, []bool{true, false}},
		{"a window before a later ASN", [][]cpis.AuditRecord{{acc(hour(24))}, {acc(hour(0))}}, []bool{true, true}},
		{"another organisation", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(1), otherOrg)}}, []bool{true, true}},
		{"another LA", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(1), otherLA)}}, []bool{true, true}},
		{"another child", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(1), otherChild)}}, []bool{true, true}},
		{"another LA in one call", [][]cpis.AuditRecord{{acc(hour(0)), acc(hour(1), otherLA)}}, []bool{true, true}},
		{"one LA of a record's two", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(1), bothLAs)}}, []bool{true, false, true}},
		{"a window of 0", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(0), window(0))}}, []bool{true, true}},
		{"a window of 0 in one call", [][]cpis.AuditRecord{{acc(hour(0), window(0)), acc(hour(0), window(0))}}, []bool{true, true}},
		{"the later ASN's window", [][]cpis.AuditRecord{{acc(hour(0), window(0))}, {acc(hour(1.5), window(2*time.Hour))}, {acc(hour(3.5), window(2*time.Hour))}},
			[]bool{true, false, true}},
		{"an ASN not sent does not extend the window", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(23))}, {acc(hour(25))}}, []bool{true, false, true}},
		{"nor in one call", [][]cpis.AuditRecord{{acc(hour(0))}, {acc(hour(23)), acc(hour(25)), acc(hour(26))}}, []bool{true, false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			var all []cpis.AuditRecord
			var want []store.Event
			i := 0
			for _, call := range tt.calls {
				appendAudit(t, ctx, s, call...)
				all = append(all, call...)
				for _, e := range asnEvents(call...) {
					if tt.sent[i] {
						want = append(want, e)
					}
					i++
				}
			}
			if i != len(tt.sent) {
				t.Fatalf("the case sends %d ASNs, and says whether for %d", i, len(tt.sent))
			}
			wantLogged(t, "the ASNs sent", eventLog(t, ctx, s), want)
			if recs := searchAudit(t, ctx, s, store.AuditQuery{Limit: 100}); len(recs) != len(all) {
				t.Errorf("the audit trail holds %d records, want %d", len(recs), len(all))
			}
		})
	}
}

// testASNAllOrNothing: an AppendAudit call that fails stores none of its
// records and sends none of its ASNs.
func testASNAllOrNothing(t *testing.T, open opener) {
	t.Run("a cancelled request", func(t *testing.T) {
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var batch []cpis.AuditRecord
		for i := range 20 {
			batch = append(batch, unscheduledAccess(nhsNumber(t, i), "RXX01", second(i), la(0).Code, la(1).Code))
		}
		if err := s.AppendAudit(ctx, batch); err == nil {
			t.Fatal("AppendAudit with a cancelled context succeeded")
		}
		wantLogged(t, "the log", eventLog(t, t.Context(), s), nil)
		wantRecords(t, "SearchAudit", searchAudit(t, t.Context(), s, store.AuditQuery{Limit: 100}), nil)
	})
	t.Run("an ASN id already used", func(t *testing.T) {
		// ASN ids are server-assigned UUIDs: one used twice is a bug, and the
		// whole call fails rather than store two ASNs by one id.
		ctx, s := t.Context(), open(t)
		stored := unscheduledAccess(nhsNumber(t, 1), "RXX01", second(1), la(0).Code)
		appendAudit(t, ctx, s, stored)
		sent := unscheduledAccess(nhsNumber(t, 2), "RXX01", second(2), la(0).Code, la(1).Code)
		dup := unscheduledAccess(nhsNumber(t, 3), "RXX01", second(3), la(0).Code)
		dup.ASNs[0].ID = stored.ASNs[0].ID
		if err := s.AppendAudit(ctx, []cpis.AuditRecord{sent, dup}); err == nil {
			t.Fatal("AppendAudit of an ASN id already stored succeeded")
		}
		wantLogged(t, "the log", eventLog(t, ctx, s), asnEvents(stored))
		wantRecords(t, "SearchAudit", searchAudit(t, ctx, s, store.AuditQuery{Limit: 100}), withoutASNs(stored))
	})
}

// testEventImport: an import logs each plan, in the order given, in one
// transaction; a failed import logs none.
func testEventImport(t *testing.T, open opener) {
	t.Run("a few", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		im := importer(t, s)
		before := create(t, ctx, s, newPlan(nhsNumber(t, 100), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
		plans := importPlans(t, 3) // written before second(1)
		if err := im.ImportPlans(ctx, plans); err != nil {
			t.Fatalf("ImportPlans: %v", err)
		}
		for i := range plans {
			plans[i].Version = 1
		}
		log := eventLog(t, ctx, s)
		wantLogged(t, "the log", log, append(planEvents(before), planEvents(plans...)...))
		after := second(1).Add(time.Microsecond)
		wantStamps(t, log, second(1), after, after, after)
	})
	t.Run("many", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		plans := importPlans(t, bigImport)
		if err := importer(t, s).ImportPlans(ctx, plans); err != nil {
			t.Fatalf("ImportPlans: %v", err)
		}
		log := eventLog(t, ctx, s)
		if len(log) != len(plans) {
			t.Fatalf("the log holds %d events, want %d", len(log), len(plans))
		}
		for i, e := range log {
			if e.Kind != store.PlanChanged || e.Plan.ID != plans[i].ID || e.Plan.Version != 1 {
				t.Fatalf("event %d: %s of plan %s version %d, want plan %s version 1", i, e.Kind, e.Plan.ID, e.Plan.Version, plans[i].ID)
			}
		}
	})
	t.Run("a failed import", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		plans := importPlans(t, bigImport)
		plans[len(plans)-1].ID = plans[0].ID
		wantKind(t, "ImportPlans", importer(t, s).ImportPlans(ctx, plans), cpis.Conflict)
		wantLogged(t, "the log", eventLog(t, ctx, s), nil)
	})
}

// testDeleteEventsBefore: retention removes the events older than the
// cutoff and nothing else; positions are never reused.
func testDeleteEventsBefore(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	var plans []cpis.Plan
	for i := range 4 {
		plans = append(plans, create(t, ctx, s, newPlan(nhsNumber(t, i), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(i+1))))
	}
	r := unscheduledAccess(nhsNumber(t, 9), "RXX01", second(5), la(0).Code)
	appendAudit(t, ctx, s, r)
	log := eventLog(t, ctx, s)
	if len(log) != 5 {
		t.Fatalf("the log holds %d events, want 5", len(log))
	}
	deleteBefore := func(cutoff time.Time, want int64) {
		t.Helper()
		n, err := s.DeleteEventsBefore(ctx, cutoff)
		if err != nil || n != want {
			t.Errorf("DeleteEventsBefore(%v) = %d, %v; want %d", cutoff, n, err, want)
		}
	}
	deleteBefore(second(3), 2)
	wantEvents(t, "the log", eventLog(t, ctx, s), log[2:])
	deleteBefore(second(3), 0)
	deleteBefore(second(0), 0)
	deleteBefore(second(5), 2)
	wantEvents(t, "the log", eventLog(t, ctx, s), log[4:])
	deleteBefore(second(60), 1)
	wantEvents(t, "the log", eventLog(t, ctx, s), nil)
	// Plans and the audit trail are not the log's.
	for _, p := range plans {
		wantHistory(t, ctx, s, p.ID, []cpis.Plan{p})
	}
	if recs := searchAudit(t, ctx, s, store.AuditQuery{Limit: 100}); len(recs) != len(plans)+1 {
		t.Errorf("the audit trail holds %d records, want %d", len(recs), len(plans)+1)
	}
	later := create(t, ctx, s, newPlan(nhsNumber(t, 10), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(2)))
	after := eventLog(t, ctx, s)
	wantLogged(t, "the log after a later write", after, planEvents(later))
	if len(after) == 1 && (after[0].Position <= log[4].Position || !after[0].Stamp.After(log[4].Stamp)) {
		t.Errorf("the later write's event is at %d, %v; want after the deleted %d, %v",
			after[0].Position, after[0].Stamp, log[4].Position, log[4].Stamp)
	}
}

// testEventRefusals: a page of events a store cannot run is Invalid.
func testEventRefusals(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
	tests := []struct {
		name string
		q    store.EventQuery
	}{
		{"no limit", store.EventQuery{}},
		{"a negative limit", store.EventQuery{Limit: -1}},
		{"over the largest page", store.EventQuery{Limit: 1001}},
		{"an unknown kind", store.EventQuery{Kind: "flag", Limit: 10}},
		{"an ASN id without the kind", store.EventQuery{ASNID: uuid.NewString(), Limit: 10}},
		{"an ASN id of plan changes", store.EventQuery{Kind: store.PlanChanged, ASNID: uuid.NewString(), Limit: 10}},
		{"a key without a position", store.EventQuery{After: &store.EventKey{Stamp: second(1)}, Limit: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Events(ctx, tt.q)
			wantKind(t, "Events", err, cpis.Invalid)
		})
	}
}
