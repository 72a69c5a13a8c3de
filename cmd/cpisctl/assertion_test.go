package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// TestClientAssertionIsAcceptedByTheTokenEndpointsVerifier signs with the
// shipped dev keys (ES384 and RS384) and checks the assertion with the
// verifier the dev token endpoint uses, on the same injected clock.
func TestClientAssertionIsAcceptedByTheTokenEndpointsVerifier(t *testing.T) {
	const tokenURL = "http://127.0.0.1:8080/dev/token"
	for _, id := range []string{"la-ZLA01", "la-ZLA02"} {
		t.Run(id, func(t *testing.T) {
			keyFile := filepath.Join("..", "..", "examples", "clients", id+".private.jwk.json")
			out, err := cli(t, "", nil, someDay, "client-assertion", "--key", keyFile, "--client-id", id, "--token-url", tokenURL)
			if err != nil {
				t.Fatal(err)
			}
			v := auth.NewAssertionVerifier(tokenURL, func() time.Time { return someDay.Add(time.Minute) })
			if err := v.VerifyClientAssertion(strings.TrimSpace(out), id, publicSet(t, keyFile)); err != nil {
				t.Errorf("the dev token endpoint's verifier refuses it: %v", err)
			}
			late := auth.NewAssertionVerifier(tokenURL, func() time.Time { return someDay.Add(10 * time.Minute) })
			if err := late.VerifyClientAssertion(strings.TrimSpace(out), id, publicSet(t, keyFile)); err == nil {
				t.Error("accepted ten minutes after it was signed")
			}
		})
	}
}

func TestClientAssertionRefuses(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "public.jwk.json")
	b, err := json.Marshal(publicKey(t, filepath.Join("..", "..", "examples", "clients", "la-ZLA01.private.jwk.json")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, b, 0o600); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join("..", "..", "examples", "clients", "la-ZLA01.private.jwk.json")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"--client-id", "x", "--token-url", "https://a.test/token"}, "required"},
		{"relative url", []string{"--key", key, "--client-id", "x", "--token-url", "/token"}, "absolute"},
		{"public key", []string{"--key", pub, "--client-id", "x", "--token-url", "https://a.test/token"}, "not a private key"},
		{"missing file", []string{"--key", filepath.Join(dir, "none"), "--client-id", "x", "--token-url", "https://a.test/token"}, "--key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := cli(t, "", nil, someDay, append([]string{"client-assertion"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || out != "" {
				t.Errorf("err %v, out %q; want an error with %q and no output", err, out, tt.want)
			}
		})
	}
}

func publicKey(t *testing.T, path string) jwk.Key {
	t.Helper()
	priv, err := readPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func publicSet(t *testing.T, path string) jwk.Set {
	t.Helper()
	set := jwk.NewSet()
	if err := set.AddKey(publicKey(t, path)); err != nil {
		t.Fatal(err)
	}
	return set
}
