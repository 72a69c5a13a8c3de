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

// testSubscriptions: subscriptions, their numbering of the log's events,
// and the leases their delivery runs under (store/subscriptions.go).
func testSubscriptions(t *testing.T, open opener) {
	t.Run("RoundTrip", func(t *testing.T) { testSubscriptionRoundTrip(t, open) })
	t.Run("Owners", func(t *testing.T) { testSubscriptionOwners(t, open) })
	t.Run("Update", func(t *testing.T) { testSubscriptionUpdate(t, open) })
	t.Run("Delete", func(t *testing.T) { testSubscriptionDelete(t, open) })
	t.Run("Matching", func(t *testing.T) { testSubscriptionMatching(t, open) })
	t.Run("EventRanges", func(t *testing.T) { testSubscriptionEventRanges(t, open) })
	t.Run("ClaimDue", func(t *testing.T) { testClaimDue(t, open) })
	t.Run("ClaimHeartbeat", func(t *testing.T) { testClaimHeartbeat(t, open) })
	t.Run("ClaimOrder", func(t *testing.T) { testClaimOrder(t, open) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open) })
	t.Run("RecordDelivery", func(t *testing.T) { testRecordDelivery(t, open) })
	t.Run("Backlog", func(t *testing.T) { testSubscriptionBacklog(t, open) })
	t.Run("Retention", func(t *testing.T) { testSubscriptionRetention(t, open) })
	t.Run("Refusals", func(t *testing.T) { testSubscriptionRefusals(t, open) })
	t.Run("ConcurrentClaims", func(t *testing.T) { s := open(t); testConcurrentClaims(t, s, s) })
	t.Run("ConcurrentMatching", func(t *testing.T) { s := open(t); testConcurrentMatching(t, s, s) })
}

// laSystem is the case-management system of the i-th Trust LA.
func laSystem(i int) cpis.Actor {
	l := la(i)
	return cpis.Actor{Kind: cpis.LASystem, UserID: "client-" + l.Code, Name: "Case management system",
		OrgCode: l.Code, OrgName: l.Name}
}

// trustSystem is a Trust's interface engine, every field of its actor set.
func trustSystem() cpis.Actor {
	return cpis.Actor{Kind: cpis.HealthSystem, UserID: "trust-engine", Name: "Interface engine",
		RoleProfileID: "555021935108", RoleCode: "S8001:G8005:R8000", RoleName: "System",
		OrgCode: "ZZT01", OrgName: "Test Trust", Activities: []string{cpis.ActivityScheduledView, "B0172"}}
}

// asnSubscription is owner's subscription to its LA's ASNs, created at at.
func asnSubscription(owner cpis.Actor, at time.Time) cpis.Subscription {
	return cpis.Subscription{ID: uuid.NewString(), Owner: owner, Topic: cpis.TopicASN, LACode: owner.OrgCode,
		Endpoint: "https://receiver.example.org/hook", Content: cpis.ContentIDOnly, Status: cpis.SubRequested,
		Timeout: 5 * time.Second, MaxCount: 100, Created: at, Updated: at}
}

// planSubscription is owner's subscription to nhs's plans (of laCode
// only, unless it is ""), created at at.
func planSubscription(owner cpis.Actor, laCode string, nhs cpis.NHSNumber, at time.Time) cpis.Subscription {
	s := asnSubscription(owner, at)
	s.Topic, s.LACode, s.NHSNumber, s.Content = cpis.TopicPlanChange, laCode, nhs, cpis.ContentFullResource
	return s
}

// subscribe stores sub, failing the test on an error. The subscription is
// deleted when the test ends, so that a backend reusing its database for
// the next test (the PostgreSQL suite's schema pool) starts it empty.
func subscribe(tb testing.TB, ctx context.Context, s store.Store, sub cpis.Subscription) store.SubscriptionRecord {
	tb.Helper()
	r, err := s.CreateSubscription(ctx, sub)
	if err != nil {
		tb.Fatalf("CreateSubscription: %v", err)
	}
	tb.Cleanup(func() { s.DeleteSubscription(context.WithoutCancel(ctx), sub.ID) })
	return r
}

// subscription reads subscription id, failing the test on an error.
func subscription(tb testing.TB, ctx context.Context, s store.Store, id string) store.SubscriptionRecord {
	tb.Helper()
	r, err := s.Subscription(ctx, id)
	if err != nil {
		tb.Fatalf("Subscription: %v", err)
	}
	return r
}

// wantRecord compares subscription records whole, and checks their
// instants are in UTC.
func wantRecord(tb testing.TB, what string, got, want store.SubscriptionRecord) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
	for name, at := range map[string]time.Time{"Created": got.Created, "Updated": got.Updated, "End": got.End,
		"NextAttempt": got.State.NextAttempt, "FailingSince": got.State.FailingSince, "LastSent": got.State.LastSent} {
		if !at.IsZero() {
			wantUTC(tb, what+"."+name, at)
		}
	}
}

// fresh is the record CreateSubscription returns for sub with the log's
// head at head.
func fresh(sub cpis.Subscription, head int64) store.SubscriptionRecord {
	return store.SubscriptionRecord{Subscription: sub,
		State: store.DeliveryState{StartPosition: head, Scanned: head, NextAttempt: sub.Created}}
}

// logHead is the position of the log's newest event, 0 for an empty log.
func logHead(tb testing.TB, ctx context.Context, s store.Store) int64 {
	tb.Helper()
	log := eventLog(tb, ctx, s)
	if len(log) == 0 {
		return 0
	}
	return log[len(log)-1].Position
}

// sendASNs sends, at at, an ASN about nhs to each of laCodes, whatever
// was sent before.
func sendASNs(tb testing.TB, ctx context.Context, s store.Store, nhs cpis.NHSNumber, at time.Time, laCodes ...string) {
	tb.Helper()
	appendAudit(tb, ctx, s, inWindow(unscheduledAccess(nhs, "RXX01", at, laCodes...), 0))
}

// match runs MatchSubscriptionEvents, failing the test on an error.
func match(tb testing.TB, ctx context.Context, s store.Store, id string, limit int) store.DeliveryState {
	tb.Helper()
	st, err := s.MatchSubscriptionEvents(ctx, id, limit)
	if err != nil {
		tb.Fatalf("MatchSubscriptionEvents: %v", err)
	}
	return st
}

// wantMatched checks how far matching has numbered and scanned.
func wantMatched(tb testing.TB, what string, st store.DeliveryState, numbered, scanned int64) {
	tb.Helper()
	if st.Numbered != numbered || st.Scanned != scanned {
		tb.Errorf("%s: numbered %d, scanned to %d; want %d, %d", what, st.Numbered, st.Scanned, numbered, scanned)
	}
}

// numbered returns the subscription's events numbered from..until.
func numbered(tb testing.TB, ctx context.Context, s store.Store, id string, from, until int64, limit int) []store.SubscriptionEvent {
	tb.Helper()
	evs, err := s.SubscriptionEvents(ctx, id, from, until, limit)
	if err != nil {
		tb.Fatalf("SubscriptionEvents: %v", err)
	}
	return evs
}

// numberedAs returns events numbered from first on, in order.
func numberedAs(first int64, events ...store.Event) []store.SubscriptionEvent {
	out := make([]store.SubscriptionEvent, len(events))
	for i, e := range events {
		out[i] = store.SubscriptionEvent{Number: first + int64(i), Event: e}
	}
	return out
}

// wantNumbered checks the subscription's whole numbering: events, whole,
// numbered 1, 2, ...
func wantNumbered(tb testing.TB, ctx context.Context, s store.Store, id string, events ...store.Event) {
	tb.Helper()
	got := numbered(tb, ctx, s, id, 1, 1<<40, 1000)
	if diff := cmp.Diff(numberedAs(1, events...), got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("the numbering of %s mismatch (-want +got):\n%s", id, diff)
	}
}

// testSubscriptionRoundTrip: every field is stored as given, with a fresh
// delivery state at the log's head.
func testSubscriptionRoundTrip(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
	sendASNs(t, ctx, s, nhsNumber(t, 2), second(2), la(0).Code)
	head := logHead(t, ctx, s)

	full := planSubscription(trustSystem(), la(1).Code, nhsNumber(t, 1), second(3))
	full.Headers = []string{"Authorization: Bearer abc", "X-Tenant: 42"}
	full.Status, full.Error, full.Reason = cpis.SubError, "no answer", "the EPR's safeguarding alert"
	full.HeartbeatPeriod, full.Timeout, full.MaxCount = 90*time.Second+time.Microsecond, 7*time.Second, 25
	full.End, full.Updated = second(86400), second(4)
	// And one with every field that may be empty left so.
	bare := cpis.Subscription{ID: uuid.NewString(), Owner: cpis.Actor{Kind: cpis.LASystem, UserID: "c", OrgCode: la(0).Code},
		Topic: cpis.TopicASN, LACode: la(0).Code, Endpoint: "https://r.example.org", Content: cpis.ContentEmpty,
		Status: cpis.SubRequested, Created: second(5), Updated: second(5)}
	for _, sub := range []cpis.Subscription{full, bare} {
		wantRecord(t, "CreateSubscription", subscribe(t, ctx, s, sub), fresh(sub, head))
		wantRecord(t, "Subscription", subscription(t, ctx, s, sub.ID), fresh(sub, head))
	}

	taken := asnSubscription(laSystem(2), second(6))
	taken.ID = full.ID
	_, err := s.CreateSubscription(ctx, taken)
	wantKind(t, "CreateSubscription with a taken id", err, cpis.Conflict)
	wantRecord(t, "Subscription after the refusal", subscription(t, ctx, s, full.ID), fresh(full, head))
}

// testSubscriptionOwners: SubscriptionsOf returns the owner's only, oldest
// first, ties by id.
func testSubscriptionOwners(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	o := laSystem(0)
	colleague := o
	colleague.UserID = "another-client"
	mk := func(id string, owner cpis.Actor, at time.Time) cpis.Subscription {
		sub := asnSubscription(owner, at)
		sub.ID = id
		subscribe(t, ctx, s, sub)
		return sub
	}
	later := mk("a-later", o, second(3))
	tie2 := mk("tie-2", o, second(2))
	earliest := mk("z-earliest", o, second(1))
	tie1 := mk("tie-1", o, second(2))
	other := mk("other-la", laSystem(1), second(1))
	same := mk("same-org", colleague, second(1))
	trust := mk("trust", trustSystem(), second(1))

	tests := []struct {
		owner store.Owner
		want  []cpis.Subscription
	}{
		{store.OwnerOf(later), []cpis.Subscription{earliest, tie1, tie2, later}},
		{store.OwnerOf(other), []cpis.Subscription{other}},
		{store.OwnerOf(same), []cpis.Subscription{same}},
		{store.OwnerOf(trust), []cpis.Subscription{trust}},
		{store.Owner{OrgCode: "ZZZ99", ClientID: o.UserID}, nil},
	}
	for _, tt := range tests {
		got, err := s.SubscriptionsOf(ctx, tt.owner)
		if err != nil {
			t.Fatalf("SubscriptionsOf(%v): %v", tt.owner, err)
		}
		var want []store.SubscriptionRecord
		for _, sub := range tt.want {
			want = append(want, fresh(sub, 0))
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("SubscriptionsOf(%v) mismatch (-want +got):\n%s", tt.owner, diff)
		}
	}
}

// delivering leases sub's delivery at now, failing the test unless it is
// the one subscription claimed, and returns the lease.
func delivering(tb testing.TB, ctx context.Context, s store.Store, id string, now time.Time) string {
	tb.Helper()
	lease := uuid.NewString()
	recs, err := s.ClaimSubscriptions(ctx, store.Claim{Lease: lease, Now: now, For: time.Minute, Limit: 10})
	if err != nil {
		tb.Fatalf("ClaimSubscriptions: %v", err)
	}
	if len(recs) != 1 || recs[0].ID != id {
		tb.Fatalf("ClaimSubscriptions at %v claimed %v, want %s", now, ids(recs), id)
	}
	return lease
}

// record runs RecordDelivery, failing the test on an error.
func record(tb testing.TB, ctx context.Context, s store.Store, id string, p store.Progress) {
	tb.Helper()
	if err := s.RecordDelivery(ctx, id, p); err != nil {
		tb.Fatalf("RecordDelivery: %v", err)
	}
}

// claimAll claims the n subscriptions due at now, and records for each
// what progress says, releasing its lease.
func claimAll(tb testing.TB, ctx context.Context, s store.Store, now time.Time, n int, progress func(store.SubscriptionRecord) store.Progress) {
	tb.Helper()
	lease := uuid.NewString()
	recs, err := s.ClaimSubscriptions(ctx, store.Claim{Lease: lease, Now: now, For: time.Minute, Limit: 100})
	if err != nil || len(recs) != n {
		tb.Fatalf("ClaimSubscriptions at %v = %v, %v; want %d", now, ids(recs), err, n)
	}
	for _, r := range recs {
		p := progress(r)
		p.Lease, p.Now = lease, now
		record(tb, ctx, s, r.ID, p)
	}
}

// ids are the ids of recs, in order.
func ids(recs []store.SubscriptionRecord) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// testSubscriptionUpdate: an update replaces what the owner may change
// and keeps the rest; Resume also clears the failures and makes it due.
func testSubscriptionUpdate(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	sendASNs(t, ctx, s, nhsNumber(t, 1), second(2), la(0).Code)
	sendASNs(t, ctx, s, nhsNumber(t, 2), second(3), la(0).Code)
	match(t, ctx, s, sub.ID, 10)
	lease := delivering(t, ctx, s, sub.ID, second(4))
	record(t, ctx, s, sub.ID, store.Progress{Lease: lease, Now: second(4), State: store.DeliveryState{
		Delivered: 1, Handshake: true, Failures: 2, FailingSince: second(4), NextAttempt: second(8),
		LastSent: second(4), LastError: "HTTP 503"}})
	before := subscription(t, ctx, s, sub.ID)

	changed := sub.Subscription
	changed.Endpoint, changed.Headers, changed.Content = "https://other.example.org/h", []string{"Authorization: Basic eA=="}, cpis.ContentEmpty
	changed.Status, changed.Error, changed.Reason = cpis.SubOff, "", "paused"
	changed.HeartbeatPeriod, changed.Timeout, changed.MaxCount = time.Hour, 3*time.Second, 10
	changed.End, changed.Updated = second(1000), second(20)
	// What the owner may not change is kept, whatever the change says.
	sent := changed
	sent.Owner, sent.Topic, sent.LACode, sent.NHSNumber, sent.Created = laSystem(1), cpis.TopicPlanChange, la(1).Code, nhsNumber(t, 5), second(99)
	got, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: sent})
	if err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	want := store.SubscriptionRecord{Subscription: changed, State: before.State}
	wantRecord(t, "UpdateSubscription", got, want)
	wantRecord(t, "Subscription after the update", subscription(t, ctx, s, sub.ID), want)

	resumed := changed
	resumed.Status, resumed.Headers, resumed.End, resumed.Updated = cpis.SubActive, nil, time.Time{}, second(30)
	got, err = s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: resumed, Resume: true})
	if err != nil {
		t.Fatalf("UpdateSubscription resuming: %v", err)
	}
	want = store.SubscriptionRecord{Subscription: resumed, State: before.State}
	want.State.Failures, want.State.FailingSince, want.State.LastError = 0, time.Time{}, ""
	want.State.NextAttempt, want.State.Handshake = second(30), false
	wantRecord(t, "UpdateSubscription resuming", got, want)

	got, err = s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: resumed, Resume: true, Handshake: true})
	if err != nil || !got.State.Handshake {
		t.Errorf("UpdateSubscription resuming without a handshake: handshake %v, %v; want true", got.State.Handshake, err)
	}
	missing := resumed
	missing.ID = uuid.NewString()
	_, err = s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: missing})
	wantKind(t, "UpdateSubscription of no subscription", err, cpis.NotFound)
}

// testSubscriptionDelete: a deleted subscription is gone with its
// numbering; the others' stays.
func testSubscriptionDelete(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	gone := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	kept := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	sendASNs(t, ctx, s, nhsNumber(t, 1), second(2), la(0).Code)
	match(t, ctx, s, gone.ID, 10)
	match(t, ctx, s, kept.ID, 10)
	log := eventLog(t, ctx, s)

	if err := s.DeleteSubscription(ctx, gone.ID); err != nil {
		t.Fatalf("DeleteSubscription: %v", err)
	}
	_, err := s.Subscription(ctx, gone.ID)
	wantKind(t, "Subscription once deleted", err, cpis.NotFound)
	wantKind(t, "DeleteSubscription again", s.DeleteSubscription(ctx, gone.ID), cpis.NotFound)
	wantNumbered(t, ctx, s, gone.ID)
	wantNumbered(t, ctx, s, kept.ID, log...)
	_, err = s.MatchSubscriptionEvents(ctx, gone.ID, 10)
	wantKind(t, "MatchSubscriptionEvents once deleted", err, cpis.NotFound)

	// A new subscription with its id numbers from 1 again.
	again := gone.Subscription
	again.Created, again.Updated = second(3), second(3)
	subscribe(t, ctx, s, again)
	sendASNs(t, ctx, s, nhsNumber(t, 2), second(4), la(0).Code)
	wantMatched(t, "the new subscription", match(t, ctx, s, again.ID, 10), 1, logHead(t, ctx, s))
	wantNumbered(t, ctx, s, again.ID, eventLog(t, ctx, s)[1])
}

// testSubscriptionMatching: each subscription numbers the events of its
// topic committed after it was created, in order, each once, across calls
// of any limit, whatever its status.
func testSubscriptionMatching(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	x, y := nhsNumber(t, 1), nhsNumber(t, 2)
	// Events before the subscriptions are never theirs.
	px := create(t, ctx, s, newPlan(x, la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(1)))
	sendASNs(t, ctx, s, x, second(2), la(0).Code)
	asns := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(3)))               // the first LA's ASNs
	plansOfX := subscribe(t, ctx, s, planSubscription(trustSystem(), "", x, second(3))) // every LA's plans on x
	ofLA := subscribe(t, ctx, s, planSubscription(laSystem(1), la(1).Code, x, second(3)))
	plansOfY := subscribe(t, ctx, s, planSubscription(trustSystem(), "", y, second(3)))
	start := len(eventLog(t, ctx, s))

	px2 := update(t, ctx, s, next(px, second(4), nil), 1)                                 // 0: x, first LA
	sendASNs(t, ctx, s, x, second(5), la(0).Code, la(1).Code)                             // 1, 2: to the first LA, to the second
	create(t, ctx, s, newPlan(y, la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(6))) // 3: y
	create(t, ctx, s, newPlan(x, la(1), cpis.CLA, "2025-01-01", "2025-12-31", second(7))) // 4: x, second LA
	sendASNs(t, ctx, s, y, second(8), la(0).Code)                                         // 5: to the first LA
	update(t, ctx, s, next(px2, second(9), nil), 2)                                       // 6: x, first LA
	log := eventLog(t, ctx, s)
	e, head := log[start:], log[len(log)-1].Position

	// A limit of 1: a call numbers one event and scans to it; the call that
	// finds none left scans to the head.
	wantMatched(t, "ASNs, call 1", match(t, ctx, s, asns.ID, 1), 1, e[1].Position)
	wantMatched(t, "ASNs, call 2", match(t, ctx, s, asns.ID, 1), 2, e[5].Position)
	wantMatched(t, "ASNs, call 3", match(t, ctx, s, asns.ID, 1), 2, head)
	wantMatched(t, "ASNs, call 4", match(t, ctx, s, asns.ID, 1), 2, head)
	wantMatched(t, "x's plans, call 1", match(t, ctx, s, plansOfX.ID, 2), 2, e[4].Position)
	wantMatched(t, "x's plans, call 2", match(t, ctx, s, plansOfX.ID, 2), 3, head)
	wantMatched(t, "x's plans of an LA", match(t, ctx, s, ofLA.ID, 1000), 1, head)
	wantMatched(t, "y's plans", match(t, ctx, s, plansOfY.ID, 1000), 1, head)
	wantNumbered(t, ctx, s, asns.ID, e[1], e[5])
	wantNumbered(t, ctx, s, plansOfX.ID, e[0], e[4], e[6])
	wantNumbered(t, ctx, s, ofLA.ID, e[4])
	wantNumbered(t, ctx, s, plansOfY.ID, e[3])
	st := subscription(t, ctx, s, asns.ID).State
	if st.StartPosition != log[start-1].Position || st.Delivered != 0 {
		t.Errorf("after matching, start %d and delivered %d; want %d and 0", st.StartPosition, st.Delivered, log[start-1].Position)
	}

	// What commits after a scan, the next numbers, even once off.
	off := plansOfY.Subscription
	off.Status, off.Updated = cpis.SubOff, second(10)
	if _, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: off}); err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	sendASNs(t, ctx, s, x, second(11), la(0).Code)
	create(t, ctx, s, newPlan(y, la(1), cpis.CPP, "2025-01-01", "2025-12-31", second(12)))
	log = eventLog(t, ctx, s)
	head = log[len(log)-1].Position
	wantMatched(t, "ASNs after more commits", match(t, ctx, s, asns.ID, 1000), 3, head)
	wantMatched(t, "y's plans, off", match(t, ctx, s, plansOfY.ID, 1000), 2, head)
	wantNumbered(t, ctx, s, asns.ID, e[1], e[5], log[len(log)-2])
	wantNumbered(t, ctx, s, plansOfY.ID, e[3], log[len(log)-1])
}

// testSubscriptionEventRanges: SubscriptionEvents returns the numbers
// asked for, in order, up to the limit.
func testSubscriptionEventRanges(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(0)))
	for i := range 5 {
		sendASNs(t, ctx, s, nhsNumber(t, i), second(i+1), la(0).Code)
	}
	match(t, ctx, s, sub.ID, 1000)
	log := eventLog(t, ctx, s)
	tests := []struct {
		from, until int64
		limit       int
		want        []store.SubscriptionEvent
	}{
		{1, 5, 1000, numberedAs(1, log...)},
		{2, 4, 1000, numberedAs(2, log[1:4]...)},
		{2, 100, 2, numberedAs(2, log[1:3]...)},
		{0, 1, 10, numberedAs(1, log[0])},
		{5, 5, 1, numberedAs(5, log[4])},
		{4, 2, 10, nil},
		{6, 9, 10, nil},
	}
	for _, tt := range tests {
		got := numbered(t, ctx, s, sub.ID, tt.from, tt.until, tt.limit)
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("SubscriptionEvents(%d, %d, %d) mismatch (-want +got):\n%s", tt.from, tt.until, tt.limit, diff)
		}
	}
	if got := numbered(t, ctx, s, uuid.NewString(), 1, 10, 10); len(got) != 0 {
		t.Errorf("SubscriptionEvents of no subscription = %v, want none", got)
	}
}

// dueAt returns the ids of the subscriptions due at now, oldest attempt
// first, leaving them as they were: it claims them, then releases each
// lease writing back the state the claim read.
func dueAt(tb testing.TB, ctx context.Context, s store.Store, now time.Time) []string {
	tb.Helper()
	lease := uuid.NewString()
	recs, err := s.ClaimSubscriptions(ctx, store.Claim{Lease: lease, Now: now, For: time.Minute, Limit: 100})
	if err != nil {
		tb.Fatalf("ClaimSubscriptions: %v", err)
	}
	for _, r := range recs {
		record(tb, ctx, s, r.ID, store.Progress{Lease: lease, Now: now, State: r.State})
	}
	return ids(recs)
}

// wantDue checks which subscriptions are due at now.
func wantDue(tb testing.TB, ctx context.Context, s store.Store, what string, now time.Time, want ...string) {
	tb.Helper()
	if want == nil {
		want = []string{}
	}
	if diff := cmp.Diff(want, dueAt(tb, ctx, s, now)); diff != "" {
		tb.Errorf("%s: due at %v mismatch (-want +got):\n%s", what, now, diff)
	}
}

// settled is st once every event numbered is delivered,
// without failures, attempted at at.
func settled(st store.DeliveryState, at time.Time) store.DeliveryState {
	st.Delivered, st.Handshake, st.Failures, st.FailingSince = st.Numbered, true, 0, time.Time{}
	st.NextAttempt, st.LastSent, st.LastError = at, at, ""
	return st
}

// testClaimDue: a subscription is due while it is requested or active, its
// next attempt has come, and it has something to send or to scan.
func testClaimDue(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(10))).ID
	wantDue(t, ctx, s, "before its creation", second(9))
	wantDue(t, ctx, s, "its handshake", second(10), sub)
	deliver := func(now time.Time, p store.Progress) {
		t.Helper()
		p.Lease, p.Now = delivering(t, ctx, s, sub, now), now
		record(t, ctx, s, sub, p)
	}
	deliver(second(10), store.Progress{State: settled(subscription(t, ctx, s, sub).State, second(10)), Status: cpis.SubActive})
	wantDue(t, ctx, s, "with nothing to do", second(100))

	sendASNs(t, ctx, s, nhsNumber(t, 1), second(11), la(1).Code)
	wantDue(t, ctx, s, "the log moved on, with none of its events", second(100))

	sendASNs(t, ctx, s, nhsNumber(t, 2), second(12), la(0).Code)
	wantDue(t, ctx, s, "one of its events committed after its scan", second(100), sub)
	match(t, ctx, s, sub, 10)
	wantDue(t, ctx, s, "an event not delivered", second(100), sub)
	failed := subscription(t, ctx, s, sub).State
	failed.Failures, failed.FailingSince, failed.NextAttempt, failed.LastError = 1, second(100), second(200), "HTTP 500"
	deliver(second(100), store.Progress{State: failed})
	wantDue(t, ctx, s, "before the next attempt", second(199))
	wantDue(t, ctx, s, "at the next attempt", second(200), sub)

	deliver(second(200), store.Progress{State: failed, Status: cpis.SubError, Error: "retries ran out"})
	wantDue(t, ctx, s, "in error", second(300))
	resumed := subscription(t, ctx, s, sub).Subscription
	resumed.Status, resumed.Updated = cpis.SubActive, second(400)
	if _, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: resumed, Resume: true, Handshake: true}); err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	wantDue(t, ctx, s, "resumed, before the time of resumption", second(399))
	wantDue(t, ctx, s, "resumed", second(400), sub)
	deliver(second(400), store.Progress{State: settled(subscription(t, ctx, s, sub).State, second(400))})
	wantDue(t, ctx, s, "delivered", second(500))

	sendASNs(t, ctx, s, nhsNumber(t, 3), second(501), la(0).Code)
	off := resumed
	off.Status, off.Updated = cpis.SubOff, second(502)
	if _, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: off}); err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	match(t, ctx, s, sub, 10)
	wantDue(t, ctx, s, "off, an event not delivered", second(600))
}

// testClaimHeartbeat: with a heartbeat period, a subscription with nothing
// to send is due a period after its last notification, or its creation.
func testClaimHeartbeat(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	quiet := asnSubscription(laSystem(0), second(10))
	quiet.HeartbeatPeriod = time.Minute
	id := subscribe(t, ctx, s, quiet).ID
	subscribe(t, ctx, s, asnSubscription(laSystem(1), second(10))) // without a heartbeat
	// Both handshakes acknowledged, but nothing sent since their creation.
	claimAll(t, ctx, s, second(10), 2, func(r store.SubscriptionRecord) store.Progress {
		r.State.Handshake = true
		return store.Progress{State: r.State}
	})
	wantDue(t, ctx, s, "a period after its creation, less a microsecond", second(70).Add(-time.Microsecond))
	wantDue(t, ctx, s, "a period after its creation", second(70), id)
	st := settled(subscription(t, ctx, s, id).State, second(100))
	record(t, ctx, s, id, store.Progress{Lease: delivering(t, ctx, s, id, second(100)), Now: second(100), State: st})
	wantDue(t, ctx, s, "within a period of the last notification", second(159))
	wantDue(t, ctx, s, "a period after the last notification", second(160), id)
}

// testClaimOrder: claims take the earliest attempts first, ties by id, at
// most the limit.
func testClaimOrder(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	var want []string
	for i, at := range []int{5, 3, 1, 4, 2, 3} {
		sub := asnSubscription(laSystem(0), second(at))
		sub.ID = fmt.Sprintf("sub-%d-%d", at, i)
		subscribe(t, ctx, s, sub)
		want = append(want, sub.ID)
	}
	slices.Sort(want) // by time, then by i
	var got []string
	for range 3 {
		recs, err := s.ClaimSubscriptions(ctx, store.Claim{Lease: uuid.NewString(), Now: second(10), For: time.Minute, Limit: 4})
		if err != nil {
			t.Fatalf("ClaimSubscriptions: %v", err)
		}
		if len(recs) > 4 {
			t.Errorf("a claim of at most 4 leased %d", len(recs))
		}
		got = append(got, ids(recs)...)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the claims' order mismatch (-want +got):\n%s", diff)
	}
}

// testLeases: a lease keeps other claimers off until it expires, and only
// its holder may record; a record extends or releases it.
func testLeases(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	first := delivering(t, ctx, s, sub.ID, second(1)) // until second(61)
	wantDue(t, ctx, s, "leased", second(60))
	taken := delivering(t, ctx, s, sub.ID, second(62))
	before := subscription(t, ctx, s, sub.ID)
	stale := store.Progress{Lease: first, Now: second(63), State: settled(before.State, second(63)), Status: cpis.SubActive}
	wantKind(t, "RecordDelivery with an expired lease taken since", s.RecordDelivery(ctx, sub.ID, stale), cpis.Conflict)
	wantRecord(t, "Subscription after the refusal", subscription(t, ctx, s, sub.ID), before)

	// Extended to second(64) + 30 s.
	record(t, ctx, s, sub.ID, store.Progress{Lease: taken, Now: second(64), For: 30 * time.Second, State: before.State})
	wantDue(t, ctx, s, "the extended lease", second(93))
	third := delivering(t, ctx, s, sub.ID, second(95))
	record(t, ctx, s, sub.ID, store.Progress{Lease: third, Now: second(95), State: before.State})
	wantDue(t, ctx, s, "released", second(95), sub.ID)

	// The owner's change ends the lease: the holder may not go on with the
	// subscription as it was, and the next claim takes it at once.
	fourth := delivering(t, ctx, s, sub.ID, second(96))
	changed := subscription(t, ctx, s, sub.ID).Subscription
	changed.Endpoint, changed.Updated = "https://elsewhere.example.org/hook", second(97)
	if _, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: changed}); err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	after := store.Progress{Lease: fourth, Now: second(98), For: time.Minute, State: before.State}
	wantKind(t, "RecordDelivery under a lease the owner's change ended", s.RecordDelivery(ctx, sub.ID, after), cpis.Conflict)
	wantDue(t, ctx, s, "changed while leased", second(98), sub.ID)
}

// testRecordDelivery: the state is written as given but Delivered, which
// never decreases; a status applies only to a requested or active
// subscription.
func testRecordDelivery(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	for i := range 3 {
		sendASNs(t, ctx, s, nhsNumber(t, i), second(2+i), la(0).Code)
	}
	matched := match(t, ctx, s, sub.ID, 10)
	lease := delivering(t, ctx, s, sub.ID, second(5))
	write := func(what string, p store.Progress, status cpis.SubscriptionStatus, errText string, st store.DeliveryState) {
		t.Helper()
		p.Lease, p.Now, p.For = lease, second(6), time.Minute
		record(t, ctx, s, sub.ID, p)
		want := sub
		want.Status, want.Error, want.State = status, errText, st
		wantRecord(t, what, subscription(t, ctx, s, sub.ID), want)
	}
	acked := matched
	acked.Delivered, acked.Handshake, acked.NextAttempt, acked.LastSent = 2, true, second(7), second(6)
	write("acknowledged", store.Progress{State: acked, Status: cpis.SubActive}, cpis.SubActive, "", acked)

	failing := acked
	failing.Delivered, failing.Failures, failing.FailingSince, failing.NextAttempt, failing.LastError = 1, 2, second(6), second(9), "HTTP 503"
	kept := failing
	kept.Delivered = 2
	write("failing, with a smaller Delivered", store.Progress{State: failing}, cpis.SubActive, "", kept)
	write("retries ran out", store.Progress{State: failing, Status: cpis.SubError, Error: "no answer"}, cpis.SubError, "no answer", kept)
	write("active again, by the deliverer", store.Progress{State: acked, Status: cpis.SubActive}, cpis.SubError, "no answer", acked)

	// The owner's off stands.
	off := subscribe(t, ctx, s, asnSubscription(laSystem(1), second(10)))
	offLease := delivering(t, ctx, s, off.ID, second(10))
	stopped := off.Subscription
	stopped.Status, stopped.Updated = cpis.SubOff, second(11)
	if _, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: stopped}); err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	st := settled(off.State, second(12))
	err := s.RecordDelivery(ctx, off.ID, store.Progress{Lease: offLease, Now: second(12), State: st, Status: cpis.SubActive})
	wantKind(t, "RecordDelivery after the owner's off", err, cpis.Conflict)
	if got := subscription(t, ctx, s, off.ID); got.Status != cpis.SubOff {
		t.Errorf("the deliverer undid the owner's off: %s", got.Status)
	}

	err = s.RecordDelivery(ctx, uuid.NewString(), store.Progress{Lease: lease, Now: second(6), State: acked})
	wantKind(t, "RecordDelivery of no subscription", err, cpis.NotFound)
	err = s.RecordDelivery(ctx, sub.ID, store.Progress{Lease: uuid.NewString(), Now: second(6), State: acked})
	wantKind(t, "RecordDelivery with another lease", err, cpis.Conflict)
}

// testSubscriptionBacklog: the events numbered and not delivered, per
// topic, of the subscriptions that are not off.
func testSubscriptionBacklog(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	backlog := func(want map[cpis.Topic]int64) {
		t.Helper()
		got, err := s.SubscriptionBacklog(ctx)
		if err != nil {
			t.Fatalf("SubscriptionBacklog: %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("SubscriptionBacklog mismatch (-want +got):\n%s", diff)
		}
	}
	backlog(map[cpis.Topic]int64{cpis.TopicASN: 0, cpis.TopicPlanChange: 0})
	x := nhsNumber(t, 1)
	active := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	off := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	failed := subscribe(t, ctx, s, planSubscription(trustSystem(), "", x, second(1)))
	done := subscribe(t, ctx, s, planSubscription(laSystem(0), la(0).Code, x, second(1)))
	for i := range 3 {
		sendASNs(t, ctx, s, nhsNumber(t, 10+i), second(2+i), la(0).Code)
	}
	p := create(t, ctx, s, newPlan(x, la(0), cpis.CPP, "2025-01-01", "2025-12-31", second(5)))
	update(t, ctx, s, next(p, second(6), nil), 1)
	for _, sub := range []store.SubscriptionRecord{active, off, failed, done} {
		match(t, ctx, s, sub.ID, 100)
	}
	claimAll(t, ctx, s, second(7), 4, func(r store.SubscriptionRecord) store.Progress {
		switch r.ID {
		case active.ID:
			r.State.Delivered = 1
		case failed.ID:
			return store.Progress{State: r.State, Status: cpis.SubError, Error: "no answer"}
		case done.ID:
			r.State.Delivered = 2
		}
		return store.Progress{State: r.State}
	})
	stopped := off.Subscription
	stopped.Status = cpis.SubOff
	if _, err := s.UpdateSubscription(ctx, store.SubscriptionChange{Subscription: stopped}); err != nil {
		t.Fatalf("UpdateSubscription: %v", err)
	}
	backlog(map[cpis.Topic]int64{cpis.TopicASN: 2, cpis.TopicPlanChange: 2})
}

// testSubscriptionRetention: retention removes the numbers of the events
// it removes; the numbering goes on from where it was.
func testSubscriptionRetention(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(0)))
	for i := range 4 {
		sendASNs(t, ctx, s, nhsNumber(t, i), second(i+1), la(0).Code)
	}
	match(t, ctx, s, sub.ID, 1000)
	log := eventLog(t, ctx, s)
	if n, err := s.DeleteEventsBefore(ctx, second(3)); err != nil || n != 2 {
		t.Fatalf("DeleteEventsBefore = %d, %v; want 2", n, err)
	}
	if diff := cmp.Diff(numberedAs(3, log[2:]...), numbered(t, ctx, s, sub.ID, 1, 100, 100)); diff != "" {
		t.Errorf("the numbering after retention mismatch (-want +got):\n%s", diff)
	}
	sendASNs(t, ctx, s, nhsNumber(t, 5), second(5), la(0).Code)
	wantMatched(t, "after retention", match(t, ctx, s, sub.ID, 1000), 5, logHead(t, ctx, s))
	log = eventLog(t, ctx, s)
	if diff := cmp.Diff(numberedAs(3, log...), numbered(t, ctx, s, sub.ID, 1, 100, 100)); diff != "" {
		t.Errorf("the numbering after a later event mismatch (-want +got):\n%s", diff)
	}
	if n, err := s.DeleteEventsBefore(ctx, second(60)); err != nil || n != 3 {
		t.Fatalf("DeleteEventsBefore = %d, %v; want 3", n, err)
	}
	wantNumbered(t, ctx, s, sub.ID)
	if st := subscription(t, ctx, s, sub.ID).State; st.Numbered != 5 {
		t.Errorf("numbered %d after retention, want 5", st.Numbered)
	}
}

// testSubscriptionRefusals: what a store cannot run is Invalid; a
// subscription that does not exist is NotFound.
func testSubscriptionRefusals(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	sub := subscribe(t, ctx, s, asnSubscription(laSystem(0), second(1)))
	noID := asnSubscription(laSystem(0), second(1))
	noID.ID = ""
	_, err := s.CreateSubscription(ctx, noID)
	wantKind(t, "CreateSubscription without an id", err, cpis.Invalid)
	for _, limit := range []int{0, -1, 1001} {
		_, err := s.MatchSubscriptionEvents(ctx, sub.ID, limit)
		wantKind(t, fmt.Sprintf("MatchSubscriptionEvents limit %d", limit), err, cpis.Invalid)
		_, err = s.SubscriptionEvents(ctx, sub.ID, 1, 10, limit)
		wantKind(t, fmt.Sprintf("SubscriptionEvents limit %d", limit), err, cpis.Invalid)
	}
	good := store.Claim{Lease: "l", Now: second(1), For: time.Minute, Limit: 10}
	for name, change := range map[string]func(*store.Claim){
		"no lease": func(c *store.Claim) { c.Lease = "" }, "no clock": func(c *store.Claim) { c.Now = time.Time{} },
		"no length": func(c *store.Claim) { c.For = 0 }, "no limit": func(c *store.Claim) { c.Limit = 0 },
		"over the limit": func(c *store.Claim) { c.Limit = 1001 },
	} {
		c := good
		change(&c)
		_, err := s.ClaimSubscriptions(ctx, c)
		wantKind(t, "ClaimSubscriptions with "+name, err, cpis.Invalid)
	}
	_, err = s.Subscription(ctx, uuid.NewString())
	wantKind(t, "Subscription of none", err, cpis.NotFound)
	_, err = s.MatchSubscriptionEvents(ctx, uuid.NewString(), 10)
	wantKind(t, "MatchSubscriptionEvents of none", err, cpis.NotFound)
	wantKind(t, "DeleteSubscription of none", s.DeleteSubscription(ctx, uuid.NewString()), cpis.NotFound)
	wantRecord(t, "the subscription after the refusals", subscription(t, ctx, s, sub.ID), sub)
}

// testConcurrentClaims has claimers lease subscriptions at once, through
// a and b: each subscription is leased once, and all are.
func testConcurrentClaims(t *testing.T, a, b store.Store) {
	const subs, claimers, limit = 20, 8, 3
	ctx := t.Context()
	for i := range subs {
		subscribe(t, ctx, []store.Store{a, b}[i%2], asnSubscription(laSystem(i%6), second(1)))
	}
	var mu sync.Mutex
	leases := map[string]string{}
	var wg sync.WaitGroup
	for i := range claimers {
		s := []store.Store{a, b}[i%2]
		wg.Go(func() {
			// Each claim but the last leases one more at least: more
			// claims than subscriptions means one was leased again.
			for range subs + 1 {
				lease := uuid.NewString()
				recs, err := s.ClaimSubscriptions(ctx, store.Claim{Lease: lease, Now: second(2), For: time.Hour, Limit: limit})
				if err != nil {
					t.Errorf("ClaimSubscriptions: %v", err)
					return
				}
				if len(recs) == 0 {
					return
				}
				mu.Lock()
				for _, r := range recs {
					if held, ok := leases[r.ID]; ok {
						t.Errorf("subscription %s leased to %s and %s", r.ID, held, lease)
					}
					leases[r.ID] = lease
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(leases) != subs {
		t.Errorf("%d subscriptions were leased, want %d", len(leases), subs)
	}
}

// testConcurrentMatching has matchers number one subscription's events at
// once, through a and b: every event is numbered once, in order.
func testConcurrentMatching(t *testing.T, a, b store.Store) {
	const events, matchers = 12, 6
	ctx := t.Context()
	sub := subscribe(t, ctx, a, asnSubscription(laSystem(0), second(0)))
	for i := range events {
		sendASNs(t, ctx, []store.Store{a, b}[i%2], nhsNumber(t, i), second(i+1), la(0).Code)
	}
	var wg sync.WaitGroup
	for i := range matchers {
		s := []store.Store{a, b}[i%2]
		wg.Go(func() {
			for range events {
				if _, err := s.MatchSubscriptionEvents(ctx, sub.ID, 1); err != nil {
					t.Errorf("MatchSubscriptionEvents: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	wantNumbered(t, ctx, a, sub.ID, eventLog(t, ctx, a)...)
	if st := subscription(t, ctx, b, sub.ID).State; st.Numbered != events {
		t.Errorf("numbered %d, want %d", st.Numbered, events)
	}
}
