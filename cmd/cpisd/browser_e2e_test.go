package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The browser tests drive the viewer in Debian's Chromium through
// Playwright (viewer/e2e). This file starts the real server in process on a
// test clock, seeds plans through the FHIR API as the LAs would, and runs
// `node --test` on the Playwright tests, which reach the server at
// CPIS_URL and move its clock through CPIS_CLOCK_URL.

// e2eDir is where the Playwright tests and their locked node modules live.
const e2eDir = "../../viewer/e2e"

// browserStart is the test clock's start for the browser tests: a Tuesday
// at 10:00 in London (GMT in March), inside the LAs' office hours. Every
// fixture date is relative to it, never to the day the tests run.
var browserStart = time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)

// browserFixtures are the NHS numbers the Playwright tests look up, passed
// to them as JSON in CPIS_FIXTURES. All are fictional test numbers (999
// range) that pass the Modulus 11 check, except Invalid.
type browserFixtures struct {
	TwoPlans  string `json:"twoPlans"`  // CPP of ZLA01 and CLA of ZLA02, both active
	OutOfArea string `json:"outOfArea"` // CPP of ZLA06: in the register, not in the Trust's directory
	Mother    string `json:"mother"`    // UCPP of ZLA03
	Ended     string `json:"ended"`     // CPP of ZLA04 that ended two months ago, still shown
	Viewed    string `json:"viewed"`    // CLA of ZLA05, looked up only by the "previously viewed by" test
	NoPlan    string `json:"noPlan"`    // valid, with no plan
	Invalid   string `json:"invalid"`   // fails Modulus 11
}

var fixtures = browserFixtures{
	TwoPlans: "9991000100", OutOfArea: "9991000119", Mother: "9991000127",
	Ended: "9991000135", Viewed: "9991000151", NoPlan: "9991000143", Invalid: "9991000101",
}

// testDirectoryYAML is the Trust's LA directory of the browser tests: the
// dev LAs but Luton (ZLA06), so that a plan of ZLA06, which the register
// knows, is out of area. Offices answer Monday to Friday from 09:00 to 17:00.
const testDirectoryYAML = `
authorities:
  - code: ZLA01
    name: London Borough of Hackney and City of London
    emergencyPhone: 020 7946 0101
    officePhone: 020 7946 0102
    referral: "Multi-Agency Safeguarding Hub (MASH): telephone first, then the online referral form"
    referralContact: 020 7946 0103
    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
  - code: ZLA02
    name: London Borough of Newham
    emergencyPhone: 020 7946 0201
    officePhone: 020 7946 0202
    referral: "Children's Front Door: the multi-agency referral form by secure e-mail"
    referralContact: childrensfrontdoor@zla02.example.org
    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
  - code: ZLA03
    name: London Borough of Tower Hamlets
    emergencyPhone: 020 7946 0301
    officePhone: 020 7946 0302
    referral: "Multi-Agency Safeguarding Hub (MASH): telephone consultation, then the referral form"
    referralContact: 020 7946 0303
    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
  - code: ZLA04
    name: Bedford Borough Council
    emergencyPhone: 020 7946 0401
    officePhone: 020 7946 0402
    referral: "Multi-Agency Safeguarding Hub (MASH): telephone first, then the online referral form"
    referralContact: 020 7946 0403
    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
  - code: ZLA05
    name: Central Bedfordshire Council
    emergencyPhone: 020 7946 0501
    officePhone: 020 7946 0502
    referral: "Access and Referral Hub: telephone to discuss the concern, then the online referral form"
    referralContact: 020 7946 0503
    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
`

// browserPrereqs finds Chromium and the node modules; when one is missing
// the test is skipped, except under CI, where it fails: CI installs both.
func browserPrereqs(t *testing.T) (chromium, node string) {
	t.Helper()
	chromium = os.Getenv("CPIS_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, "Chromium ("+chromium+"; apt-get install chromium, or set CPIS_CHROMIUM)")
	}
	if _, err := os.Stat(filepath.Join(e2eDir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "viewer/e2e/node_modules (npm ci --prefix viewer/e2e)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node")
	}
	if len(missing) == 0 {
		return chromium, node
	}
	msg := "browser tests need " + strings.Join(missing, ", ") + "; .ci/run installs them"
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set: not skipping)")
	}
	t.Skip(msg)
	return "", ""
}

// TestBrowserViewer runs the Playwright tests of viewer/e2e against the
// real server: SMART launches, the patient pages, directory advice, the
// discrepancy reports, sign-out and the axe checks (item 13 of issue 11).
func TestBrowserViewer(t *testing.T) {
	chromium, node := browserPrereqs(t)
	clock := tickingClock(browserStart)
	ts := newTestServerAt(t, clock, browserConfig(t))
	seedBrowserFixtures(t, ts)
	env := browserEnv(t, ts.URL, clockControl(t, clock), chromium)
	// Ten minutes: under make test the other packages' tests share the
	// machine's cores with Chromium.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := runStreamed(t, ctx, e2eDir, env, node, nodeTestArgs(t)...); err != nil {
		t.Errorf("node --test: %v (server log below)", err)
		t.Log(lastLines(ts.logs.String(), 60))
	}
}

// browserEnv is the environment of the Playwright tests (see
// viewer/e2e/helpers.mjs). CPIS_SCREENSHOTS_DIR passes through, made
// absolute from the repository root, as node runs in viewer/e2e.
func browserEnv(t *testing.T, serverURL, clockURL, chromium string) []string {
	t.Helper()
	fx, err := json.Marshal(fixtures)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "CPIS_URL="+serverURL, "CPIS_CLOCK_URL="+clockURL,
		"CPIS_CHROMIUM="+chromium, "CPIS_FIXTURES="+string(fx), "CPIS_START="+browserStart.Format(time.RFC3339))
	if dir := os.Getenv("CPIS_SCREENSHOTS_DIR"); dir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join("../..", dir)
		}
		abs, err := filepath.Abs(dir)
		if err == nil {
			err = os.MkdirAll(abs, 0o755)
		}
		if err != nil {
			t.Fatalf("CPIS_SCREENSHOTS_DIR: %v", err)
		}
		env = append(env, "CPIS_SCREENSHOTS_DIR="+abs)
	}
	return env
}

// nodeTestArgs runs every viewer/e2e/*.test.mjs, one file at a time (the
// files share the server and its clock); CPIS_E2E_PATTERN, when set, runs
// only the tests whose names match it.
func nodeTestArgs(t *testing.T) []string {
	t.Helper()
	tests, err := filepath.Glob(filepath.Join(e2eDir, "*.test.mjs"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no Playwright tests in %s (%v)", e2eDir, err)
	}
	args := []string{"--test", "--test-concurrency=1", "--test-reporter=spec"}
	if p := os.Getenv("CPIS_E2E_PATTERN"); p != "" {
		args = append(args, "--test-name-pattern="+p)
	}
	return append(args, relative(t, tests)...)
}

// browserConfig gives the server the six dev LAs as its register and the
// test directory (testDirectoryYAML), which leaves one of them out.
func browserConfig(t *testing.T) func(*Config) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "directory.yaml")
	if err := os.WriteFile(dir, []byte(testDirectoryYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *Config) {
		c.LARegisterFile, c.LADirectoryFile = "../../examples/la-register.csv", dir
	}
}

// relative names the test files relative to e2eDir, where node runs.
func relative(t *testing.T, files []string) []string {
	t.Helper()
	out := make([]string, len(files))
	for i, f := range files {
		r, err := filepath.Rel(e2eDir, f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = r
	}
	return out
}

// runStreamed runs a command in dir and copies each line it prints into
// the test log as it comes, so that a slow or hanging browser test shows
// where it is.
func runStreamed(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) error {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	return err
}

// lastLines is the tail of a log, enough to see why a page failed.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// clockControl serves POST /clock {"at": RFC3339} on loopback to move the
// server's clock from the browser tests (test-only: the server itself has
// no such endpoint). GET /clock answers the current time.
func clockControl(t *testing.T, clock *testClock) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/clock" {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodPost {
			var body struct {
				At time.Time `json:"at"`
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.At.IsZero() {
				http.Error(w, `want {"at": RFC3339}`, http.StatusBadRequest)
				return
			}
			clock.Set(body.At)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]time.Time{"at": clock.Now()})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/clock"
}

// planFlag is one plan the fixtures upload, as a Flag built from the CPP
// example.
type planFlag struct {
	nhs, kind, la, start, end, born string
}

// laNames are the register's names of the dev LAs (examples/la-register.csv).
var laNames = map[string]string{
	"ZLA01": "London Borough of Hackney and City of London", "ZLA02": "London Borough of Newham",
	"ZLA03": "London Borough of Tower Hamlets", "ZLA04": "Bedford Borough Council",
	"ZLA05": "Central Bedfordshire Council", "ZLA06": "Luton Borough Council",
}

var planTypes = map[string][3]string{ // code: display, SNOMED code, SNOMED display
	"CPP":  {"Child Protection Plan", "1064311000000109", "Child protection plan"},
	"CLA":  {"Child Looked After", "764841000000100", "Looked after child"},
	"UCPP": {"Unborn Child Protection Plan", "", ""}, // as examples/flag-ucpp.json: no SNOMED code
}

// seedBrowserFixtures uploads the fixtures' plans as each LA's system.
func seedBrowserFixtures(t *testing.T, ts *testServer) {
	t.Helper()
	plans := []planFlag{
		{fixtures.TwoPlans, "CPP", "ZLA01", "2026-01-05", "2027-01-05", "2016-05-01"},
		{fixtures.TwoPlans, "CLA", "ZLA02", "2026-02-02", "2027-02-02", "2016-05-01"},
		{fixtures.OutOfArea, "CPP", "ZLA06", "2025-12-01", "2026-12-01", "2019-07-14"},
		{fixtures.Mother, "UCPP", "ZLA03", "2026-02-01", "2026-08-01", ""},
		{fixtures.Ended, "CPP", "ZLA04", "2025-01-10", "2026-01-10", "2015-09-30"},
		{fixtures.Viewed, "CLA", "ZLA05", "2025-11-03", "2026-11-03", "2012-02-20"},
	}
	base := example(t, "flag-cpp.json")
	for _, p := range plans {
		ts.create("la:"+p.la, p.flag(t, base))
	}
}

// flag is the plan as a Flag: the CPP example with this plan's subject,
// type, dates, LA and the LA's dev numbers (020 7946 0N01 and 0N02).
func (p planFlag) flag(t *testing.T, base []byte) []byte {
	t.Helper()
	n := p.la[len(p.la)-1:]
	emergency, office := "020 7946 0"+n+"01", "020 7946 0"+n+"02"
	return edit(t, base, func(m map[string]any) {
		m["subject"].(map[string]any)["identifier"].(map[string]any)["value"] = p.nhs
		m["period"] = map[string]any{"start": p.start, "end": p.end}
		pt := planTypes[p.kind]
		coding := []any{map[string]any{"system": "https://cpis.example.org/fhir/CodeSystem/cpis-plan-type", "code": p.kind, "display": pt[0]}}
		if pt[1] != "" {
			coding = append(coding, map[string]any{"system": "http://snomed.info/sct", "code": pt[1], "display": pt[2]})
		}
		m["code"] = map[string]any{"text": pt[0], "coding": coding}
		author := m["author"].(map[string]any)
		author["identifier"].(map[string]any)["value"] = p.la
		author["display"] = laNames[p.la]
		var ext []any
		for _, e := range m["extension"].([]any) {
			e := e.(map[string]any)
			switch url := e["url"].(string); {
			case strings.HasSuffix(url, "emergency-duty-telephone"):
				e["valueContactPoint"].(map[string]any)["value"] = emergency
			case strings.HasSuffix(url, "office-hours-telephone"):
				e["valueContactPoint"].(map[string]any)["value"] = office
			case strings.HasSuffix(url, "child-birth-date"):
				if p.born == "" {
					continue
				}
				e["valueDate"] = p.born
			}
			ext = append(ext, e)
		}
		m["extension"] = ext
	})
}
