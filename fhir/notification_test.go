package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// notifiedAt is when the golden notifications are made.
var notifiedAt = time.Date(2026, 11, 15, 14, 3, 9, 500000000, time.UTC)

// planEvents are four plan-change events on one child: a plan created,
// changed and withdrawn (history's versions, oldest first), then another
// plan the subscriber may no longer see.
func planEvents() []NotificationEvent {
	vs := history(storedPlan())
	gone := storedPlan()
	gone.ID = "0d6f1b7e-8a1c-4d4e-b1a3-6c2f9d0e7b12"
	var evs []NotificationEvent
	for i := range vs {
		p := vs[len(vs)-1-i]
		evs = append(evs, NotificationEvent{Number: int64(i + 1), Timestamp: p.LastUpdated, Plan: &p})
	}
	return append(evs, NotificationEvent{Number: 4, Timestamp: notifiedAt.Add(-time.Second), Plan: &gone, Withdrawn: true})
}

// asnEvent is event n of an ASN subscription: sampleASN.
func asnEvent(n int64) NotificationEvent {
	a := sampleASN()
	return NotificationEvent{Number: n, Timestamp: asnStamp, ASN: &a, LastUpdated: asnStamp}
}

func withContent(s cpis.Subscription, c cpis.PayloadContent) cpis.Subscription {
	s.Content = c
	return s
}

// goldenNotifications are the notifications whose JSON is pinned in
// testdata/: each type, and each content level.
func goldenNotifications() map[string]Notification {
	plan, asn := planSubscription(), asnSubscription()
	asn.Status, asn.Error = cpis.SubActive, ""
	n := func(s cpis.Subscription, typ string, status cpis.SubscriptionStatus, since int64, evs ...NotificationEvent) Notification {
		return Notification{BaseURL: testBase, Subscription: s, Type: typ, Status: status, EventsSinceStart: since,
			Events: evs, Timestamp: notifiedAt, Today: today, View: cpis.HealthView}
	}
	return map[string]Notification{
		"notification-handshake.json":           n(plan, NotifyHandshake, cpis.SubRequested, 0),
		"notification-heartbeat.json":           n(asn, NotifyHeartbeat, cpis.SubActive, 12),
		"notification-empty.json":               n(withContent(asn, cpis.ContentEmpty), NotifyEvent, cpis.SubActive, 13, asnEvent(13)),
		"notification-id-only.json":             n(asn, NotifyEvent, cpis.SubActive, 13, asnEvent(13)),
		"notification-full-resource.json":       n(plan, NotifyEvent, cpis.SubActive, 4, planEvents()...),
		"notification-full-resource-asn.json":   n(withContent(asn, cpis.ContentFullResource), NotifyEvent, cpis.SubActive, 13, asnEvent(13)),
		"notification-query-event-id-only.json": n(withContent(plan, cpis.ContentIDOnly), NotifyQueryEvent, cpis.SubActive, 4, planEvents()[1:3]...),
	}
}

// bundleJSON is what the tests read of a notification Bundle.
type bundleJSON struct {
	Type  string `json:"type"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Request  struct{ Method, URL string }
		Response struct{ Status string }
	} `json:"entry"`
}

// paramsJSON is the status Parameters of a notification.
type paramsJSON struct {
	ResourceType string `json:"resourceType"`
	Parameter    []struct {
		Name                 string
		ValueString          string `json:"valueString"`
		ValueCode            string `json:"valueCode"`
		ValueCanonical       string `json:"valueCanonical"`
		ValueReference       struct{ Reference string }
		ValueCodeableConcept struct{ Text string }
		Part                 []struct {
			Name           string
			ValueString    string `json:"valueString"`
			ValueInstant   string `json:"valueInstant"`
			ValueReference struct{ Reference string }
		}
	} `json:"parameter"`
}

func renderNotification(tb testing.TB, n Notification) (bundleJSON, paramsJSON) {
	tb.Helper()
	b, err := MarshalResource(NotificationBundle(n))
	if err != nil {
		tb.Fatal(err)
	}
	var bj bundleJSON
	if err := json.Unmarshal(b, &bj); err != nil {
		tb.Fatal(err)
	}
	var pj paramsJSON
	if len(bj.Entry) == 0 || json.Unmarshal(bj.Entry[0].Resource, &pj) != nil {
		tb.Fatalf("no status entry in %s", b)
	}
	return bj, pj
}

// summary is a notification as the tests compare it: the status
// parameters (paramSummary), then the other entries as "METHOD url fullUrl".
func summary(bj bundleJSON, pj paramsJSON) []string {
	out := paramSummary(pj)
	for _, e := range bj.Entry[1:] {
		line := e.Request.Method + " " + e.Request.URL + " " + e.FullURL
		if len(e.Resource) == 0 {
			line += " (no resource)"
		}
		out = append(out, line)
	}
	return out
}

// paramSummary is the status parameters by name, "name=value", a
// notification-event as "notification-event=/number/focus".
func paramSummary(pj paramsJSON) []string {
	var out []string
	for _, p := range pj.Parameter {
		v := p.ValueString + p.ValueCode + p.ValueCanonical + p.ValueReference.Reference + p.ValueCodeableConcept.Text
		for _, part := range p.Part {
			if part.Name != "timestamp" {
				v += "/" + part.ValueString + part.ValueReference.Reference
			}
		}
		out = append(out, p.Name+"="+v)
	}
	return out
}

// TestNotificationContent: what each content level carries.
func TestNotificationContent(t *testing.T) {
	sub := testBase + "/Subscription/" + asnSubscription().ID
	comm := testBase + "/Communication/" + sampleASN().ID
	asn := asnSubscription()
	asn.Status = cpis.SubActive
	tests := []struct {
		content cpis.PayloadContent
		want    []string
	}{
		{cpis.ContentEmpty, []string{"subscription=" + sub, "status=active", "type=event-notification",
			"events-since-subscription-start=7", "notification-event=/6", "notification-event=/7"}},
		{cpis.ContentIDOnly, []string{"subscription=" + sub, "topic=" + string(cpis.TopicASN), "status=active", "type=event-notification",
			"events-since-subscription-start=7", "notification-event=/6/" + comm, "notification-event=/7/" + comm}},
		{cpis.ContentFullResource, []string{"subscription=" + sub, "topic=" + string(cpis.TopicASN), "status=active", "type=event-notification",
			"events-since-subscription-start=7", "notification-event=/6/" + comm, "notification-event=/7/" + comm,
			"POST Communication " + comm, "POST Communication " + comm}},
	}
	for _, tt := range tests {
		t.Run(string(tt.content), func(t *testing.T) {
			n := Notification{BaseURL: testBase, Subscription: withContent(asn, tt.content), Type: NotifyEvent,
				Status: cpis.SubActive, EventsSinceStart: 7, Events: []NotificationEvent{asnEvent(6), asnEvent(7)}}
			bj, pj := renderNotification(t, n)
			if bj.Type != "history" || pj.ResourceType != "Parameters" {
				t.Errorf("Bundle type %s, first entry %s; want history, Parameters", bj.Type, pj.ResourceType)
			}
			if diff := cmp.Diff(tt.want, summary(bj, pj)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestNotificationTypes: only event notifications and $events carry
// events; an error status carries its reason.
func TestNotificationTypes(t *testing.T) {
	plan := withContent(planSubscription(), cpis.ContentIDOnly)
	evs := planEvents()[:1]
	flag := testBase + "/Flag/" + storedPlan().ID
	tests := []struct {
		typ    string
		status cpis.SubscriptionStatus
		errMsg string
		want   []string
	}{
		{NotifyHandshake, cpis.SubRequested, "", []string{"status=requested", "type=handshake", "events-since-subscription-start=1"}},
		{NotifyHeartbeat, cpis.SubError, "no answer", []string{"status=error", "type=heartbeat", "events-since-subscription-start=1", "error=no answer"}},
		{NotifyQueryStatus, cpis.SubOff, "ignored unless the status is error", []string{"status=off", "type=query-status", "events-since-subscription-start=1"}},
		{NotifyEvent, cpis.SubActive, "", []string{"status=active", "type=event-notification", "events-since-subscription-start=1", "notification-event=/1/" + flag}},
		{NotifyQueryEvent, cpis.SubError, "down", []string{"status=error", "type=query-event", "events-since-subscription-start=1", "notification-event=/1/" + flag, "error=down"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			n := Notification{BaseURL: testBase, Subscription: plan, Type: tt.typ, Status: tt.status,
				EventsSinceStart: 1, Events: evs, Error: tt.errMsg}
			bj, pj := renderNotification(t, n)
			got := summary(bj, pj)[2:] // subscription and topic
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if e := bj.Entry[0]; e.Request.Method != "GET" || e.Request.URL != testBase+"/Subscription/"+plan.ID+"/$status" ||
				e.Response.Status != "200" || !strings.HasPrefix(e.FullURL, "urn:uuid:") {
				t.Errorf("status entry %+v", e)
			}
		})
	}
}

// TestNotificationFullResourceView: a plan is shown through the
// notification's view, as a read would show it.
func TestNotificationFullResourceView(t *testing.T) {
	p := storedPlan()
	n := Notification{BaseURL: testBase, Subscription: planSubscription(), Type: NotifyEvent, Status: cpis.SubActive,
		EventsSinceStart: 1, Events: []NotificationEvent{{Number: 1, Plan: &p}}, Today: today}
	for view, wantRef := range map[cpis.View]bool{cpis.HealthView: false, cpis.OwnerView: true} {
		n.View = view
		bj, _ := renderNotification(t, n)
		if got := strings.Contains(string(bj.Entry[1].Resource), p.Reference); got != wantRef {
			t.Errorf("view %v: the LA's reference shown %v, want %v", view, got, wantRef)
		}
	}
}

// TestNotificationIDs: a notification's Parameters id names it.
func TestNotificationIDs(t *testing.T) {
	base := Notification{BaseURL: testBase, Subscription: planSubscription(), Type: NotifyHeartbeat, Timestamp: notifiedAt}
	later := base
	later.Timestamp = notifiedAt.Add(time.Millisecond)
	other := base
	other.Subscription.ID = "another"
	event := base
	event.Type, event.Events = NotifyEvent, planEvents()[:1]
	event2 := event
	event2.Events = planEvents()[1:2]
	ids := map[string]string{}
	for name, n := range map[string]Notification{"base": base, "later": later, "other": other, "event": event, "event2": event2} {
		id := StatusParameters(n).GetId().GetValue()
		if prev, dup := ids[id]; dup {
			t.Errorf("%s and %s share the id %s", name, prev, id)
		}
		ids[id] = name
	}
	first, again := StatusParameters(base).GetId().GetValue(), StatusParameters(base).GetId().GetValue()
	if first != again {
		t.Errorf("the same notification got two ids, %s and %s", first, again)
	}
}

func TestStatusBundle(t *testing.T) {
	s1, s2 := planSubscription(), asnSubscription()
	b, err := MarshalResource(StatusBundle(testBase, []Notification{
		{Subscription: s1, Status: s1.Status, EventsSinceStart: 4},
		{BaseURL: "https://ignored.test", Subscription: s2, Status: s2.Status, EventsSinceStart: 9, Error: s2.Error},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var bj struct {
		Type  string
		Total int
		Entry []struct {
			Resource paramsJSON
			Search   struct{ Mode string }
		}
	}
	if err := json.Unmarshal(b, &bj); err != nil {
		t.Fatal(err)
	}
	if bj.Type != "searchset" || bj.Total != 2 || len(bj.Entry) != 2 {
		t.Fatalf("got %s", b)
	}
	var got [][]string
	for _, e := range bj.Entry {
		got = append(got, paramSummary(e.Resource))
		if e.Search.Mode != "match" {
			t.Errorf("search.mode %q", e.Search.Mode)
		}
	}
	want := [][]string{
		{"subscription=" + testBase + "/Subscription/" + s1.ID, "topic=" + string(cpis.TopicPlanChange), "status=active", "type=query-status", "events-since-subscription-start=4"},
		{"subscription=" + testBase + "/Subscription/" + s2.ID, "topic=" + string(cpis.TopicASN), "status=error", "type=query-status", "events-since-subscription-start=9", "error=" + s2.Error},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
