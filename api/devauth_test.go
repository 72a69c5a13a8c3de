package api

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
)

const (
	authBase     = "http://127.0.0.1:8080"
	authRedirect = "https://app.test/callback"
	authLaunch   = "https://app.test/launch"
	authNHS      = "9434765919"
	authVerifier = "a-code-verifier-of-forty-three-characters-or-more"
)

// authServer is a dev-mode handler with an authorization server knowing a
// confidential app ("app") and an LA system ("la-ZLA01"), and the keys of both.
type authServer struct {
	h                 http.Handler
	logs              *logBuffer
	appKey, systemKey jwk.Key
}

// authNow is the injected clock of every authServer: a fixed instant, so
// that no test depends on the day it runs.
func authNow() time.Time { return time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC) }

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	dev, err := auth.LoadOrCreateDevIssuer(t.TempDir(), authBase+"/dev", "cpis", authNow)
	if err != nil {
		t.Fatal(err)
	}
	as := &authServer{logs: &logBuffer{}, appKey: ecKey(t), systemKey: ecKey(t)}
	cs := auth.NewClients()
	err = cs.Add(auth.Client{ID: "la-ZLA01", Kind: auth.ClientLASystem, OrgCode: "ZLA01", OrgName: "LA one",
		Scopes: []string{"system/Flag.cud", "system/Flag.rs"}, JWKS: pubSet(t, as.systemKey)})
	if err != nil {
		t.Fatal(err)
	}
	da, err := auth.NewDevAuthServer(auth.DevAuthConfig{Issuer: dev, Clients: cs, BaseURL: authBase})
	if err != nil {
		t.Fatal(err)
	}
	err = da.RegisterApp(auth.Client{ID: "app", Kind: auth.ClientApp, RedirectURIs: []string{authRedirect}, LaunchURL: authLaunch,
		Scopes: []string{"openid", "launch", "launch/patient", "user/Flag.rs"}, JWKS: pubSet(t, as.appKey)})
	if err != nil {
		t.Fatal(err)
	}
	smart := da.SMARTConfiguration()
	as.h = New(Deps{Logger: slog.New(slog.NewJSONHandler(as.logs, nil)), Now: authNow, NewID: uuid.NewString,
		Dev: dev, DevAuth: da, SMART: &smart, BaseURL: authBase})
	return as
}

func ecKey(t *testing.T) jwk.Key {
	t.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := jwk.AssignKeyID(k, jwk.WithThumbprintHash(crypto.SHA256)); err != nil {
		t.Fatal(err)
	}
	return k
}

func pubSet(t *testing.T, k jwk.Key) jwk.Set {
	t.Helper()
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	return set
}

// send makes one loopback request; form, when set, is the body.
func (as *authServer) send(method, target string, form url.Values) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	req.RemoteAddr = "127.0.0.1:40000"
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	as.h.ServeHTTP(rec, req)
	return rec
}

func authorizeQuery(scope string) url.Values {
	sum := sha256.Sum256([]byte(authVerifier))
	return url.Values{
		"response_type": {"code"}, "client_id": {"app"}, "redirect_uri": {authRedirect}, "scope": {scope},
		"state": {"st"}, "aud": {authBase}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
}

var hiddenRequest = regexp.MustCompile(`name="request" value="([^"]+)"`)

// TestDevAuthorizePage: the page names every person on a button (no
// system: systems never sign in through an app), asks for an optional NHS
// number for launch/patient, runs no script, and cannot be framed.
func TestDevAuthorizePage(t *testing.T) {
	as := newAuthServer(t)
	rec := as.send("GET", "/dev/authorize?"+authorizeQuery("openid launch/patient user/Flag.rs").Encode(), nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	page := rec.Body.String()
	for _, want := range []string{
		"<h1>Choose a development persona</h1>",
		`<button type="submit" name="persona" value="ed-clinician" aria-describedby="persona-0">Sign in as ed-clinician</button>`,
		">Sign in as safeguarding-lead</button>", ">Sign in as paediatrician</button>",
		`<label for="patient">Patient NHS number</label>`, `<form method="post" action="authorize">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, system := range []string{`value="la:ZLA01"`, `value="trust-system"`, "Systems (not people)"} {
		if strings.Contains(page, system) {
			t.Errorf("the page offers a system: %s", system)
		}
	}
	if strings.Contains(page, "<script") || !hiddenRequest.MatchString(page) {
		t.Errorf("the page has a script, or no pending request id")
	}
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'self' https://app.test", "style-src 'sha256-"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	style := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindStringSubmatch(page)
	if sum := sha256.Sum256([]byte(style[1])); !strings.Contains(csp, base64.StdEncoding.EncodeToString(sum[:])) {
		t.Errorf("the CSP does not allow the page's own style sheet")
	}
	if strings.Contains(csp, "unsafe-inline") || rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("headers %v", rec.Header())
	}
	rec = as.send("GET", "/dev/authorize?"+authorizeQuery("openid user/Flag.rs").Encode(), nil)
	if strings.Contains(rec.Body.String(), "Patient NHS number") {
		t.Errorf("NHS number asked for without launch/patient")
	}
}

// TestDevAuthorizationCodeFlow: page, persona, code, token with PKCE and
// the patient; no NHS number reaches a log line or a URL.
func TestDevAuthorizationCodeFlow(t *testing.T) {
	as := newAuthServer(t)
	rec := as.send("GET", "/dev/authorize?"+authorizeQuery("openid launch/patient user/Flag.rs").Encode(), nil)
	id := hiddenRequest.FindStringSubmatch(rec.Body.String())[1]

	rec = as.send("POST", "/dev/authorize", url.Values{"request": {id}, "persona": {"ed-clinician"}, "patient": {"943 476 5918"}})
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "not a valid NHS number") ||
		!strings.Contains(rec.Body.String(), `role="alert"`) {
		t.Fatalf("bad NHS number: %d %s", rec.Code, rec.Body)
	}
	rec = as.send("POST", "/dev/authorize", url.Values{"request": {id}, "persona": {"ed-clinician"}, "patient": {"943 476 5919"}})
	if rec.Code != http.StatusFound {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if loc.Host != "app.test" || loc.Query().Get("state") != "st" || strings.Contains(loc.String(), authNHS) {
		t.Fatalf("redirect %s", loc)
	}
	assertion, err := auth.SignClientAssertion(as.appKey, "app", authBase+"/dev/token", authNow())
	if err != nil {
		t.Fatal(err)
	}
	rec = as.send("POST", "/dev/token", url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {authRedirect}, "code_verifier": {authVerifier}, "client_id": {"app"},
		"client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}})
	var tok map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &tok); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("token: %d %s", rec.Code, rec.Body)
	}
	if tok["patient"] != authNHS || tok["token_type"] != "Bearer" || tok["scope"] != "openid launch/patient user/Flag.rs" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("token response %v", tok)
	}
	if strings.Contains(as.logs.b.String(), authNHS) || strings.Contains(as.logs.b.String(), "9434765918") {
		t.Errorf("an NHS number reached the log:\n%s", as.logs.b.String())
	}
	rec = as.send("POST", "/dev/authorize", url.Values{"request": {id}, "persona": {"ed-clinician"}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("request approved twice: %d", rec.Code)
	}
}

// TestDevApproveRefusesSystems: a form naming a system, which the page
// never offers, is refused with a page and the request stays usable.
func TestDevApproveRefusesSystems(t *testing.T) {
	as := newAuthServer(t)
	rec := as.send("GET", "/dev/authorize?"+authorizeQuery("openid user/Flag.rs").Encode(), nil)
	id := hiddenRequest.FindStringSubmatch(rec.Body.String())[1]
	for _, system := range []string{"la:ZLA01", "trust-system"} {
		rec = as.send("POST", "/dev/authorize", url.Values{"request": {id}, "persona": {system}})
		if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), "client_credentials") {
			t.Errorf("%s: %d %v", system, rec.Code, rec.Header())
		}
	}
	rec = as.send("POST", "/dev/authorize", url.Values{"request": {id}, "persona": {"ed-clinician"}})
	if rec.Code != http.StatusFound {
		t.Errorf("after the refusals, a person: %d %s", rec.Code, rec.Body)
	}
}

// TestDevLaunchRefusesOtherSites: a launch that another site caused (a
// link, an image, a redirect from any page open in the browser) is a 403
// page; one the developer typed, one from this server's own pages, and one
// from curl or a Go client (no Sec-Fetch-Site) go on.
func TestDevLaunchRefusesOtherSites(t *testing.T) {
	as := newAuthServer(t)
	target := "/dev/launch?" + url.Values{"persona": {"ed-clinician"}, "patient": {authNHS}, "app": {authLaunch}}.Encode()
	for _, tt := range []struct {
		site   []string
		status int
	}{
		{nil, http.StatusFound},
		{[]string{"none"}, http.StatusFound},
		{[]string{"same-origin"}, http.StatusFound},
		{[]string{"cross-site"}, http.StatusForbidden},
		{[]string{"same-site"}, http.StatusForbidden}, // another port of localhost
		{[]string{"SAME-ORIGIN"}, http.StatusForbidden},
		{[]string{"same-origin", "cross-site"}, http.StatusForbidden},
	} {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = "127.0.0.1:40000"
		for _, v := range tt.site {
			req.Header.Add("Sec-Fetch-Site", v)
		}
		rec := httptest.NewRecorder()
		as.h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("Sec-Fetch-Site %v: %d, want %d", tt.site, rec.Code, tt.status)
			continue
		}
		if tt.status == http.StatusFound {
			continue
		}
		body := rec.Body.String()
		if rec.Header().Get("Location") != "" || !strings.Contains(body, "<h1>Launch refused</h1>") ||
			!strings.Contains(body, "started by another website") || strings.Contains(body, authNHS) {
			t.Errorf("Sec-Fetch-Site %v: %v\n%s", tt.site, rec.Header(), body)
		}
		csp := rec.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("headers %v", rec.Header())
		}
	}
}

// TestDevAuthorizeErrors: an untrusted client or redirect gets a page; a
// fault of a trusted one goes back with error=.
func TestDevAuthorizeErrors(t *testing.T) {
	as := newAuthServer(t)
	q := authorizeQuery("user/Flag.rs")
	q.Set("redirect_uri", "https://evil.test/cb")
	rec := as.send("GET", "/dev/authorize?"+q.Encode(), nil)
	if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), "Sign-in refused") {
		t.Errorf("unregistered redirect_uri: %d %v", rec.Code, rec.Header())
	}
	q = authorizeQuery("user/Flag.rs")
	q.Set("code_challenge_method", "plain")
	rec = as.send("GET", "/dev/authorize?"+q.Encode(), nil)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "st" {
		t.Errorf("plain PKCE: %d %s", rec.Code, loc)
	}
	rec = as.send("GET", "/dev/authorize?"+authorizeQuery("user/Flag.rs").Encode()+"&state=again", nil)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("state twice: %d", rec.Code)
	}
}

// TestDevLaunchFlow: /dev/launch acts as the EHR; the app's authorization
// request with the launch comes straight back with a code.
func TestDevLaunchFlow(t *testing.T) {
	as := newAuthServer(t)
	rec := as.send("GET", "/dev/launch?"+url.Values{"persona": {"community-nurse"}, "patient": {authNHS}, "app": {authLaunch}}.Encode(), nil)
	loc, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || loc.Query().Get("iss") != authBase || loc.Query().Get("launch") == "" || strings.Contains(loc.String(), authNHS) {
		t.Fatalf("launch: %d %s", rec.Code, loc)
	}
	q := authorizeQuery("launch openid user/Flag.rs")
	q.Set("launch", loc.Query().Get("launch"))
	rec = as.send("GET", "/dev/authorize?"+q.Encode(), nil)
	back, _ := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || back.Query().Get("code") == "" {
		t.Fatalf("authorize with launch: %d %s", rec.Code, back)
	}
	for _, tt := range []struct {
		name   string
		q      url.Values
		status int
	}{
		{"Modulus 11", url.Values{"persona": {"community-nurse"}, "patient": {"9434765918"}, "app": {authLaunch}}, 400},
		{"unknown app", url.Values{"persona": {"community-nurse"}, "app": {"https://evil.test/"}}, 400},
		{"unknown persona", url.Values{"persona": {"nobody"}, "app": {authLaunch}}, 400},
	} {
		if rec := as.send("GET", "/dev/launch?"+tt.q.Encode(), nil); rec.Code != tt.status || strings.Contains(rec.Body.String(), "9434765918") {
			t.Errorf("%s: %d %s", tt.name, rec.Code, rec.Body)
		}
	}
}

// TestDevBackendServices: a registered system gets a token with its
// assertion; an assertion signed by another key is invalid_client (401).
func TestDevBackendServices(t *testing.T) {
	as := newAuthServer(t)
	for _, tt := range []struct {
		name   string
		key    jwk.Key
		status int
	}{{"own key", as.systemKey, 200}, {"another key", ecKey(t), 401}} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := auth.SignClientAssertion(tt.key, "la-ZLA01", authBase+"/dev/token", authNow())
			if err != nil {
				t.Fatal(err)
			}
			rec := as.send("POST", "/dev/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Flag.rs"},
				"client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {a}})
			var got map[string]any
			_ = json.Unmarshal(rec.Body.Bytes(), &got)
			if rec.Code != tt.status || (tt.status == 200 && got["scope"] != "system/Flag.rs") || (tt.status == 401 && got["error"] != "invalid_client") {
				t.Errorf("%d %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestDevAuthRoutesNeedTheServer: without an authorization server the
// dev routes answer 404, and not from other machines either way.
func TestDevAuthRoutesNeedTheServer(t *testing.T) {
	h := devServer(t)
	for _, target := range []string{"/dev/authorize?" + authorizeQuery("user/Flag.rs").Encode(), "/dev/launch?persona=ed-clinician&app=x"} {
		req := httptest.NewRequest("GET", target, nil)
		req.RemoteAddr = "127.0.0.1:1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s without DevAuth: %d", target, rec.Code)
		}
	}
	as := newAuthServer(t)
	req := httptest.NewRequest("GET", "/dev/authorize?"+authorizeQuery("user/Flag.rs").Encode(), nil)
	req.RemoteAddr = "10.0.0.7:1"
	rec := httptest.NewRecorder()
	as.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("from 10.0.0.7: %d", rec.Code)
	}
}
