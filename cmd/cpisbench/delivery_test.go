package main

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/fhir/go/jsonformat"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

const testBase = "http://127.0.0.1:8080"

// asnSubscription is an LA's ASN subscription as the server holds it.
func asnSubscription(content cpis.PayloadContent) cpis.Subscription {
	return cpis.Subscription{ID: "sub-1", Topic: cpis.TopicASN, LACode: "ZLB001", Content: content,
		Status: cpis.SubActive, Endpoint: "http://127.0.0.1:9/hook/ZLB001"}
}

// testASN is an ASN with a stamp, numbered n.
func testASN(n int64, stamp time.Time) fhir.NotificationEvent {
	a := cpis.ASN{ID: fmt.Sprint("asn-", n), AuditID: "audit-1", Sent: stamp, NHSNumber: "9990000018", LACode: "ZLB001",
		PlanIDs: []string{"plan-1"}, OrgCode: "ZZT01", OrgName: "Fictional Trust", UserName: "Dr Test", RoleName: "Clinical Practitioner Access Role"}
	return fhir.NotificationEvent{Number: n, Timestamp: stamp, ASN: &a, LastUpdated: stamp}
}

// rendered is notification n as the server sends it.
func rendered(t *testing.T, n fhir.Notification) []byte {
	t.Helper()
	n.BaseURL = testBase
	b, err := fhir.MarshalResource(fhir.NotificationBundle(n))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testUnmarshaller(t *testing.T) *jsonformat.Unmarshaller {
	t.Helper()
	u, err := newUnmarshaller()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestReadNotification reads notifications as the server renders them:
// the type, the count, each event's number and commit stamp, whatever the
// content; without a timestamp, full-resource's Communication gives it.
func TestReadNotification(t *testing.T) {
	u := testUnmarshaller(t)
	t1 := time.Date(2025, 3, 4, 10, 11, 12, 345678000, time.UTC)
	t2 := t1.Add(1500 * time.Microsecond)
	noStamp := testASN(3, t2)
	noStamp.Timestamp = time.Time{}
	tests := []struct {
		name    string
		n       fhir.Notification
		typ     string
		numbers []int64
		stamps  []time.Time
	}{
		{"handshake", fhir.Notification{Subscription: asnSubscription(cpis.ContentFullResource), Type: fhir.NotifyHandshake, Status: cpis.SubActive},
			fhir.NotifyHandshake, nil, nil},
		{"full-resource", fhir.Notification{Subscription: asnSubscription(cpis.ContentFullResource), Type: fhir.NotifyEvent, Status: cpis.SubActive,
			EventsSinceStart: 2, Events: []fhir.NotificationEvent{testASN(1, t1), testASN(2, t2)}},
			fhir.NotifyEvent, []int64{1, 2}, []time.Time{t1, t2}},
		{"id-only", fhir.Notification{Subscription: asnSubscription(cpis.ContentIDOnly), Type: fhir.NotifyEvent, Status: cpis.SubActive,
			EventsSinceStart: 2, Events: []fhir.NotificationEvent{testASN(2, t2)}},
			fhir.NotifyEvent, []int64{2}, []time.Time{t2}},
		{"full-resource, stamp from the Communication", fhir.Notification{Subscription: asnSubscription(cpis.ContentFullResource), Type: fhir.NotifyEvent,
			Status: cpis.SubActive, EventsSinceStart: 3, Events: []fhir.NotificationEvent{noStamp}},
			fhir.NotifyEvent, []int64{3}, []time.Time{t2}},
		{"id-only without a stamp", fhir.Notification{Subscription: asnSubscription(cpis.ContentIDOnly), Type: fhir.NotifyEvent,
			Status: cpis.SubActive, EventsSinceStart: 3, Events: []fhir.NotificationEvent{noStamp}},
			fhir.NotifyEvent, []int64{3}, []time.Time{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readNotification(u, rendered(t, tt.n))
			if err != nil {
				t.Fatal(err)
			}
			if got.typ != tt.typ || got.sinceStart != tt.n.EventsSinceStart {
				t.Errorf("type %q, events since start %d; want %q, %d", got.typ, got.sinceStart, tt.typ, tt.n.EventsSinceStart)
			}
			var numbers []int64
			var stamps []time.Time
			for _, e := range got.events {
				numbers, stamps = append(numbers, e.number), append(stamps, e.stamp)
			}
			if !slices.Equal(numbers, tt.numbers) || !slices.EqualFunc(stamps, tt.stamps, time.Time.Equal) {
				t.Errorf("events %v at %v, want %v at %v", numbers, stamps, tt.numbers, tt.stamps)
			}
		})
	}
}

// TestReadNotificationRefuses: what is not a notification the receiver
// can count is an error, which it answers with 400.
func TestReadNotificationRefuses(t *testing.T) {
	u := testUnmarshaller(t)
	for name, body := range map[string]string{
		"not JSON":      `event 1`,
		"not a Bundle":  `{"resourceType":"Parameters","parameter":[{"name":"type","valueCode":"handshake"}]}`,
		"no entry":      `{"resourceType":"Bundle","type":"history"}`,
		"no Parameters": `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Basic","code":{"text":"x"}}}]}`,
		"no type":       `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"events-since-subscription-start","valueString":"1"}]}}]}`,
		"no event number": `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"type","valueCode":"event-notification"},` +
			`{"name":"notification-event","part":[{"name":"timestamp","valueInstant":"2025-03-04T10:11:12Z"}]}]}}]}`,
		"event number 0": `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"type","valueCode":"event-notification"},` +
			`{"name":"notification-event","part":[{"name":"event-number","valueString":"0"}]}]}}]}`,
		"count not a number": `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"type","valueCode":"heartbeat"},` +
			`{"name":"events-since-subscription-start","valueString":"many"}]}}]}`,
	} {
		if n, err := readNotification(u, []byte(body)); err == nil {
			t.Errorf("%s: read as %+v, want an error", name, n)
		}
	}
}

// TestReadStatus reads events-since-subscription-start from a $status
// answer.
func TestReadStatus(t *testing.T) {
	u := testUnmarshaller(t)
	b := fhir.StatusBundle(testBase, []fhir.Notification{{Subscription: asnSubscription(cpis.ContentFullResource), Status: cpis.SubActive, EventsSinceStart: 1234}})
	body, err := fhir.MarshalResource(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readStatus(u, body)
	if err != nil || got.sinceStart != 1234 || got.typ != fhir.NotifyQueryStatus {
		t.Errorf("readStatus = %+v, %v; want query-status, 1234 events", got, err)
	}
}

// event is a notification of events numbered numbers, all stamped at.
func event(at time.Time, numbers ...int64) notification {
	n := notification{typ: fhir.NotifyEvent}
	for _, k := range numbers {
		n.events = append(n.events, notifiedEvent{number: k, stamp: at})
	}
	return n
}

// TestInbox counts distinct event numbers: a repeat is a duplicate, not
// another event; an event's latency is from its first receipt; the numbers
// must be 1 to the server's count without a gap.
func TestInbox(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	b := newInbox()
	b.add(notification{typ: fhir.NotifyHandshake}, t0)
	b.add(event(t0, 1, 2), t0.Add(100*time.Millisecond))
	b.add(event(t0, 2, 3), t0.Add(300*time.Millisecond)) // 2 again: delivery is at least once
	b.add(notification{typ: fhir.NotifyHeartbeat}, t0.Add(time.Second))
	b.add(event(time.Time{}, 5), t0.Add(400*time.Millisecond))
	if b.handshakes != 1 || len(b.events) != 4 || b.duplicates != 1 || b.unstamped != 1 {
		t.Errorf("handshakes %d, events %d, duplicates %d, unstamped %d; want 1, 4, 1, 1", b.handshakes, len(b.events), b.duplicates, b.unstamped)
	}
	want := []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond}
	if !slices.Equal(b.latencies, want) {
		t.Errorf("latencies %v, want %v", b.latencies, want)
	}
	if !b.last.Equal(t0.Add(400 * time.Millisecond)) {
		t.Errorf("last new event at %v", b.last)
	}
	if b.complete(4) || b.complete(5) {
		t.Error("events 1, 2, 3 and 5 are complete, but 4 is missing")
	}
	b.add(event(t0, 4), t0.Add(time.Second))
	if !b.complete(5) || b.complete(6) || b.complete(4) {
		t.Error("events 1 to 5: complete(5) only")
	}
}

// TestTally adds the inboxes of a round's subscriptions and judges it.
func TestTally(t *testing.T) {
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	rcv := &receiver{state: receiverState{inboxes: map[string]*inbox{}}}
	subs := []subscription{{la: cpis.LocalAuthority{Code: "ZLB001"}}, {la: cpis.LocalAuthority{Code: "ZLB002"}}, {la: cpis.LocalAuthority{Code: "ZLB003"}}}
	rcv.state.inbox("ZLB001").add(event(t0, 1, 2), t0.Add(20*time.Millisecond))
	rcv.state.inbox("ZLB002").add(event(t0, 1), t0.Add(2*time.Second))
	rcv.state.inbox("ZLB002").add(event(t0, 1), t0.Add(3*time.Second))
	if got := rcv.state.received(); got != 3 {
		t.Errorf("received %d, want 3", got)
	}
	d := rcv.tally(subs, map[string]int64{"ZLB001": 2, "ZLB002": 1}, 3, t0.Add(time.Second), true)
	if !d.equal() || d.received != 3 || d.numbered != 3 || d.duplicates != 1 || d.drain != time.Second || len(d.latencies) != 3 {
		t.Errorf("tally = %+v, want 3 of 3, 1 duplicate, drained 1 s after the load: equal", d)
	}
	if p := latencyPercentile(d.latencies, 0.5); p != 20 {
		t.Errorf("p50 %v ms, want 20", p)
	}
	for name, d := range map[string]deliveryRound{
		"one missing":        rcv.tally(subs, map[string]int64{"ZLB001": 2, "ZLB002": 1}, 4, t0, true),
		"numbered more":      rcv.tally(subs, map[string]int64{"ZLB001": 3, "ZLB002": 1}, 3, t0, true),
		"timed out":          rcv.tally(subs, map[string]int64{"ZLB001": 2, "ZLB002": 1}, 3, t0, false),
		"a gap, same counts": rcv.tally(subs, map[string]int64{"ZLB001": 1, "ZLB002": 2}, 3, t0, true),
	} {
		if d.equal() {
			t.Errorf("%s: %+v is equal", name, d)
		}
	}
	rcv.state.refused = 1
	if d := rcv.tally(subs, map[string]int64{"ZLB001": 2, "ZLB002": 1}, 3, t0, true); d.equal() {
		t.Error("a refused notification: equal")
	}
}

func TestLatencyPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct{ q, want float64 }{{0.5, 500}, {0.99, 990}, {1, 1000}, {0, 1}} {
		if got := latencyPercentile(lat, tt.q); got != tt.want {
			t.Errorf("p%v = %v ms, want %v", tt.q*100, got, tt.want)
		}
	}
	if got := latencyPercentile([]time.Duration{7 * time.Millisecond}, 0.99); got != 7 {
		t.Errorf("one latency: p99 %v ms, want 7", got)
	}
	if got := latencyPercentile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("no latency: %v, want NaN", got)
	}
}

// TestSubscriptionBody: the server's parser reads the run's subscription
// as an ASN subscription to the receiver, with its content and header.
func TestSubscriptionBody(t *testing.T) {
	for _, content := range []cpis.PayloadContent{cpis.ContentFullResource, cpis.ContentIDOnly} {
		body, err := subscriptionBody("http://127.0.0.1:9/hook/ZLB001", "s3cret", content)
		if err != nil {
			t.Fatal(err)
		}
		s, err := fhir.ParseSubscription(body)
		if err != nil {
			t.Fatalf("%s: %v\n%s", content, err, body)
		}
		if s.Topic != cpis.TopicASN || s.Endpoint != "http://127.0.0.1:9/hook/ZLB001" || s.Content != content ||
			!slices.Equal(s.Headers, []string{"Authorization: Bearer s3cret"}) || s.Status != cpis.SubRequested || s.LACode != "" {
			t.Errorf("%s: parsed as %+v", content, s)
		}
	}
}

// TestPlanLAs: every LA that owns a plan, once, and no other.
func TestPlanLAs(t *testing.T) {
	d, err := newDataset(1, 300, time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	got := planLAs(d)
	owners := map[string]bool{}
	for _, p := range d.plans {
		owners[p.LA.Code] = true
	}
	if len(got) != len(owners) || len(got) == len(d.las) {
		t.Fatalf("%d LAs, want the %d of %d that own plans", len(got), len(owners), len(d.las))
	}
	for _, la := range got {
		if !owners[la.Code] {
			t.Errorf("%s owns no plan", la.Code)
		}
	}
}

func TestDeliveryConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"delivery only", []string{"--delivery-only", "--delivery-rounds", "4", "--delivery-duration", "5s"}, true},
		{"delivery only, id-only", []string{"--delivery-only", "--delivery-content", "id-only"}, true},
		{"empty content", []string{"--delivery-content", "empty"}, false},
		{"delivery only without delivery", []string{"--delivery-only", "--delivery=false"}, false},
		{"delivery only and ASN only", []string{"--delivery-only", "--asn-only"}, false},
		{"delivery only and upload only", []string{"--delivery-only", "--upload-only"}, false},
		{"no delivery rounds", []string{"--delivery-rounds", "0"}, false},
		{"short delivery runs", []string{"--delivery-duration", "100ms"}, false},
		{"short drain", []string{"--delivery-drain", "10ms"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, func(string) string { return "" })
			if (err == nil) != tt.ok {
				t.Errorf("parseConfig(%q) error = %v, want ok %v", tt.args, err, tt.ok)
			}
		})
	}
	c, err := parseConfig([]string{"--delivery-only"}, func(string) string { return "" })
	if err != nil || !c.delivery || c.asn || c.upload || c.pgbench || !slices.Equal(c.clients, []int{deliveryClients}) || len(c.stores) != 2 {
		t.Errorf("--delivery-only: %+v, %v; want the delivery run and one standard run on each store, nothing else", c, err)
	}
	if c, err := parseConfig([]string{"--asn-only"}, func(string) string { return "" }); err != nil || c.delivery {
		t.Errorf("--asn-only: delivery %v, %v; want no delivery run", c.delivery, err)
	}
}
