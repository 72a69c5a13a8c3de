package viewer

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

func TestFormatDate(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2025-12-03", "03-Dec-2025"},
		{"2027-01-31", "31-Jan-2027"},
	} {
		if got := formatDate(cpis.MustDate(tc.in)); got != tc.want {
			t.Errorf("formatDate(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// 23:30 UTC on 30 June is already 1 July in London (BST).
	if got := formatTime(time.Date(2026, 6, 30, 23, 30, 0, 0, time.UTC)); got != "01-Jul-2026 00:30" {
		t.Errorf("formatTime = %q", got)
	}
}

func TestPhoneAndContactLinks(t *testing.T) {
	for _, tc := range []struct{ in, href string }{
		{"020 7946 0101", "tel:+442079460101"},
		{"02079460101", "tel:+442079460101"},
		{"+44 20 7946 0101", "tel:+442079460101"},
		{"", ""},
	} {
		if got := phoneOf(tc.in); string(got.Href) != tc.href || got.Text != tc.in {
			t.Errorf("phoneOf(%q) = %+v, want href %q", tc.in, got, tc.href)
		}
	}
	if c := contactOf("mash@example.org"); c.Href != "mailto:mash@example.org" {
		t.Errorf("contactOf(e-mail) = %+v", c)
	}
	if c := contactOf("the MASH duty desk"); c.Href != "" {
		t.Errorf("contactOf(words) = %+v", c)
	}
}

func TestSignedOutHome(t *testing.T) {
	e := newEnv(t)
	res := (&user{e: e}).get("/app/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	mustContain(t, res.body, "<h1>Child protection information</h1>", `href="/app/login"`, ">Sign in<",
		"Skip to main content", "<main", "<header", "<footer")
	mustNotContain(t, res.body, "Sign out", "<style", "style=", "<script>")
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	for _, path := range []string{"/app/", "/app/directory", "/app/nothing-here", "/app/static/app.css"} {
		res := u.get(path)
		h := res.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
			"form-action 'self' https://idp.example", "base-uri 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code", path)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", path, h)
		}
		wantCache := "no-store"
		if strings.HasPrefix(path, "/app/static/") {
			wantCache = "public, max-age=3600"
		}
		if got := h.Get("Cache-Control"); got != wantCache {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, wantCache)
		}
	}
	if res := u.get("/app/nothing-here"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown page: %d", res.StatusCode)
	}
	if res := u.get("/app/static/"); res.StatusCode != http.StatusNotFound {
		t.Errorf("static directory listing: %d", res.StatusCode)
	}
	if res := u.get("/app/static/app.js"); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "copy-summary") {
		t.Errorf("app.js: %d", res.StatusCode)
	}
}

func TestFindPatientAcceptsSpacesAndShowsPlans(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	home := u.get("/app/")
	mustContain(t, home.body, "<h1>Find patient</h1>", `<label for="nhs">NHS number</label>`, `id="nhs" name="nhs"`,
		">Find patient</button>", `name="csrf" value="`+u.csrf+`"`, "Sign out")
	mustNotContain(t, home.body, "Care setting")

	res := u.post("/app/patient", url.Values{"nhs": {"999 000 0018"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/app/patient" {
		t.Fatalf("POST /app/patient: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	page := u.get("/app/patient")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("GET /app/patient: %d\n%s", page.StatusCode, page.body)
	}
	today := cpis.Today(monday10)
	mustContain(t, page.body,
		`class="alert-present">Child protection alert present</h1>`, "999 000 0018",
		"Active child protection information", "This child has 2 active plans",
		"Child Protection Plan", "A plan designed to keep a child safe", "Child Looked After",
		"Start date", formatDate(today.AddDays(-90)), "End date", formatDate(today.AddDays(275)),
		"Responsible local authority", "London Borough of Hackney and City of London (ZLA01)",
		"Emergency duty number", `<a href="tel:+442079460101">020 7946 0101</a>`,
		"Office hours number", `<a href="tel:+442079460102">020 7946 0102</a>`,
		"Call now: ", "Office hours number: the office is open now", "How to refer",
		"Child Protection Information Previously Viewed By", "Dr Ada Testwell", "23-Nov-2026 10:00",
		`id="summary"`, "Copy summary for the record", "Report a discrepancy", "Note (optional)", `maxlength="500"`,
		"Unscheduled care (notifies the local authority)")
	if n := e.accesses(childWithPlans); n != 1 {
		t.Errorf("%d access records after one view, want 1", n)
	}
	u.get("/app/patient")
	if n := e.accesses(childWithPlans); n != 2 {
		t.Errorf("%d access records after two views, want 2", n)
	}
}

func TestEndedPlansAndNoPlans(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	u.post("/app/patient", url.Values{"nhs": {childEnded}})
	page := u.get("/app/patient")
	mustContain(t, page.body, "Child protection alert present", "Ended plans still shown", "Child Looked After (ended)",
		"None of the plans shown is active today")
	mustNotContain(t, page.body, "active plans")

	u.post("/app/patient", url.Values{"nhs": {childNoPlans}})
	page = u.get("/app/patient")
	mustContain(t, page.body, "<h1 class=\"no-alert\">No child protection information</h1>", "Outcome: No child protection information")
	mustNotContain(t, page.body, "alert-present", "Active child protection information")
}

func TestInvalidNHSNumberReadsNothing(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	before := e.auditRecords()
	for _, in := range []string{"999 000 0019", "12345", "abcdefghij", strings.Repeat("9", 100)} {
		res := u.post("/app/patient", url.Values{"nhs": {in}})
		if res.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%q: status %d, want 422", in, res.StatusCode)
		}
		mustContain(t, res.body, "not a valid NHS number", `aria-invalid="true"`)
	}
	if n := e.auditRecords() - before; n != 0 {
		t.Errorf("%d new audit records: an invalid number must read nothing", n)
	}
	if s, _ := e.app.sessions.get(u.cookie.Value); s.patient != "" {
		t.Errorf("the session's patient is %q", s.patient)
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	for name, form := range map[string]url.Values{
		"no token":    {"nhs": {childWithPlans}, "csrf": {""}},
		"wrong token": {"nhs": {childWithPlans}, "csrf": {"x" + u.csrf}},
	} {
		if res := u.post("/app/patient", form); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, res.StatusCode)
		}
	}
	req := func(origin string) int {
		r := strings.NewReader(url.Values{"nhs": {childWithPlans}, "csrf": {u.csrf}}.Encode())
		rq, _ := http.NewRequest("POST", "https://cpis.example/app/patient", r)
		rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rq.Header.Set("Origin", origin)
		rq.AddCookie(u.cookie)
		return e.do(rq).StatusCode
	}
	if got := req("https://evil.example"); got != http.StatusForbidden {
		t.Errorf("another origin: %d, want 403", got)
	}
	if got := req("null"); got != http.StatusForbidden {
		t.Errorf("Origin null: %d, want 403", got)
	}
	if got := req("https://cpis.example"); got != http.StatusSeeOther {
		t.Errorf("the app's origin: %d, want 303", got)
	}
	if res := u.post("/app/logout", url.Values{"csrf": {"bad"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("logout without the token: %d", res.StatusCode)
	}
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
	e.clock.Add(14 * time.Minute)
	if res := u.get("/app/directory"); !strings.Contains(res.body, "Local authority directory") {
		t.Fatalf("after 14 minutes the session should live")
	}
	e.clock.Add(15*time.Minute + time.Second)
	res := u.get("/app/patient")
	mustContain(t, res.body, "You were signed out after 15 minutes without activity", ">Sign in<")
	mustNotContain(t, res.body, "Child protection alert present")
	if _, ok := e.app.sessions.get(u.cookie.Value); ok {
		t.Error("the idle session was kept")
	}
	if !clearsCookie(res.Response, sessionCookie) {
		t.Error("the session cookie was not cleared")
	}
}

func TestRevokedTokenSignsOut(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	e.tokens.revoke("ed")
	res := u.get("/app/")
	mustContain(t, res.body, "Your sign-in has ended")
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	res := u.post("/app/logout", nil)
	mustContain(t, res.body, "You have signed out")
	if !clearsCookie(res.Response, sessionCookie) {
		t.Error("the session cookie was not cleared")
	}
	if res := u.get("/app/patient"); !strings.Contains(res.body, ">Sign in<") {
		t.Error("the session outlived sign-out")
	}
}

func TestDualRoleChoosesCareSetting(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("dual")
	home := u.get("/app/")
	mustContain(t, home.body, "<legend>Care setting</legend>", "Unscheduled care (notifies the local authority)</label>",
		"Scheduled care</label>", `type="radio"`)
	res := u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "Choose the care setting") {
		t.Fatalf("no care setting: %d", res.StatusCode)
	}
	u.post("/app/patient", url.Values{"nhs": {childWithPlans}, "setting": {"scheduled"}})
	page := u.get("/app/patient")
	mustContain(t, page.body, "Child protection alert present", "<dd>Scheduled care</dd>")
	recs, _ := e.store.AccessHistory(t.Context(), accessQuery(childWithPlans))
	if len(recs) != 1 || recs[0].Unscheduled {
		t.Errorf("access records %+v, want one scheduled-care access", recs)
	}
}

func TestLaunchedPatientDualRole(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("dual")
	e.app.sessions.update(u.cookie.Value, func(s *session) { s.patient, s.launched = childWithPlans, true })
	if res := u.get("/app/patient"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("before the care setting: %d, want 303 to the choice", res.StatusCode)
	}
	home := u.get("/app/")
	mustContain(t, home.body, "Choose the care setting", "999 000 0018", `action="/app/setting"`)
	if res := u.post("/app/setting", url.Values{"setting": {"unscheduled"}, "view": {viewOf(t, home.body)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /app/setting: %d", res.StatusCode)
	}
	mustContain(t, u.get("/app/patient").body, "Child protection alert present")
}

func TestRegisterErrors(t *testing.T) {
	t.Run("unavailable", func(t *testing.T) {
		e := newEnv(t)
		e.app.cfg.Register = register.New(register.Config{Store: e.store, Audit: failingRecorder{}, NewID: func() string { return "x" }, Authorities: cpis.DevAuthorities()})
		u := e.signIn("ed")
		u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
		res := u.get("/app/patient")
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", res.StatusCode)
		}
		mustContain(t, res.body, "CP-IS is unavailable", "check again", "retrospectively")
		mustNotContain(t, res.body, "alert-present", "No child protection information", "ZLA01")
	})
	t.Run("access denied", func(t *testing.T) {
		e := newEnv(t)
		u := e.signIn("nobody")
		u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
		res := u.get("/app/patient")
		if res.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", res.StatusCode)
		}
		mustNotContain(t, res.body, "ZLA01")
	})
}

func TestDirectory(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	res := u.get("/app/directory")
	mustContain(t, res.body, "<h1>Local authority directory</h1>", "Luton Borough Council (ZLA06)", "How to refer",
		"Monday to Friday", "the office is open now")
	if got := strings.Count(res.body, `<section class="la"`); got != 6 {
		t.Errorf("%d LAs listed, want 6", got)
	}
}

func TestAdviceOutOfHoursAndOutOfArea(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		d, err := cpis.NewDirectory(cpis.DevDirectory().Entries()[:1]) // ZLA01 only
		if err != nil {
			t.Fatal(err)
		}
		c.Directory = d
	})
	e.clock.Add(12 * time.Hour) // Monday 22:00
	u := e.signIn("ed")
	u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
	page := u.get("/app/patient")
	mustContain(t, page.body, "Call now: <a href=\"tel:+442079460101\">", "Emergency duty number: the office is closed now",
		"This child is out of area", "Use the numbers on the plan")
}

func TestDiscrepancyReportAndReview(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	view := u.open(childNoPlans)
	if res := u.post("/app/discrepancy", url.Values{"note": {"no reason"}, "view": {view}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("no reason: %d", res.StatusCode)
	} else if viewOf(t, res.body) != view {
		t.Error("the form shown again lost its view token")
	}
	res := u.post("/app/discrepancy", url.Values{"reason": {"missing-alert"}, "note": {"Known to be on a CPP in Luton"}, "view": {view}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("report: %d\n%s", res.StatusCode, res.body)
	}
	mustContain(t, res.body, "<h1>Discrepancy reported</h1>", "Missing alert")
	if res := u.get("/app/safeguarding"); res.StatusCode != http.StatusForbidden {
		t.Errorf("a clinician on /app/safeguarding: %d, want 403", res.StatusCode)
	}

	lead := e.signIn("lead")
	list := lead.get("/app/safeguarding")
	mustContain(t, list.body, "<h1>Discrepancy reports</h1>", "Missing alert", "999 000 0026", "Known to be on a CPP in Luton",
		"Mark resolved", "Dr Ada Testwell", `href="/app/safeguarding"`)
	id := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(list.body)
	if id == nil {
		t.Fatal("no report to resolve")
	}
	if res := lead.post("/app/safeguarding/resolve", url.Values{"id": {id[1]}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("resolve: %d", res.StatusCode)
	}
	list = lead.get("/app/safeguarding")
	mustContain(t, list.body, "There are no open reports", "Resolved", "Nurse Eve Invented")
}

func TestNoNHSNumberInAnyLocation(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	nhs := regexp.MustCompile(`\d{3}\s?\d{3}\s?\d{4}`)
	for _, res := range []result{
		u.post("/app/patient", url.Values{"nhs": {"999 000 0018"}}),
		u.get("/app/patient"),
		u.post("/app/discrepancy", url.Values{"reason": {"other"}}),
		u.post("/app/patient", url.Values{"nhs": {childNoPlans}}),
		(&user{e: e}).get("/app/login"),
	} {
		if loc := res.Header.Get("Location"); nhs.MatchString(loc) {
			t.Errorf("Location %q holds an NHS number", loc)
		}
	}
}

func clearsCookie(res *http.Response, name string) bool {
	for _, c := range res.Cookies() {
		if c.Name == name && c.MaxAge < 0 {
			return true
		}
	}
	return false
}
