package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestNewVerifierConfig(t *testing.T) {
	ti := newTestIssuer(t)
	down := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(down.Close)
	tests := []struct {
		name string
		cfg  Config
		kind cpis.Kind // of the error; Other with want "" means success
		want string
	}{
		{"by discovery", Config{Issuer: ti.srv.URL, Audience: testAudience}, cpis.Other, ""},
		{"explicit JWKS URL", Config{Issuer: "https://issuer.test", Audience: testAudience, JWKSURL: ti.srv.URL + "/jwks"}, cpis.Other, ""},
		{"static key set", Config{Issuer: "https://issuer.test", Audience: testAudience, KeySet: jwk.NewSet()}, cpis.Other, ""},
		{"no issuer", Config{Audience: testAudience, KeySet: jwk.NewSet()}, cpis.MissingValue, "issuer"},
		{"no audience", Config{Issuer: ti.srv.URL, KeySet: jwk.NewSet()}, cpis.MissingValue, "audience"},
		{"skew above a minute", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), Skew: 61 * time.Second}, cpis.InvalidValue, "skew"},
		{"negative skew", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), Skew: -time.Second}, cpis.InvalidValue, "skew"},
		{"max lifetime 1 h", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), MaxLifetime: time.Hour}, cpis.Other, ""},
		{"max lifetime 24 h", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), MaxLifetime: 24 * time.Hour}, cpis.Other, ""},
		{"negative max lifetime", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), MaxLifetime: -time.Hour}, cpis.InvalidValue, "lifetime"},
		{"max lifetime under a minute", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), MaxLifetime: 59 * time.Second}, cpis.InvalidValue, "lifetime"},
		{"max lifetime over a day", Config{Issuer: ti.srv.URL, Audience: testAudience, KeySet: jwk.NewSet(), MaxLifetime: 24*time.Hour + time.Second}, cpis.InvalidValue, "lifetime"},
		{"discovery names another issuer", Config{Issuer: ti.srv.URL + "/", Audience: testAudience}, cpis.Invalid, "names issuer"},
		{"no discovery document", Config{Issuer: down.URL, Audience: testAudience}, cpis.Unavailable, "404"},
		{"JWKS not served", Config{Issuer: ti.srv.URL, Audience: testAudience, JWKSURL: down.URL + "/jwks"}, cpis.Unavailable, "cannot fetch"},
		{"JWKS over plain http to another host", Config{Issuer: ti.srv.URL, Audience: testAudience, JWKSURL: "http://keys.example.test/jwks"}, cpis.InvalidValue, "must use https"},
		{"issuer over plain http to another host", Config{Issuer: "http://issuer.example.test", Audience: testAudience}, cpis.InvalidValue, "must use https"},
		{"relative JWKS URL", Config{Issuer: ti.srv.URL, Audience: testAudience, JWKSURL: "/jwks"}, cpis.InvalidValue, "not an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(t.Context(), tt.cfg)
			if tt.want == "" {
				if err != nil || v == nil {
					t.Fatalf("NewVerifier = %v, %v; want a verifier", v, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewVerifier succeeded; want an error mentioning %q", tt.want)
			}
			if k := cpis.KindOf(err); k != tt.kind {
				t.Errorf("kind = %v, want %v (%v)", k, tt.kind, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestVerifyCustomSkew(t *testing.T) {
	ti := newTestIssuer(t)
	v, err := NewVerifier(t.Context(), Config{Issuer: ti.srv.URL, Audience: testAudience, Now: clockAt(t0), Skew: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		exp  time.Time
		ok   bool
	}{
		{"expired 5 s ago", t0.Add(-5 * time.Second), true},
		{"expired 30 s ago", t0.Add(-30 * time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, jwa.ES256, ti.ec, "ec-1", with(ti.baseClaims(), map[string]any{"exp": tt.exp.Unix()}))
			_, err := v.Verify(t.Context(), tok)
			if (err == nil) != tt.ok {
				t.Errorf("Verify error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestVerifyMaxLifetime(t *testing.T) {
	ti := newTestIssuer(t)
	v, err := NewVerifier(t.Context(), Config{Issuer: ti.srv.URL, Audience: testAudience, Now: clockAt(t0), MaxLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	iat := t0.Add(-time.Minute)
	tests := []struct {
		name   string
		claims map[string]any
		ok     bool
	}{
		{"exp - iat = 1 h", map[string]any{"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix()}, true},
		{"exp - iat = 1 h 1 s", map[string]any{"iat": iat.Unix(), "exp": iat.Add(time.Hour + time.Second).Unix()}, false},
		{"no iat, exp - now = 1 h", map[string]any{"iat": nil, "exp": t0.Add(time.Hour).Unix()}, true},
		{"no iat, exp - now = 1 h and the skew", map[string]any{"iat": nil, "exp": t0.Add(time.Hour + MaxSkew).Unix()}, true},
		{"no iat, exp - now = 1 h, the skew and 1 s", map[string]any{"iat": nil, "exp": t0.Add(time.Hour + MaxSkew + time.Second).Unix()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, jwa.ES256, ti.ec, "ec-1", with(ti.baseClaims(), tt.claims))
			_, err := v.Verify(t.Context(), tok)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify error = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "lifetime") {
				t.Errorf("error %q does not give the lifetime as the reason", err)
			}
		})
	}
}

// TestKeyRotation checks that a token signed with a key the issuer has just
// published verifies without waiting for the cache's schedule, and that
// unknown kids cannot make the verifier hammer the issuer.
func TestKeyRotation(t *testing.T) {
	ti := newTestIssuer(t)
	now := t0
	v, err := NewVerifier(t.Context(), Config{Issuer: ti.srv.URL, Audience: testAudience, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	fetched := ti.fetches.Load()
	rotated := newECKey(t, "ec-2")
	ti.setKeys(t, rotated)
	tok := sign(t, jwa.ES256, rotated, "ec-2", ti.baseClaims())

	if _, err := v.Verify(t.Context(), tok); err == nil {
		t.Fatal("a key published within a minute of the last fetch was used; want the refetch rate limited")
	}
	if got := ti.fetches.Load(); got != fetched {
		t.Fatalf("JWKS fetched %d more times within a minute of the last fetch; want 0", got-fetched)
	}

	now = t0.Add(2 * time.Minute)
	tok = sign(t, jwa.ES256, rotated, "ec-2", with(ti.baseClaims(), map[string]any{"exp": now.Add(time.Hour).Unix()}))
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if got := ti.fetches.Load(); got != fetched+1 {
		t.Errorf("JWKS fetched %d more times; want 1", got-fetched)
	}
	if _, err := v.Verify(t.Context(), sign(t, jwa.ES256, rotated, "ec-3", ti.baseClaims())); err == nil {
		t.Error("unknown kid verified")
	}
	if got := ti.fetches.Load(); got != fetched+1 {
		t.Errorf("an unknown kid right after a refetch fetched again (%d fetches); want none", got-fetched-1)
	}
}
