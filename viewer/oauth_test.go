package viewer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// tokenEndpoint is an authorization server's token endpoint for one
// client: it checks the client assertion with the client's public key and
// the PKCE verifier against the challenge of the authorization request.
type tokenEndpoint struct {
	t         *testing.T
	srv       *httptest.Server
	keys      jwk.Set
	verifier  *auth.AssertionVerifier
	mu        sync.Mutex
	challenge string // from the authorization request
	patient   string // the launch context's patient, "" for none
	fail      bool
	used      map[string]bool // codes exchanged: each is good once
}

func newTokenEndpoint(t *testing.T, e *env, pub jwk.Key) *tokenEndpoint {
	te := &tokenEndpoint{t: t, keys: jwk.NewSet()}
	te.keys.AddKey(pub)
	te.srv = httptest.NewServer(http.HandlerFunc(te.serve))
	t.Cleanup(te.srv.Close)
	te.verifier = auth.NewAssertionVerifier(te.srv.URL+"/token", e.clock.Now)
	return te
}

func (te *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	te.mu.Lock()
	defer te.mu.Unlock()
	r.ParseForm()
	f := r.PostForm
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case te.fail || te.used[f.Get("code")+"|"+f.Get("code_verifier")]:
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	case f.Get("grant_type") != "authorization_code" || f.Get("code") != "the-code" || f.Get("client_id") != "cpis-viewer":
		te.t.Errorf("token request %v", f)
	case f.Get("redirect_uri") != "https://cpis.example/app/callback":
		te.t.Errorf("redirect_uri %q", f.Get("redirect_uri"))
	case base64.RawURLEncoding.EncodeToString(sum[:]) != te.challenge:
		te.t.Errorf("the PKCE verifier does not match the challenge")
	case f.Get("client_assertion_type") != auth.ClientAssertionType || f.Get("client_secret") != "":
		te.t.Errorf("client authentication %v", f)
	}
	if err := te.verifier.VerifyClientAssertion(f.Get("client_assertion"), "cpis-viewer", te.keys); err != nil {
		te.t.Errorf("client assertion: %v", err)
	}
	if te.used == nil {
		te.used = map[string]bool{}
	}
	te.used[f.Get("code")+"|"+f.Get("code_verifier")] = true
	res := map[string]any{"access_token": "ed", "token_type": "Bearer", "expires_in": 3600, "scope": "openid user/Flag.rs"}
	if te.patient != "" {
		res["patient"] = te.patient
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(res)
}

// newOAuthEnv is a viewer whose token endpoint is te.
func newOAuthEnv(t *testing.T) (*env, *tokenEndpoint) {
	raw, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	key.Set(jwk.KeyIDKey, "viewer-1")
	pub, _ := key.PublicKey()
	var te *tokenEndpoint
	e := newEnv(t, func(c *Config) { c.Key = key })
	te = newTokenEndpoint(t, e, pub)
	e.app.cfg.TokenURL = te.srv.URL + "/token"
	return e, te
}

// startLogin follows GET path to the authorization request and returns
// its query and the login cookie.
func startLogin(t *testing.T, e *env, path string) (url.Values, *http.Cookie) {
	t.Helper()
	res := (&user{e: e}).get(path)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("%s: %d\n%s", path, res.StatusCode, res.body)
	}
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "https://idp.example/authorize" {
		t.Fatalf("redirect to %q", res.Header.Get("Location"))
	}
	var login *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == loginCookie {
			login = c
		}
	}
	if login == nil || !login.HttpOnly || login.SameSite != http.SameSiteLaxMode || !login.Secure || login.Path != "/app" {
		t.Fatalf("login cookie %+v", login)
	}
	return loc.Query(), login
}

func TestStandaloneLaunch(t *testing.T) {
	e, te := newOAuthEnv(t)
	q, login := startLogin(t, e, "/app/login")
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "cpis-viewer", "redirect_uri": "https://cpis.example/app/callback",
		"code_challenge_method": "S256", "aud": "https://cpis.example",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	scopes := strings.Fields(q.Get("scope"))
	if !slices.Contains(scopes, "launch/patient") || !slices.Contains(scopes, "user/Flag.rs") || q.Get("state") == "" || q.Has("launch") {
		t.Errorf("authorization request %v", q)
	}
	te.challenge, te.patient = q.Get("code_challenge"), childWithPlans

	cb := httptest.NewRequest("GET", "/app/callback?code=the-code&state="+url.QueryEscape(q.Get("state")), nil)
	cb.AddCookie(login)
	res := e.do(cb)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("callback: %d\n%s", res.StatusCode, res.body)
	}
	mustContain(t, res.body, `<meta http-equiv="refresh" content="0;url=/app/patient">`, `href="/app/patient"`, "Continue")
	var sess *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	if sess == nil || !sess.HttpOnly || !sess.Secure || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/app" {
		t.Fatalf("session cookie %+v", sess)
	}
	u := &user{e: e, cookie: sess}
	mustContain(t, u.get("/app/patient").body, "Child protection alert present")

	// The browser has forgotten the login cookie; a replay with a copy of
	// it reaches the token endpoint, which takes each code once.
	if !clearsCookie(res.Response, loginCookie) {
		t.Error("the callback did not clear the login cookie")
	}
	again := httptest.NewRequest("GET", "/app/callback?code=the-code&state="+url.QueryEscape(q.Get("state")), nil)
	again.AddCookie(login)
	replay := e.do(again)
	if replay.StatusCode != http.StatusBadGateway {
		t.Errorf("a replayed callback: %d, want 502", replay.StatusCode)
	}
	for _, c := range replay.Cookies() {
		if c.Name == sessionCookie && c.MaxAge >= 0 {
			t.Error("a replayed callback started a session")
		}
	}
}

func TestCallbackRefusals(t *testing.T) {
	e, te := newOAuthEnv(t)
	callback := func(query string, cookie *http.Cookie) result {
		r := httptest.NewRequest("GET", "/app/callback?"+query, nil)
		if cookie != nil {
			r.AddCookie(cookie)
		}
		return e.do(r)
	}
	_, login := startLogin(t, e, "/app/login")
	if res := callback("code=the-code&state=wrong", login); res.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong state: %d", res.StatusCode)
	}
	q, _ := startLogin(t, e, "/app/login")
	if res := callback("code=the-code&state="+url.QueryEscape(q.Get("state")), nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("no login cookie: %d", res.StatusCode)
	}
	q, login = startLogin(t, e, "/app/login")
	res := callback("error=access_denied&state="+url.QueryEscape(q.Get("state")), login)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(res.body, "access_denied") {
		t.Errorf("refused by the user: %d", res.StatusCode)
	}
	q, login = startLogin(t, e, "/app/login")
	te.fail = true
	if res := callback("code=the-code&state="+url.QueryEscape(q.Get("state")), login); res.StatusCode != http.StatusBadGateway {
		t.Errorf("token endpoint refusal: %d", res.StatusCode)
	}
}

func TestEHRLaunch(t *testing.T) {
	e, te := newOAuthEnv(t)
	for _, bad := range []string{"/app/launch?iss=https://other.example&launch=abc", "/app/launch?iss=https://cpis.example"} {
		if res := (&user{e: e}).get(bad); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", bad, res.StatusCode)
		}
	}
	q, login := startLogin(t, e, "/app/launch?iss="+url.QueryEscape("https://cpis.example")+"&launch=opaque-42")
	scopes := strings.Fields(q.Get("scope"))
	if q.Get("launch") != "opaque-42" || !slices.Contains(scopes, "launch") || slices.Contains(scopes, "launch/patient") {
		t.Errorf("EHR authorization request %v", q)
	}
	te.challenge, te.patient = q.Get("code_challenge"), childWithPlans
	cb := httptest.NewRequest("GET", "/app/callback?code=the-code&state="+url.QueryEscape(q.Get("state")), nil)
	cb.AddCookie(login)
	mustContain(t, e.do(cb).body, "url=/app/patient")
}
