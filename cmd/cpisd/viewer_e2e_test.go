package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// The viewer end to end: a Go HTTP client with a cookie jar plays the
// browser against the real server (dev mode, demo plans), through the dev
// authorization server, the viewer's OAuth client and the register.

// Demo NHS numbers (cmd/cpisd/demo.go) and one valid number without plans.
const (
	demoTwoPlans = "9990000018"
	demoNoPlans  = "9990000050"
)

// browser is a user agent: cookies, redirects followed, pages read.
type browser struct {
	t    *testing.T
	ts   *testServer
	c    *http.Client
	page page // the last page
}

// page is a response as a browser shows it.
type page struct {
	status int
	url    string
	header http.Header
	body   string // HTML-decoded, for matching text
	raw    string
}

func newBrowser(t *testing.T, ts *testServer) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ts: ts, c: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
}

// get opens a URL (absolute, or a path of the server).
func (b *browser) get(u string) page {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.ts.URL + u
	}
	res, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return b.read(res)
}

// submit posts a form to a path, with the page's CSRF token and, from a
// child's page, its view token (the hidden fields a browser would send).
func (b *browser) submit(path string, form url.Values) page {
	b.t.Helper()
	for _, name := range []string{"csrf", "view"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(b.page.raw)
		if m != nil && !form.Has(name) {
			form.Set(name, m[1])
		}
	}
	res, err := b.c.PostForm(b.ts.URL+path, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", path, err)
	}
	return b.read(res)
}

func (b *browser) read(res *http.Response) page {
	b.t.Helper()
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	b.page = page{status: res.StatusCode, url: res.Request.URL.String(), header: res.Header, raw: string(raw), body: html.UnescapeString(string(raw))}
	return b.page
}

// followRefresh moves on from the sign-in's last page, as its meta refresh does.
func (b *browser) followRefresh() page {
	b.t.Helper()
	m := regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`).FindStringSubmatch(b.page.body)
	if m == nil {
		b.t.Fatalf("no meta refresh on %s (%d):\n%s", b.page.url, b.page.status, b.page.body)
	}
	return b.get(m[1])
}

// signIn signs in through GET /app/login and the dev authorize page as
// persona.
func (b *browser) signIn(persona string) page {
	b.t.Helper()
	authz := b.get("/app/login")
	if authz.status != http.StatusOK || !strings.Contains(authz.body, "Sign in as "+persona) {
		b.t.Fatalf("authorize page (%d %s):\n%s", authz.status, authz.url, authz.body)
	}
	req := regexp.MustCompile(`name="request" value="([^"]+)"`).FindStringSubmatch(authz.raw)
	if req == nil {
		b.t.Fatalf("no pending request on the authorize page:\n%s", authz.body)
	}
	done := b.submit("/dev/authorize", url.Values{"request": {req[1]}, "persona": {persona}})
	if done.status != http.StatusOK || !strings.HasPrefix(done.url, b.ts.URL+"/app/callback") {
		b.t.Fatalf("callback (%d %s):\n%s", done.status, done.url, done.body)
	}
	return b.followRefresh()
}

func (b *browser) mustSee(want ...string) {
	b.t.Helper()
	for _, w := range want {
		if !strings.Contains(b.page.body, w) {
			b.t.Errorf("%s (%d) lacks %q", b.page.url, b.page.status, w)
		}
	}
}

// accesses counts a child's access records in the store.
func (ts *testServer) accesses(nhs string) []cpis.AuditRecord {
	ts.t.Helper()
	recs, err := ts.srv.store.AccessHistory(context.Background(), store.AccessQuery{NHSNumber: cpis.NHSNumber(nhs), Limit: 1000})
	if err != nil {
		ts.t.Fatal(err)
	}
	return recs
}

func TestViewerStandaloneSignInAndFindPatient(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true })
	b := newBrowser(t, ts)
	if p := b.get("/app/"); p.status != http.StatusOK || !strings.Contains(p.body, "Child protection information") {
		t.Fatalf("signed-out home: %d", p.status)
	}
	home := b.signIn("ed-clinician")
	if home.url != ts.URL+"/app/" {
		t.Errorf("after sign-in at %s, want /app/", home.url)
	}
	b.mustSee("Find patient", "Dr Ada Testwell", "Sign out")

	before := len(ts.accesses(demoTwoPlans))
	p := b.submit("/app/patient", url.Values{"nhs": {"999 000 0018"}})
	if p.status != http.StatusOK || p.url != ts.URL+"/app/patient" {
		t.Fatalf("find patient: %d at %s", p.status, p.url)
	}
	b.mustSee("Child protection alert present", "Active child protection information", "This child has 2 active plans",
		"Child Protection Plan", "Child Looked After", "Responsible local authority",
		"London Borough of Hackney and City of London (ZLA01)", "tel:+442079460101",
		"Child Protection Information Previously Viewed By", "Dr Ada Testwell")
	recs := ts.accesses(demoTwoPlans)
	if len(recs) != before+1 {
		t.Fatalf("%d access records after one view, want %d", len(recs), before+1)
	}
	if got, want := recs[0].RequestID, p.header.Get("X-Request-ID"); got != want || got == "" {
		t.Errorf("the access record's request id %q, the response's %q", got, want)
	}
	if !recs[0].Unscheduled || recs[0].Actor.Name != "Dr Ada Testwell" {
		t.Errorf("access record %+v", recs[0])
	}
	b.get("/app/patient")
	if n := len(ts.accesses(demoTwoPlans)); n != before+2 {
		t.Errorf("%d access records after two views, want %d", n, before+2)
	}

	b.get("/app/")
	b.submit("/app/patient", url.Values{"nhs": {demoNoPlans}})
	b.mustSee("No child protection information")
	b.get("/app/")
	if p := b.submit("/app/patient", url.Values{"nhs": {"999 000 0019"}}); p.status != http.StatusUnprocessableEntity {
		t.Errorf("invalid NHS number: %d", p.status)
	}
	b.mustSee("not a valid NHS number")

	out := b.submit("/app/logout", url.Values{})
	if !strings.Contains(out.body, "You have signed out") {
		t.Errorf("sign-out page:\n%s", out.body)
	}
	checkViewerLogs(t, ts, demoTwoPlans, demoNoPlans)
}

func TestViewerEHRLaunch(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true })
	b := newBrowser(t, ts)
	before := len(ts.accesses(demoTwoPlans))
	q := url.Values{"persona": {"ed-clinician"}, "patient": {demoTwoPlans}, "app": {ts.URL + "/app/launch"}}
	p := b.get("/dev/launch?" + q.Encode())
	if p.status != http.StatusOK || !strings.HasPrefix(p.url, ts.URL+"/app/callback") {
		t.Fatalf("launch ended at %s (%d):\n%s", p.url, p.status, p.body)
	}
	child := b.followRefresh()
	if child.url != ts.URL+"/app/patient" {
		t.Fatalf("the launch landed on %s, want /app/patient", child.url)
	}
	b.mustSee("Child protection alert present", "999 000 0018")
	if n := len(ts.accesses(demoTwoPlans)); n != before+1 {
		t.Errorf("%d access records after the launch's view, want %d", n, before+1)
	}

	// A dual-role user chooses the care setting first.
	d := newBrowser(t, ts)
	q.Set("persona", "paediatrician")
	d.get("/dev/launch?" + q.Encode())
	choice := d.followRefresh()
	if choice.url != ts.URL+"/app/" || !strings.Contains(choice.body, "Choose the care setting") {
		t.Fatalf("dual role after launch at %s:\n%s", choice.url, choice.body)
	}
	d.submit("/app/setting", url.Values{"setting": {"scheduled"}})
	d.mustSee("Child protection alert present", "Scheduled care")
	for _, r := range ts.accesses(demoTwoPlans) {
		if r.Actor.Name == "Dr Fay Imaginary" && r.Unscheduled {
			t.Errorf("the scheduled-care view was recorded as unscheduled")
		}
	}
	checkViewerLogs(t, ts, demoTwoPlans)
}

func TestViewerIdleSignOut(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true })
	b := newBrowser(t, ts)
	b.signIn("ed-clinician")
	b.submit("/app/patient", url.Values{"nhs": {demoTwoPlans}})
	ts.clock.Set(startDay.Add(16 * time.Minute))
	b.get("/app/patient")
	b.mustSee("signed out after 15 minutes", "Sign in")
	if strings.Contains(b.page.body, "Child protection alert present") {
		t.Error("plans shown after the idle sign-out")
	}
}

// The idle warning's "Stay signed in" on the real server: signed-in pages
// carry the timeout as data (no meta refresh), and the extension, with the
// page's CSRF token and the app's Origin, keeps the session past 15
// minutes after the last page without any audit record.
func TestViewerIdleWarningExtendsTheSession(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true })
	b := newBrowser(t, ts)
	b.signIn("ed-clinician")
	b.submit("/app/patient", url.Values{"nhs": {demoTwoPlans}})
	b.mustSee(`data-idle-seconds="900"`, "You will be signed out in 1 minute because there has been no activity.", "Stay signed in")
	if strings.Contains(b.page.body, `http-equiv="refresh"`) {
		t.Error("a signed-in page reloads itself by a meta refresh")
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(b.page.raw)
	if csrf == nil {
		t.Fatal("no CSRF token on the page")
	}
	audits := len(ts.accesses(demoTwoPlans))
	extend := func(origin string) int {
		req, err := http.NewRequest("POST", ts.URL+"/app/session/extend", strings.NewReader(url.Values{"csrf": {csrf[1]}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		res, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	ts.clock.Set(startDay.Add(14 * time.Minute))
	if got := extend(""); got != http.StatusForbidden {
		t.Errorf("extension without an Origin: %d, want 403", got)
	}
	if got := extend(ts.URL); got != http.StatusNoContent {
		t.Fatalf("extension: %d, want 204", got)
	}
	ts.clock.Set(startDay.Add(28 * time.Minute))
	b.get("/app/")
	b.mustSee("Find patient", "Sign out")
	if n := len(ts.accesses(demoTwoPlans)); n != audits {
		t.Errorf("%d access records after the extension, want %d", n, audits)
	}
}

// checkViewerLogs fails if a log line holds an NHS number or the viewer's
// form data.
func checkViewerLogs(t *testing.T, ts *testServer, nhs ...string) {
	t.Helper()
	logs := ts.logs.String()
	for _, n := range nhs {
		if strings.Contains(logs, n) || strings.Contains(logs, n[:3]+" "+n[3:6]+" "+n[6:]) {
			t.Errorf("an NHS number is in the log")
		}
	}
	if !strings.Contains(logs, `"route":"/app/*"`) {
		t.Errorf("the viewer's requests are not logged under the route /app/*")
	}
}

// A discrepancy form is about the child of its page: after another child
// is opened in another tab, the first child's form is refused, and the
// report goes once that child is opened again.
func TestViewerReportNamesTheChildOfItsPage(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Demo = true })
	b := newBrowser(t, ts)
	b.signIn("ed-clinician")
	b.submit("/app/patient", url.Values{"nhs": {demoTwoPlans}})
	tabA := b.page
	b.get("/app/") // another tab, the same session
	b.submit("/app/patient", url.Values{"nhs": {demoNoPlans}})
	b.mustSee("No child protection information")

	b.page = tabA
	p := b.submit("/app/discrepancy", url.Values{"reason": {"missing-alert"}})
	if p.status != http.StatusConflict {
		t.Fatalf("A's form after B was opened: %d, want 409", p.status)
	}
	b.mustSee("You have since opened another patient's record: open this child again before reporting")
	b.submit("/app/patient", url.Values{}) // "Open this child's record again"
	b.mustSee("Child protection alert present", "999 000 0018")
	if p := b.submit("/app/discrepancy", url.Values{"reason": {"missing-alert"}}); p.status != http.StatusOK {
		t.Fatalf("A's report after opening A again: %d", p.status)
	}
	b.mustSee("Discrepancy reported")
	list, err := ts.srv.store.Discrepancies(context.Background(), store.DiscrepancyQuery{OrgCode: "ZZT01", Open: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].NHSNumber != demoTwoPlans {
		t.Errorf("reports %+v, want one about A", list)
	}
	checkViewerLogs(t, ts, demoTwoPlans, demoNoPlans)
}

// TestViewerCookiesAreSecureButOnLoopbackDev: the viewer's cookies are
// Secure everywhere except dev mode served over plain HTTP on a loopback
// host, where a browser would never send a Secure cookie back.
func TestViewerCookiesAreSecureButOnLoopbackDev(t *testing.T) {
	for _, tt := range []struct {
		dev  bool
		base string
		want bool
	}{
		{true, "http://127.0.0.1:8080", false},
		{true, "http://localhost:8080", false},
		{true, "http://[::1]:8080", false},
		{true, "https://127.0.0.1:8443", true},
		{true, "http://cpis.example.org", true},
		{true, "http://10.0.0.5:8080", true},
		{false, "http://127.0.0.1:8080", true},
		{false, "https://cpis.example.org", true},
	} {
		if got := secureCookies(tt.dev, tt.base); got != tt.want {
			t.Errorf("secureCookies(dev=%v, %s) = %v, want %v", tt.dev, tt.base, got, tt.want)
		}
	}
}
