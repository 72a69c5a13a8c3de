package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Subscriptions' security (issue 10, 7): where notifications may be sent,
// and who may see or change a subscription.

// refusal is a subscription the server must refuse with 400.
type refusal struct {
	name string
	spec subSpec
	expr string // the expression the OperationOutcome names (prefix)
}

// checkRefusals posts each refused subscription as persona.
func checkRefusals(t *testing.T, ts *testServer, persona string, cases []refusal) {
	t.Helper()
	for _, c := range cases {
		res := ts.as(persona, "POST", "/Subscription", c.spec.JSON(t))
		if res.Status != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400: %s", c.name, res.Status, res.Body)
			continue
		}
		if _, expr := outcome(t, res); !strings.HasPrefix(expr, c.expr) {
			t.Errorf("%s: expression %q, want %s", c.name, expr, c.expr)
		}
	}
	res := ts.as(persona, "GET", "/Subscription", nil)
	mustStatus(t, res, http.StatusOK)
	if n := len(entries(t, res, "Subscription")); n != 0 {
		t.Errorf("%d subscriptions stored after refusals", n)
	}
}

// accepted posts a subscription that must be accepted, then deletes it.
func accepted(t *testing.T, ts *testServer, persona string, s subSpec) {
	t.Helper()
	res := ts.as(persona, "POST", "/Subscription", s.JSON(t))
	if res.Status != http.StatusCreated {
		t.Errorf("%s refused: %d %s", s.endpoint, res.Status, res.Body)
		return
	}
	mustStatus(t, ts.as(persona, "DELETE", "/Subscription/"+res.JSON(t)["id"].(string), nil), http.StatusNoContent)
}

func TestSubscriptionEndpointRefusalsInDevMode(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t)
	asn := func(endpoint string) subSpec {
		return subSpec{topic: asnTopic, endpoint: endpoint, content: "id-only", timeout: 1}
	}
	with := func(s subSpec, f func(*subSpec)) subSpec { f(&s); return s }
	const ep = "Subscription.channel.endpoint"
	checkRefusals(t, ts, la, []refusal{
		{"http to a host that is not loopback", asn("http://example.org/hook"), ep},
		{"http to a private address", asn("http://10.0.0.1/hook"), ep},
		{"http to the metadata service", asn("http://169.254.169.254/latest/meta-data/"), ep},
		{"credentials in the URL", asn("http://user:secret@127.0.0.1:9/hook"), ep},
		{"a user name in an https URL", asn("https://user@example.org/hook"), ep},
		{"not http", asn("ftp://127.0.0.1/hook"), ep},
		{"not absolute", asn("/hook"), ep},
		{"websocket channel", with(asn("https://example.org/hook"), func(s *subSpec) { s.channel = "websocket" }), "Subscription.channel.type"},
		{"email channel", with(asn("https://example.org/hook"), func(s *subSpec) { s.channel = "email" }), "Subscription.channel.type"},
		{"XML payload", with(asn("https://example.org/hook"), func(s *subSpec) { s.payload = "application/fhir+xml" }), "Subscription.channel.payload"},
		{"unknown content", with(asn("https://example.org/hook"), func(s *subSpec) { s.content = "everything" }), "Subscription.channel.payload"},
	})
	// In form, https goes anywhere; plain http only to loopback (dev mode).
	for _, e := range []string{"https://example.org/hook", "https://127.0.0.1:9/hook", "http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://[::1]:9/hook"} {
		accepted(t, ts, la, asn(e))
	}
}

// TestSubscriptionEndpointRefusalsInProduction runs a server trusting an
// external issuer (production mode): https only, and no loopback,
// private, link-local or metadata address unless the host is allowed.
func TestSubscriptionEndpointRefusalsInProduction(t *testing.T) {
	t.Parallel()
	iss := newExternalIssuer(t, (&testClock{now: startDay}).Now)
	ts := newTestServer(t, func(c *Config) {
		c.Issuer, c.Audience, c.LARegisterFile = iss.URL, "cpis", "../../examples/la-register.csv"
		c.Subscriptions.AllowedHosts = []string{"receiver.localhost"}
	})
	ts.mint = func(persona string) string {
		tok, _, err := iss.dev.Token(persona)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	asn := func(endpoint string) subSpec {
		return subSpec{topic: asnTopic, endpoint: endpoint, content: "id-only", timeout: 1}
	}
	const ep = "Subscription.channel.endpoint"
	var cases []refusal
	for _, e := range []string{
		"http://127.0.0.1:9/hook", "http://receiver.localhost:9/hook", "http://example.org/hook", // https only
		"https://127.0.0.1/hook", "https://localhost/hook", "https://[::1]/hook", "https://10.1.2.3/hook",
		"https://172.16.0.1/hook", "https://192.168.1.1/hook", "https://169.254.169.254/latest/meta-data/",
		"https://100.100.100.200/hook", "https://[fd00:ec2::254]/hook", "https://0.0.0.0/hook", "https://100.64.0.1/hook",
		"https://[fe80::1]/hook", "https://[::ffff:127.0.0.1]/hook",
	} {
		cases = append(cases, refusal{e, asn(e), ep})
	}
	checkRefusals(t, ts, la, cases)
	accepted(t, ts, la, asn("https://receiver.localhost:9/hook")) // listed in CPIS_SUBSCRIPTION_ALLOWED_HOSTS
}

// secretBodies records the body of every response a test gets, to show
// that a secret never appears in one.
type secretBodies struct {
	ts     *testServer
	bodies []string
}

func (s *secretBodies) as(persona, method, path string, body []byte) response {
	s.ts.t.Helper()
	res := s.ts.as(persona, method, path, body)
	s.bodies = append(s.bodies, string(res.Body))
	return res
}

func TestSubscriptionIsItsOwnersAlone(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t)
	secret := "Bearer s3cret-" + uuid.NewString()
	r := newReceiver(t, func(r *receiver) {
		r.answer = func(n int) int { // one failure: the failure is logged, and must not show the secret
			if n == 1 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}
	})
	rec := &secretBodies{ts: ts}
	spec := subSpec{topic: asnTopic, endpoint: r.URL, content: "full-resource", headers: []string{"Authorization: " + secret, "X-Receiver: second-" + secret}}
	res := rec.as(la, "POST", "/Subscription", spec.JSON(t))
	mustStatus(t, res, http.StatusCreated)
	id := res.JSON(t)["id"].(string)
	hs := r.waitType(3*time.Second, "handshake", 2) // the first attempt failed
	if hs.Header.Get("Authorization") != secret || hs.Header.Get("X-Receiver") != "second-"+secret {
		t.Errorf("the handshake did not carry the channel headers")
	}

	// Another system: 404 for everything, as for an id that does not exist.
	other := subSpec{topic: asnTopic, endpoint: r.URL, content: "id-only"}
	for _, p := range []string{"la:ZLA02", "trust-system"} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/Subscription/" + id}, {"PUT", "/Subscription/" + id}, {"DELETE", "/Subscription/" + id},
			{"GET", "/Subscription/" + id + "/$status"}, {"GET", "/Subscription/" + id + "/$events"},
			{"GET", "/Subscription/" + uuid.NewString()},
		} {
			var body []byte
			if c.method == "PUT" {
				body = edit(t, other.JSON(t), func(m map[string]any) { m["id"] = id })
			}
			if res := rec.as(p, c.method, c.path, body); res.Status != http.StatusNotFound {
				t.Errorf("%s %s %s: %d, want 404", p, c.method, c.path, res.Status)
			}
		}
	}
	got := rec.as(la, "GET", "/Subscription/"+id, nil)
	mustStatus(t, got, http.StatusOK)
	if ep := str(got.JSON(t), "channel", "endpoint"); ep != r.URL {
		t.Errorf("after another system's PUT the endpoint is %q", ep)
	}
	hdrs, _ := got.JSON(t)["channel"].(map[string]any)["header"].([]any)
	if len(hdrs) != 2 || hdrs[0] != "Authorization: ***" || hdrs[1] != "X-Receiver: ***" {
		t.Errorf("channel headers as read: %v, want them masked", hdrs)
	}

	// Subscribing: another LA's ASNs and health users are refused.
	mustStatus(t, rec.as("la:ZLA02", "POST", "/Subscription", subSpec{topic: asnTopic, filter: asnFilter("ZLA01"), endpoint: r.URL, content: "id-only"}.JSON(t)), http.StatusForbidden)
	for _, p := range []string{"ed-clinician", "community-nurse", "auditor"} {
		mustStatus(t, rec.as(p, "POST", "/Subscription", subSpec{topic: planChangeTopic, filter: planFilter("9990276579"), endpoint: r.URL, content: "id-only"}.JSON(t)), http.StatusForbidden)
		mustStatus(t, rec.as(p, "GET", "/Subscription", nil), http.StatusForbidden)
	}
	mustStatus(t, rec.as("trust-system", "POST", "/Subscription", other.JSON(t)), http.StatusForbidden) // ASNs are the LAs'
	own := rec.as("la:ZLA01", "POST", "/Subscription", subSpec{topic: asnTopic, filter: asnFilter("ZLA01"), endpoint: r.URL, content: "id-only"}.JSON(t))
	mustStatus(t, own, http.StatusCreated)
	theirs := rec.as("la:ZLA02", "POST", "/Subscription", other.JSON(t))
	mustStatus(t, theirs, http.StatusCreated)

	// Each lists its own only.
	for p, want := range map[string][]string{
		la:             {id, own.JSON(t)["id"].(string)},
		"la:ZLA02":     {theirs.JSON(t)["id"].(string)},
		"trust-system": nil,
	} {
		res := rec.as(p, "GET", "/Subscription", nil)
		mustStatus(t, res, http.StatusOK)
		var ids []string
		for _, s := range entries(t, res, "Subscription") {
			ids = append(ids, s["id"].(string))
		}
		if strings.Join(ids, " ") != strings.Join(want, " ") {
			t.Errorf("%s lists %v, want %v", p, ids, want)
		}
	}

	// The owner changes its subscription, headers sent back masked: the
	// stored values stay, and go with the next notification.
	r2 := newReceiver(t)
	res = ts.changeSubscription(la, id, func(m map[string]any) { m["channel"].(map[string]any)["endpoint"] = r2.URL })
	rec.bodies = append(rec.bodies, string(res.Body))
	mustStatus(t, res, http.StatusOK)
	hs2 := r2.waitType(3*time.Second, "handshake", 1)
	if hs2.Header.Get("Authorization") != secret || hs2.Header.Get("X-Receiver") != "second-"+secret {
		t.Errorf("after a PUT with masked headers, the handshake carried Authorization %q", hs2.Header.Get("Authorization"))
	}
	rec.as(la, "GET", "/Subscription/"+id+"/$status", nil)
	rec.as(la, "GET", "/Subscription/"+id+"/$events", nil)

	for _, b := range rec.bodies {
		if strings.Contains(b, "s3cret") {
			t.Errorf("a response holds the channel header's secret: %.300s", b)
		}
	}
	if strings.Contains(ts.logs.String(), "s3cret") {
		t.Errorf("the server's log holds the channel header's secret")
	}
	if !strings.Contains(ts.logs.String(), "subscription delivery failed") {
		t.Errorf("the failed delivery was not logged: the log check saw no delivery")
	}
	mustStatus(t, rec.as(la, "DELETE", "/Subscription/"+id, nil), http.StatusNoContent)
	mustStatus(t, rec.as(la, "GET", "/Subscription/"+id, nil), http.StatusNotFound)
}
