package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// laRefSystem is the identifier system of an LA's own plan reference.
const laRefSystem = "https://cpis.example.org/fhir/Id/la-plan-reference"

// testNHS is the i-th valid NHS number of the 999 test range.
func testNHS(i int) string {
	for n := i * 10; ; n++ {
		nine := fmt.Sprintf("999%06d", n)
		sum := 0
		for j := 0; j < 9; j++ {
			sum += int(nine[j]-'0') * (10 - j)
		}
		if check := (11 - sum%11) % 11; check != 10 {
			return nine + strconv.Itoa(check)
		}
	}
}

// referenced is the example CPP on child i with the LA's reference ref,
// compact, as one line of an NDJSON file.
func referenced(t testing.TB, i int, ref string, edits ...func(map[string]any)) []byte {
	t.Helper()
	b := edit(t, example(t, "flag-cpp.json"), func(m map[string]any) {
		setSubject(testNHS(i))(m)
		m["identifier"] = []any{map[string]any{"system": laRefSystem, "value": ref}}
		for _, e := range edits {
			e(m)
		}
	})
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func ifRef(ref string) string { return "identifier=" + laRefSystem + "|" + ref }

// versionOf is the ETag of a plan as its LA reads it.
func (ts *testServer) versionOf(persona, id string) string {
	ts.t.Helper()
	res := ts.as(persona, "GET", "/Flag/"+id, nil)
	mustStatus(ts.t, res, http.StatusOK)
	return res.Header.Get("ETag")
}

// laPlans counts the plans an LA holds, whatever their status.
func (ts *testServer) laPlans(persona string) int {
	ts.t.Helper()
	n, path := 0, "/Flag?_count=100"
	for path != "" {
		res := ts.as(persona, "GET", path, nil)
		mustStatus(ts.t, res, http.StatusOK)
		n += len(entries(ts.t, res, "Flag"))
		path = strings.TrimPrefix(link(ts.t, res, "next"), ts.URL)
	}
	return n
}

func TestConditionalWritesByTheLAsReference(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			one := referenced(t, 1, "CP-0001")
			// Conditional create: once, then the existing plan, nothing written.
			first := ts.as(la, "POST", "/Flag", one, "If-None-Exist", ifRef("CP-0001"))
			mustStatus(t, first, http.StatusCreated)
			id := first.JSON(t)["id"].(string)
			again := ts.as(la, "POST", "/Flag", one, "If-None-Exist", ifRef("CP-0001"))
			mustStatus(t, again, http.StatusOK)
			if again.JSON(t)["id"] != id || again.Header.Get("ETag") != `W/"1"` {
				t.Errorf("If-None-Exist answered %s %s, want the existing plan at version 1", again.JSON(t)["id"], again.Header.Get("ETag"))
			}
			// The reference is the LA's: shown to it, never to health readers.
			if !contains(string(ts.as(la, "GET", "/Flag/"+id, nil).Body), "CP-0001") {
				t.Error("the LA does not see its own reference")
			}
			if body := ts.as("ed-clinician", "GET", "/Flag/"+id, nil).Body; contains(string(body), "CP-0001") || contains(string(body), laRefSystem) {
				t.Errorf("a health reader sees the LA's reference: %s", body)
			}

			// Conditional update: 201 when none, 200 and a new version when changed,
			// 200 with the stored version and nothing written when unchanged.
			two := referenced(t, 2, "CP-0002")
			put := func(body []byte, headers ...string) response {
				return ts.as(la, "PUT", "/Flag?"+url.PathEscape(ifRef("CP-0002")), body, headers...)
			}
			res := put(two)
			mustStatus(t, res, http.StatusCreated)
			id2 := res.JSON(t)["id"].(string)
			res = put(two)
			mustStatus(t, res, http.StatusOK)
			if res.Header.Get("ETag") != `W/"1"` {
				t.Errorf("an unchanged PUT answered %s, want the stored W/\"1\"", res.Header.Get("ETag"))
			}
			changed := referenced(t, 2, "CP-0002", setPhone("020 7946 0199"))
			mustStatus(t, put(changed, "If-Match", `W/"9"`), http.StatusPreconditionFailed)
			res = put(changed, "If-Match", `W/"1"`)
			mustStatus(t, res, http.StatusOK)
			if res.Header.Get("ETag") != `W/"2"` || res.JSON(t)["id"] != id2 {
				t.Errorf("a changed PUT answered %s for %v", res.Header.Get("ETag"), res.JSON(t)["id"])
			}
			if n := len(entries(t, ts.as(la, "GET", "/Flag/"+id2+"/_history", nil), "Flag")); n != 2 {
				t.Errorf("%d versions, want 2: the unchanged PUT wrote one", n)
			}

			// Another LA may use the same reference: it never touches this one.
			theirs := referenced(t, 1, "CP-0001", setAuthor("ZLA02", ""), setPhone("020 7946 0201"))
			res = ts.as("la:ZLA02", "PUT", "/Flag?"+url.PathEscape(ifRef("CP-0001")), theirs)
			mustStatus(t, res, http.StatusCreated)
			if res.JSON(t)["id"] == id {
				t.Fatal("another LA's conditional update reached this LA's plan")
			}
			mustStatus(t, ts.as("la:ZLA02", "DELETE", "/Flag?"+url.PathEscape(ifRef("CP-0002")), nil), http.StatusNotFound)
			if v := ts.versionOf(la, id); v != `W/"1"` {
				t.Errorf("this LA's plan moved to %s", v)
			}

			// Conditional delete, then no match.
			mustStatus(t, ts.as(la, "DELETE", "/Flag?"+url.PathEscape(ifRef("CP-0002")), nil), http.StatusNoContent)
			mustStatus(t, ts.as(la, "DELETE", "/Flag?"+url.PathEscape(ifRef("CP-0002")), nil), http.StatusNotFound)

			// Any other identifier is refused.
			other := edit(t, two, func(m map[string]any) {
				m["identifier"] = []any{map[string]any{"system": "https://example.org/case-id", "value": "CP-9"}}
			})
			mustStatus(t, ts.as(la, "POST", "/Flag", other), http.StatusBadRequest)
		})
	}
}

// bundle is a batch or transaction Bundle of entries, each a JSON object.
func bundle(t testing.TB, typ string, entries ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": typ, "entry": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entry(method, url string, resource []byte, request ...string) map[string]any {
	req := map[string]any{"method": method, "url": url}
	for i := 0; i+1 < len(request); i += 2 {
		req[request[i]] = request[i+1]
	}
	e := map[string]any{"request": req}
	if resource != nil {
		e["resource"] = json.RawMessage(resource)
	}
	return e
}

// responses returns the status and outcome of each entry of a
// batch-response or transaction-response.
func responses(t testing.TB, r response) (statuses []string, outcomes []map[string]any) {
	t.Helper()
	m := r.JSON(t)
	if m["resourceType"] != "Bundle" {
		t.Fatalf("not a Bundle (%d): %s", r.Status, r.Body)
	}
	for _, e := range m["entry"].([]any) {
		res := e.(map[string]any)["response"].(map[string]any)
		statuses = append(statuses, res["status"].(string))
		o, _ := res["outcome"].(map[string]any)
		outcomes = append(outcomes, o)
	}
	return statuses, outcomes
}

func TestBatchAndTransactionBundles(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			bad := referenced(t, 11, "B-2", func(m map[string]any) {
				m["text"] = map[string]any{"status": "generated", "div": "<div>bruising</div>"}
			})
			// A batch stores the valid entries and reports the invalid one.
			res := ts.as(la, "POST", "/", bundle(t, "batch",
				entry("POST", "Flag", referenced(t, 10, "B-1")),
				entry("POST", "Flag", bad),
				entry("PUT", "Flag?"+ifRef("B-3"), referenced(t, 12, "B-3")),
			))
			mustStatus(t, res, http.StatusOK)
			statuses, outcomes := responses(t, res)
			if len(statuses) != 3 || !strings.HasPrefix(statuses[0], "201") || !strings.HasPrefix(statuses[1], "400") || !strings.HasPrefix(statuses[2], "201") {
				t.Fatalf("statuses %v", statuses)
			}
			o, _ := json.Marshal(outcomes[1])
			for _, want := range []string{"VALIDATION_ERROR", "CPR07", "Bundle.entry[1]"} {
				if !contains(string(o), want) {
					t.Errorf("the refused entry's outcome lacks %s: %s", want, o)
				}
			}
			if n := ts.laPlans(la); n != 2 {
				t.Fatalf("%d plans after the batch, want 2", n)
			}

			// A transaction with one invalid entry stores nothing.
			before := ts.laPlans(la)
			res = ts.as(la, "POST", "/", bundle(t, "transaction",
				entry("POST", "Flag", referenced(t, 13, "T-1")),
				entry("PUT", "Flag?"+ifRef("T-2"), bad),
			))
			mustStatus(t, res, http.StatusBadRequest)
			if code, expr := outcome(t, res); code != "VALIDATION_ERROR" || !strings.HasPrefix(expr, "Bundle.entry[1]") {
				t.Errorf("transaction refused with %s at %s", code, expr)
			}
			if n := ts.laPlans(la); n != before {
				t.Fatalf("%d plans after a refused transaction, want %d", n, before)
			}
			// A valid transaction stores all, each entry seeing the ones before it.
			rid := uuid.NewString()
			tx := bundle(t, "transaction",
				entry("POST", "Flag", referenced(t, 13, "T-1")),
				entry("PUT", "Flag?"+ifRef("T-1"), referenced(t, 13, "T-1", setPhone("020 7946 0199"))),
				entry("DELETE", "Flag?"+ifRef("B-3"), nil),
			)
			res = ts.as(la, "POST", "/", tx, "X-Request-ID", rid)
			mustStatus(t, res, http.StatusOK)
			statuses, _ = responses(t, res)
			if fmt.Sprint(statuses) != "[201 Created 200 OK 204 No Content]" {
				t.Errorf("transaction statuses %v", statuses)
			}
			after := ts.laPlans(la)
			// The same Bundle again, with its X-Request-ID: a retry, nothing new.
			mustStatus(t, ts.as(la, "POST", "/", tx, "X-Request-ID", rid), http.StatusOK)
			if n := ts.laPlans(la); n != after {
				t.Errorf("%d plans after a retried transaction, want %d", n, after)
			}
		})
	}
}

func TestBundleLimits(t *testing.T) {
	ts := newTestServer(t)
	var es []map[string]any
	for i := range 1001 {
		es = append(es, entry("DELETE", "Flag?"+ifRef("X-"+strconv.Itoa(i)), nil))
	}
	mustStatus(t, ts.as(la, "POST", "/", bundle(t, "batch", es...)), http.StatusRequestEntityTooLarge)
	mustStatus(t, ts.as("ed-clinician", "POST", "/", bundle(t, "batch", es[:1]...)), http.StatusForbidden)
	mustStatus(t, ts.as(la, "POST", "/", bundle(t, "collection", es[:1]...)), http.StatusBadRequest)
}

// ndjson is the lines of a file.
func ndjson(lines ...[]byte) []byte { return append(bytes.Join(lines, []byte("\n")), '\n') }

// imports posts a file to $import with the given query and returns the
// Parameters' counts and the lines rejected.
func (ts *testServer) imports(persona, query string, file []byte) (response, map[string]int, []int) {
	ts.t.Helper()
	res := ts.as(persona, "POST", "/Flag/$import?"+query, file, "Content-Type", "application/fhir+ndjson")
	if res.Status != http.StatusOK {
		return res, nil, nil
	}
	counts := map[string]int{}
	var rejected []int
	for _, p := range res.JSON(ts.t)["parameter"].([]any) {
		p := p.(map[string]any)
		if v, ok := p["valueInteger"].(float64); ok {
			counts[p["name"].(string)] = int(v)
		}
		if p["name"] == "rejection" {
			for _, part := range p["part"].([]any) {
				if part := part.(map[string]any); part["name"] == "line" {
					rejected = append(rejected, int(part["valueInteger"].(float64)))
				}
			}
		}
	}
	return res, counts, rejected
}

func TestImportAndReconcile(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			var lines [][]byte
			for i := range 40 {
				lines = append(lines, referenced(t, 100+i, fmt.Sprintf("IMP-%03d", i)))
			}
			// Another LA's plan with a reference the file also uses: never touched.
			theirs := ts.create("la:ZLA02", referenced(t, 100, "IMP-000", setAuthor("ZLA02", ""), setPhone("020 7946 0201")))

			res, c, rej := ts.imports(la, "dryRun=true", ndjson(lines...))
			mustStatus(t, res, http.StatusOK)
			if c["created"] != 40 || len(rej) != 0 || ts.laPlans(la) != 0 {
				t.Fatalf("dry run: %v %v, %d plans stored", c, rej, ts.laPlans(la))
			}
			res, c, _ = ts.imports(la, "", ndjson(lines...))
			mustStatus(t, res, http.StatusOK)
			if c["created"] != 40 || ts.laPlans(la) != 40 {
				t.Fatalf("first import: %v, %d plans", c, ts.laPlans(la))
			}
			mine := entries(t, ts.as(la, "GET", "/Flag?patient="+testNHS(100), nil), "Flag")
			if len(mine) != 1 {
				t.Fatalf("%d plans of this LA on the first child, want 1", len(mine))
			}
			// The same file again writes nothing: no new version.
			ts.setClock(startDay.Add(time.Hour))
			res, c, _ = ts.imports(la, "", ndjson(lines...))
			mustStatus(t, res, http.StatusOK)
			if c["unchanged"] != 40 || c["created"]+c["updated"] != 0 {
				t.Fatalf("re-import: %v", c)
			}
			if v := ts.versionOf(la, mine[0]["id"].(string)); v != `W/"1"` {
				t.Errorf("a re-imported unchanged plan is at %s, want W/\"1\"", v)
			}
			// A changed line updates; a bad line is refused by number, the rest load.
			lines[5] = referenced(t, 105, "IMP-005", setPhone("020 7946 0199"))
			withBad := append(append([][]byte{}, lines...), []byte(`{"resourceType":"Flag","status":"active"}`), []byte("not json"))
			res, c, rej = ts.imports(la, "", ndjson(withBad...))
			mustStatus(t, res, http.StatusOK)
			if c["updated"] != 1 || c["unchanged"] != 39 || c["rejected"] != 2 || fmt.Sprint(slices.Compact(rej)) != "[41 42]" {
				t.Fatalf("delta with a change and two bad lines: %v, rejected %v", c, rej)
			}
			if contains(string(res.Body), "not json") {
				t.Errorf("a rejection repeats the line's content: %s", res.Body)
			}
			// Full: a file missing more than 10% (and more than 10 plans) is refused, unless forced.
			ts.setClock(startDay.Add(48 * time.Hour))
			res, _, _ = ts.imports(la, "mode=full", ndjson(lines[:25]...))
			mustStatus(t, res, http.StatusUnprocessableEntity)
			if !contains(string(res.Body), "15") {
				t.Errorf("the refusal does not say how many would end: %s", res.Body)
			}
			unreferenced := ts.create(la, example(t, "flag-cpp.json")) // written without the LA's reference
			res, c, _ = ts.imports(la, "mode=full", ndjson(lines[:38]...))
			mustStatus(t, res, http.StatusOK)
			if c["ended"] != 2 || c["notReconciled"] != 1 {
				t.Fatalf("full import missing two, one plan without a reference: %v", c)
			}
			if v := ts.versionOf(la, unreferenced); v != `W/"1"` {
				t.Errorf("a plan without a reference was changed by a full import: %s", v)
			}
			// The ended plans show as ended to health readers.
			h := ts.as("ed-clinician", "GET", "/Flag?patient="+testNHS(139), nil)
			if fs := entries(t, h, "Flag"); len(fs) != 1 || fs[0]["status"] != "inactive" {
				t.Errorf("an ended plan reads as %v", fs)
			}
			if v := ts.versionOf("la:ZLA02", theirs); v != `W/"1"` {
				t.Errorf("another LA's plan with the same reference moved to %s", v)
			}
			res, c, _ = ts.imports(la, "mode=full&force=true", ndjson(lines[:25]...))
			mustStatus(t, res, http.StatusOK)
			if c["ended"] != 13 {
				t.Errorf("forced full import: %v", c)
			}
		})
	}
}

func TestAnImportCutOffStoresNothing(t *testing.T) {
	base := pgtest.MigratedURL(t)
	app := "cpis_import_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	ts := newTestServer(t, func(c *Config) { c.DatabaseURL = base + "&application_name=" + app })
	ts.create(la, referenced(t, 1, "KEEP-1"))
	before := ts.laPlans(la)

	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", ts.URL+"/Flag/$import", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.token(la))
	req.Header.Set("Content-Type", "application/fhir+ndjson")
	answer := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answer <- 0
			return
		}
		res.Body.Close()
		answer <- res.StatusCode
	}()
	for i := range 3000 {
		if _, err := pw.Write(append(referenced(t, 200+i, fmt.Sprintf("CUT-%04d", i)), '\n')); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := pgx.Connect(context.Background(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		if _, err := pw.Write(append(referenced(t, 3200+i, fmt.Sprintf("CUT-%04d", 3000+i)), '\n')); err != nil {
			break // the server may stop reading once it has failed
		}
	}
	pw.Close()
	if status := <-answer; status != http.StatusServiceUnavailable {
		t.Errorf("an import whose database connection was killed answered %d, want 503", status)
	}
	if n := ts.laPlans(la); n != before {
		t.Errorf("%d plans after the cut-off import, want %d: it was half applied", n, before)
	}
}

// TestCpisctlUploadsToTheServer runs the operator's command, built from
// source, against the real server: a file with one bad line exits 2 and
// loads the rest; the same file without it exits 0, all unchanged but the
// fixed line.
func TestCpisctlUploadsToTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cpisctl")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "cpisctl")
	if out, err := exec.Command("go", "build", "-o", bin, "../cpisctl").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ts := newTestServer(t)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(ts.token(la)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	upload := func(file []byte, args ...string) (string, int) {
		path := filepath.Join(dir, "plans.ndjson")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append(append([]string{"upload", "--server", ts.URL, "--token-file", tokenFile}, args...), path)...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	good := [][]byte{referenced(t, 300, "CTL-1"), referenced(t, 301, "CTL-2")}
	out, code := upload(ndjson(append(good, []byte(`{"resourceType":"Flag"}`))...))
	if code != 2 || !contains(out, "CPF03") {
		t.Fatalf("exit %d, want 2 (one line rejected):\n%s", code, out)
	}
	out, code = upload(ndjson(good...))
	if code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("exit %d, want 0:\n%s", code, out)
	}
	if contains(out, ts.token(la)) {
		t.Error("cpisctl printed the token")
	}
	if n := ts.laPlans(la); n != 2 {
		t.Errorf("%d plans, want 2", n)
	}
}
