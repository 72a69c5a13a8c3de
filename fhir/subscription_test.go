package fhir

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/profiles"
)

// planSubscription is a Trust's plan-change subscription as stored.
func planSubscription() cpis.Subscription {
	return cpis.Subscription{
		ID:              "8d2f3a10-6b1c-4c1e-9f00-5a4b3c2d1e01",
		Owner:           cpis.Actor{Kind: cpis.HealthSystem, UserID: "trust-system", OrgCode: "ZZT01"},
		Topic:           cpis.TopicPlanChange,
		NHSNumber:       "9990276579",
		Endpoint:        "https://epr.trust.test/fhir/notify",
		Headers:         []string{"Authorization: Bearer s3cret-token", "X-Trust-Route: cpis"},
		Content:         cpis.ContentFullResource,
		Status:          cpis.SubActive,
		Reason:          "Keep the EPR's safeguarding alert current for a child open to our services",
		HeartbeatPeriod: time.Hour,
		Timeout:         10 * time.Second,
		MaxCount:        20,
		End:             time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC),
		Created:         time.Date(2026, 11, 15, 9, 0, 0, 0, time.UTC),
		Updated:         time.Date(2026, 11, 15, 9, 0, 0, 0, time.UTC),
	}
}

// asnSubscription is an LA's ASN subscription, in error.
func asnSubscription() cpis.Subscription {
	return cpis.Subscription{
		ID:       "8d2f3a10-6b1c-4c1e-9f00-5a4b3c2d1e02",
		Owner:    cpis.Actor{Kind: cpis.LASystem, UserID: "la-zla01-casework", OrgCode: "ZLA01"},
		Topic:    cpis.TopicASN,
		LACode:   "ZLA01",
		Endpoint: "https://casework.hackney.test/cpis/asn",
		Headers:  []string{"Authorization: Basic c2VjcmV0"},
		Content:  cpis.ContentIDOnly,
		Status:   cpis.SubError,
		Error:    "the endpoint answered 503 for 24 hours",
		Reason:   "Access to Service Notifications for the duty team",
		Timeout:  5 * time.Second,
		MaxCount: cpis.DefaultMaxCount,
		Updated:  time.Date(2026, 11, 16, 10, 15, 30, 0, time.UTC),
	}
}

// subscriptionGoldens are the subscriptions and notifications whose JSON is
// pinned in testdata/.
func subscriptionGoldens() map[string]proto.Message {
	m := map[string]proto.Message{
		"subscription-plan-change.json": SubscriptionResource(planSubscription()),
		"subscription-asn.json":         SubscriptionResource(asnSubscription()),
	}
	for name, n := range goldenNotifications() {
		m[name] = NotificationBundle(n)
	}
	m["subscription-status.json"] = StatusBundle(testBase, []Notification{
		{Subscription: asnSubscription(), Status: cpis.SubError, EventsSinceStart: 12, Error: asnSubscription().Error},
	})
	return m
}

// TestSubscriptionGolden pins the JSON of subscriptions, notifications and
// $status, and checks each with jsonformat's validating R4 reader.
func TestSubscriptionGolden(t *testing.T) {
	validator, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range subscriptionGoldens() {
		t.Run(name, func(t *testing.T) {
			b, err := MarshalResource(r)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := validator.Unmarshal(b); err != nil {
				t.Errorf("our output is not valid FHIR R4: %v", err)
			}
			compareGolden(t, filepath.Join("testdata", name), indent(t, b))
		})
	}
}

// TestSubscriptionHeadersMasked: no header value ever leaves the server.
func TestSubscriptionHeadersMasked(t *testing.T) {
	s := planSubscription()
	b, err := MarshalResource(SubscriptionResource(s))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-token", "Bearer", ": cpis"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the rendered subscription contains %q", secret)
		}
	}
	var got struct {
		Channel struct{ Header []string } `json:"channel"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := []string{"Authorization: ***", "X-Trust-Route: ***"}
	if diff := cmp.Diff(want, got.Channel.Header); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

// TestSubscriptionRoundTrip: what SubscriptionResource writes,
// ParseSubscription reads back, headers masked.
func TestSubscriptionRoundTrip(t *testing.T) {
	noLA := planSubscription()
	noLA.LACode = "" // a health system's: the register sets an LA system's from its token
	noFilter := asnSubscription()
	noFilter.LACode, noFilter.Status, noFilter.HeartbeatPeriod = "", cpis.SubRequested, 0
	empty := asnSubscription()
	empty.Content, empty.Headers, empty.End = cpis.ContentEmpty, nil, time.Date(2027, 1, 2, 3, 4, 5, 678901000, time.UTC)
	for name, s := range map[string]cpis.Subscription{"plan-change": noLA, "asn": asnSubscription(), "asn unfiltered": noFilter, "empty": empty} {
		t.Run(name, func(t *testing.T) {
			got := roundTripSubscription(t, s)
			want := s
			for i, h := range want.Headers {
				want.Headers[i] = MaskHeader(h)
			}
			ignore := cmpopts.IgnoreFields(cpis.Subscription{}, "Owner", "Error", "Created", "Updated")
			if diff := cmp.Diff(want, got, ignore, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

// roundTripSubscription renders s and parses it back.
func roundTripSubscription(tb testing.TB, s cpis.Subscription) cpis.Subscription {
	tb.Helper()
	b, err := MarshalResource(SubscriptionResource(s))
	if err != nil {
		tb.Fatal(err)
	}
	got, err := ParseSubscription(b)
	if err != nil {
		tb.Fatalf("ParseSubscription(SubscriptionResource(s)): %v", err)
	}
	return got
}

// minimalSubscription is the smallest subscription a client may send, as a
// generic JSON object, for tests to break one rule at a time.
func minimalSubscription() map[string]any {
	return map[string]any{
		"resourceType": "Subscription",
		"status":       "requested",
		"reason":       "Watch a child open to our services",
		"criteria":     string(cpis.TopicPlanChange),
		"_criteria": map[string]any{"extension": []any{map[string]any{
			"url": filterCriteriaURL, "valueString": "Flag?patient:identifier=" + NHSNumberSystem + "|9990276579",
		}}},
		"channel": map[string]any{
			"type":     "rest-hook",
			"endpoint": "https://epr.trust.test/fhir/notify",
			"payload":  "application/fhir+json",
			"_payload": map[string]any{"extension": []any{map[string]any{"url": payloadContentURL, "valueCode": "id-only"}}},
		},
	}
}

func TestParseSubscriptionDefaults(t *testing.T) {
	got, err := ParseSubscription(mustJSON(t, minimalSubscription()))
	if err != nil {
		t.Fatal(err)
	}
	want := cpis.Subscription{
		Topic: cpis.TopicPlanChange, NHSNumber: "9990276579", Endpoint: "https://epr.trust.test/fhir/notify",
		Content: cpis.ContentIDOnly, Status: cpis.SubRequested, Reason: "Watch a child open to our services",
		Timeout: cpis.DefaultDeliveryTimeout, MaxCount: cpis.DefaultMaxCount,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestParseSubscriptionFilters: the forms each topic's filter is read in.
func TestParseSubscriptionFilters(t *testing.T) {
	tests := []struct {
		name, topic, filter string
		nhs                 cpis.NHSNumber
		la                  string
	}{
		{"plan-change", string(cpis.TopicPlanChange), "Flag?patient:identifier=" + NHSNumberSystem + "|9990276579", "9990276579", ""},
		{"plan-change, URL-encoded", string(cpis.TopicPlanChange), "Flag?patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990276579", "9990276579", ""},
		{"ASN, recipient:identifier", string(cpis.TopicASN), "Communication?recipient:identifier=" + ODSSystem + "|ZLA01", "", "ZLA01"},
		{"ASN, recipient", string(cpis.TopicASN), "Communication?recipient=" + ODSSystem + "|ZLA02", "", "ZLA02"},
		{"ASN, no filter", string(cpis.TopicASN), "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := minimalSubscription()
			m["criteria"] = tt.topic
			if tt.filter == "" {
				delete(m, "_criteria")
			} else {
				setFilters(m, tt.filter)
			}
			got, err := ParseSubscription(mustJSON(t, m))
			if err != nil {
				t.Fatal(err)
			}
			if got.NHSNumber != tt.nhs || got.LACode != tt.la || string(got.Topic) != tt.topic {
				t.Errorf("got topic %s, NHS number %q, LA %q; want %s, %q, %q", got.Topic, got.NHSNumber, got.LACode, tt.topic, tt.nhs, tt.la)
			}
		})
	}
}

func setFilters(m map[string]any, filters ...string) {
	var exts []any
	for _, f := range filters {
		exts = append(exts, map[string]any{"url": filterCriteriaURL, "valueString": f})
	}
	m["_criteria"] = map[string]any{"extension": exts}
}

// channel returns the channel object of a minimalSubscription.
func channel(m map[string]any) map[string]any { return m["channel"].(map[string]any) }

func channelExt(url, valueKey string, value any) map[string]any {
	return map[string]any{"url": url, valueKey: value}
}

// TestParseSubscriptionRefusals breaks each rule once and checks the
// problem's kind and expression.
func TestParseSubscriptionRefusals(t *testing.T) {
	const nhsForm = "Flag?patient:identifier=" + NHSNumberSystem + "|"
	tests := []struct {
		name   string
		change func(m map[string]any)
		want   []problem
	}{
		{"another profile only", func(m map[string]any) {
			m["meta"] = map[string]any{"profile": []any{"http://example.org/StructureDefinition/other"}}
		}, []problem{{cpis.Invalid, "Subscription.meta.profile"}}},
		{"no status", func(m map[string]any) { delete(m, "status") }, []problem{{cpis.Invalid, "Subscription.status"}}},
		{"no reason", func(m map[string]any) { delete(m, "reason") }, []problem{{cpis.Invalid, "Subscription.reason"}}},
		{"reason too long", func(m map[string]any) { m["reason"] = strings.Repeat("x", MaxSubscriptionReason+1) }, []problem{{cpis.Invalid, "Subscription.reason"}}},
		{"reason with a control character", func(m map[string]any) { m["reason"] = "a\u0007b" }, []problem{{cpis.Invalid, "Subscription.reason"}}},
		{"unknown topic", func(m map[string]any) {
			m["criteria"] = "https://cpis.example.org/fhir/SubscriptionTopic/nope"
		}, []problem{{cpis.Invalid, "Subscription.criteria"}}},
		{"R4 query criteria", func(m map[string]any) {
			m["criteria"] = "Flag?patient=9990276579"
			delete(m, "_criteria")
		}, []problem{{cpis.Invalid, "Subscription.criteria"}}},
		{"plan-change without a filter", func(m map[string]any) { delete(m, "_criteria") }, []problem{{cpis.Invalid, filterExpr}}},
		{"plan-change with two filters", func(m map[string]any) { setFilters(m, nhsForm+"9990276579", nhsForm+"9992345675") },
			[]problem{{cpis.Invalid, filterExpr}}},
		{"invalid NHS number", func(m map[string]any) { setFilters(m, nhsForm+"9990276578") }, []problem{{cpis.InvalidNHSNumber, filterExpr}}},
		{"NHS number without its system", func(m map[string]any) { setFilters(m, "Flag?patient:identifier=9990276579") }, []problem{{cpis.Invalid, filterExpr}}},
		{"patient without :identifier", func(m map[string]any) { setFilters(m, "Flag?patient="+NHSNumberSystem+"|9990276579") }, []problem{{cpis.Invalid, filterExpr}}},
		{"patient.identifier spelling", func(m map[string]any) { setFilters(m, "Flag?patient.identifier="+NHSNumberSystem+"|9990276579") }, []problem{{cpis.Invalid, filterExpr}}},
		{"another filter parameter", func(m map[string]any) { setFilters(m, "Flag?code=CPP") }, []problem{{cpis.Invalid, filterExpr}}},
		{"two parameters in one filter", func(m map[string]any) { setFilters(m, nhsForm+"9990276579&code=CPP") }, []problem{{cpis.Invalid, filterExpr}}},
		{"a filter on another resource", func(m map[string]any) { setFilters(m, "Patient?identifier="+NHSNumberSystem+"|9990276579") }, []problem{{cpis.Invalid, filterExpr}}},
		{"a filter without a resource", func(m map[string]any) { setFilters(m, "patient:identifier="+NHSNumberSystem+"|9990276579") }, []problem{{cpis.Invalid, filterExpr}}},
		{"a filter that is not a string", func(m map[string]any) {
			m["_criteria"] = map[string]any{"extension": []any{map[string]any{"url": filterCriteriaURL, "valueCode": "x"}}}
		}, []problem{{cpis.Invalid, filterExpr}, {cpis.Invalid, "Subscription.criteria.extension[0].valueCode"}}},
		{"another extension on criteria", func(m map[string]any) {
			m["_criteria"] = map[string]any{"extension": []any{map[string]any{"url": "http://example.org/x", "valueString": "x"}}}
		}, []problem{{cpis.Invalid, "Subscription.criteria.extension"}}},
		{"ASN filtered by patient", func(m map[string]any) { m["criteria"] = string(cpis.TopicASN) }, []problem{{cpis.Invalid, filterExpr}}},
		{"ASN recipient not an ODS code", func(m map[string]any) {
			m["criteria"] = string(cpis.TopicASN)
			setFilters(m, "Communication?recipient:identifier="+ODSSystem+"|zla 01")
		}, []problem{{cpis.Invalid, filterExpr}}},
		{"ASN recipient without its system", func(m map[string]any) {
			m["criteria"] = string(cpis.TopicASN)
			setFilters(m, "Communication?recipient=ZLA01")
		}, []problem{{cpis.Invalid, filterExpr}}},
		{"ASN with two filters", func(m map[string]any) {
			m["criteria"] = string(cpis.TopicASN)
			setFilters(m, "Communication?recipient="+ODSSystem+"|ZLA01", "Communication?recipient="+ODSSystem+"|ZLA02")
		}, []problem{{cpis.Invalid, filterExpr}}},
		{"no channel", func(m map[string]any) { delete(m, "channel") }, []problem{{cpis.Invalid, "Subscription.channel"}}},
		{"websocket channel", func(m map[string]any) { channel(m)["type"] = "websocket" }, []problem{{cpis.Invalid, "Subscription.channel.type"}}},
		{"custom channel type", func(m map[string]any) {
			channel(m)["_type"] = map[string]any{"extension": []any{map[string]any{
				"url": BackportBase + "/StructureDefinition/backport-channel-type", "valueCoding": map[string]any{"code": "zulip"}}}}
		}, []problem{{cpis.Invalid, "Subscription.channel.type"}, {cpis.Invalid, "Subscription.channel.type.extension"}}},
		{"no endpoint", func(m map[string]any) { delete(channel(m), "endpoint") }, []problem{{cpis.Invalid, "Subscription.channel.endpoint"}}},
		{"no payload", func(m map[string]any) { delete(channel(m), "payload"); delete(channel(m), "_payload") },
			[]problem{{cpis.Invalid, "Subscription.channel.payload"}, {cpis.Invalid, contentExpr}}},
		{"XML payload", func(m map[string]any) { channel(m)["payload"] = "application/fhir+xml" }, []problem{{cpis.Invalid, "Subscription.channel.payload"}}},
		{"no content", func(m map[string]any) { delete(channel(m), "_payload") }, []problem{{cpis.Invalid, contentExpr}}},
		{"unknown content", func(m map[string]any) {
			channel(m)["_payload"] = map[string]any{"extension": []any{map[string]any{"url": payloadContentURL, "valueCode": "everything"}}}
		}, []problem{{cpis.Invalid, contentExpr}}},
		{"two contents", func(m map[string]any) {
			c := map[string]any{"url": payloadContentURL, "valueCode": "empty"}
			channel(m)["_payload"] = map[string]any{"extension": []any{c, c}}
		}, []problem{{cpis.Invalid, contentExpr}}},
		{"heartbeat as a string", func(m map[string]any) {
			channel(m)["extension"] = []any{channelExt(heartbeatPeriodURL, "valueString", "60")}
		}, []problem{{cpis.Invalid, heartbeatExpr}, {cpis.Invalid, "Subscription.channel.extension[0].valueString"}}},
		{"timeout 0", func(m map[string]any) { channel(m)["extension"] = []any{channelExt(timeoutURL, "valueUnsignedInt", 0)} },
			[]problem{{cpis.Invalid, timeoutExpr}}},
		{"timeout twice", func(m map[string]any) {
			channel(m)["extension"] = []any{channelExt(timeoutURL, "valueUnsignedInt", 5), channelExt(timeoutURL, "valueUnsignedInt", 6)}
		}, []problem{{cpis.Invalid, timeoutExpr}}},
		{"max-count as unsignedInt", func(m map[string]any) {
			channel(m)["extension"] = []any{channelExt(maxCountURL, "valueUnsignedInt", 5)}
		}, []problem{{cpis.Invalid, maxCountExpr}}},
		{"another channel extension", func(m map[string]any) {
			channel(m)["extension"] = []any{channelExt("http://example.org/x", "valueUnsignedInt", 5)}
		}, []problem{{cpis.Invalid, "Subscription.channel.extension"}}},
		{"contact", func(m map[string]any) {
			m["contact"] = []any{map[string]any{"system": "phone", "value": "020 7946 0000"}}
		}, []problem{{cpis.Invalid, "Subscription.contact"}}},
		{"narrative", func(m map[string]any) {
			m["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">x</div>`}
		}, []problem{{cpis.Invalid, "Subscription.text"}}},
		{"meta.tag", func(m map[string]any) { m["meta"] = map[string]any{"tag": []any{map[string]any{"code": "x"}}} },
			[]problem{{cpis.Invalid, "Subscription.meta.tag"}}},
		{"modifier extension", func(m map[string]any) {
			m["modifierExtension"] = []any{map[string]any{"url": "http://example.org/x", "valueBoolean": true}}
		}, []problem{{cpis.Invalid, "Subscription.modifierExtension"}}},
		{"unknown element", func(m map[string]any) { m["topic"] = "x" }, []problem{{cpis.Invalid, "Subscription.topic"}}},
		{"end not an instant", func(m map[string]any) { m["end"] = "2027-01-01" }, []problem{{cpis.Invalid, "Subscription.end"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := minimalSubscription()
			tt.change(m)
			s, err := ParseSubscription(mustJSON(t, m))
			if err == nil {
				t.Fatalf("accepted: %+v", s)
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s\n%v", diff, err)
			}
			if s.Topic != "" || s.Endpoint != "" {
				t.Errorf("a refused subscription came back non-zero: %+v", s)
			}
		})
	}
}

// TestParseSubscriptionEnvelope: bodies that are not a Subscription at all.
func TestParseSubscriptionEnvelope(t *testing.T) {
	for name, body := range map[string]string{
		"empty": "", "not JSON": "{", "an array": "[]", "no resourceType": `{"status":"active"}`,
		"a Flag": `{"resourceType":"Flag"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSubscription([]byte(body))
			var ce *cpis.Error
			if !errors.As(err, &ce) || ce.Kind != cpis.Invalid || !strings.HasPrefix(ce.Expression, "Subscription") {
				t.Errorf("got %v, want an Invalid problem at Subscription", err)
			}
		})
	}
}

// TestParseSubscriptionNeverEchoes: values from the body never reach a message.
func TestParseSubscriptionNeverEchoes(t *testing.T) {
	m := minimalSubscription()
	setFilters(m, "Flag?patient:identifier="+NHSNumberSystem+"|9990276578")
	m["criteria"] = "https://secret.example/9990276578"
	channel(m)["type"] = "9990276578"
	_, err := ParseSubscription(mustJSON(t, m))
	if err == nil || strings.Contains(err.Error(), "9990276578") || strings.Contains(err.Error(), "secret.example") {
		t.Errorf("got %v", err)
	}
}

func TestMaskedHeaders(t *testing.T) {
	stored := []string{"Authorization: Bearer abc", "X-Route: blue"}
	for h, want := range map[string]bool{"A: ***": true, "A:***": true, "A: *** ": true, "A: **": false, ": ***": false, "***": false, "A: x***": false} {
		if MaskedHeader(h) != want {
			t.Errorf("MaskedHeader(%q) = %v", h, !want)
		}
	}
	for _, h := range stored {
		if !MaskedHeader(MaskHeader(h)) {
			t.Errorf("MaskHeader(%q) = %q is not masked", h, MaskHeader(h))
		}
	}
}

// TestTopicsServed: each topic is a Basic in profiles/, under its id, with
// its canonical URL, triggers and filters as ParseSubscription reads them.
func TestTopicsServed(t *testing.T) {
	validator, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	want := map[cpis.Topic]struct{ resource, filter string }{
		cpis.TopicASN:        {"Communication", recipientFilter},
		cpis.TopicPlanChange: {"Flag", patientFilter},
	}
	for _, topic := range cpis.Topics() {
		t.Run(TopicID(topic), func(t *testing.T) {
			b, ok := profiles.Lookup("Basic", TopicID(topic))
			if !ok {
				t.Fatal("not in profiles/")
			}
			if _, err := validator.Unmarshal(b); err != nil {
				t.Errorf("not valid FHIR R4: %v", err)
			}
			if !definedURLs()[string(topic)] {
				t.Errorf("profiles.All() does not list %s", topic)
			}
			got := readTopic(t, b)
			w := want[topic]
			if got.url != string(topic) || got.trigger != "http://hl7.org/fhir/StructureDefinition/"+w.resource ||
				got.filterResource != w.resource || got.filter != w.filter || got.status != "active" {
				t.Errorf("topic reads %+v, want url %s, resource %s, filter %s", got, topic, w.resource, w.filter)
			}
		})
	}
}

// topicFacts is what TestTopicsServed reads of a Basic topic.
type topicFacts struct{ url, status, trigger, filterResource, filter string }

func readTopic(tb testing.TB, b []byte) topicFacts {
	tb.Helper()
	type ext struct {
		URL         string `json:"url"`
		ValueURI    string `json:"valueUri"`
		ValueCode   string `json:"valueCode"`
		ValueString string `json:"valueString"`
		Extension   []ext  `json:"extension"`
	}
	var basic struct {
		Extension, ModifierExtension []ext
	}
	if err := json.Unmarshal(b, &basic); err != nil {
		tb.Fatal(err)
	}
	const xver = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."
	sub := func(e ext, name string) (vals []string) {
		for _, s := range e.Extension {
			if s.URL == name {
				vals = append(vals, s.ValueURI+s.ValueCode+s.ValueString)
			}
		}
		return vals
	}
	var f topicFacts
	for _, e := range basic.ModifierExtension {
		if e.URL == xver+"status" {
			f.status = e.ValueCode
		}
	}
	for _, e := range basic.Extension {
		switch e.URL {
		case xver + "url":
			f.url = e.ValueURI
		case xver + "resourceTrigger":
			f.trigger = strings.Join(sub(e, "resource"), ",")
		case xver + "canFilterBy":
			f.filterResource = strings.Join(sub(e, "resource"), ",")
			f.filter = strings.Join(sub(e, "filterParameter"), ",") + ":" + strings.Join(sub(e, "modifier"), ",")
		}
	}
	return f
}

// TestCapabilitySubscriptions: the statement lists the topics, the
// profile and the IG's operations on Subscription, and Basic for reading
// the topics.
func TestCapabilitySubscriptions(t *testing.T) {
	b, err := MarshalResource(CapabilityStatement(testBase, "1", Security{}))
	if err != nil {
		t.Fatal(err)
	}
	type resource struct {
		Type      string `json:"type"`
		Extension []struct {
			URL            string `json:"url"`
			ValueCanonical string `json:"valueCanonical"`
		} `json:"extension"`
		SupportedProfile []string `json:"supportedProfile"`
		Interaction      []struct{ Code string }
		Operation        []struct{ Name, Definition string }
	}
	var cs struct {
		Rest []struct{ Resource []resource }
	}
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	byType := map[string]resource{}
	for _, r := range cs.Rest[0].Resource {
		byType[r.Type] = r
	}
	sub := byType["Subscription"]
	var topics []string
	for _, e := range sub.Extension {
		if e.URL == TopicCanonicalURL {
			topics = append(topics, e.ValueCanonical)
		}
	}
	if diff := cmp.Diff([]string{string(cpis.TopicASN), string(cpis.TopicPlanChange)}, topics); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{BackportSubscriptionProfile}, sub.SupportedProfile); diff != "" {
		t.Errorf("supportedProfile (-want +got):\n%s", diff)
	}
	wantOps := []struct{ Name, Definition string }{{"status", StatusOperationURL}, {"events", EventsOperationURL}}
	if diff := cmp.Diff(wantOps, sub.Operation); diff != "" {
		t.Errorf("operations (-want +got):\n%s", diff)
	}
	var codes []string
	for _, i := range sub.Interaction {
		codes = append(codes, i.Code)
	}
	if diff := cmp.Diff([]string{"read", "search-type", "create", "update", "delete"}, codes); diff != "" {
		t.Errorf("interactions (-want +got):\n%s", diff)
	}
	if basic, ok := byType["Basic"]; !ok || len(basic.Interaction) != 1 || basic.Interaction[0].Code != "read" {
		t.Errorf("Basic = %+v, want read only", basic)
	}
}
