package viewer

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// monday10 is a Monday at 10:00 in London (GMT): office hours.
var monday10 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// Test NHS numbers: one child with two active plans, one with none.
const (
	childWithPlans = "9990000018"
	childNoPlans   = "9990000026"
	childEnded     = "9990000034"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// tokens is a TokenVerifier over a fixed table: the viewer's handling of
// tokens, not token verification, is under test here (cmd/cpisd's
// end-to-end test uses the real verifier).
type tokens struct {
	mu sync.Mutex
	m  map[string]*auth.Principal
}

func (t *tokens) Verify(_ context.Context, tok string) (*auth.Principal, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.m[tok]
	if !ok {
		return nil, errors.New("unknown token")
	}
	c := *p
	return &c, nil
}

func (t *tokens) revoke(tok string) { t.mu.Lock(); defer t.mu.Unlock(); delete(t.m, tok) }

// failingRecorder refuses every audit record, as a recorder whose store is down.
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, ...cpis.AuditRecord) error {
	return cpis.E("test.Record", cpis.Unavailable, "the audit store is down")
}

// env is a viewer over a real register and SQLite store.
type env struct {
	t      *testing.T
	app    *app
	h      http.Handler
	clock  *clock
	tokens *tokens
	store  store.Store
	reg    *register.Service
}

// personas are the health users of the tests, by token.
func personas() map[string]*auth.Principal {
	health := func(name, role, roleName string, scopes []string, acts ...string) *auth.Principal {
		return &auth.Principal{Actor: cpis.Actor{
			Kind: cpis.HealthUser, UserID: "555" + name, Name: name, RoleCode: role, RoleName: roleName,
			OrgCode: "ZZT01", OrgName: "Fictional Trust", Activities: acts,
		}, Scopes: scopes}
	}
	read := []string{"openid", "profile", "user/Flag.rs", "user/Communication.rs"}
	return map[string]*auth.Principal{
		"ed":     health("Dr Ada Testwell", "S8000:G8000:R8000", "Clinical Practitioner Access Role", read, cpis.ActivityUnscheduledView),
		"dual":   health("Dr Fay Imaginary", "S8000:G8000:R8000", "Clinical Practitioner Access Role", read, cpis.ActivityUnscheduledView, cpis.ActivityScheduledView),
		"lead":   health("Nurse Eve Invented", register.DefaultSafeguardingRoles[0], "Safeguarding Children Lead", read, cpis.ActivityScheduledView),
		"nobody": health("Cal Placeholder", "S8000:G8000:R8009", "Receptionist Access Role", read),
	}
}

// newEnv builds the viewer at monday10 with plans seeded.
func newEnv(t *testing.T, modify ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "cpis.db"))
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.NewRecorder(st, audit.Options{})
	t.Cleanup(func() { rec.Close(); st.Close() })
	e := &env{t: t, clock: &clock{now: monday10}, tokens: &tokens{m: personas()}, store: st}
	e.reg = register.New(register.Config{Store: st, Audit: rec, NewID: uuid.NewString, Authorities: cpis.DevAuthorities(), Source: "test"})
	e.seed()
	cfg := Config{
		BaseURL: "https://cpis.example", FHIRBase: "https://cpis.example",
		AuthorizeURL: "https://idp.example/authorize", TokenURL: "https://idp.example/token", ClientID: "cpis-viewer",
		Verifier: e.tokens, Register: e.reg, Directory: cpis.DevDirectory(), Now: e.clock.Now,
		NewID: uuid.NewString, SecureCookies: true,
	}
	for _, m := range modify {
		m(&cfg)
	}
	if cfg.Register != e.reg {
		e.reg = cfg.Register
	}
	e.app = newApp(cfg)
	e.h = e.app.routes()
	return e
}

// seed stores plans as their LAs' systems would.
func (e *env) seed() {
	today := cpis.Today(e.clock.Now())
	dir := cpis.TrustDirectory()
	plan := func(nhs string, typ cpis.PlanType, la int, start, end int) cpis.Plan {
		p := cpis.Plan{NHSNumber: cpis.NHSNumber(nhs), Type: typ, Start: today.AddDays(start), End: today.AddDays(end),
			LA: dir[la].LocalAuthority, EmergencyPhone: dir[la].EmergencyPhone, OfficePhone: dir[la].OfficePhone}
		if typ != cpis.UCPP {
			p.BirthDate = today.AddYears(-6)
		}
		return p
	}
	for i, p := range []cpis.Plan{
		plan(childWithPlans, cpis.CPP, 0, -90, 275),
		plan(childWithPlans, cpis.CLA, 2, -30, 700),
		plan(childEnded, cpis.CLA, 1, -400, -20),
	} {
		c := register.Caller{At: e.clock.Now(), Principal: &auth.Principal{
			Actor:  cpis.Actor{Kind: cpis.LASystem, UserID: "seed", Name: "seed", OrgCode: p.LA.Code, OrgName: p.LA.Name},
			LACode: p.LA.Code, Scopes: []string{"system/Flag.write"},
		}}
		if _, _, err := e.reg.Apply(context.Background(), c, register.Write{Kind: register.Create, Reference: fmt.Sprintf("T-%d", i), Plan: p}); err != nil {
			e.t.Fatalf("seed plan %d: %v", i, err)
		}
	}
}

// user is a browser with a session of the viewer.
type user struct {
	e      *env
	cookie *http.Cookie
	csrf   string
}

// signIn starts a session for the persona's token, as the callback does.
func (e *env) signIn(token string) *user {
	p := e.tokens.m[token]
	s := e.app.sessions.add(&session{token: token, name: p.Name, role: p.RoleName, org: p.OrgName}, e.clock.Now(), e.app.cfg.IdleTimeout)
	return &user{e: e, cookie: &http.Cookie{Name: sessionCookie, Value: s.id}, csrf: s.csrf}
}

// result is a response, its body read.
type result struct {
	*http.Response
	body string
}

// do sends a request through the viewer.
func (e *env) do(req *http.Request) result {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return result{res, string(b)}
}

func (u *user) get(path string) result {
	req := httptest.NewRequest("GET", path, nil)
	if u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	return u.e.do(req)
}

// post sends a form with the session's CSRF token (unless form sets one).
func (u *user) post(path string, form url.Values) result {
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", u.csrf)
	}
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	return u.e.do(req)
}

// accesses counts the access records of a child.
func (e *env) accesses(nhs string) int {
	e.t.Helper()
	recs, err := e.store.AccessHistory(context.Background(), store.AccessQuery{NHSNumber: cpis.NHSNumber(nhs), Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(recs)
}

// auditRecords counts every audit record.
func (e *env) auditRecords() int {
	e.t.Helper()
	recs, err := e.store.SearchAudit(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(recs)
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	body = html.UnescapeString(body)
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func mustNotContain(t *testing.T, body string, unwanted ...string) {
	t.Helper()
	body = html.UnescapeString(body)
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("page holds %q", w)
		}
	}
}

// accessQuery is a child's whole access history.
func accessQuery(nhs string) store.AccessQuery {
	return store.AccessQuery{NHSNumber: cpis.NHSNumber(nhs), Limit: 1000}
}
