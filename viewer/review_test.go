package viewer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
)

// callbackWith completes a sign-in started by startLogin: the query's
// state, the login cookie given.
func callbackWith(e *env, q url.Values, login *http.Cookie) result {
	r := httptest.NewRequest("GET", "/app/callback?code=the-code&state="+url.QueryEscape(q.Get("state")), nil)
	if login != nil {
		r.AddCookie(login)
	}
	return e.do(r)
}

// sessionOf is the browser that the callback's answer signed in.
func sessionOf(t *testing.T, e *env, res result) *user {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie && c.MaxAge >= 0 {
			return &user{e: e, cookie: c}
		}
	}
	t.Fatalf("no session cookie (%d):\n%s", res.StatusCode, res.body)
	return nil
}

// Anonymous GET /app/login requests keep nothing on the server, so no
// number of them refuses anyone's sign-in (they once filled a store of
// 10,000 pending sign-ins, after which sign-in answered 503).
func TestManySignInStartsNeverRefuseSignIn(t *testing.T) {
	e, te := newOAuthEnv(t)
	anon := &user{e: e}
	for i := range 10001 {
		if res := anon.get("/app/login"); res.StatusCode != http.StatusFound {
			t.Fatalf("sign-in start %d: %d\n%s", i+1, res.StatusCode, res.body)
		}
	}
	q, login := startLogin(t, e, "/app/login")
	if login.MaxAge != int(loginTTL/time.Second) {
		t.Errorf("login cookie max-age %d, want %d", login.MaxAge, int(loginTTL/time.Second))
	}
	te.challenge = q.Get("code_challenge")
	res := callbackWith(e, q, login)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d\n%s", res.StatusCode, res.body)
	}
	if !clearsCookie(res.Response, loginCookie) {
		t.Error("the callback did not clear the login cookie")
	}
}

// The login cookie carries the sign-in sealed: nothing of it readable,
// nothing of it changeable, good for 10 minutes, and only in the process
// that sealed it.
func TestLoginCookieIsSealed(t *testing.T) {
	e, te := newOAuthEnv(t)
	q, login := startLogin(t, e, "/app/login")
	te.challenge = q.Get("code_challenge")
	if strings.Contains(login.Value, q.Get("state")) || strings.Contains(login.Value, "launch") {
		t.Errorf("the login cookie shows what it holds: %q", login.Value)
	}
	refused := func(name string, res result) {
		t.Helper()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", name, res.StatusCode)
		}
		mustContain(t, res.body, "Sign-in was not completed", `href="/app/login"`, "Sign in again")
	}

	tampered := *login
	b := []byte(tampered.Value)
	b[len(b)/2] ^= 1
	tampered.Value = string(b)
	refused("a changed cookie", callbackWith(e, q, &tampered))

	other, _ := newOAuthEnv(t) // another replica, or this one restarted
	refused("another process", callbackWith(other, q, login))

	e.clock.Add(loginTTL + time.Second)
	refused("an expired sign-in", callbackWith(e, q, login))

	e.clock.Add(-loginTTL)
	q2, login2 := startLogin(t, e, "/app/login")
	q2.Set("state", q.Get("state"))
	refused("another sign-in's state", callbackWith(e, q2, login2))
}

// viewOf is the per-view token of the child's page's forms.
func viewOf(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="view" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no view token on the page:\n%s", body)
	}
	return m[1]
}

// open finds a child and shows its page, returning the page's view token.
func (u *user) open(nhs string) string {
	u.e.t.Helper()
	if res := u.post("/app/patient", url.Values{"nhs": {nhs}}); res.StatusCode != http.StatusSeeOther {
		u.e.t.Fatalf("find %s: %d", nhs, res.StatusCode)
	}
	page := u.get("/app/patient")
	if page.StatusCode != http.StatusOK {
		u.e.t.Fatalf("page of %s: %d", nhs, page.StatusCode)
	}
	return viewOf(u.e.t, page.body)
}

// openReports are the open discrepancy reports of the Trust.
func (e *env) openReports() []cpis.Discrepancy {
	e.t.Helper()
	list, err := e.store.Discrepancies(context.Background(), store.DiscrepancyQuery{OrgCode: "ZZT01", Open: true, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// A report is about the child whose page the form was on: with child A
// in one tab and B opened later in another, A's form is refused, not
// sent as a report about B.
func TestReportFromAnEarlierChildsPageIsRefused(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	viewA := u.open(childWithPlans)
	viewB := u.open(childNoPlans)
	if viewA == viewB {
		t.Fatal("two views share a token")
	}
	page := u.get("/app/patient")
	if strings.Contains(page.body, childWithPlans) || strings.Contains(page.body, "999 000 0018") {
		t.Fatal("the page of B names A")
	}
	if strings.Contains(viewA, childWithPlans) || strings.Contains(viewB, childNoPlans) {
		t.Error("a view token holds the NHS number")
	}

	res := u.post("/app/discrepancy", url.Values{"reason": {"missing-alert"}, "view": {viewA}})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("A's form after B was opened: %d, want 409\n%s", res.StatusCode, res.body)
	}
	mustContain(t, res.body, "You have since opened another patient's record: open this child again before reporting")
	mustNotContain(t, res.body, "999 000 0018", "999 000 0026", "Discrepancy reported")
	for name, form := range map[string]url.Values{
		"no token":      {"reason": {"missing-alert"}},
		"unknown token": {"reason": {"missing-alert"}, "view": {"x" + viewB}},
	} {
		if res := u.post("/app/discrepancy", form); res.StatusCode != http.StatusConflict {
			t.Errorf("%s: %d, want 409", name, res.StatusCode)
		}
	}
	if n := len(e.openReports()); n != 0 {
		t.Fatalf("%d reports stored from refused forms", n)
	}

	res = u.post("/app/discrepancy", url.Values{"reason": {"missing-alert"}, "view": {viewB}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("B's own form: %d\n%s", res.StatusCode, res.body)
	}
	if list := e.openReports(); len(list) != 1 || list[0].NHSNumber != childNoPlans {
		t.Errorf("reports %+v, want one about B", list)
	}

	// The confirmation's way back opens B, whatever the session holds now.
	back := viewOf(t, res.body)
	u.open(childEnded)
	if res := u.post("/app/patient", url.Values{"view": {back}}); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/app/patient" {
		t.Fatalf("back to B: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	mustContain(t, u.get("/app/patient").body, "999 000 0026")

	// The 409 page opens A again, and A's report then goes.
	res = u.post("/app/discrepancy", url.Values{"reason": {"other"}, "view": {viewA}})
	again := viewOf(t, res.body)
	if res := u.post("/app/patient", url.Values{"view": {again}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("open A again: %d", res.StatusCode)
	}
	viewA2 := viewOf(t, u.get("/app/patient").body)
	if res := u.post("/app/discrepancy", url.Values{"reason": {"other"}, "view": {viewA2}}); res.StatusCode != http.StatusOK {
		t.Fatalf("A's report after opening A again: %d", res.StatusCode)
	}
}

// A session keeps the view tokens of its last views only.
func TestViewTokensAreBounded(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	first := u.open(childNoPlans)
	second := viewOf(t, u.get("/app/patient").body)
	for range maxViewTokens - 1 {
		u.get("/app/patient")
	}
	if res := u.post("/app/discrepancy", url.Values{"reason": {"other"}, "view": {first}}); res.StatusCode != http.StatusConflict {
		t.Errorf("a token %d views old: %d, want 409", maxViewTokens+1, res.StatusCode)
	}
	if res := u.post("/app/discrepancy", url.Values{"reason": {"other"}, "view": {second}}); res.StatusCode != http.StatusOK {
		t.Errorf("a token %d views old: %d, want 200", maxViewTokens, res.StatusCode)
	}
}

// The care-setting choice after a launch names the launched child: once
// another child is opened, it is refused.
func TestCareSettingFormNamesItsChild(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("dual")
	e.app.sessions.update(u.cookie.Value, func(s *session) { s.patient, s.launched = childWithPlans, true })
	choice := viewOf(t, u.get("/app/").body)
	u.post("/app/patient", url.Values{"nhs": {childNoPlans}, "setting": {"scheduled"}})
	res := u.post("/app/setting", url.Values{"setting": {"unscheduled"}, "view": {choice}})
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("the launched child's choice after another was opened: %d, want 409", res.StatusCode)
	}
	mustContain(t, res.body, "You have since opened another patient's record")
	if s, _ := e.app.sessions.get(u.cookie.Value); s.unscheduled == nil || *s.unscheduled {
		t.Error("the refused choice changed the care setting")
	}
}

// HEAD on a page that reads the register is refused: it would run the
// audited search (and notify the LA) with nothing shown.
func TestHeadOnRegisterPagesIsRefused(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("lead")
	u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
	before := e.auditRecords()
	for path, allow := range map[string]string{"/app/patient": "GET, POST", "/app/safeguarding": "GET"} {
		req := httptest.NewRequest("HEAD", path, nil)
		req.AddCookie(u.cookie)
		res := e.do(req)
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != allow {
			t.Errorf("HEAD %s: %d, Allow %q; want 405, %q", path, res.StatusCode, res.Header.Get("Allow"), allow)
		}
	}
	if n := e.auditRecords() - before; n != 0 {
		t.Errorf("HEAD wrote %d audit records", n)
	}
	if n := e.accesses(childWithPlans); n != 0 {
		t.Errorf("HEAD recorded %d accesses", n)
	}
}

// noHistory is a store whose access history cannot be read.
type noHistory struct{ store.Store }

func (noHistory) AccessHistory(context.Context, store.AccessQuery) ([]cpis.AuditRecord, error) {
	return nil, cpis.E("test.AccessHistory", cpis.Unavailable, "the access history is down")
}

// When the access history cannot be read after the plans were, the plans
// (the alert) are still shown, with a notice.
func TestPlansShownWhenAccessHistoryFails(t *testing.T) {
	e := newEnv(t)
	rec := audit.NewRecorder(e.store, audit.Options{})
	t.Cleanup(func() { rec.Close() })
	e.app.cfg.Register = register.New(register.Config{Store: noHistory{e.store}, Audit: rec, NewID: uuid.NewString, Authorities: cpis.DevAuthorities()})
	u := e.signIn("ed")
	u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
	res := u.get("/app/patient")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200\n%s", res.StatusCode, res.body)
	}
	mustContain(t, res.body, "Child protection alert present", "ZLA01", "The access history could not be read just now",
		"Copy summary for the record", "Report a discrepancy")
	mustNotContain(t, res.body, "No one has viewed this information before")
}

func TestOriginOfNormalises(t *testing.T) {
	for in, want := range map[string]string{
		"https://cpis.example":            "https://cpis.example",
		"https://cpis.example:443":        "https://cpis.example",
		"HTTPS://CPIS.Example:443/app":    "https://cpis.example",
		"http://cpis.example:80":          "http://cpis.example",
		"http://cpis.example:443":         "http://cpis.example:443",
		"https://cpis.example:8443":       "https://cpis.example:8443",
		"http://127.0.0.1:8080/":          "http://127.0.0.1:8080",
		"http://[::1]:80":                 "http://[::1]",
		"https://[2001:DB8::1]:443/x?y=z": "https://[2001:db8::1]",
		"null":                            "",
		"":                                "",
	} {
		if got := originOf(in); got != want {
			t.Errorf("originOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// A base URL with the default port, or an Origin with one, is the same
// origin.
func TestOriginCheckWithDefaultPorts(t *testing.T) {
	for base, origins := range map[string][]string{
		"https://cpis.example:443": {"https://cpis.example", "https://CPIS.example:443"},
		"https://Cpis.Example":     {"https://cpis.example:443"},
		"http://cpis.example:80":   {"http://cpis.example"},
	} {
		e := newEnv(t, func(c *Config) { c.BaseURL, c.FHIRBase = base, base })
		u := e.signIn("ed")
		for _, o := range append(origins, "https://evil.example") {
			rq := httptest.NewRequest("POST", "/app/patient", strings.NewReader(url.Values{"nhs": {childWithPlans}, "csrf": {u.csrf}}.Encode()))
			rq.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rq.Header.Set("Origin", o)
			rq.AddCookie(u.cookie)
			want := http.StatusSeeOther
			if o == "https://evil.example" {
				want = http.StatusForbidden
			}
			if got := e.do(rq).StatusCode; got != want {
				t.Errorf("base %s, Origin %s: %d, want %d", base, o, got, want)
			}
		}
	}
}

// An EHR whose launch names its own Patient id, not an NHS number: the
// user is told to find the patient by NHS number.
func TestLaunchPatientNotAnNHSNumberIsShown(t *testing.T) {
	e, te := newOAuthEnv(t)
	q, login := startLogin(t, e, "/app/launch?iss="+url.QueryEscape("https://cpis.example")+"&launch=opaque-42")
	te.challenge, te.patient = q.Get("code_challenge"), "Patient/rio-12345"
	res := callbackWith(e, q, login)
	mustContain(t, res.body, "url=/app/\"")
	u := sessionOf(t, e, res)
	const msg = "The launching system's patient could not be used: find the patient by NHS number"
	home := u.get("/app/")
	mustContain(t, home.body, "<h1>Find patient</h1>", msg)

	u.csrf = regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(home.body)[1]
	u.post("/app/patient", url.Values{"nhs": {childNoPlans}})
	mustNotContain(t, u.get("/app/").body, msg)

	// A standalone sign-in without a patient says nothing of the kind.
	q, login = startLogin(t, e, "/app/login")
	te.challenge, te.patient = q.Get("code_challenge"), ""
	mustNotContain(t, sessionOf(t, e, callbackWith(e, q, login)).get("/app/").body, msg)
}
