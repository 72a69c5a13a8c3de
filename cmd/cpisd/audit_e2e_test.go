package main

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// auditorEvents returns every AuditEvent the auditor can see.
func (ts *testServer) auditorEvents() []map[string]any {
	ts.t.Helper()
	res := ts.as("auditor", "GET", "/AuditEvent?_count=100", nil)
	mustStatus(ts.t, res, http.StatusOK)
	return entries(ts.t, res, "AuditEvent")
}

func TestEverySearchIsAuditedEvenWhenNothingIsFound(t *testing.T) {
	ts := newTestServer(t)
	before := len(ts.auditorEvents())
	res := ts.as("ed-clinician", "GET", "/Flag?patient=9000000009", nil)
	mustStatus(t, res, http.StatusOK)
	if n := len(entries(t, res, "Flag")); n != 0 {
		t.Fatalf("%d flags for a child with no plan", n)
	}
	events := ts.auditorEvents()
	// The auditor's own first search is audited too, and is not a patient search.
	var found bool
	for _, e := range events {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "9000000009") && strings.Contains(string(b), "search-type") {
			found = true
		}
	}
	if !found || len(events) < before+1 {
		t.Errorf("no AuditEvent records the search that found nothing (%d events)", len(events))
	}
}

func TestAccessHistoryIsTheNewest25HealthReads(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	for i := 0; i < 30; i++ {
		ts.setClock(startDay.Add(time.Duration(i) * time.Minute))
		persona := "ed-clinician"
		if i%2 == 1 {
			persona = "community-nurse"
		}
		mustStatus(t, ts.as(persona, "GET", "/Flag/"+id, nil), http.StatusOK)
	}
	// Reading the history is audited but is not itself an access.
	for i := 0; i < 3; i++ {
		mustStatus(t, ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil), http.StatusOK)
	}
	res := ts.as("la:ZLA01", "GET", "/AuditEvent?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C"+nhs, nil)
	mustStatus(t, res, http.StatusOK)
	events := entries(t, res, "AuditEvent")
	if len(events) != 25 {
		t.Fatalf("%d events, want 25", len(events))
	}
	var prev string
	for i, e := range events {
		rec := e["recorded"].(string)
		if i > 0 && rec > prev {
			t.Fatalf("not newest first: %s after %s", rec, prev)
		}
		prev = rec
	}
	newest, _ := time.Parse(time.RFC3339, events[0]["recorded"].(string))
	if !newest.Equal(startDay.Add(29 * time.Minute)) {
		t.Errorf("newest access %v, want the 30th read", newest)
	}
	// Another LA sees none of the accesses to this LA's plan.
	other := ts.as("la:ZLA02", "GET", "/AuditEvent?patient="+nhs, nil)
	mustStatus(t, other, http.StatusOK)
	if n := len(entries(t, other, "AuditEvent")); n != 0 {
		t.Errorf("another LA sees %d accesses to this LA's plan", n)
	}
}

func TestAuditorSearchesItsOrganisation(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	id := ts.create(la, flag)
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)
	var personas []map[string]any
	res := ts.do("GET", "/dev/personas", "", nil)
	mustStatus(t, res, http.StatusOK)
	if err := json.Unmarshal(res.Body, &personas); err != nil {
		t.Fatal(err)
	}
	if len(personas) < 6+6 {
		t.Errorf("%d personas, want the 6 health personas and 6 LAs", len(personas))
	}
	all := ts.auditorEvents()
	if len(all) == 0 {
		t.Fatal("the auditor sees no events")
	}
	for _, e := range all {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "ZLA01") && strings.Contains(string(b), `"create"`) {
			t.Errorf("the auditor sees another organisation's (the LA's) events")
		}
	}
	// The clinician is not an auditor: no agent or date searches.
	mustStatus(t, ts.as("ed-clinician", "GET", "/AuditEvent?patient=9990276579&date=ge2026-01-01", nil), http.StatusForbidden)
}

// TestReadFailsWhenAuditCannotCommit breaks the audit table under a running
// server: reads must answer 503 with no plan data.
func TestReadFailsWhenAuditCannotCommit(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)

	db, err := sql.Open("sqlite", filepath.Join(ts.cfg.DataDir, "cpis.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`ALTER TABLE audit_events RENAME TO audit_events_away`); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/Flag/" + id, "/Flag?patient=" + nhs, "/Flag/" + id + "/_history", "/CareTeam?patient=" + nhs} {
		res := ts.as("ed-clinician", "GET", path, nil)
		if res.Status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", path, res.Status)
		}
		if code, _ := outcome(t, res); code != "SERVICE_UNAVAILABLE" {
			t.Errorf("%s: code %q", path, code)
		}
		if strings.Contains(string(res.Body), "020 7946") || strings.Contains(string(res.Body), nhs) {
			t.Errorf("%s: plan data left the server unaudited: %s", path, res.Body)
		}
	}
	if _, err := db.Exec(`ALTER TABLE audit_events_away RENAME TO audit_events`); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)
}

// TestConcurrentReadsAreAllAudited checks the batching writer under load:
// every read served has its own AuditEvent.
func TestConcurrentReadsAreAllAudited(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)
	tok := ts.token("community-nurse")
	const n = 64
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), "GET", ts.URL+"/Flag?patient="+nhs, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				mu.Lock()
				served++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res := ts.as("auditor", "GET", "/AuditEvent?patient="+nhs+"&_count=100", nil)
	mustStatus(t, res, http.StatusOK)
	if got := len(entries(t, res, "AuditEvent")); got != served || served != n {
		t.Errorf("%d reads served, %d audited, %d sent", served, got, n)
	}
	metrics := string(ts.do("GET", "/metrics", "", nil).Body)
	for _, m := range []string{"cpis_audit_batch_records", "cpis_audit_commit_seconds", `route="/Flag"`, "cpis_http_request_duration_seconds"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
}

// TestLogsHoldNoPersonalData runs real requests, errors included, and checks
// the log for NHS numbers, names and tokens.
func TestLogsHoldNoPersonalData(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil)
	ts.as("ed-clinician", "GET", "/Flag/"+id, nil)
	ts.as("ed-clinician", "GET", "/Flag?patient=1234567890", nil)
	ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil)
	ts.as("receptionist", "GET", "/Flag?patient="+nhs, nil)
	ts.as(la, "POST", "/Flag", edit(t, flag, func(m map[string]any) {
		m["subject"].(map[string]any)["identifier"].(map[string]any)["value"] = "9990276578"
	}))
	ts.do("GET", "/Flag?patient="+nhs, "bad.token.here", nil)
	logs := ts.logs.String()
	if !strings.Contains(logs, `"route":"/Flag"`) {
		t.Fatalf("the requests were not logged: %s", logs)
	}
	forbidden := []string{nhs, "9990276578", "1234567890", "bad.token.here"}
	for _, tok := range ts.tokens {
		forbidden = append(forbidden, tok, tok[len(tok)-20:])
	}
	for _, f := range forbidden {
		if strings.Contains(logs, f) {
			t.Errorf("the log contains %q", f[:min(len(f), 12)])
		}
	}
	for _, name := range personNames(t, ts) {
		if strings.Contains(logs, name) {
			t.Errorf("the log contains the name %q", name)
		}
	}
}

// personNames are the practitioners' names the dev tokens carry.
func personNames(t testing.TB, ts *testServer) []string {
	t.Helper()
	var out []string
	for _, p := range []string{"ed-clinician", "community-nurse", "auditor"} {
		claims := jwtClaims(t, ts.token(p))
		if n, ok := claims["name"].(string); ok {
			out = append(out, n)
		}
	}
	return out
}

// jwtClaims decodes a token's claims (no verification: the test made it).
func jwtClaims(t testing.TB, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact token")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
