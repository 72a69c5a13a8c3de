package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Subscriptions (issue 10), end to end: a subscriber's rest-hook endpoint
// is an httptest server on loopback that records every notification the
// server posts to it; the tests read the notification Bundles as a
// receiver would.

// Topic URLs and the backport IG's extensions, as a client writes them.
const (
	asnTopic        = "https://cpis.example.org/fhir/SubscriptionTopic/access-to-service-notification"
	planChangeTopic = "https://cpis.example.org/fhir/SubscriptionTopic/plan-change"
	backportSD      = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
)

// subSpec is what a test asks a subscription for; JSON renders it as the
// R4 backport Subscription a client posts.
type subSpec struct {
	topic     string
	filter    string // the backport-filter-criteria, "" for none
	endpoint  string
	content   string // empty, id-only or full-resource
	headers   []string
	heartbeat int // seconds; 0: none
	maxCount  int // 0: the server's default
	timeout   int // seconds; 0: the server's default
	status    string
	// channel and payload override the rest-hook channel type and the
	// payload MIME type, for refusals.
	channel, payload string
}

// planFilter is the plan-change filter on one child.
func planFilter(nhs string) string {
	return "Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|" + nhs
}

// asnFilter is the ASN filter naming the LA notified.
func asnFilter(code string) string {
	return "Communication?recipient:identifier=https://fhir.nhs.uk/Id/ods-organization-code|" + code
}

func (s subSpec) JSON(t testing.TB) []byte {
	t.Helper()
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	channel := map[string]any{
		"type": or(s.channel, "rest-hook"), "endpoint": s.endpoint, "payload": or(s.payload, "application/fhir+json"),
		"_payload": map[string]any{"extension": []any{map[string]any{"url": backportSD + "backport-payload-content", "valueCode": or(s.content, "full-resource")}}},
	}
	if len(s.headers) > 0 {
		channel["header"] = s.headers
	}
	var ext []any
	if s.heartbeat > 0 {
		ext = append(ext, map[string]any{"url": backportSD + "backport-heartbeat-period", "valueUnsignedInt": s.heartbeat})
	}
	if s.timeout > 0 {
		ext = append(ext, map[string]any{"url": backportSD + "backport-timeout", "valueUnsignedInt": s.timeout})
	}
	if s.maxCount > 0 {
		ext = append(ext, map[string]any{"url": backportSD + "backport-max-count", "valuePositiveInt": s.maxCount})
	}
	if ext != nil {
		channel["extension"] = ext
	}
	sub := map[string]any{
		"resourceType": "Subscription",
		"meta":         map[string]any{"profile": []string{backportSD + "backport-subscription"}},
		"status":       or(s.status, "requested"), "reason": "end-to-end test", "criteria": s.topic, "channel": channel,
	}
	if s.filter != "" {
		sub["_criteria"] = map[string]any{"extension": []any{map[string]any{"url": backportSD + "backport-filter-criteria", "valueString": s.filter}}}
	}
	b, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// subscribe posts a subscription as persona and returns its id.
func (ts *testServer) subscribe(persona string, s subSpec) string {
	ts.t.Helper()
	res := ts.as(persona, "POST", "/Subscription", s.JSON(ts.t))
	mustStatus(ts.t, res, http.StatusCreated)
	m := res.JSON(ts.t)
	id, _ := m["id"].(string)
	if id == "" || res.Header.Get("Location") != ts.URL+"/Subscription/"+id {
		ts.t.Fatalf("created subscription id %q, Location %q", id, res.Header.Get("Location"))
	}
	if m["status"] != "requested" {
		ts.t.Errorf("a new subscription's status is %v, want requested", m["status"])
	}
	return id
}

// changeSubscription reads the subscription as persona, lets f change
// the resource, and PUTs it back (masked headers as read: keep them).
func (ts *testServer) changeSubscription(persona, id string, f func(m map[string]any)) response {
	ts.t.Helper()
	res := ts.as(persona, "GET", "/Subscription/"+id, nil)
	mustStatus(ts.t, res, http.StatusOK)
	return ts.as(persona, "PUT", "/Subscription/"+id, edit(ts.t, res.Body, f))
}

// receiver is a subscriber's rest-hook endpoint on loopback. It records
// every request as it arrives and answers 200, or what answer says for
// the nth request (1-based), after delay (if set) says how long.
type receiver struct {
	t      testing.TB
	URL    string
	answer func(n int) int
	delay  func(n int) time.Duration

	mu  sync.Mutex
	got []received
}

// received is one request a receiver got and what it answered.
type received struct {
	At     time.Time
	Header http.Header
	Body   []byte
	Status int
	N      notice
}

// newReceiver starts a receiver; configure sets answer and delay before
// it serves.
func newReceiver(t testing.TB, configure ...func(*receiver)) *receiver {
	t.Helper()
	r := &receiver{t: t}
	for _, c := range configure {
		c(r)
	}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL + "/hook"
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	status, wait := http.StatusOK, time.Duration(0)
	if r.answer != nil {
		status = r.answer(len(r.got) + 1)
	}
	if r.delay != nil {
		wait = r.delay(len(r.got) + 1)
	}
	got := received{At: time.Now(), Header: req.Header.Clone(), Body: body, Status: status}
	if req.Method != http.MethodPost || req.URL.Path != "/hook" {
		r.t.Errorf("the receiver got %s %s, want POST /hook", req.Method, req.URL.Path)
	} else {
		got.N = parseNotice(r.t, body)
	}
	r.got = append(r.got, got)
	r.mu.Unlock()
	time.Sleep(wait)
	w.WriteHeader(status)
}

// all returns what the receiver got so far.
func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// ofType returns the notifications of one type, in arrival order.
func (r *receiver) ofType(typ string) []received {
	var out []received
	for _, g := range r.all() {
		if g.N.Type == typ {
			out = append(out, g)
		}
	}
	return out
}

// acked returns the event numbers of the event notifications the
// receiver answered with a 2xx, in arrival order (re-sends included).
func (r *receiver) acked() []int64 {
	var out []int64
	for _, g := range r.ofType("event-notification") {
		if g.Status/100 == 2 {
			out = append(out, g.N.numbers()...)
		}
	}
	return out
}

// waitFor waits until the receiver's notifications satisfy ok, and
// returns them; it fails the test after timeout.
func (r *receiver) waitFor(timeout time.Duration, what string, ok func([]received) bool) []received {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.all()
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no %s within %v; the receiver got %s", what, timeout, summary(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitType waits for the nth (1-based) notification of a type.
func (r *receiver) waitType(timeout time.Duration, typ string, n int) received {
	r.t.Helper()
	var out received
	r.waitFor(timeout, "notification "+typ+" #"+strconv.Itoa(n), func(got []received) bool {
		seen := 0
		for _, g := range got {
			if g.N.Type == typ {
				if seen++; seen == n {
					out = g
					return true
				}
			}
		}
		return false
	})
	return out
}

// waitAcked waits until every event number 1..n has been acknowledged.
func (r *receiver) waitAcked(timeout time.Duration, n int64) []int64 {
	r.t.Helper()
	r.waitFor(timeout, "acknowledgement of events 1 to "+strconv.FormatInt(n, 10), func([]received) bool {
		have := map[int64]bool{}
		for _, e := range r.acked() {
			have[e] = true
		}
		for i := int64(1); i <= n; i++ {
			if !have[i] {
				return false
			}
		}
		return true
	})
	return r.acked()
}

// summary describes notifications for a failure message.
func summary(got []received) string {
	var parts []string
	for _, g := range got {
		parts = append(parts, g.N.Type+"("+strconv.Itoa(g.Status)+")"+fmtNumbers(g.N.numbers()))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func fmtNumbers(ns []int64) string {
	if len(ns) == 0 {
		return ""
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.FormatInt(n, 10)
	}
	return "{" + strings.Join(s, ",") + "}"
}

// notice is a notification Bundle as a receiver reads it.
type notice struct {
	Bundle       map[string]any
	Type         string // handshake, heartbeat, event-notification, query-event, query-status
	Status       string
	Subscription string // the subscription's reference
	Topic        string
	Since        int64 // events-since-subscription-start
	Events       []noticeEvent
	Entries      []map[string]any // the Bundle's entries after the status
}

// noticeEvent is one notification-event of the status Parameters.
type noticeEvent struct {
	Number    int64
	Timestamp string
	Focus     string
}

func (n notice) numbers() []int64 {
	var out []int64
	for _, e := range n.Events {
		out = append(out, e.Number)
	}
	return out
}

func (n notice) focuses() []string {
	var out []string
	for _, e := range n.Events {
		out = append(out, e.Focus)
	}
	return out
}

// parseNotice reads a notification Bundle (history, status first) or an
// answer of $events; it reports what does not have the IG's shape.
func parseNotice(t testing.TB, body []byte) notice {
	var b map[string]any
	if err := json.Unmarshal(body, &b); err != nil {
		t.Errorf("a notification is not JSON (%v): %.200s", err, body)
		return notice{}
	}
	n := notice{Bundle: b}
	es, _ := b["entry"].([]any)
	if b["resourceType"] != "Bundle" || b["type"] != "history" || len(es) == 0 {
		t.Errorf("a notification is not a history Bundle with entries: %.300s", body)
		return n
	}
	if got := str(b, "meta", "profile", 0); got != backportSD+"backport-subscription-notification-r4" {
		t.Errorf("notification profile %q", got)
	}
	status, _ := es[0].(map[string]any)["resource"].(map[string]any)
	if status["resourceType"] != "Parameters" {
		t.Errorf("the first entry of a notification is not the status Parameters: %.300s", body)
		return n
	}
	for _, e := range es[1:] {
		n.Entries = append(n.Entries, e.(map[string]any))
	}
	params, _ := status["parameter"].([]any)
	for _, p := range params {
		pm := p.(map[string]any)
		switch pm["name"] {
		case "type":
			n.Type = str(pm, "valueCode")
		case "status":
			n.Status = str(pm, "valueCode")
		case "subscription":
			n.Subscription = str(pm, "valueReference", "reference")
		case "topic":
			n.Topic = str(pm, "valueCanonical")
		case "events-since-subscription-start":
			n.Since = paramNumber(t, pm)
		case "notification-event":
			n.Events = append(n.Events, noticeEventOf(t, pm))
		}
	}
	return n
}

// noticeEventOf reads the parts of a notification-event parameter.
func noticeEventOf(t testing.TB, p map[string]any) noticeEvent {
	var e noticeEvent
	parts, _ := p["part"].([]any)
	for _, q := range parts {
		qm := q.(map[string]any)
		switch qm["name"] {
		case "event-number":
			e.Number = paramNumber(t, qm)
		case "timestamp":
			e.Timestamp = str(qm, "valueInstant")
		case "focus":
			e.Focus = str(qm, "valueReference", "reference")
		}
	}
	return e
}

// paramNumber reads a count the R4 backport types as a string.
func paramNumber(t testing.TB, p map[string]any) int64 {
	s, ok := p["valueString"].(string)
	if !ok {
		t.Errorf("parameter %v is not a valueString (the R4 backport's type for counts): %v", p["name"], p)
		return -1
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Errorf("parameter %v = %q is not a number", p["name"], s)
	}
	return n
}

// inOrder reports whether the acknowledged event numbers, re-sends
// allowed, never skip ahead: each is at most one more than the highest
// before it.
func inOrder(acked []int64) bool {
	var top int64
	for _, n := range acked {
		if n > top+1 {
			return false
		}
		top = max(top, n)
	}
	return true
}

// seq is 1..n.
func seq(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}

// nhsQuery is a patient:identifier search on one child.
func nhsQuery(nhs string) string {
	return "patient:identifier=" + url.QueryEscape("https://fhir.nhs.uk/Id/nhs-number|"+nhs)
}

// auditQueries returns, per AuditEvent the auditor sees, its JSON and the
// queries its entities carry (decoded).
func (ts *testServer) auditQueries() map[string][]string {
	ts.t.Helper()
	out := map[string][]string{}
	for _, e := range ts.auditorEvents() {
		b, _ := json.Marshal(e)
		ents, _ := e["entity"].([]any)
		var qs []string
		for _, en := range ents {
			if q := str(en, "query"); q != "" {
				d, err := base64.StdEncoding.DecodeString(q)
				if err != nil {
					ts.t.Errorf("entity.query is not base64: %v", err)
				}
				qs = append(qs, string(d))
			}
		}
		out[string(b)] = qs
	}
	return out
}

func TestSubscriptionUnscheduledReadSendsASNWithin2Seconds(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			asnWithin2Seconds(t, newDeliveryServer(t, b.db(t)))
		})
	}
}

// asnWithin2Seconds subscribes ZLA01 to its ASNs, has the ED clinician
// read its plan, and checks the notification the LA's endpoint gets.
func asnWithin2Seconds(t *testing.T, ts *testServer) {
	r := newReceiver(t)
	id := ts.subscribe(la, subSpec{topic: asnTopic, endpoint: r.URL, content: "full-resource", headers: []string{"Authorization: Bearer receiver-secret"}})

	hs := r.waitType(2*time.Second, "handshake", 1)
	if got := r.all()[0].N.Type; got != "handshake" {
		t.Errorf("the first notification is a %s, want the handshake", got)
	}
	if got := hs.Header.Get("Authorization"); got != "Bearer receiver-secret" {
		t.Errorf("the handshake carried Authorization %q, want the channel header", got)
	}
	if ct := hs.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type %q", ct)
	}
	if hs.N.Subscription != ts.URL+"/Subscription/"+id || hs.N.Topic != asnTopic || hs.N.Since != 0 || len(hs.N.Events) != 0 {
		t.Errorf("handshake: subscription %q topic %q events-since %d events %v", hs.N.Subscription, hs.N.Topic, hs.N.Since, hs.N.Events)
	}
	waitStatus(t, ts, la, id, "active")

	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	plan := ts.create(la, flag)
	read := time.Now()
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?"+nhsQuery(nhs), nil), http.StatusOK)
	got := r.waitType(2*time.Second, "event-notification", 1)
	t.Logf("unscheduled read to ASN notification at the LA's endpoint: %v", got.At.Sub(read))

	asns := ts.communications(la)
	if len(asns) != 1 {
		t.Fatalf("%d ASNs, want 1", len(asns))
	}
	cid := asns[0]["id"].(string)
	n := got.N
	if n.Since != 1 || !slices.Equal(n.numbers(), []int64{1}) || n.Status != "active" {
		t.Errorf("events-since %d, event numbers %v, status %s; want 1, [1], active", n.Since, n.numbers(), n.Status)
	}
	if want := ts.URL + "/Communication/" + cid; !slices.Equal(n.focuses(), []string{want}) {
		t.Errorf("focus %v, want %s", n.focuses(), want)
	}
	if len(n.Entries) != 1 {
		t.Fatalf("%d entries after the status, want the one Communication", len(n.Entries))
	}
	c, _ := n.Entries[0]["resource"].(map[string]any)
	if c["resourceType"] != "Communication" || c["id"] != cid || str(c, "subject", "identifier", "value") != nhs ||
		str(c, "recipient", 0, "identifier", "value") != "ZLA01" || !slices.Contains(abouts(c), "Flag/"+plan) {
		t.Errorf("the entry is not the child's ASN %s: %v", cid, c)
	}
	if str(n.Entries[0], "fullUrl") != ts.URL+"/Communication/"+cid {
		t.Errorf("fullUrl %q", str(n.Entries[0], "fullUrl"))
	}
	if got.Header.Get("Authorization") != "Bearer receiver-secret" {
		t.Errorf("the notification lacks the channel header")
	}
}

// waitStatus waits until the owner reads the subscription with status want.
func waitStatus(t testing.TB, ts *testServer, persona, id, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		res := ts.as(persona, "GET", "/Subscription/"+id, nil)
		mustStatus(t, res, http.StatusOK)
		got := res.JSON(t)["status"]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscription status %v, want %s", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSubscriptionPlanChangeReachesTheTrustSystem(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	plan := ts.create(la, flag)
	full, ids := newReceiver(t), newReceiver(t)
	fullID := ts.subscribe("trust-system", subSpec{topic: planChangeTopic, filter: planFilter(nhs), endpoint: full.URL, content: "full-resource"})
	idsID := ts.subscribe("trust-system", subSpec{topic: planChangeTopic, filter: planFilter(nhs), endpoint: ids.URL, content: "id-only"})
	full.waitType(2*time.Second, "handshake", 1)
	ids.waitType(2*time.Second, "handshake", 1)

	put := edit(t, flag, func(m map[string]any) { m["id"] = plan; setPhone("020 7946 0999")(m) })
	mustStatus(t, ts.as(la, "PUT", "/Flag/"+plan, put, "If-Match", `W/"1"`), http.StatusOK)

	focus := ts.URL + "/Flag/" + plan
	n := full.waitType(3*time.Second, "event-notification", 1).N
	if n.Since != 1 || !slices.Equal(n.numbers(), []int64{1}) || !slices.Equal(n.focuses(), []string{focus}) {
		t.Errorf("full-resource: events-since %d, numbers %v, focus %v", n.Since, n.numbers(), n.focuses())
	}
	if len(n.Entries) != 1 {
		t.Fatalf("full-resource: %d entries after the status, want the Flag", len(n.Entries))
	}
	e := n.Entries[0]
	body, _ := json.Marshal(e)
	if str(e, "resource", "resourceType") != "Flag" || str(e, "resource", "id") != plan || str(e, "request", "method") != "PUT" {
		t.Errorf("the entry is not the updated Flag: %s", body)
	}
	if contains(string(body), "child-birth-date") || contains(string(body), "2014-03-15") {
		t.Errorf("a health system was sent the child's date of birth: %s", body)
	}
	if !contains(string(body), "020 7946 0999") {
		t.Errorf("the notification lacks the new telephone number: %s", body)
	}

	in := ids.waitType(3*time.Second, "event-notification", 1)
	if !slices.Equal(in.N.numbers(), []int64{1}) || !slices.Equal(in.N.focuses(), []string{focus}) || len(in.N.Entries) != 0 {
		t.Errorf("id-only: numbers %v focus %v and %d entries; want [1], [%s], none", in.N.numbers(), in.N.focuses(), len(in.N.Entries), focus)
	}
	if contains(string(in.Body), "020 7946") || contains(string(in.Body), "Child Protection") {
		t.Errorf("an id-only notification carries plan data: %s", in.Body)
	}

	checkDeliveryAudit(t, ts, nhs, fullID, idsID)
	if asns := ts.communications(la); len(asns) != 0 {
		t.Errorf("deliveries to the trust's system sent %d ASNs; a scheduled-care access sends none", len(asns))
	}

	mustStatus(t, ts.as(la, "DELETE", "/Flag/"+plan, nil), http.StatusNoContent)
	n = full.waitType(3*time.Second, "event-notification", 2).N
	if n.Since != 2 || !slices.Equal(n.numbers(), []int64{2}) || !slices.Equal(n.focuses(), []string{focus}) || len(n.Entries) != 1 {
		t.Fatalf("withdrawal: events-since %d, numbers %v, focus %v, %d entries", n.Since, n.numbers(), n.focuses(), len(n.Entries))
	}
	if e := n.Entries[0]; str(e, "request", "method") != "DELETE" || e["resource"] != nil || str(e, "fullUrl") != focus {
		t.Errorf("the withdrawal's entry: %v; want request DELETE, fullUrl %s and no resource", e, focus)
	}

	// $events replays what the receiver got, numbers and focus alike.
	received := append(full.ofType("event-notification")[0].N.Events, n.Events...)
	res := ts.as("trust-system", "GET", "/Subscription/"+fullID+"/$events?eventsSinceNumber=1&eventsUntilNumber=2", nil)
	mustStatus(t, res, http.StatusOK)
	replay := parseNotice(t, res.Body)
	if replay.Type != "query-event" || !slices.Equal(replay.numbers(), []int64{1, 2}) {
		t.Fatalf("$events: type %s numbers %v, want query-event [1 2]", replay.Type, replay.numbers())
	}
	for i, ev := range replay.Events {
		if ev.Focus != received[i].Focus || ev.Number != received[i].Number {
			t.Errorf("$events event %d = %+v, the receiver got %+v", i, ev, received[i])
		}
	}
	// The plan is withdrawn now: a replay shows the trust none of its
	// data, not even of the version it was sent before.
	if len(replay.Entries) != 2 {
		t.Fatalf("$events: %d entries, want 2", len(replay.Entries))
	}
	for _, e := range replay.Entries {
		if str(e, "request", "method") != "DELETE" || e["resource"] != nil || str(e, "fullUrl") != focus {
			t.Errorf("$events after the withdrawal: entry %v; want request DELETE, fullUrl %s and no resource", e, focus)
		}
	}
	res = ts.as("trust-system", "GET", "/Subscription/"+fullID+"/$events?eventsSinceNumber=2", nil)
	mustStatus(t, res, http.StatusOK)
	if got := parseNotice(t, res.Body).numbers(); !slices.Equal(got, []int64{2}) {
		t.Errorf("$events from 2: %v", got)
	}
}

// checkDeliveryAudit checks the audit of the first plan-change delivery
// to the trust's two subscriptions: the full-resource one is an access in
// scheduled care, in the child's access history; the id-only one is
// recorded but is not an access.
func checkDeliveryAudit(t *testing.T, ts *testServer, nhs, fullID, idsID string) {
	t.Helper()
	hist := ts.as(la, "GET", "/AuditEvent?"+nhsQuery(nhs), nil)
	mustStatus(t, hist, http.StatusOK)
	accesses := entries(t, hist, "AuditEvent")
	if len(accesses) != 1 {
		t.Fatalf("the access history has %d entries, want the one full-resource delivery: %s", len(accesses), hist.Body)
	}
	a := accesses[0]
	if got := str(a, "agent", 0, "who", "identifier", "value"); got != "cpis-dev-trust-engine" {
		t.Errorf("the access was made by %q, want the trust's system", got)
	}
	if got := str(a, "purposeOfEvent", 0, "coding", 0, "code"); got != "scheduled" {
		t.Errorf("the access's purpose is %q, want scheduled (no ASN)", got)
	}
	found := map[string]bool{}
	for _, qs := range ts.auditQueries() {
		for _, q := range qs {
			for _, id := range []string{fullID, idsID} {
				if q == "Subscription/"+id+" notification, events 1 to 1" {
					found[id] = true
				}
			}
		}
	}
	if !found[fullID] || !found[idsID] {
		t.Errorf("the auditor finds the deliveries' records: full-resource %v, id-only %v", found[fullID], found[idsID])
	}
}
