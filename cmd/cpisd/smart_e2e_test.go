package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// oidcIssuer is an external issuer whose discovery document a test chooses:
// extra is merged into {"issuer", "jwks_uri"}.
func oidcIssuer(t *testing.T, extra func(base string) map[string]any) *externalIssuer {
	t.Helper()
	iss := &externalIssuer{}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dev, err := auth.LoadOrCreateDevIssuer(t.TempDir(), srv.URL, "cpis", (&testClock{now: startDay}).Now)
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]any{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"}
		for k, v := range extra(srv.URL) {
			doc[k] = v
		}
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(dev.PublicKeys()) })
	iss.URL, iss.dev = srv.URL, dev
	return iss
}

// oauthURIs reads the oauth-uris extension of the CapabilityStatement:
// sub-extension url to valueUri; nil when there is none.
func oauthURIs(t *testing.T, ts *testServer) (uris map[string]string, cors bool) {
	t.Helper()
	res := ts.do("GET", "/metadata", "", nil)
	mustStatus(t, res, http.StatusOK)
	var cs struct {
		Rest []struct {
			Security struct {
				Cors      bool `json:"cors"`
				Extension []struct {
					URL       string `json:"url"`
					Extension []struct {
						URL      string `json:"url"`
						ValueURI string `json:"valueUri"`
					} `json:"extension"`
				} `json:"extension"`
			} `json:"security"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(res.Body, &cs); err != nil {
		t.Fatal(err)
	}
	sec := cs.Rest[0].Security
	for _, e := range sec.Extension {
		if e.URL != "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris" {
			continue
		}
		uris = map[string]string{}
		for _, s := range e.Extension {
			uris[s.URL] = s.ValueURI
		}
	}
	return uris, sec.Cors
}

// smartConfig reads /.well-known/smart-configuration, which must be JSON.
func smartConfig(t *testing.T, ts *testServer) map[string]any {
	t.Helper()
	res := ts.do("GET", "/.well-known/smart-configuration", "", nil)
	mustStatus(t, res, http.StatusOK)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("smart-configuration Content-Type %q, want application/json", ct)
	}
	return res.JSON(t)
}

// requiredSMART checks what SMART App Launch 2 requires of the document.
func requiredSMART(t *testing.T, c map[string]any) {
	t.Helper()
	for _, k := range []string{"token_endpoint", "grant_types_supported", "capabilities", "code_challenge_methods_supported"} {
		if _, ok := c[k]; !ok {
			t.Errorf("smart-configuration lacks required %s: %v", k, c)
		}
	}
	if tok, _ := c["token_endpoint"].(string); !strings.HasPrefix(tok, "http") {
		t.Errorf("token_endpoint %q is not an absolute URL", tok)
	}
	if _, ok := c["issuer"]; ok {
		t.Errorf("issuer published without sso-openid-connect")
	}
}

// TestDevModeSMART: in dev mode the server is its own SMART authorization
// server: a client finds /dev/authorize and /dev/token in the SMART
// configuration and in the CapabilityStatement; the quick start still gets
// a token from /dev/token with a standard form POST, and reads with it.
func TestDevModeSMART(t *testing.T) {
	ts := newTestServer(t)
	c := smartConfig(t, ts)
	requiredSMART(t, c)
	tokenURL := ts.URL + "/dev/token"
	want := map[string]any{
		"authorization_endpoint":                ts.URL + "/dev/authorize",
		"token_endpoint":                        tokenURL,
		"jwks_uri":                              ts.URL + "/dev/jwks",
		"grant_types_supported":                 []any{"authorization_code", "client_credentials"},
		"token_endpoint_auth_methods_supported": []any{"none", "private_key_jwt"},
		"code_challenge_methods_supported":      []any{"S256"},
		"capabilities": []any{"permission-v1", "permission-v2", "permission-user",
			"launch-ehr", "launch-standalone", "client-public", "client-confidential-asymmetric",
			"context-ehr-patient", "context-standalone-patient"},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, c[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if d, _ := c["description"].(string); !strings.Contains(d, "Development mode only") {
		t.Errorf("description %q does not say dev mode only", d)
	}
	uris, cors := oauthURIs(t, ts)
	if diff := cmp.Diff(map[string]string{"token": tokenURL, "authorize": ts.URL + "/dev/authorize"}, uris); diff != "" {
		t.Errorf("oauth-uris (-want +got):\n%s", diff)
	}
	if cors {
		t.Errorf("cors true with no CPIS_CORS_ORIGINS")
	}

	// As a client library does: POST the form to the advertised endpoint.
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"community-nurse"}, "scope": {"user/Flag.rs"}}
	res := ts.do("POST", strings.TrimPrefix(tokenURL, ts.URL), "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	mustStatus(t, res, http.StatusOK)
	tok := res.JSON(t)
	if tok["token_type"] != "Bearer" || tok["scope"] != "user/Flag.rs" || tok["expires_in"] != 3600.0 || res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("token response %v, Cache-Control %q", tok, res.Header.Get("Cache-Control"))
	}
	mustStatus(t, ts.do("GET", "/Flag?patient=9000000009", tok["access_token"].(string), nil), http.StatusOK)
	form.Set("scope", "user/AuditEvent.read")
	res = ts.do("POST", "/dev/token", "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
	if res.Status != http.StatusBadRequest || res.JSON(t)["error"] != "invalid_scope" {
		t.Errorf("scope beyond the persona's: %d %s", res.Status, res.Body)
	}
}

// TestIssuerSMART: with a configured issuer, the SMART configuration and the
// CapabilityStatement pass on the issuer's endpoints, and claim only what
// its discovery document supports.
func TestIssuerSMART(t *testing.T) {
	tests := []struct {
		name          string
		doc           func(base string) map[string]any
		authorize     bool
		grants, caps  []string
		authMethods   []any
		noCodeMethods bool
	}{{
		name: "launch and backend services",
		doc: func(base string) map[string]any {
			return map[string]any{
				"authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
				"grant_types_supported":                 []string{"authorization_code", "client_credentials", "refresh_token"},
				"token_endpoint_auth_methods_supported": []string{"private_key_jwt", "none"},
				"code_challenge_methods_supported":      []string{"S256", "plain"},
			}
		},
		authorize: true,
		grants:    []string{"authorization_code", "client_credentials"},
		caps:      []string{"permission-v1", "permission-v2", "permission-user", "launch-standalone", "client-public", "client-confidential-asymmetric"},
	}, {
		name: "backend services only, no PKCE",
		doc: func(base string) map[string]any {
			return map[string]any{
				"authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
				"grant_types_supported":                 []string{"authorization_code", "client_credentials"},
				"token_endpoint_auth_methods_supported": []string{"private_key_jwt"},
			}
		},
		grants: []string{"client_credentials"},
		caps:   []string{"permission-v1", "permission-v2", "permission-user", "client-confidential-asymmetric"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := oidcIssuer(t, tt.doc)
			ts := newTestServer(t, func(c *Config) { c.Issuer, c.Audience = iss.URL, "cpis" })
			c := smartConfig(t, ts)
			requiredSMART(t, c)
			if c["token_endpoint"] != iss.URL+"/token" || c["jwks_uri"] != iss.URL+"/jwks" {
				t.Errorf("token_endpoint %v, jwks_uri %v", c["token_endpoint"], c["jwks_uri"])
			}
			wantURIs := map[string]string{"token": iss.URL + "/token"}
			if tt.authorize {
				wantURIs["authorize"] = iss.URL + "/authorize"
				if c["authorization_endpoint"] != iss.URL+"/authorize" {
					t.Errorf("authorization_endpoint %v", c["authorization_endpoint"])
				}
			} else if _, ok := c["authorization_endpoint"]; ok {
				t.Errorf("authorization_endpoint published without a SMART launch: %v", c)
			}
			if diff := cmp.Diff(strings.Join(tt.grants, " "), join(c["grant_types_supported"])); diff != "" {
				t.Errorf("grant_types_supported (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(strings.Join(tt.caps, " "), join(c["capabilities"])); diff != "" {
				t.Errorf("capabilities (-want +got):\n%s", diff)
			}
			if slices.Contains(strings.Fields(join(c["code_challenge_methods_supported"])), "plain") {
				t.Errorf("plain PKCE published")
			}
			uris, _ := oauthURIs(t, ts)
			if diff := cmp.Diff(wantURIs, uris); diff != "" {
				t.Errorf("oauth-uris (-want +got):\n%s", diff)
			}
			if !strings.Contains(ts.logs.String(), `"msg":"SMART configuration"`) {
				t.Errorf("no log line of the SMART configuration published")
			}
			// Nothing of the development authorization server is reachable.
			for _, path := range []string{"/dev/authorize?response_type=code&client_id=cpis-viewer", "/dev/launch?persona=ed-clinician&app=x", "/dev/token"} {
				method := "GET"
				if path == "/dev/token" {
					method = "POST"
				}
				mustStatus(t, ts.do(method, path, "", nil), http.StatusNotFound)
			}
		})
	}
}

func join(v any) string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return strings.Join(out, " ")
}

// TestIssuerWithoutTokenEndpoint: an issuer whose discovery names no token
// endpoint (or that has no discovery at all, its keys configured by
// CPIS_JWKS_URL) gets no SMART configuration: 404, no oauth-uris, and the
// log at start says why. Tokens are still accepted.
func TestIssuerWithoutTokenEndpoint(t *testing.T) {
	noToken := newExternalIssuer(t, (&testClock{now: startDay}).Now) // discovery: issuer and jwks_uri only
	noDiscovery := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(noDiscovery.Close)
	for _, tt := range []struct {
		name, reason string
		cfg          func(*Config)
	}{
		{"no token_endpoint", "no token_endpoint", func(c *Config) { c.Issuer, c.Audience = noToken.URL, "cpis" }},
		{"no discovery, CPIS_JWKS_URL", "404", func(c *Config) {
			c.Issuer, c.Audience, c.JWKSURL = noDiscovery.URL, "cpis", noToken.URL+"/jwks"
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, tt.cfg)
			mustStatus(t, ts.do("GET", "/.well-known/smart-configuration", "", nil), http.StatusNotFound)
			if uris, _ := oauthURIs(t, ts); uris != nil {
				t.Errorf("oauth-uris %v without a token endpoint", uris)
			}
			logs := ts.logs.String()
			if !strings.Contains(logs, "no SMART configuration is published") || !strings.Contains(logs, tt.reason) {
				t.Errorf("the log does not say why no SMART configuration is published (%q):\n%s", tt.reason, logs)
			}
			if tt.name == "no token_endpoint" {
				tok, _, err := noToken.dev.Token("community-nurse")
				if err != nil {
					t.Fatal(err)
				}
				mustStatus(t, ts.do("GET", "/Flag?patient=9000000009", tok, nil), http.StatusOK)
			}
		})
	}
}

// noRedirects is an HTTP client that stops at each redirect, as a test of
// where the authorization server sends the user agent needs.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// browse sends one request without following redirects; form, when set, is
// posted.
func browse(t *testing.T, method, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// location is the query of a redirect, which must go to want.
func location(t *testing.T, res *http.Response, want string) url.Values {
	t.Helper()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want a redirect", res.StatusCode)
	}
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != want {
		t.Fatalf("redirect to %s, want %s", got, want)
	}
	return u.Query()
}

// smartApp is a confidential SMART app registered in a clients file: its
// redirect and launch URLs are never called, as the test follows no
// redirect.
type smartApp struct {
	id, redirect, launch string
	key                  jwk.Key
}

func newSMARTApp(t *testing.T) (smartApp, map[string]any) {
	app := smartApp{id: "test-app", redirect: "http://127.0.0.1:9/callback", launch: "http://127.0.0.1:9/launch", key: newClientKey(t, "ES384")}
	return app, map[string]any{
		"client_id": app.id, "kind": "app", "redirect_uris": []string{app.redirect}, "launch_url": app.launch,
		"scopes": []string{"openid", "profile", "launch", "launch/patient", "user/Flag.rs"}, "jwks": publicJWKS(t, app.key),
	}
}

// pkce is a code verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = rand.Text() + rand.Text()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL is the app's authorization request.
func (a smartApp) authorizeURL(endpoint, aud, scope, challenge, launch string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {a.id}, "redirect_uri": {a.redirect}, "scope": {scope},
		"state": {"s-1"}, "aud": {aud}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if launch != "" {
		q.Set("launch", launch)
	}
	return endpoint + "?" + q.Encode()
}

// redeem exchanges a code at the token endpoint, authenticating the app
// with a client assertion.
func (a smartApp) redeem(t *testing.T, ts *testServer, tokenURL, code, verifier string) map[string]any {
	t.Helper()
	assertion, err := auth.SignClientAssertion(a.key, a.id, tokenURL, ts.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	res := ts.postForm(strings.TrimPrefix(tokenURL, ts.URL), url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {a.redirect}, "code_verifier": {verifier}, "client_id": {a.id},
		"client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}})
	mustStatus(t, res, http.StatusOK)
	return res.JSON(t)
}

var pendingRequest = regexp.MustCompile(`name="request" value="([^"]+)"`)

// TestAuthorizationCodeFlow: a standalone launch as a browser would do it,
// without one: the authorize page, a persona and an NHS number chosen,
// the code, the token with PKCE and the patient; the token reads plans.
func TestAuthorizationCodeFlow(t *testing.T) {
	app, reg := newSMARTApp(t)
	path := writeClientsFile(t, reg)
	ts := newTestServer(t, func(c *Config) { c.ClientsFile = path })
	nhs := subjectNHS(t, example(t, "flag-cpp.json"))
	ts.create(la, example(t, "flag-cpp.json"))
	c := smartConfig(t, ts)
	authorize, tokenURL := c["authorization_endpoint"].(string), c["token_endpoint"].(string)

	verifier, challenge := pkce()
	res, page := browse(t, "GET", app.authorizeURL(authorize, ts.URL, "openid launch/patient user/Flag.rs", challenge, ""), nil)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "Choose a development persona") || !strings.Contains(page, "Patient NHS number") {
		t.Fatalf("authorize page: %d\n%s", res.StatusCode, page)
	}
	m := pendingRequest.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the page carries no pending request")
	}
	res, _ = browse(t, "POST", authorize, url.Values{"request": {m[1]}, "persona": {"ed-clinician"}, "patient": {nhs[:3] + " " + nhs[3:6] + " " + nhs[6:]}})
	q := location(t, res, app.redirect)
	if q.Get("state") != "s-1" || strings.Contains(res.Header.Get("Location"), nhs) {
		t.Errorf("redirect %s", res.Header.Get("Location"))
	}
	tok := app.redeem(t, ts, tokenURL, q.Get("code"), verifier)
	if tok["patient"] != nhs || tok["scope"] != "openid launch/patient user/Flag.rs" {
		t.Errorf("token response %v", tok)
	}
	read := ts.do("GET", "/Flag?patient="+nhs, tok["access_token"].(string), nil)
	mustStatus(t, read, http.StatusOK)
	if n := len(entries(t, read, "Flag")); n != 1 {
		t.Errorf("%d plans read, want 1", n)
	}
	if strings.Contains(ts.logs.String(), nhs) {
		t.Errorf("the NHS number reached the log")
	}
}

// TestEHRLaunchFlow: /dev/launch acts as the EHR; the app, launched with
// iss and launch, is answered with a code at once, and its token carries
// the EHR's patient.
func TestEHRLaunchFlow(t *testing.T) {
	app, reg := newSMARTApp(t)
	path := writeClientsFile(t, reg)
	ts := newTestServer(t, func(c *Config) { c.ClientsFile = path })
	nhs := subjectNHS(t, example(t, "flag-cpp.json"))
	c := smartConfig(t, ts)

	res, _ := browse(t, "GET", ts.URL+"/dev/launch?"+url.Values{"persona": {"community-nurse"}, "patient": {nhs}, "app": {app.launch}}.Encode(), nil)
	launch := location(t, res, app.launch)
	if launch.Get("iss") != ts.URL || launch.Get("launch") == "" || strings.Contains(res.Header.Get("Location"), nhs) {
		t.Fatalf("launch %s", res.Header.Get("Location"))
	}
	verifier, challenge := pkce()
	res, _ = browse(t, "GET", app.authorizeURL(c["authorization_endpoint"].(string), launch.Get("iss"), "launch openid user/Flag.rs", challenge, launch.Get("launch")), nil)
	q := location(t, res, app.redirect)
	tok := app.redeem(t, ts, c["token_endpoint"].(string), q.Get("code"), verifier)
	if tok["patient"] != nhs {
		t.Errorf("token response %v: want the launch's patient", tok)
	}
	mustStatus(t, ts.do("GET", "/Flag?patient="+nhs, tok["access_token"].(string), nil), http.StatusOK)
}
