package clients

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestDevClients: the shipped file loads, names one system per dev LA and
// the Trust's interface engine, and each private key signs an assertion
// its registered keys verify.
func TestDevClients(t *testing.T) {
	cs, err := auth.ReadClients(bytes.NewReader(DevClients))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cpis-dev-trust-engine"}
	for _, e := range cpis.TrustDirectory() {
		want = append(want, "la-"+e.Code)
	}
	algs := map[string]bool{}
	const tokenURL = "http://127.0.0.1:8080/dev/token"
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	v := auth.NewAssertionVerifier(tokenURL, func() time.Time { return now })
	for _, id := range want {
		c, ok := cs.Lookup(id)
		if !ok {
			t.Errorf("no client %s", id)
			continue
		}
		b, err := os.ReadFile(id + ".private.jwk.json")
		if err != nil {
			t.Fatal(err)
		}
		key, err := jwk.ParseKey(b)
		if err != nil {
			t.Fatal(err)
		}
		algs[key.Algorithm().String()] = true
		a, err := auth.SignClientAssertion(key, id, tokenURL, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyClientAssertion(a, id, c.JWKS); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if !algs["ES384"] || !algs["RS384"] {
		t.Errorf("algorithms %v: want both ES384 and RS384 exercised", algs)
	}
	if n := len(cs.All()); n != len(want) {
		t.Errorf("%d clients, want %d", n, len(want))
	}
}
