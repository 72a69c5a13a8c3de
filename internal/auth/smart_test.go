package auth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

const (
	testAuthorize = "https://issuer.test/authorize"
	testToken     = "https://issuer.test/token"
	testJWKS      = "https://issuer.test/jwks"
)

// fullIssuer offers everything: a launch with S256, both grants, every
// client authentication.
func fullIssuer() Discovery {
	return Discovery{
		Issuer: "https://issuer.test", JWKSURI: testJWKS,
		AuthorizationEndpoint: testAuthorize, TokenEndpoint: testToken,
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", "client_credentials", "implicit"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt", "none", "tls_client_auth"},
		CodeChallengeMethodsSupported:     []string{"plain", "S256"},
	}
}

func TestSMARTFromDiscovery(t *testing.T) {
	perms := []string{"permission-v1", "permission-v2", "permission-user"}
	caps := func(extra ...string) []string { return append(slices.Clone(perms), extra...) }
	tests := []struct {
		name   string
		change func(*Discovery)
		want   SMARTConfig
	}{{
		name:   "everything offered",
		change: func(*Discovery) {},
		want: SMARTConfig{
			AuthorizationEndpoint:             testAuthorize,
			GrantTypesSupported:               []string{"authorization_code", "client_credentials"},
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt", "none"},
			Capabilities:                      caps("launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric"),
			CodeChallengeMethodsSupported:     []string{"S256"},
		},
	}, {
		name: "backend services only (CIS2-like: no PKCE advertised)",
		change: func(d *Discovery) {
			d.CodeChallengeMethodsSupported = nil
			d.TokenEndpointAuthMethodsSupported = []string{"private_key_jwt"}
		},
		want: SMARTConfig{
			GrantTypesSupported:               []string{"client_credentials"},
			TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"},
			Capabilities:                      caps("client-confidential-asymmetric"),
			CodeChallengeMethodsSupported:     []string{},
		},
	}, {
		name:   "only plain PKCE: no launch, plain never published",
		change: func(d *Discovery) { d.CodeChallengeMethodsSupported = []string{"plain"} },
		want: SMARTConfig{
			GrantTypesSupported:               []string{"client_credentials"},
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt", "none"},
			Capabilities:                      caps("client-confidential-asymmetric"),
			CodeChallengeMethodsSupported:     []string{},
		},
	}, {
		name:   "no authorization endpoint",
		change: func(d *Discovery) { d.AuthorizationEndpoint = "" },
		want: SMARTConfig{
			GrantTypesSupported:               []string{"client_credentials"},
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt", "none"},
			Capabilities:                      caps("client-confidential-asymmetric"),
			CodeChallengeMethodsSupported:     []string{"S256"},
		},
	}, {
		name:   "authorization endpoint in clear text to another host",
		change: func(d *Discovery) { d.AuthorizationEndpoint = "http://issuer.test/authorize" },
		want: SMARTConfig{
			GrantTypesSupported:               []string{"client_credentials"},
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "private_key_jwt", "none"},
			Capabilities:                      caps("client-confidential-asymmetric"),
			CodeChallengeMethodsSupported:     []string{"S256"},
		},
	}, {
		name: "defaults of OIDC discovery: authorization_code, client_secret_basic",
		change: func(d *Discovery) {
			d.GrantTypesSupported, d.TokenEndpointAuthMethodsSupported = nil, nil
		},
		want: SMARTConfig{
			AuthorizationEndpoint:             testAuthorize,
			GrantTypesSupported:               []string{"authorization_code"},
			TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"},
			Capabilities:                      caps("launch-standalone", "client-confidential-symmetric"),
			CodeChallengeMethodsSupported:     []string{"S256"},
		},
	}, {
		name:   "launch for public clients only",
		change: func(d *Discovery) { d.TokenEndpointAuthMethodsSupported = []string{"none"} },
		want: SMARTConfig{
			AuthorizationEndpoint:             testAuthorize,
			GrantTypesSupported:               []string{"authorization_code", "client_credentials"},
			TokenEndpointAuthMethodsSupported: []string{"none"},
			Capabilities:                      caps("launch-standalone", "client-public"),
			CodeChallengeMethodsSupported:     []string{"S256"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fullIssuer()
			tt.change(&d)
			got, err := SMARTFromDiscovery(d, testJWKS)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.JWKSURI, tt.want.TokenEndpoint, tt.want.ScopesSupported = testJWKS, testToken, SupportedScopes()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SMARTFromDiscovery (-want +got):\n%s", diff)
			}
			checkSMARTRequired(t, got)
		})
	}
}

// TestSMARTFromDiscoveryRefuses: no document rather than one a client
// cannot use.
func TestSMARTFromDiscoveryRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Discovery)
		want   string
	}{
		{"no token endpoint", func(d *Discovery) { d.TokenEndpoint = "" }, "no token_endpoint"},
		{"relative token endpoint", func(d *Discovery) { d.TokenEndpoint = "/token" }, "token_endpoint is not usable"},
		{"token endpoint in clear text", func(d *Discovery) { d.TokenEndpoint = "http://issuer.test/token" }, "token_endpoint is not usable"},
		{"no usable grant", func(d *Discovery) {
			d.GrantTypesSupported = []string{"authorization_code", "implicit"}
			d.CodeChallengeMethodsSupported = nil
		}, "neither client_credentials nor a SMART launch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fullIssuer()
			tt.change(&d)
			_, err := SMARTFromDiscovery(d, testJWKS)
			if err == nil || cpis.KindOf(err) != cpis.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SMARTFromDiscovery error = %v; want Invalid, mentioning %q", err, tt.want)
			}
		})
	}
}

// checkSMARTRequired checks what SMART App Launch 2 (Conformance, Metadata)
// requires of a document and of its capabilities.
func checkSMARTRequired(t *testing.T, c SMARTConfig) {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"token_endpoint", "grant_types_supported", "capabilities", "code_challenge_methods_supported"} {
		if v, ok := m[k]; !ok || v == nil || v == "" {
			t.Errorf("required %s is missing: %s", k, b)
		}
	}
	if _, ok := m["issuer"]; ok {
		t.Errorf("issuer is published without sso-openid-connect: %s", b)
	}
	if len(c.GrantTypesSupported) == 0 {
		t.Errorf("grant_types_supported is empty")
	}
	if slices.Contains(c.CodeChallengeMethodsSupported, "plain") {
		t.Errorf("code_challenge_methods_supported holds plain")
	}
	launch := slices.Contains(c.Capabilities, "launch-standalone") || slices.Contains(c.Capabilities, "launch-ehr")
	if launch != (c.AuthorizationEndpoint != "") || launch != slices.Contains(c.GrantTypesSupported, "authorization_code") {
		t.Errorf("launch %v, authorization endpoint %q, grants %v: they must go together", launch, c.AuthorizationEndpoint, c.GrantTypesSupported)
	}
	if launch && !slices.Contains(c.CodeChallengeMethodsSupported, "S256") {
		t.Errorf("a launch is claimed without S256 PKCE")
	}
	if slices.Contains(c.Capabilities, "client-confidential-asymmetric") != slices.Contains(c.TokenEndpointAuthMethodsSupported, "private_key_jwt") {
		t.Errorf("client-confidential-asymmetric and private_key_jwt must go together: %v, %v", c.Capabilities, c.TokenEndpointAuthMethodsSupported)
	}
}

func TestDevSMARTConfigurationJSON(t *testing.T) {
	c := DevSMARTConfiguration("http://127.0.0.1:8080")
	checkSMARTRequired(t, c)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	delete(got, "description")
	want := map[string]any{
		"authorization_endpoint":                "http://127.0.0.1:8080/dev/authorize",
		"token_endpoint":                        "http://127.0.0.1:8080/dev/token",
		"jwks_uri":                              "http://127.0.0.1:8080/dev/jwks",
		"grant_types_supported":                 []any{"authorization_code", "client_credentials"},
		"token_endpoint_auth_methods_supported": []any{"none", "private_key_jwt"},
		"code_challenge_methods_supported":      []any{"S256"},
		"capabilities": []any{"permission-v1", "permission-v2", "permission-user",
			"launch-ehr", "launch-standalone", "client-public", "client-confidential-asymmetric",
			"context-ehr-patient", "context-standalone-patient"},
		"scopes_supported": []any{
			"launch", "launch/patient",
			"user/Flag.read", "user/Flag.rs", "user/AuditEvent.read", "user/AuditEvent.rs",
			"user/Communication.read", "user/Communication.rs",
			"system/Flag.read", "system/Flag.rs", "system/Flag.write", "system/Flag.cud",
			"system/Communication.read", "system/Communication.rs",
			"system/Subscription.read", "system/Subscription.write", "system/Subscription.cruds",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dev smart-configuration (-want +got):\n%s", diff)
	}
}

func TestDiscover(t *testing.T) {
	var srv *httptest.Server
	docs := map[string]func() any{
		"/good/.well-known/openid-configuration": func() any {
			return map[string]any{
				"issuer": srv.URL + "/good", "jwks_uri": srv.URL + "/jwks", "token_endpoint": srv.URL + "/token",
				"authorization_endpoint": srv.URL + "/authorize", "grant_types_supported": []string{"client_credentials"},
				"token_endpoint_auth_methods_supported": []string{"private_key_jwt"}, "code_challenge_methods_supported": []string{"S256"},
			}
		},
		"/other/.well-known/openid-configuration":   func() any { return map[string]any{"issuer": "https://elsewhere.test"} },
		"/garbage/.well-known/openid-configuration": func() any { return "not a document" },
	}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(doc())
	}))
	t.Cleanup(srv.Close)

	got, err := Discover(t.Context(), nil, srv.URL+"/good")
	if err != nil {
		t.Fatal(err)
	}
	want := Discovery{
		Issuer: srv.URL + "/good", JWKSURI: srv.URL + "/jwks", TokenEndpoint: srv.URL + "/token",
		AuthorizationEndpoint: srv.URL + "/authorize", GrantTypesSupported: []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"}, CodeChallengeMethodsSupported: []string{"S256"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Discover (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		issuer string
		kind   cpis.Kind
	}{
		{srv.URL + "/other", cpis.Invalid},
		{srv.URL + "/garbage", cpis.Invalid},
		{srv.URL + "/missing", cpis.Unavailable},
		{"http://issuer.example.test", cpis.InvalidValue},
	} {
		if _, err := Discover(t.Context(), nil, tt.issuer); cpis.KindOf(err) != tt.kind {
			t.Errorf("Discover(%s) error %v; want kind %v", tt.issuer, err, tt.kind)
		}
	}
}

// TestSupportedScopesAreUnderstood keeps scopes_supported truthful: every
// advertised scope is one that some check of this package grants on.
func TestSupportedScopesAreUnderstood(t *testing.T) {
	checks := []struct{ level, resource, perms string }{
		{"user", "Flag", "rs"}, {"user", "AuditEvent", "rs"}, {"user", "Communication", "rs"}, {"system", "Flag", "rs"}, {"system", "Flag", "cud"},
		{"system", "Communication", "rs"}, {"system", "Subscription", "r"}, {"system", "Subscription", "c"},
	}
	for _, s := range SupportedScopes() {
		t.Run(s, func(t *testing.T) {
			sc, ok := parseScope(s)
			if !ok {
				t.Fatalf("advertised scope %q does not parse", s)
			}
			for _, c := range checks {
				if sc.allows(c.level, c.resource, c.perms) {
					return
				}
			}
			t.Errorf("advertised scope %q grants nothing", s)
		})
	}
}
