package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// testClock is the injected clock of a test server; tests move it to cross
// the SOP's date boundaries. It stands still unless it ticks.
type testClock struct {
	mu  sync.Mutex
	now time.Time
	// mark, when set, is the real instant the clock read now: a ticking
	// clock moves on with real time from there (subscription delivery
	// schedules its retries and heartbeats on the server's clock).
	mark time.Time
}

// tickingClock is a clock that reads at now and moves with real time.
func tickingClock(at time.Time) *testClock { return &testClock{now: at, mark: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mark.IsZero() {
		return c.now
	}
	return c.now.Add(time.Since(c.mark))
}

// Set moves the clock to t; a ticking clock ticks on from there.
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	if !c.mark.IsZero() {
		c.mark = time.Now()
	}
}

// syncBuffer collects the server's log lines safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setClock moves the server's clock; tokens issued before are dropped, as
// they may have expired at the new time.
func (ts *testServer) setClock(t time.Time) {
	ts.clock.Set(t)
	clear(ts.tokens)
}

// testServer is the real server, started in-process on port 0.
type testServer struct {
	t      testing.TB
	URL    string
	srv    *server
	clock  *testClock
	logs   *syncBuffer
	cfg    Config
	tokens map[string]string
	mint   func(persona string) string // set when tokens come from an external issuer, not /dev/token
}

// startDay is "now" for every test server unless a test moves the clock:
// a fixed instant, so the date rules do not depend on the day tests run.
var startDay = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// newTestServer starts a dev-mode server on a fresh embedded database.
// modify may change the configuration first (e.g. to use PostgreSQL).
func newTestServer(t testing.TB, modify ...func(*Config)) *testServer {
	t.Helper()
	return newTestServerAt(t, &testClock{now: startDay}, modify...)
}

// newDeliveryServer starts a dev-mode server whose clock ticks from
// startDay, with subscription delivery settings short enough for tests:
// retries after 50 ms doubling to 400 ms, leases of 5 s (longer than the
// slowest answer a test's receiver gives: a lease that ends mid-attempt
// lets another claim send the notification again).
func newDeliveryServer(t testing.TB, modify ...func(*Config)) *testServer {
	t.Helper()
	return newDeliveryServerAt(t, tickingClock(startDay), modify...)
}

// newDeliveryServerAt is newDeliveryServer on a given clock: replicas
// share one, as NTP keeps real servers' clocks within far less than a
// lease of each other.
func newDeliveryServerAt(t testing.TB, clock *testClock, modify ...func(*Config)) *testServer {
	t.Helper()
	fast := func(c *Config) {
		c.Subscriptions = SubscriptionConfig{Poll: 50 * time.Millisecond, RetryBase: 50 * time.Millisecond,
			RetryMax: 400 * time.Millisecond, Lease: 5 * time.Second}
	}
	return newTestServerAt(t, clock, append([]func(*Config){fast}, modify...)...)
}

// newTestServerAt starts a dev-mode server on clock.
func newTestServerAt(t testing.TB, clock *testClock, modify ...func(*Config)) *testServer {
	t.Helper()
	cfg := Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Audience: "cpis",
		LogLevel: slog.LevelDebug, ShutdownTimeout: 10 * time.Second,
		ASNCoalesceWindow: cpis.DefaultASNCoalesceWindow, // as loadConfig's default
	}
	for _, m := range modify {
		m(&cfg)
	}
	ts := &testServer{t: t, clock: clock, logs: &syncBuffer{}, cfg: cfg, tokens: map[string]string{}}
	srv, err := start(context.Background(), cfg, ts.logs, ts.clock.Now)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	ts.srv, ts.URL = srv, srv.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ts
}

// response is what a test request got back.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not JSON (%v): %s", err, r.Body)
	}
	return m
}

// token returns a bearer token for a dev persona, cached per server.
func (ts *testServer) token(persona string) string {
	ts.t.Helper()
	if tok, ok := ts.tokens[persona]; ok {
		return tok
	}
	if ts.mint != nil {
		ts.tokens[persona] = ts.mint(persona)
		return ts.tokens[persona]
	}
	res := ts.do("POST", "/dev/token", "", []byte(`{"persona":"`+persona+`"}`), "Content-Type", "application/json")
	if res.Status != http.StatusOK {
		ts.t.Fatalf("token for %s: %d %s", persona, res.Status, res.Body)
	}
	tok, _ := res.JSON(ts.t)["access_token"].(string)
	ts.tokens[persona] = tok
	return tok
}

// do sends one request; token "" sends none; headers are name, value pairs.
func (ts *testServer) do(method, path, token string, body []byte, headers ...string) response {
	ts.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != nil && method != "GET" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// as sends a request as a persona.
func (ts *testServer) as(persona, method, path string, body []byte, headers ...string) response {
	ts.t.Helper()
	return ts.do(method, path, ts.token(persona), body, headers...)
}

// example reads one of the examples/ Flags.
func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes a Flag JSON, lets f change it, and encodes it again.
func edit(t testing.TB, flag []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(flag, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// outcome returns the Spine code and expression of the first issue of an
// OperationOutcome response.
func outcome(t testing.TB, r response) (code, expression string) {
	t.Helper()
	m := r.JSON(t)
	if m["resourceType"] != "OperationOutcome" {
		t.Fatalf("not an OperationOutcome: %s", r.Body)
	}
	issue := m["issue"].([]any)[0].(map[string]any)
	if d, ok := issue["details"].(map[string]any); ok {
		code, _ = d["coding"].([]any)[0].(map[string]any)["code"].(string)
	}
	if ex, ok := issue["expression"].([]any); ok && len(ex) > 0 {
		expression, _ = ex[0].(string)
	}
	return code, expression
}

// entries returns the resources of a Bundle response of the given type.
func entries(t testing.TB, r response, resourceType string) []map[string]any {
	t.Helper()
	m := r.JSON(t)
	if m["resourceType"] != "Bundle" {
		t.Fatalf("not a Bundle (%d): %s", r.Status, r.Body)
	}
	var out []map[string]any
	es, _ := m["entry"].([]any)
	for _, e := range es {
		res := e.(map[string]any)["resource"].(map[string]any)
		if res["resourceType"] == resourceType {
			out = append(out, res)
		}
	}
	return out
}

// mustStatus fails the test when r's status is not want.
func mustStatus(t testing.TB, r response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
}

// contains reports whether s holds sub, for readable assertions.
func contains(s, sub string) bool { return strings.Contains(s, sub) }

// backend is a store a test server can run on.
type backend struct {
	name string
	db   func(t *testing.T) func(*Config) // the configuration change that selects it
}

// backends are the embedded default and PostgreSQL (a migrated schema of
// its own for each test; skipped without PostgreSQL, except under CI).
var backends = []backend{
	{"sqlite", func(*testing.T) func(*Config) { return func(*Config) {} }},
	{"postgres", func(t *testing.T) func(*Config) {
		url := pgtest.MigratedURL(t)
		return func(c *Config) { c.DatabaseURL = url }
	}},
}
