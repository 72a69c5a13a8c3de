package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// setClocks moves the clocks of several servers together.
func setClocks(at time.Time, servers ...*testServer) {
	for _, s := range servers {
		s.setClock(at)
	}
}

func TestTwoReplicasShareOneDatabase(t *testing.T) {
	dbURL := pgtest.MigratedURL(t)
	clock := &testClock{now: startDay}
	iss := newExternalIssuer(t, clock.Now)
	a, b := iss.replica(t, dbURL), iss.replica(t, dbURL)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)

	id := a.create(la, flag)
	mustStatus(t, b.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)

	for v := 1; v <= 5; v++ {
		// Each round changes the plan: a PUT that changes nothing writes nothing.
		body := edit(t, flag, func(m map[string]any) { m["id"] = id })
		body = edit(t, body, setPhone(fmt.Sprintf("020 7946 01%02d", 10+v)))
		statuses := concurrently(func() int {
			return a.as(la, "PUT", "/Flag/"+id, body, "If-Match", etagOf(v)).Status
		}, func() int {
			return b.as(la, "PUT", "/Flag/"+id, body, "If-Match", etagOf(v)).Status
		})
		sort.Ints(statuses)
		if statuses[0] != http.StatusOK || statuses[1] != http.StatusPreconditionFailed {
			t.Fatalf("round %d: statuses %v, want one 200 and one 412", v, statuses)
		}
	}

	for i := 1; i <= 6; i++ {
		setClocks(startDay.Add(time.Duration(i)*time.Minute), a, b)
		via := a
		if i%2 == 0 {
			via = b
		}
		mustStatus(t, via.as("community-nurse", "GET", "/Flag?patient="+nhs, nil), http.StatusOK)
	}
	hist := a.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil)
	mustStatus(t, hist, http.StatusOK)
	events := entries(t, hist, "AuditEvent")
	if len(events) != 7 { // the first read through b, and six searches
		t.Fatalf("%d events in the access history, want 7", len(events))
	}
	for i := 1; i < len(events); i++ {
		if events[i]["recorded"].(string) > events[i-1]["recorded"].(string) {
			t.Errorf("access history not in time order at %d", i)
		}
	}
	for _, s := range []*testServer{a, b} {
		if !strings.Contains(string(hist.Body), s.URL) {
			t.Errorf("no access recorded by replica %s appears in the history", s.URL)
		}
	}
}

func etagOf(v int) string { return `W/"` + strconv.Itoa(v) + `"` }

// concurrently runs the functions at the same moment and returns their results.
func concurrently(fs ...func() int) []int {
	out := make([]int, len(fs))
	var start, done sync.WaitGroup
	start.Add(1)
	for i, f := range fs {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			out[i] = f()
		}()
	}
	start.Done()
	done.Wait()
	return out
}

// TestPostgresOutageAndRecovery cuts the network to PostgreSQL under a
// running server: it answers 503 and gives out no plan data, then serves
// again by itself once the database is back.
func TestPostgresOutageAndRecovery(t *testing.T) {
	proxy := pgtest.StartProxy(t, pgtest.MigratedURL(t))
	ts := newTestServer(t, func(c *Config) { c.DatabaseURL = proxy.URL })
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	ts.token("ed-clinician")
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)

	proxy.Stop()
	mustStatus(t, ts.do("GET", "/readyz", "", nil), http.StatusServiceUnavailable)
	for _, path := range []string{"/Flag/" + id, "/Flag?patient=" + nhs, "/AuditEvent?patient=" + nhs} {
		res := ts.as("ed-clinician", "GET", path, nil)
		if res.Status != http.StatusServiceUnavailable {
			t.Errorf("%s while down: %d, want 503", path, res.Status)
		}
		if strings.Contains(string(res.Body), nhs) || strings.Contains(string(res.Body), "020 7946") {
			t.Errorf("%s while down leaked plan data: %s", path, res.Body)
		}
	}

	proxy.Start(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ready := ts.do("GET", "/readyz", "", nil).Status == http.StatusOK
		read := ts.as("ed-clinician", "GET", "/Flag/"+id, nil).Status == http.StatusOK
		if ready && read {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not serve again within 15 s of PostgreSQL returning")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTerminatedBackendsNeverLeakUnauditedData kills the server's database
// connections with pg_terminate_backend while clients read: every answer is
// 200 or 503, and every 200 has its AuditEvent.
func TestTerminatedBackendsNeverLeakUnauditedData(t *testing.T) {
	base := pgtest.MigratedURL(t)
	app := "cpis_e2e_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	ts := newTestServer(t, func(c *Config) { c.DatabaseURL = base + "&application_name=" + app })
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)
	tok := ts.token("community-nurse")

	admin, err := pgx.Connect(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	stop := make(chan struct{})
	killed := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				killed <- n
				return
			case <-time.After(20 * time.Millisecond):
			}
			tag, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app)
			if err == nil {
				n += int(tag.RowsAffected())
			}
		}
	}()
	ok, unavailable := 0, 0
	for i := 0; i < 200; i++ {
		res := ts.do("GET", "/Flag?patient="+nhs, tok, nil)
		switch res.Status {
		case http.StatusOK:
			ok++
		case http.StatusServiceUnavailable:
			unavailable++
			if strings.Contains(string(res.Body), "020 7946") {
				t.Fatalf("a 503 carried plan data: %s", res.Body)
			}
		default:
			t.Fatalf("status %d during terminations: %s", res.Status, res.Body)
		}
	}
	close(stop)
	if n := <-killed; n == 0 {
		t.Fatal("no backend was terminated: the test did not test anything")
	}
	nurse := jwtClaims(t, tok)["nhsid_useruid"].(string)
	audited := countAll(t, ts, "/AuditEvent?patient="+nhs+"&agent="+nurse+"&_count=100")
	if audited < ok {
		t.Errorf("%d reads served but only %d audited (%d answered 503)", ok, audited, unavailable)
	}
	t.Logf("%d served, %d answered 503, %d audited", ok, unavailable, audited)
}

// countAll counts the resources of a search as the auditor, following next
// links, retrying while the server answers 503 (it may still be reconnecting).
func countAll(t testing.TB, ts *testServer, path string) int {
	t.Helper()
	n := 0
	for path != "" {
		res := ts.as("auditor", "GET", path, nil)
		for tries := 0; res.Status == http.StatusServiceUnavailable && tries < 100; tries++ {
			time.Sleep(100 * time.Millisecond)
			res = ts.as("auditor", "GET", path, nil)
		}
		mustStatus(t, res, http.StatusOK)
		n += len(entries(t, res, "AuditEvent"))
		path = strings.TrimPrefix(link(t, res, "next"), ts.URL)
	}
	return n
}

func TestServerRefusesASchemaThatIsBehind(t *testing.T) {
	dbURL := pgtest.URL(t) // a fresh schema, never migrated
	cfg := Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Audience: "cpis", DatabaseURL: dbURL}
	_, err := start(context.Background(), cfg, &syncBuffer{}, time.Now)
	if err == nil || !strings.Contains(err.Error(), "cpisctl migrate") {
		t.Fatalf("start on an unmigrated database: %v; want a refusal naming cpisctl migrate", err)
	}
}
