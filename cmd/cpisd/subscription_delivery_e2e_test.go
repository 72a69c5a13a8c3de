package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// Delivery that never drops (issue 10, 4 to 6): retries, restarts,
// replicas, heartbeats, and a subscription switched off and on.

// noCoalescing makes every unscheduled read send its own ASN: one event each.
func noCoalescing(c *Config) { c.ASNCoalesceWindow = 0 }

// unscheduledReads reads plan id n times as the ED clinician: n ASN events.
func unscheduledReads(t testing.TB, ts *testServer, id string, n int) {
	t.Helper()
	for range n {
		mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)
	}
}

// checkAckedOnce checks that the acknowledged event numbers are 1..n,
// in order, each exactly once.
func checkAckedOnce(t testing.TB, r *receiver, n int64) {
	t.Helper()
	if got := r.acked(); !slices.Equal(got, seq(n)) {
		t.Errorf("acknowledged events %v, want 1..%d once each in order; the receiver got %s", got, n, summary(r.all()))
	}
}

// checkNotices checks every event notification r got: its events are
// consecutive and events-since-subscription-start is at least the last.
func checkNotices(t testing.TB, r *receiver) {
	t.Helper()
	for _, g := range r.ofType("event-notification") {
		ns := g.N.numbers()
		for i := 1; i < len(ns); i++ {
			if ns[i] != ns[i-1]+1 {
				t.Errorf("a notification's events are not consecutive: %v", ns)
			}
		}
		if len(ns) == 0 || g.N.Since < ns[len(ns)-1] {
			t.Errorf("a notification with events %v says events-since-subscription-start %d", ns, g.N.Since)
		}
	}
}

func TestSubscriptionReceiverFailingFiveTimesGetsEveryEventInOrder(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t, noCoalescing)
	plan := ts.create(la, example(t, "flag-cpp.json"))
	r := newReceiver(t, func(r *receiver) {
		r.answer = func(n int) int {
			if n <= 5 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}
	})
	id := ts.subscribe(la, subSpec{topic: asnTopic, endpoint: r.URL, content: "full-resource", maxCount: 2})
	unscheduledReads(t, ts, plan, 5)

	r.waitAcked(10*time.Second, 5)
	time.Sleep(300 * time.Millisecond) // anything sent twice would come now
	got := r.all()
	for i, g := range got[:5] {
		if g.Status != http.StatusInternalServerError {
			t.Fatalf("attempt %d was answered %d: the receiver's failures did not happen", i+1, g.Status)
		}
	}
	if got[0].N.Type != "handshake" {
		t.Errorf("the first attempt was a %s, want the handshake", got[0].N.Type)
	}
	checkAckedOnce(t, r, 5)
	checkNotices(t, r)
	var focus []string
	for _, g := range r.ofType("event-notification") {
		if g.Status == http.StatusOK {
			focus = append(focus, g.N.focuses()...)
		}
	}

	st := ts.as(la, "GET", "/Subscription/"+id+"/$status", nil)
	mustStatus(t, st, http.StatusOK)
	es := entries(t, st, "Parameters")
	if len(es) != 1 {
		t.Fatalf("$status holds %d Parameters", len(es))
	}
	for _, p := range es[0]["parameter"].([]any) {
		switch str(p, "name") {
		case "status":
			if v := str(p, "valueCode"); v != "active" {
				t.Errorf("$status status %s, want active", v)
			}
		case "type":
			if v := str(p, "valueCode"); v != "query-status" {
				t.Errorf("$status type %s", v)
			}
		case "events-since-subscription-start":
			if v := str(p, "valueString"); v != "5" {
				t.Errorf("$status events-since-subscription-start %s, want 5", v)
			}
		}
	}

	// $events returns the events the receiver got, as it got them.
	res := ts.as(la, "GET", "/Subscription/"+id+"/$events?eventsSinceNumber=1&eventsUntilNumber=5", nil)
	mustStatus(t, res, http.StatusOK)
	replay := parseNotice(t, res.Body)
	if !slices.Equal(replay.numbers(), seq(5)) || !slices.Equal(replay.focuses(), focus) || len(replay.Entries) != 5 {
		t.Errorf("$events numbers %v focus %v (%d entries); the receiver got focus %v", replay.numbers(), replay.focuses(), len(replay.Entries), focus)
	}
	res = ts.as(la, "GET", "/Subscription/"+id+"/$events?eventsSinceNumber=2&eventsUntilNumber=3&content=id-only", nil)
	mustStatus(t, res, http.StatusOK)
	if replay := parseNotice(t, res.Body); !slices.Equal(replay.numbers(), []int64{2, 3}) || !slices.Equal(replay.focuses(), focus[1:3]) || len(replay.Entries) != 0 {
		t.Errorf("$events 2..3 id-only: numbers %v focus %v, %d entries", replay.numbers(), replay.focuses(), len(replay.Entries))
	}
	mustStatus(t, ts.as(la, "GET", "/Subscription/"+id+"/$events?eventsSinceNumber=0", nil), http.StatusBadRequest)

	metrics := string(ts.do("GET", "/metrics", "", nil).Body)
	for _, m := range []string{
		`cpis_subscription_notifications_total{outcome="failed",topic="access-to-service-notification"} 5`,
		`cpis_subscription_events_delivered_total{topic="access-to-service-notification"} 5`,
		`cpis_subscription_delivery_latency_seconds_count{topic="access-to-service-notification"} 5`,
		`cpis_subscription_queue_depth{topic="plan-change"}`,
	} {
		if !strings.Contains(metrics, m+"\n") && !strings.Contains(metrics, m+" ") {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// TestSubscriptionDeliverySurvivesSIGKILL runs the real binary, kills it
// with SIGKILL while a slow receiver is being sent 20 events (a plan
// created, then changed 19 times) one per notification, restarts it on the same data directory, and checks that
// every event arrives, in order.
func TestSubscriptionDeliverySurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildCpisd(t)
	addr, dataDir := freeAddr(t), t.TempDir()
	env := append(os.Environ(), "CPIS_ADDR="+addr, "CPIS_DATA_DIR="+dataDir, "CPIS_ASN_COALESCE_WINDOW=0",
		"CPIS_SUBSCRIPTION_LEASE=2s", "CPIS_SUBSCRIPTION_POLL=50ms", "CPIS_SUBSCRIPTION_RETRY_BASE=50ms", "CPIS_SUBSCRIPTION_RETRY_MAX=400ms")
	logs := &syncBuffer{}
	startProc := func() *exec.Cmd {
		cmd := exec.Command(bin)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		waitReady(t, "http://"+addr)
		return cmd
	}
	first := startProc()
	proc := &testServer{t: t, URL: "http://" + addr, tokens: map[string]string{}}
	r := newReceiver(t, func(r *receiver) { r.delay = func(int) time.Duration { return 300 * time.Millisecond } })
	// Plan changes, not ASNs: the subprocess runs on the real clock, and an
	// LA's own plan changes reach it whatever the day (a health read of the
	// example plan would find nothing once its display window ends).
	flag := example(t, "flag-cpp.json")
	id := proc.subscribe(la, subSpec{topic: planChangeTopic, filter: planFilter(subjectNHS(t, flag)), endpoint: r.URL, content: "id-only", maxCount: 1})
	r.waitType(3*time.Second, "handshake", 1)
	plan := proc.create(la, flag)
	for v := 1; v < 20; v++ {
		put := edit(t, flag, func(m map[string]any) { m["id"] = plan; setPhone(fmt.Sprintf("020 7946 0%03d", 500+v))(m) })
		mustStatus(t, proc.as(la, "PUT", "/Flag/"+plan, put, "If-Match", fmt.Sprintf(`W/"%d"`, v)), http.StatusOK)
	}

	r.waitFor(5*time.Second, "3 acknowledged events", func([]received) bool { return len(r.acked()) >= 3 })
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = first.Wait()
	before := r.acked()
	if slices.Contains(before, 20) {
		t.Fatalf("all 20 events were delivered before the kill (%v): the test killed nothing mid-stream", before)
	}
	startProc()

	got := r.waitAcked(20*time.Second, 20)
	t.Logf("acknowledged before SIGKILL %v; in all %v", before, got)
	if !inOrder(got) {
		t.Errorf("events acknowledged out of order or with a gap: %v", got)
	}
	checkNotices(t, r)
	for _, g := range r.ofType("event-notification") {
		if g.N.Subscription != proc.URL+"/Subscription/"+id {
			t.Errorf("a notification names subscription %s", g.N.Subscription)
		}
	}
	if t.Failed() {
		t.Logf("server logs:\n%s", logs.String())
	}
}

// buildCpisd builds the server binary into a temporary directory.
func buildCpisd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cpisd")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestSubscriptionTwoReplicasDeliverEachEventOnce runs two servers on one
// PostgreSQL database: events committed through either are delivered to
// the one subscription once each, in order.
func TestSubscriptionTwoReplicasDeliverEachEventOnce(t *testing.T) {
	dbURL := pgtest.MigratedURL(t)
	t.Parallel()
	onPG := func(c *Config) { c.DatabaseURL = dbURL }
	clock := tickingClock(startDay)
	a, b := newDeliveryServerAt(t, clock, onPG, noCoalescing), newDeliveryServerAt(t, clock, onPG, noCoalescing)
	defer deliveryLogsOnFailure(t, a, b)
	r := newReceiver(t)
	a.subscribe(la, subSpec{topic: asnTopic, endpoint: r.URL, content: "id-only"})
	r.waitType(3*time.Second, "handshake", 1)
	plan := a.create(la, example(t, "flag-cpp.json"))
	for i := range 30 {
		via := a
		if i%2 == 1 {
			via = b
		}
		unscheduledReads(t, via, plan, 1)
	}
	r.waitAcked(15*time.Second, 30)
	time.Sleep(time.Second) // twenty polls: a duplicate would arrive now
	checkAckedOnce(t, r, 30)
	checkNotices(t, r)
	if n := len(r.ofType("handshake")); n != 1 {
		t.Errorf("%d handshakes, want 1", n)
	}
	by := map[string]int{}
	for _, g := range r.all() {
		if g.Status != http.StatusOK {
			t.Errorf("the receiver answered %d", g.Status)
		}
		switch {
		case strings.HasPrefix(g.N.Subscription, a.URL+"/"):
			by["a"]++
		case strings.HasPrefix(g.N.Subscription, b.URL+"/"):
			by["b"]++
		default:
			t.Errorf("a notification names subscription %s", g.N.Subscription)
		}
	}
	t.Logf("notifications sent by each replica: %v", by)
}

func TestSubscriptionHeartbeat(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t)
	r := newReceiver(t)
	ts.subscribe(la, subSpec{topic: asnTopic, endpoint: r.URL, content: "empty", heartbeat: 1})
	hs := r.waitType(2*time.Second, "handshake", 1)
	hb := r.waitType(3*time.Second, "heartbeat", 1)
	t.Logf("first heartbeat %v after the handshake", hb.At.Sub(hs.At))
	if d := hb.At.Sub(hs.At); d < 900*time.Millisecond {
		t.Errorf("a heartbeat %v after the handshake, before the period of 1 s", d)
	}
	if hb.N.Since != 0 || len(hb.N.Events) != 0 || len(hb.N.Entries) != 0 || hb.N.Status != "active" {
		t.Errorf("heartbeat: events-since %d, %d events, %d entries, status %s", hb.N.Since, len(hb.N.Events), len(hb.N.Entries), hb.N.Status)
	}
	if hb.N.Topic != "" {
		t.Errorf("an empty-content notification names its topic %q (the IG: SHOULD NOT)", hb.N.Topic)
	}
	hb2 := r.waitType(3*time.Second, "heartbeat", 2)
	if d := hb2.At.Sub(hb.At); d < 900*time.Millisecond {
		t.Errorf("heartbeats %v apart, the period is 1 s", d)
	}
}

// TestSubscriptionOffStopsDeliveryAndActiveResumesIt sets a subscription
// off when its delivery is idle, and while a notification is in flight
// (the receiver holds its answer): either way, no event committed after
// the PUT is sent until the subscription is active again, and then every
// one is, in order.
func TestSubscriptionOffStopsDeliveryAndActiveResumesIt(t *testing.T) {
	t.Parallel()
	for _, inFlight := range []bool{false, true} {
		name := "idle"
		if inFlight {
			name = "in flight"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			offAndOn(t, inFlight)
		})
	}
}

// holdSecond is a receiver that holds its answer to the nth request for
// a second.
func holdSecond(n int) func(*receiver) {
	return func(r *receiver) {
		r.delay = func(i int) time.Duration {
			if i == n {
				return time.Second
			}
			return 0
		}
	}
}

func offAndOn(t *testing.T, inFlight bool) {
	ts := newDeliveryServer(t, noCoalescing)
	defer deliveryLogsOnFailure(t, ts)
	plan := ts.create(la, example(t, "flag-cpp.json"))
	r := newReceiver(t)
	if inFlight {
		r = newReceiver(t, holdSecond(2)) // the handshake, then event 1 held
	}
	id := ts.subscribe(la, subSpec{topic: asnTopic, endpoint: r.URL, content: "id-only", headers: []string{"Authorization: Bearer on-off"}})
	r.waitType(2*time.Second, "handshake", 1)
	unscheduledReads(t, ts, plan, 1)
	r.waitType(3*time.Second, "event-notification", 1) // arrived; answered at once, or a second later
	if !inFlight {
		time.Sleep(300 * time.Millisecond) // the delivery records its progress and lets go
	}

	res := ts.changeSubscription(la, id, func(m map[string]any) { m["status"] = "off" })
	mustStatus(t, res, http.StatusOK)
	if got := res.JSON(t)["status"]; got != "off" {
		t.Fatalf("status after PUT off: %v", got)
	}
	unscheduledReads(t, ts, plan, 2)
	time.Sleep(1500 * time.Millisecond) // thirty polls, and the held answer given
	if got := r.acked(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("events %v were sent after the subscription was set off (want only 1, sent before)", got)
	}

	res = ts.changeSubscription(la, id, func(m map[string]any) { m["status"] = "active" })
	mustStatus(t, res, http.StatusOK)
	if got := res.JSON(t)["status"]; got != "active" {
		t.Errorf("status after PUT active: %v", got)
	}
	r.waitAcked(3*time.Second, 3)
	if got := r.acked(); !inOrder(got) || len(got) > 4 {
		t.Errorf("after resuming: acknowledged %v, want 1..3 in order", got)
	}
	last := r.ofType("event-notification")
	if g := last[len(last)-1]; g.Header.Get("Authorization") != "Bearer on-off" || g.N.Since != 3 {
		t.Errorf("after resuming: Authorization %q (the masked header must keep its value), events-since %d", g.Header.Get("Authorization"), g.N.Since)
	}
	if n := len(r.ofType("handshake")); n != 1 {
		t.Errorf("%d handshakes: resuming on the same endpoint needs none", n)
	}
}

// TestSubscriptionNewEndpointTakesOverAtOnce moves a subscription to a
// new endpoint while a notification to the old one is in flight: the new
// endpoint is greeted with a handshake and gets every event after the
// last the old one acknowledged; the old endpoint gets nothing more.
func TestSubscriptionNewEndpointTakesOverAtOnce(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t, noCoalescing)
	defer deliveryLogsOnFailure(t, ts)
	plan := ts.create(la, example(t, "flag-cpp.json"))
	old, next := newReceiver(t, holdSecond(2)), newReceiver(t)
	id := ts.subscribe(la, subSpec{topic: asnTopic, endpoint: old.URL, content: "id-only"})
	old.waitType(2*time.Second, "handshake", 1)
	unscheduledReads(t, ts, plan, 1)
	old.waitType(3*time.Second, "event-notification", 1) // held for a second

	res := ts.changeSubscription(la, id, func(m map[string]any) { m["channel"].(map[string]any)["endpoint"] = next.URL })
	mustStatus(t, res, http.StatusOK)
	unscheduledReads(t, ts, plan, 2)
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline) && !slices.Contains(next.acked(), 3); {
		time.Sleep(20 * time.Millisecond)
	}
	if got := old.acked(); !slices.Equal(got, []int64{1}) {
		t.Errorf("the old endpoint got events %v after the subscription moved (want only 1, sent before)", got)
	}
	got := next.all()
	if len(got) == 0 || got[0].N.Type != "handshake" {
		t.Fatalf("the new endpoint got %s: want a handshake first", summary(got))
	}
	if acked := next.acked(); !slices.Contains(acked, 3) || !inOrder(append([]int64{1}, acked...)) {
		t.Errorf("the new endpoint acknowledged %v: want 2 and 3 (1 again allowed), in order", acked)
	}
}

// TestSubscriptionErrorAfterTheRetryPeriodKeepsItsEvents fails every
// delivery for longer than the retry period: the subscription is set to
// error, says why, and keeps its events; set back to active, it delivers
// them all, in order.
func TestSubscriptionErrorAfterTheRetryPeriodKeepsItsEvents(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t, noCoalescing, func(c *Config) { c.Subscriptions.RetryFor = time.Second })
	defer deliveryLogsOnFailure(t, ts)
	plan := ts.create(la, example(t, "flag-cpp.json"))
	var down atomic.Bool
	r := newReceiver(t, func(r *receiver) {
		r.answer = func(int) int {
			if down.Load() {
				return http.StatusBadGateway
			}
			return http.StatusOK
		}
	})
	id := ts.subscribe(la, subSpec{topic: asnTopic, endpoint: r.URL, content: "id-only"})
	r.waitType(2*time.Second, "handshake", 1)
	down.Store(true)
	unscheduledReads(t, ts, plan, 2)
	waitStatus(t, ts, la, id, "error")
	failed := len(r.all()) - 1
	if failed < 2 {
		t.Errorf("%d failed attempts before the subscription was set to error", failed)
	}
	res := ts.as(la, "GET", "/Subscription/"+id, nil)
	if e := str(res.JSON(t), "error"); !strings.Contains(e, "HTTP 502") {
		t.Errorf("Subscription.error %q does not say why", e)
	}
	st := ts.as(la, "GET", "/Subscription/"+id+"/$status", nil)
	mustStatus(t, st, http.StatusOK)
	if b := string(st.Body); !strings.Contains(b, `"valueCode":"error"`) || !strings.Contains(b, "HTTP 502") {
		t.Errorf("$status of a subscription in error: %s", b)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(r.all()) - 1; n != failed {
		t.Errorf("%d more attempts after the subscription was set to error", n-failed)
	}
	res = ts.as(la, "GET", "/Subscription/"+id+"/$events", nil)
	mustStatus(t, res, http.StatusOK)
	if got := parseNotice(t, res.Body).numbers(); !slices.Equal(got, []int64{1, 2}) {
		t.Errorf("$events of a subscription in error: %v, want [1 2]", got)
	}

	down.Store(false)
	mustStatus(t, ts.changeSubscription(la, id, func(m map[string]any) { m["status"] = "active" }), http.StatusOK)
	r.waitAcked(3*time.Second, 2)
	checkAckedOnce(t, r, 2)
	waitStatus(t, ts, la, id, "active")
}

// TestSubscriptionSlowEndpointDelaysNoOther holds every answer of one
// endpoint for two seconds: another subscription's notifications still
// arrive at once.
func TestSubscriptionSlowEndpointDelaysNoOther(t *testing.T) {
	t.Parallel()
	ts := newDeliveryServer(t, noCoalescing)
	plan := ts.create(la, example(t, "flag-cpp.json"))
	slow := newReceiver(t, func(r *receiver) { r.delay = func(int) time.Duration { return 2 * time.Second } })
	fast := newReceiver(t)
	ts.subscribe(la, subSpec{topic: asnTopic, endpoint: slow.URL, content: "id-only"})
	slow.waitType(time.Second, "handshake", 1) // arrived, its answer held
	ts.subscribe(la, subSpec{topic: asnTopic, endpoint: fast.URL, content: "id-only"})
	fast.waitType(time.Second, "handshake", 1)
	unscheduledReads(t, ts, plan, 1)
	fast.waitAcked(time.Second, 1)
	slow.waitAcked(5*time.Second, 1)
}

// deliveryLogsOnFailure shows the servers' delivery log lines when the
// test failed.
func deliveryLogsOnFailure(t *testing.T, servers ...*testServer) {
	if !t.Failed() {
		return
	}
	for _, ts := range servers {
		for _, line := range strings.Split(ts.logs.String(), "\n") {
			if strings.Contains(line, "subscription") && !strings.Contains(line, `"route"`) {
				t.Logf("%s: %s", ts.URL, line)
			}
		}
	}
}
