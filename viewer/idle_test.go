package viewer

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// extend is the idle warning's "Stay signed in" as app.js sends it: a
// fetch POST of the dialog's form, with the Origin the browser adds.
func (u *user) extend(origin string, form url.Values) result {
	if form == nil {
		form = url.Values{"csrf": {u.csrf}}
	}
	req := httptest.NewRequest("POST", "/app/session/extend", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	return u.e.do(req)
}

// lastSeen is the session's last activity, as the idle sign-out sees it.
func (u *user) lastSeen(t *testing.T) time.Time {
	t.Helper()
	s, ok := u.e.app.sessions.get(u.cookie.Value)
	if !ok {
		t.Fatal("the session is gone")
	}
	return s.lastSeen
}

// Signed-in pages carry the idle timeout for app.js's warning, and the
// warning itself (hidden until app.js shows it); no page reloads itself
// by a meta refresh, which WCAG 2.2.1 and axe's meta-refresh rule forbid.
func TestSignedInPagesCarryTheIdleWarning(t *testing.T) {
	for _, idle := range []time.Duration{0, 2 * time.Minute} {
		e := newEnv(t, func(c *Config) { c.IdleTimeout = idle })
		want := `data-idle-seconds="` + strconv.Itoa(int(e.app.cfg.IdleTimeout/time.Second)) + `"`
		u := e.signIn("ed")
		u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
		for _, path := range []string{"/app/", "/app/patient", "/app/directory", "/app/safeguarding"} {
			res := u.get(path)
			mustContain(t, res.body, want, `role="alertdialog"`,
				"You will be signed out in 1 minute because there has been no activity.", "Stay signed in",
				`action="/app/session/extend"`, `name="csrf" value="`+u.csrf+`"`)
			mustNotContain(t, res.body, `http-equiv="refresh"`, "<dialog open")
		}
		anon := &user{e: e}
		for _, res := range []result{anon.get("/app/"), anon.get("/app/patient"), u.post("/app/logout", nil)} {
			mustNotContain(t, res.body, `http-equiv="refresh"`, "data-idle-seconds", "Stay signed in")
		}
	}
}

// "Stay signed in" moves the session's last activity to now, so the idle
// sign-out comes IdleTimeout later; it reads nothing and records nothing.
func TestExtendSessionMovesTheIdleSignOut(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	u.post("/app/patient", url.Values{"nhs": {childWithPlans}})
	audits, views := e.auditRecords(), e.accesses(childWithPlans)

	e.clock.Add(14 * time.Minute)
	res := u.extend("https://cpis.example", nil)
	if res.StatusCode != http.StatusNoContent || res.body != "" {
		t.Fatalf("extend: %d %q, want 204 and no body", res.StatusCode, res.body)
	}
	if got := u.lastSeen(t); !got.Equal(e.clock.Now()) {
		t.Errorf("last activity %v after the extension, want %v", got, e.clock.Now())
	}
	if e.auditRecords() != audits || e.accesses(childWithPlans) != views {
		t.Error("the extension wrote an audit record")
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
	}

	e.clock.Add(14 * time.Minute) // 28 minutes after the last page, 14 after the extension
	mustContain(t, u.get("/app/").body, "Find patient", "Sign out")
	e.clock.Add(16 * time.Minute)
	mustContain(t, u.get("/app/").body, "signed out after 15 minutes")
}

// The extension needs the page's CSRF token and the app's Origin (always
// sent by fetch with a POST), and a live session; a refused one changes
// nothing and answers 403.
func TestExtendSessionRefusals(t *testing.T) {
	e := newEnv(t)
	u := e.signIn("ed")
	seen := u.lastSeen(t)
	e.clock.Add(5 * time.Minute)
	for name, res := range map[string]result{
		"no Origin":      u.extend("", nil),
		"another Origin": u.extend("https://evil.example", nil),
		"Origin null":    u.extend("null", nil),
		"no CSRF token":  u.extend("https://cpis.example", url.Values{}),
		"wrong CSRF":     u.extend("https://cpis.example", url.Values{"csrf": {"not-the-token"}}),
		"no session":     (&user{e: e, csrf: u.csrf}).extend("https://cpis.example", nil),
	} {
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if got := u.lastSeen(t); !got.Equal(seen) {
		t.Errorf("a refused extension moved the last activity to %v", got)
	}
	if res := u.get("/app/session/extend"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /app/session/extend: %d, want 404", res.StatusCode)
	}

	e.clock.Add(11 * time.Minute) // 16 minutes idle: too late to extend
	res := u.extend("https://cpis.example", nil)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("extension after the idle sign-out: %d, want 403", res.StatusCode)
	}
	if _, ok := e.app.sessions.get(u.cookie.Value); ok {
		t.Error("the idle session was kept")
	}
	cleared := false
	for _, c := range res.Cookies() {
		cleared = cleared || (c.Name == sessionCookie && c.MaxAge < 0)
	}
	if !cleared {
		t.Error("the ended session's cookie was not cleared")
	}
}
