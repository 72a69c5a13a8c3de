package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// newClientKey makes a client's private key for alg (ES384 or RS384), with
// a kid, as a client of the server would make its own.
func newClientKey(t *testing.T, alg string) jwk.Key {
	t.Helper()
	var raw any
	var err error
	if alg == "RS384" {
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := jwk.AssignKeyID(key, jwk.WithThumbprintHash(crypto.SHA256)); err != nil {
		t.Fatal(err)
	}
	return key
}

// publicJWKS is the JWK set a client registers: its public key only.
func publicJWKS(t *testing.T, key jwk.Key) json.RawMessage {
	t.Helper()
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		t.Fatal(err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeClientsFile writes a registered clients file and returns its path,
// for Config.ClientsFile.
func writeClientsFile(t *testing.T, clients ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"clients": clients})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// discoveredTokenPath reads the token endpoint from the SMART
// configuration, as a client does, and returns its path on ts.
func discoveredTokenPath(t *testing.T, ts *testServer, grant, method string) string {
	t.Helper()
	c := smartConfig(t, ts)
	if !slices.Contains(strings.Fields(join(c["grant_types_supported"])), grant) ||
		!slices.Contains(strings.Fields(join(c["token_endpoint_auth_methods_supported"])), method) {
		t.Fatalf("smart-configuration offers no %s with %s: %v", grant, method, c)
	}
	tok, _ := c["token_endpoint"].(string)
	if !strings.HasPrefix(tok, ts.URL+"/") {
		t.Fatalf("token_endpoint %q is not on the server", tok)
	}
	return strings.TrimPrefix(tok, ts.URL)
}

// postForm posts an OAuth form to path.
func (ts *testServer) postForm(path string, form url.Values) response {
	ts.t.Helper()
	return ts.do("POST", path, "", []byte(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

// backendToken is SMART Backend Services' token request: client
// credentials, authenticated by an assertion signed with key.
func backendToken(t *testing.T, ts *testServer, tokenPath, clientID string, key jwk.Key, scope string) response {
	t.Helper()
	assertion, err := auth.SignClientAssertion(key, clientID, ts.URL+tokenPath, ts.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ts.postForm(tokenPath, url.Values{"grant_type": {"client_credentials"}, "scope": {scope},
		"client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}})
}

// TestBackendServices: an LA's case-management system, registered with a
// key it made itself, gets a token from the token endpoint the SMART
// configuration names, creates a plan with it and reads it back. An
// assertion signed by any other key is refused.
func TestBackendServices(t *testing.T) {
	for _, alg := range []string{"ES384", "RS384"} {
		t.Run(alg, func(t *testing.T) {
			key := newClientKey(t, alg)
			const clientID = "zla01-case-management"
			path := writeClientsFile(t, map[string]any{
				"client_id": clientID, "kind": "la-system", "org_code": "ZLA01", "org_name": "London Borough of Hackney and City of London",
				"scopes": []string{"system/Flag.cruds"}, "jwks": publicJWKS(t, key),
			})
			ts := newTestServer(t, func(c *Config) { c.ClientsFile = path })
			tokenPath := discoveredTokenPath(t, ts, "client_credentials", "private_key_jwt")

			res := backendToken(t, ts, tokenPath, clientID, key, "system/Flag.cud system/Flag.rs system/Subscription.cruds")
			mustStatus(t, res, http.StatusOK)
			tok := res.JSON(t)
			if tok["scope"] != "system/Flag.cud system/Flag.rs" || tok["token_type"] != "Bearer" {
				t.Errorf("token response %v: want the scopes asked for that are registered", tok)
			}
			bearer := tok["access_token"].(string)
			created := ts.do("POST", "/Flag", bearer, example(t, "flag-cpp.json"))
			mustStatus(t, created, http.StatusCreated)
			id := created.JSON(t)["id"].(string)
			read := ts.do("GET", "/Flag/"+id, bearer, nil)
			mustStatus(t, read, http.StatusOK)
			if read.JSON(t)["id"] != id {
				t.Errorf("read back %s", read.Body)
			}

			other := newClientKey(t, alg)
			res = backendToken(t, ts, tokenPath, clientID, other, "system/Flag.rs")
			if res.Status != http.StatusUnauthorized || res.JSON(t)["error"] != "invalid_client" {
				t.Errorf("assertion signed by another key: %d %s", res.Status, res.Body)
			}
		})
	}
}

// TestBackendServicesRefusals: a replayed assertion, one for another
// token endpoint, and a client nobody registered are invalid_client.
func TestBackendServicesRefusals(t *testing.T) {
	key := newClientKey(t, "ES384")
	path := writeClientsFile(t, map[string]any{
		"client_id": "engine", "kind": "health-system", "name": "Interface engine", "org_code": "ZZT01", "org_name": "Fictional Trust",
		"activities": []string{"B0170"}, "scopes": []string{"system/Flag.rs"}, "jwks": publicJWKS(t, key),
	})
	ts := newTestServer(t, func(c *Config) { c.ClientsFile = path })
	tokenPath := discoveredTokenPath(t, ts, "client_credentials", "private_key_jwt")
	assertion, err := auth.SignClientAssertion(key, "engine", ts.URL+tokenPath, ts.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {auth.ClientAssertionType}, "client_assertion": {assertion}}
	res := ts.postForm(tokenPath, form)
	mustStatus(t, res, http.StatusOK)
	mustStatus(t, ts.do("GET", "/Flag?patient=9000000009", res.JSON(t)["access_token"].(string), nil), http.StatusOK)

	elsewhere, _ := auth.SignClientAssertion(key, "engine", "https://elsewhere.test/token", ts.clock.Now())
	stranger, _ := auth.SignClientAssertion(newClientKey(t, "ES384"), "stranger", ts.URL+tokenPath, ts.clock.Now())
	for name, a := range map[string]string{"replayed": assertion, "another audience": elsewhere, "unregistered": stranger} {
		form.Set("client_assertion", a)
		if res := ts.postForm(tokenPath, form); res.Status != http.StatusUnauthorized || res.JSON(t)["error"] != "invalid_client" {
			t.Errorf("%s: %d %s", name, res.Status, res.Body)
		}
	}
}

// TestDevClientsShipped: with no CPIS_CLIENTS_FILE, the shipped dev
// clients are registered, and their keys in examples/clients work.
func TestDevClientsShipped(t *testing.T) {
	ts := newTestServer(t)
	tokenPath := discoveredTokenPath(t, ts, "client_credentials", "private_key_jwt")
	for _, id := range []string{"la-ZLA01", "la-ZLA02", "cpis-dev-trust-engine"} {
		b, err := os.ReadFile("../../examples/clients/" + id + ".private.jwk.json")
		if err != nil {
			t.Fatal(err)
		}
		key, err := jwk.ParseKey(b)
		if err != nil {
			t.Fatal(err)
		}
		res := backendToken(t, ts, tokenPath, id, key, "")
		mustStatus(t, res, http.StatusOK)
		mustStatus(t, ts.do("GET", "/Flag?patient=9000000009", res.JSON(t)["access_token"].(string), nil), http.StatusOK)
	}
}

// TestClientsFileConfig: CPIS_CLIENTS_FILE is read in dev mode and refused
// with a real issuer; a file the loader refuses stops the server at start.
func TestClientsFileConfig(t *testing.T) {
	cfg, err := loadConfig(nil, func(k string) string { return map[string]string{"CPIS_CLIENTS_FILE": "c.json"}[k] })
	if err != nil || cfg.ClientsFile != "c.json" {
		t.Errorf("dev mode: %+v, %v", cfg.ClientsFile, err)
	}
	env := map[string]string{"CPIS_CLIENTS_FILE": "c.json", "CPIS_OIDC_ISSUER": "https://issuer.test", "CPIS_AUDIENCE": "cpis",
		"CPIS_LA_REGISTER_FILE": "../../examples/la-register.csv"}
	if _, err := loadConfig(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "CPIS_CLIENTS_FILE") {
		t.Errorf("with an issuer: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(bad, []byte(`{"clients": [{"client_id": "x", "kind": "robot"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg = Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Audience: "cpis", ClientsFile: bad, ShutdownTimeout: time.Second}
	if srv, err := start(t.Context(), cfg, io.Discard, time.Now); err == nil {
		_ = srv.shutdown(t.Context())
		t.Errorf("started with a bad clients file")
	} else if !strings.Contains(err.Error(), "CPIS_CLIENTS_FILE") {
		t.Errorf("error %v does not name CPIS_CLIENTS_FILE", err)
	}
}
