package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// externalIssuer is an OIDC issuer outside the servers, as in production:
// it publishes discovery and a JWKS over HTTP, and several replicas trust it.
type externalIssuer struct {
	URL string
	dev *auth.DevIssuer
}

func newExternalIssuer(t testing.TB, now func() time.Time) *externalIssuer {
	t.Helper()
	iss := &externalIssuer{}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	dev, err := auth.LoadOrCreateDevIssuer(t.TempDir(), srv.URL, "cpis", now)
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(dev.PublicKeys())
	})
	iss.URL, iss.dev = srv.URL, dev
	return iss
}

// replica starts a server on PostgreSQL that trusts the external issuer.
func (iss *externalIssuer) replica(t testing.TB, dbURL string) *testServer {
	t.Helper()
	ts := newTestServer(t, func(c *Config) {
		c.DatabaseURL, c.Issuer, c.Audience = dbURL, iss.URL, "cpis"
		c.LARegisterFile = "../../examples/la-register.csv" // as in production: the register comes from a file
	})
	ts.mint = func(persona string) string {
		tok, _, err := iss.dev.Token(persona)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return ts
}

// TestOutsideDevModeThereIsNoDevIssuer runs with a configured issuer: the
// /dev endpoints do not exist, and tokens from that issuer are accepted.
func TestOutsideDevModeThereIsNoDevIssuer(t *testing.T) {
	clock := &testClock{now: startDay}
	iss := newExternalIssuer(t, clock.Now)
	ts := newTestServer(t, func(c *Config) { c.Issuer, c.Audience = iss.URL, "cpis" })
	for _, p := range []string{"/dev/token", "/dev/personas", "/dev/jwks"} {
		method := "GET"
		if p == "/dev/token" {
			method = "POST"
		}
		if res := ts.do(method, p, "", []byte(`{"persona":"ed-clinician"}`), "Content-Type", "application/json"); res.Status != http.StatusNotFound {
			t.Errorf("%s %s outside dev mode: %d, want 404", method, p, res.Status)
		}
	}
	tok, _, err := iss.dev.Token("community-nurse")
	if err != nil {
		t.Fatal(err)
	}
	mustStatus(t, ts.do("GET", "/Flag?patient=9000000009", tok, nil), http.StatusOK)
	other := newExternalIssuer(t, clock.Now) // a different issuer's token is refused
	bad, _, _ := other.dev.Token("community-nurse")
	mustStatus(t, ts.do("GET", "/Flag?patient=9000000009", bad, nil), http.StatusUnauthorized)
}
