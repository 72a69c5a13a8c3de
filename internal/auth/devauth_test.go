package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

const (
	devBase      = "http://127.0.0.1:8080"
	appRedirect  = "https://app.test/callback"
	appLaunchURL = "https://app.test/launch"
	testNHS      = "9434765919" // valid Modulus 11, fictional
	testVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-long-enough"
)

// testChallenge is S256(testVerifier).
var testChallenge = func() string {
	sum := sha256.Sum256([]byte(testVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}()

// authFixture is a DevAuthServer with a confidential app ("app"), a
// public one ("spa") and an LA system ("la-sys"), on a clock the test moves.
type authFixture struct {
	srv               *DevAuthServer
	clock             *testClock
	appKey, systemKey jwk.Key
	verifier          *Verifier
}

func newAuthFixture(t *testing.T) *authFixture {
	t.Helper()
	clock := &testClock{now: t0}
	iss := newDevIssuer(t, t.TempDir(), clock.Now)
	f := &authFixture{clock: clock, appKey: clientKey(t, "ES384"), systemKey: clientKey(t, "RS384")}
	cs := NewClients()
	for _, c := range []Client{
		{ID: "la-sys", Kind: ClientLASystem, OrgCode: "ZLA01", OrgName: "Fictional LA", JWKS: publicSet(t, f.systemKey),
			Scopes: []string{"system/Flag.cud", "system/Flag.rs"}},
		{ID: "spa", Kind: ClientApp, Public: true, RedirectURIs: []string{"https://spa.test/cb"}, Scopes: []string{"user/Flag.rs"}},
	} {
		if err := cs.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := NewDevAuthServer(DevAuthConfig{Issuer: iss, Clients: cs, BaseURL: devBase})
	if err != nil {
		t.Fatal(err)
	}
	err = srv.RegisterApp(Client{ID: "app", Kind: ClientApp, JWKS: publicSet(t, f.appKey),
		RedirectURIs: []string{appRedirect}, LaunchURL: appLaunchURL,
		Scopes: []string{"openid", "profile", "launch", "launch/patient", "user/Flag.rs", "user/AuditEvent.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.verifier = srv, devVerifier(t, iss, clock.Now)
	return f
}

// request is a good standalone authorization request of the app.
func (f *authFixture) request() AuthorizeRequest {
	return AuthorizeRequest{
		ResponseType: "code", ClientID: "app", RedirectURI: appRedirect, Scope: "openid launch/patient user/Flag.rs",
		State: "st-1", Aud: devBase, CodeChallenge: testChallenge, CodeChallengeMethod: "S256",
	}
}

// code runs a standalone authorization as persona, with patient, and
// returns the code.
func (f *authFixture) code(t *testing.T, req AuthorizeRequest, persona, patient string) string {
	t.Helper()
	pending, redirect, err := f.srv.Authorize(req)
	if err != nil || redirect != nil {
		t.Fatalf("Authorize: %v, %v", redirect, err)
	}
	r, err := f.srv.Approve(pending.ID, persona, patient)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	return redirectParams(t, r.URL, req.RedirectURI).Get("code")
}

// redirectParams checks u goes to base and returns its query.
func redirectParams(t *testing.T, u, base string) url.Values {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Scheme + "://" + p.Host + p.Path; got != base {
		t.Fatalf("redirect to %s, want %s", got, base)
	}
	return p.Query()
}

// exchange is the app's token request for code.
func (f *authFixture) exchange(t *testing.T, code string) TokenRequest {
	t.Helper()
	a, err := SignClientAssertion(f.appKey, "app", devBase+DevTokenPath, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return TokenRequest{GrantType: "authorization_code", Code: code, RedirectURI: appRedirect, CodeVerifier: testVerifier,
		ClientID: "app", ClientAssertionType: ClientAssertionType, ClientAssertion: a}
}

func TestStandaloneLaunch(t *testing.T) {
	f := newAuthFixture(t)
	pending, redirect, err := f.srv.Authorize(f.request())
	if err != nil || redirect != nil {
		t.Fatalf("Authorize: %v, %v", redirect, err)
	}
	if !pending.AskPatient || pending.RedirectOrigin != "https://app.test" || len(pending.ID) < 20 || len(pending.Personas) == 0 {
		t.Errorf("pending %+v", pending)
	}
	r, err := f.srv.Approve(pending.ID, "ed-clinician", "943 476 5919")
	if err != nil {
		t.Fatal(err)
	}
	q := redirectParams(t, r.URL, appRedirect)
	if q.Get("state") != "st-1" || q.Get("code") == "" || strings.Contains(r.URL, testNHS) {
		t.Errorf("redirect %s: want code and state, and no NHS number", r.URL)
	}
	g, err := f.srv.Token(f.exchange(t, q.Get("code")))
	if err != nil {
		t.Fatal(err)
	}
	if g.Patient != testNHS || g.Scope != "openid launch/patient user/Flag.rs" || g.ExpiresIn != DevTokenLifetime {
		t.Errorf("grant: patient %q, scope %q, expires in %v", g.Patient, g.Scope, g.ExpiresIn)
	}
	p, err := f.verifier.Verify(t.Context(), g.Token)
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientID != "app" || p.Kind != cpis.HealthUser || p.UserID != "555000000001" || !p.MayReadPlans() {
		t.Errorf("principal %+v: want the ed-clinician, through app, able to read plans", p)
	}
	if _, err := f.srv.Approve(pending.ID, "ed-clinician", ""); !isOAuth(err, "invalid_request") {
		t.Errorf("pending approved twice: %v", err)
	}
}

// redeem exchanges code for the app (confidential) or the spa (public).
func (f *authFixture) redeem(t *testing.T, client, code string) (TokenGrant, error) {
	t.Helper()
	if client == "app" {
		return f.srv.Token(f.exchange(t, code))
	}
	return f.srv.Token(TokenRequest{GrantType: "authorization_code", Code: code, RedirectURI: "https://spa.test/cb",
		CodeVerifier: testVerifier, ClientID: client})
}

// spaRequest is a good standalone authorization request of the public app.
func (f *authFixture) spaRequest(scope string) AuthorizeRequest {
	req := f.request()
	req.ClientID, req.RedirectURI, req.Scope = "spa", "https://spa.test/cb", scope
	return req
}

// TestGrantedScopes: an app gets what it asked for within both its
// registration and the persona's scopes; a context scope only when the app
// registered it.
func TestGrantedScopes(t *testing.T) {
	for _, tt := range []struct{ name, client, scope, persona, want string }{
		{"the persona bounds", "app", "launch/patient openid user/Flag.rs user/AuditEvent.rs", "auditor", "launch/patient openid user/AuditEvent.rs"},
		{"the registration bounds", "app", "openid fhirUser user/Flag.rs user/Communication.rs system/Flag.rs", "safeguarding-lead", "openid user/Flag.rs"},
		{"context scopes the app did not register", "spa", "openid profile launch/patient user/Flag.rs", "community-nurse", "user/Flag.rs"},
		{"v1 within the registered v2", "spa", "user/Flag.read", "ed-clinician", "user/Flag.read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthFixture(t)
			req := f.request()
			if tt.client == "spa" {
				req = f.spaRequest("")
			}
			req.Scope = tt.scope
			g, err := f.redeem(t, tt.client, f.code(t, req, tt.persona, ""))
			if err != nil {
				t.Fatal(err)
			}
			if g.Scope != tt.want || g.Patient != "" {
				t.Errorf("granted %q, patient %q; want %q", g.Scope, g.Patient, tt.want)
			}
			p, err := f.verifier.Verify(t.Context(), g.Token)
			if err != nil || strings.Join(p.Scopes, " ") != tt.want {
				t.Errorf("the token holds %v, %v", p, err)
			}
		})
	}
}

// TestSystemPersonasAreNotForApps: a registered app, even a public one,
// cannot obtain a system's scopes by having an LA system chosen on the
// page: the page offers people only, Approve refuses a system, and a
// scope the app is not registered for is never granted.
func TestSystemPersonasAreNotForApps(t *testing.T) {
	f := newAuthFixture(t)
	req := f.spaRequest("system/Flag.write system/Flag.read user/Flag.rs")
	pending, redirect, err := f.srv.Authorize(req)
	if err != nil || pending == nil {
		t.Fatalf("Authorize: %v, %v", redirect, err)
	}
	var offered []string
	for _, p := range pending.Personas {
		offered = append(offered, p.Name)
	}
	if len(offered) == 0 || slices.ContainsFunc(pending.Personas, func(p Persona) bool { return p.Kind != cpis.HealthUser }) {
		t.Errorf("the page offers %v; want people only", offered)
	}
	if strings.Join(pending.Scopes, " ") != "user/Flag.rs" {
		t.Errorf("the page shows scopes %v; want those the app may get", pending.Scopes)
	}
	for _, system := range []string{"la:ZLA01", "trust-system"} {
		r, err := f.srv.Approve(pending.ID, system, "")
		if !isOAuth(err, "invalid_request") {
			got := ""
			if r != nil {
				g, _ := f.redeem(t, "spa", redirectParams(t, r.URL, req.RedirectURI).Get("code"))
				got = g.Scope
			}
			t.Errorf("%s approved for an app (%v), granted %q", system, err, got)
		}
	}
	if _, ok := f.srv.Pending(pending.ID); !ok {
		t.Fatalf("a refused system used the request up")
	}
	r, err := f.srv.Approve(pending.ID, "ed-clinician", "")
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.redeem(t, "spa", redirectParams(t, r.URL, req.RedirectURI).Get("code"))
	if err != nil || g.Scope != "user/Flag.rs" {
		t.Errorf("granted %q, %v; want user/Flag.rs alone", g.Scope, err)
	}
}

// TestNoResourceScope: a request left with no resource scope goes back to
// the app with invalid_scope: at once when the app is registered for none
// of those asked, after the choice when the persona holds none of them.
func TestNoResourceScope(t *testing.T) {
	f := newAuthFixture(t)
	wantInvalidScope := func(t *testing.T, r *AuthorizeRedirect, req AuthorizeRequest) {
		t.Helper()
		if r == nil {
			t.Fatal("no redirect")
		}
		q := redirectParams(t, r.URL, req.RedirectURI)
		if q.Get("error") != "invalid_scope" || q.Get("state") != req.State || q.Get("code") != "" {
			t.Errorf("redirect %s: want error=invalid_scope with the state and no code", r.URL)
		}
	}
	for _, scope := range []string{"system/Flag.write", "openid launch/patient", "user/Communication.rs"} {
		t.Run("registered for none: "+scope, func(t *testing.T) {
			req := f.request()
			req.Scope = scope
			pending, r, err := f.srv.Authorize(req)
			if err != nil || pending != nil {
				t.Fatalf("got a page (%t), %v; want a redirect", pending != nil, err)
			}
			wantInvalidScope(t, r, req)
		})
	}
	t.Run("the persona holds none", func(t *testing.T) {
		req := f.request()
		req.Scope = "openid user/AuditEvent.rs"
		pending, _, err := f.srv.Authorize(req)
		if err != nil || pending == nil {
			t.Fatalf("Authorize: %v", err)
		}
		r, err := f.srv.Approve(pending.ID, "ed-clinician", "")
		if err != nil {
			t.Fatal(err)
		}
		wantInvalidScope(t, r, req)
	})
	t.Run("the launch's persona holds none", func(t *testing.T) {
		to, err := f.srv.Launch("ed-clinician", testNHS, appLaunchURL)
		if err != nil {
			t.Fatal(err)
		}
		req := f.request()
		req.Scope, req.Launch = "launch openid user/AuditEvent.rs", redirectParams(t, to, appLaunchURL).Get("launch")
		_, r, err := f.srv.Authorize(req)
		if err != nil {
			t.Fatal(err)
		}
		wantInvalidScope(t, r, req)
	})
}

// TestLaunchContextNeedsALaunchScope: an app not registered for launch or
// launch/patient is told no patient, even when launched with one.
func TestLaunchContextNeedsALaunchScope(t *testing.T) {
	f := newAuthFixture(t)
	err := f.srv.RegisterApp(Client{ID: "plain", Kind: ClientApp, Public: true, RedirectURIs: []string{"https://spa.test/cb"},
		LaunchURL: "https://plain.test/launch", Scopes: []string{"user/Flag.rs"}})
	if err != nil {
		t.Fatal(err)
	}
	to, err := f.srv.Launch("community-nurse", testNHS, "https://plain.test/launch")
	if err != nil {
		t.Fatal(err)
	}
	req := f.spaRequest("launch launch/patient user/Flag.rs")
	req.ClientID, req.Launch = "plain", redirectParams(t, to, "https://plain.test/launch").Get("launch")
	_, r, err := f.srv.Authorize(req)
	if err != nil || r == nil {
		t.Fatalf("Authorize: %v, %v", r, err)
	}
	g, err := f.redeem(t, "plain", redirectParams(t, r.URL, req.RedirectURI).Get("code"))
	if err != nil || g.Patient != "" || g.Scope != "user/Flag.rs" {
		t.Errorf("EHR launch: patient %q, scope %q, %v; want no patient", g.Patient, g.Scope, err)
	}
	req.Launch = ""
	pending, _, err := f.srv.Authorize(req)
	if err != nil || pending == nil || pending.AskPatient {
		t.Fatalf("standalone: %v; want a page that asks for no patient", err)
	}
	r, err = f.srv.Approve(pending.ID, "community-nurse", testNHS)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := f.redeem(t, "plain", redirectParams(t, r.URL, req.RedirectURI).Get("code")); err != nil || g.Patient != "" {
		t.Errorf("standalone: patient %q, %v; want none", g.Patient, err)
	}
}

func TestEHRLaunch(t *testing.T) {
	f := newAuthFixture(t)
	to, err := f.srv.Launch("community-nurse", testNHS, appLaunchURL)
	if err != nil {
		t.Fatal(err)
	}
	q := redirectParams(t, to, appLaunchURL)
	if q.Get("iss") != devBase || q.Get("launch") == "" || strings.Contains(to, testNHS) {
		t.Fatalf("launch URL %s", to)
	}
	req := f.request()
	req.Scope, req.Launch = "launch openid user/Flag.rs", q.Get("launch")
	pending, redirect, err := f.srv.Authorize(req)
	if err != nil || pending != nil || redirect == nil {
		t.Fatalf("Authorize with a launch: %v, %v, %v; want a redirect at once", pending, redirect, err)
	}
	code := redirectParams(t, redirect.URL, appRedirect).Get("code")
	g, err := f.srv.Token(f.exchange(t, code))
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.verifier.Verify(t.Context(), g.Token)
	if err != nil {
		t.Fatal(err)
	}
	if g.Patient != testNHS || p.UserID != "555000000002" || p.ClientID != "app" {
		t.Errorf("patient %q, principal %+v", g.Patient, p)
	}
	if _, redirect, _ := f.srv.Authorize(req); redirect == nil || redirectParams(t, redirect.URL, appRedirect).Get("error") != "invalid_request" {
		t.Errorf("launch used twice: %+v", redirect)
	}
}

func TestLaunchRefuses(t *testing.T) {
	f := newAuthFixture(t)
	for _, tt := range []struct {
		name, persona, patient, app string
		kind                        cpis.Kind
	}{
		{"unknown persona", "nobody", testNHS, appLaunchURL, cpis.InvalidValue},
		{"Modulus 11", "ed-clinician", "9434765918", appLaunchURL, cpis.InvalidNHSNumber},
		{"not a launch URL", "ed-clinician", testNHS, "https://evil.test/launch", cpis.InvalidValue},
		{"redirect URI is not a launch URL", "ed-clinician", testNHS, appRedirect, cpis.InvalidValue},
		{"an LA system", "la:ZLA01", testNHS, appLaunchURL, cpis.InvalidValue},
		{"the Trust's engine", "trust-system", testNHS, appLaunchURL, cpis.InvalidValue},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.srv.Launch(tt.persona, tt.patient, tt.app)
			if cpis.KindOf(err) != tt.kind || strings.Contains(err.Error(), tt.patient) {
				t.Errorf("got %v, want kind %v without the NHS number", err, tt.kind)
			}
		})
	}
	// A launch for a system, however it came to be, signs no one in.
	f.srv.mu.Lock()
	f.srv.launches["system-launch"] = launchContext{persona: "la:ZLA01", clientID: "app", expires: t0.Add(time.Minute)}
	f.srv.mu.Unlock()
	req := f.request()
	req.Scope, req.Launch = "launch user/Flag.rs", "system-launch"
	if _, r, err := f.srv.Authorize(req); err != nil || r == nil || redirectParams(t, r.URL, appRedirect).Get("error") != "invalid_request" {
		t.Errorf("a system's launch: %+v, %v; want error=invalid_request", r, err)
	}
}

// TestAuthorizeRefuses: an untrusted client or redirect URI is a page;
// the rest go back to the app with error=.
func TestAuthorizeRefuses(t *testing.T) {
	f := newAuthFixture(t)
	other, err := f.srv.Launch("ed-clinician", "", appLaunchURL)
	if err != nil {
		t.Fatal(err)
	}
	otherLaunch := redirectParams(t, other, appLaunchURL).Get("launch")
	tests := []struct {
		name     string
		change   func(r *AuthorizeRequest)
		page     string // the OAuth error shown as a page
		redirect string // the error sent back to the app
	}{
		{"unknown client", func(r *AuthorizeRequest) { r.ClientID = "nobody" }, "invalid_client", ""},
		{"a system", func(r *AuthorizeRequest) { r.ClientID = "la-sys" }, "unauthorized_client", ""},
		{"redirect_uri not registered", func(r *AuthorizeRequest) { r.RedirectURI = "https://evil.test/cb" }, "invalid_request", ""},
		{"redirect_uri differs by a slash", func(r *AuthorizeRequest) { r.RedirectURI += "/" }, "invalid_request", ""},
		{"no redirect_uri", func(r *AuthorizeRequest) { r.RedirectURI = "" }, "invalid_request", ""},
		{"plain PKCE", func(r *AuthorizeRequest) { r.CodeChallengeMethod = "plain" }, "", "invalid_request"},
		{"no PKCE", func(r *AuthorizeRequest) { r.CodeChallenge, r.CodeChallengeMethod = "", "" }, "", "invalid_request"},
		{"short challenge", func(r *AuthorizeRequest) { r.CodeChallenge = "abc" }, "", "invalid_request"},
		{"implicit", func(r *AuthorizeRequest) { r.ResponseType = "token" }, "", "unsupported_response_type"},
		{"wrong aud", func(r *AuthorizeRequest) { r.Aud = "https://other.test/fhir" }, "", "invalid_request"},
		{"no aud", func(r *AuthorizeRequest) { r.Aud = "" }, "", "invalid_request"},
		{"no scope", func(r *AuthorizeRequest) { r.Scope = "" }, "", "invalid_scope"},
		{"unknown launch", func(r *AuthorizeRequest) { r.Launch = "made-up" }, "", "invalid_request"},
		{"another app's launch", func(r *AuthorizeRequest) {
			r.ClientID, r.RedirectURI, r.Launch = "spa", "https://spa.test/cb", otherLaunch
		}, "", "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := f.request()
			tt.change(&req)
			pending, redirect, err := f.srv.Authorize(req)
			if pending != nil {
				t.Fatalf("pending %+v", pending)
			}
			if tt.page != "" {
				if !isOAuth(err, tt.page) || redirect != nil {
					t.Errorf("got %v, %+v; want a page for %s", err, redirect, tt.page)
				}
				return
			}
			if err != nil || redirect == nil {
				t.Fatalf("got %v, %+v; want a redirect", err, redirect)
			}
			q := redirectParams(t, redirect.URL, req.RedirectURI)
			if q.Get("error") != tt.redirect || q.Get("state") != req.State || q.Get("code") != "" {
				t.Errorf("redirect %s: want error=%s and the state", redirect.URL, tt.redirect)
			}
		})
	}
}

func TestApproveRefuses(t *testing.T) {
	f := newAuthFixture(t)
	pending, _, err := f.srv.Authorize(f.request())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Approve("made-up", "ed-clinician", ""); !isOAuth(err, "invalid_request") {
		t.Errorf("unknown request: %v", err)
	}
	_, err = f.srv.Approve(pending.ID, "ed-clinician", "9434765918")
	if cpis.KindOf(err) != cpis.InvalidNHSNumber || strings.Contains(err.Error(), "9434765918") {
		t.Errorf("bad NHS number: %v", err)
	}
	if _, ok := f.srv.Pending(pending.ID); !ok {
		t.Errorf("a bad NHS number used the request up: the page cannot be shown again")
	}
	if _, err := f.srv.Approve(pending.ID, "nobody", ""); !isOAuth(err, "invalid_request") {
		t.Errorf("unknown persona: %v", err)
	}
	f.clock.set(t0.Add(PendingAuthLifetime))
	if _, err := f.srv.Approve(pending.ID, "ed-clinician", ""); !isOAuth(err, "invalid_request") {
		t.Errorf("expired request: %v", err)
	}
}

// TestExchangeRefuses: every fault of the code exchange, each on a fresh
// code; the code is spent by the attempt.
func TestExchangeRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, f *authFixture, r *TokenRequest)
		code   string
	}{
		{"PKCE mismatch", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.CodeVerifier = strings.Repeat("x", 43) }, "invalid_grant"},
		{"no verifier", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.CodeVerifier = "" }, "invalid_grant"},
		{"the challenge as verifier (plain)", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.CodeVerifier = testChallenge }, "invalid_grant"},
		{"wrong redirect_uri", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.RedirectURI = "https://app.test/other" }, "invalid_grant"},
		{"no redirect_uri", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.RedirectURI = "" }, "invalid_grant"},
		{"expired code", func(t *testing.T, f *authFixture, r *TokenRequest) {
			f.clock.set(t0.Add(CodeLifetime))
			*r = f.exchange(t, r.Code)
		}, "invalid_grant"},
		{"made-up code", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.Code = "made-up" }, "invalid_grant"},
		{"no assertion (confidential)", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.ClientAssertion, r.ClientAssertionType = "", "" }, "invalid_client"},
		{"assertion of another key", func(t *testing.T, f *authFixture, r *TokenRequest) {
			r.ClientAssertion, _ = SignClientAssertion(f.systemKey, "app", devBase+DevTokenPath, t0)
		}, "invalid_client"},
		{"wrong assertion type", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.ClientAssertionType = "urn:x" }, "invalid_client"},
		{"another client's code", func(_ *testing.T, _ *authFixture, r *TokenRequest) {
			r.ClientID, r.ClientAssertion, r.ClientAssertionType = "spa", "", ""
		}, "invalid_grant"},
		{"unknown grant", func(_ *testing.T, _ *authFixture, r *TokenRequest) { r.GrantType = "password" }, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthFixture(t)
			req := f.exchange(t, f.code(t, f.request(), "ed-clinician", ""))
			tt.change(t, f, &req)
			if _, err := f.srv.Token(req); !isOAuth(err, tt.code) {
				t.Errorf("got %v, want %s", err, tt.code)
			}
		})
	}
}

func TestCodeIsUsedOnce(t *testing.T) {
	f := newAuthFixture(t)
	code := f.code(t, f.request(), "ed-clinician", "")
	if _, err := f.srv.Token(f.exchange(t, code)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Token(f.exchange(t, code)); !isOAuth(err, "invalid_grant") {
		t.Errorf("code reused: %v", err)
	}
	// A failed attempt spends the code too.
	code = f.code(t, f.request(), "ed-clinician", "")
	bad := f.exchange(t, code)
	bad.CodeVerifier = strings.Repeat("y", 43)
	_, _ = f.srv.Token(bad)
	if _, err := f.srv.Token(f.exchange(t, code)); !isOAuth(err, "invalid_grant") {
		t.Errorf("code good after a failed attempt: %v", err)
	}
	// Just inside its lifetime a code is good.
	code = f.code(t, f.request(), "ed-clinician", "")
	f.clock.set(t0.Add(CodeLifetime - time.Second))
	if _, err := f.srv.Token(f.exchange(t, code)); err != nil {
		t.Errorf("code at 59 s: %v", err)
	}
}

func TestPublicApp(t *testing.T) {
	f := newAuthFixture(t)
	req := f.request()
	req.ClientID, req.RedirectURI, req.Scope = "spa", "https://spa.test/cb", "user/Flag.rs"
	code := f.code(t, req, "community-nurse", "")
	tr := TokenRequest{GrantType: "authorization_code", Code: code, RedirectURI: req.RedirectURI, CodeVerifier: testVerifier, ClientID: "spa"}
	g, err := f.srv.Token(tr)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := f.verifier.Verify(t.Context(), g.Token); err != nil || p.ClientID != "spa" {
		t.Errorf("principal %+v, %v", p, err)
	}
}

func TestBackendServices(t *testing.T) {
	f := newAuthFixture(t)
	assertion := func() string {
		a, err := SignClientAssertion(f.systemKey, "la-sys", devBase+DevTokenPath, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name, scope, want string
	}{
		{"all registered", "", "system/Flag.cud system/Flag.rs"},
		{"narrowed", "system/Flag.rs system/Communication.rs", "system/Flag.rs"},
		{"v1 within v2", "system/Flag.read", "system/Flag.read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := f.srv.Token(TokenRequest{GrantType: "client_credentials", Scope: tt.scope,
				ClientAssertionType: ClientAssertionType, ClientAssertion: assertion()})
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.verifier.Verify(t.Context(), g.Token)
			if err != nil {
				t.Fatal(err)
			}
			want := &Principal{Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "la-sys", Name: "Fictional LA", OrgCode: "ZLA01", OrgName: "Fictional LA"},
				Subject: "la-sys", ClientID: "la-sys", LACode: "ZLA01", Scopes: strings.Fields(tt.want)}
			if diff := cmp.Diff(want, p); diff != "" || g.Scope != tt.want {
				t.Errorf("scope %q; principal (-want +got):\n%s", g.Scope, diff)
			}
		})
	}
	for _, tt := range []struct {
		name string
		req  TokenRequest
		code string
	}{
		{"nothing registered asked", TokenRequest{Scope: "system/Subscription.cruds"}, "invalid_scope"},
		{"a context scope alone", TokenRequest{Scope: "openid launch"}, "invalid_scope"},
		{"no assertion", TokenRequest{ClientID: "la-sys"}, "invalid_client"},
		{"an app", TokenRequest{ClientID: "app"}, "unauthorized_client"},
		{"client_id not the assertion's", TokenRequest{ClientID: "app", ClientAssertion: "x"}, "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.GrantType = "client_credentials"
			if req.ClientAssertion == "" && tt.name != "no assertion" {
				req.ClientAssertionType = ClientAssertionType
				if req.ClientID == "app" {
					req.ClientAssertion, _ = SignClientAssertion(f.appKey, "app", devBase+DevTokenPath, f.clock.Now())
				} else {
					req.ClientAssertion = assertion()
				}
			} else if req.ClientAssertion == "x" {
				req.ClientAssertionType, req.ClientAssertion = ClientAssertionType, assertion()
			}
			if _, err := f.srv.Token(req); !isOAuth(err, tt.code) {
				t.Errorf("got %v, want %s", err, tt.code)
			}
		})
	}
}

// TestHealthSystemToken: a health system's token is shaped as the
// trust-system persona's.
func TestHealthSystemToken(t *testing.T) {
	f := newAuthFixture(t)
	key := clientKey(t, "ES384")
	err := f.srv.Clients().Add(Client{ID: "engine", Kind: ClientHealthSystem, Name: "Engine", OrgCode: "ZZT01", OrgName: "Trust",
		Activities: []string{cpis.ActivityScheduledView}, Scopes: []string{"system/Flag.rs"}, JWKS: publicSet(t, key)})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := SignClientAssertion(key, "engine", devBase+DevTokenPath, t0)
	g, err := f.srv.Token(TokenRequest{GrantType: "client_credentials", ClientID: "engine", ClientAssertionType: ClientAssertionType, ClientAssertion: a})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.verifier.Verify(t.Context(), g.Token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != cpis.HealthSystem || p.ClientID != "engine" || p.Name != "Engine" || p.OrgCode != "ZZT01" || !p.MayReadPlans() {
		t.Errorf("principal %+v", p)
	}
}

func TestRegisterAppOnlyApps(t *testing.T) {
	f := newAuthFixture(t)
	if err := f.srv.RegisterApp(Client{ID: "x", Kind: ClientLASystem, OrgCode: "Z", OrgName: "Z", Scopes: []string{"system/Flag.rs"}, JWKS: publicSet(t, f.systemKey)}); err == nil {
		t.Errorf("a system registered as an app")
	}
	if err := f.srv.RegisterApp(Client{ID: "app", Kind: ClientApp, Public: true, RedirectURIs: []string{appRedirect}, Scopes: []string{"user/Flag.rs"}}); err == nil {
		t.Errorf("a client id registered twice")
	}
}

func isOAuth(err error, code string) bool {
	oe, ok := AsOAuthError(err)
	return ok && oe.Code == code && !strings.ContainsAny(oe.Description, "\"\\")
}
