package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

const testTokenURL = "http://127.0.0.1:8080/dev/token"

var assertionNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// clientKey makes a private key for a test client: "ES384" (P-384) or "RS384".
func clientKey(t testing.TB, alg string) jwk.Key {
	t.Helper()
	var raw any
	var err error
	switch alg {
	case "ES384":
		raw, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES256":
		raw, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		raw, err = rsa.GenerateKey(rand.Reader, 2048)
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

// publicSet is the JWKS a client registers for key.
func publicSet(t testing.TB, keys ...jwk.Key) jwk.Set {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := jwk.PublicKeyOf(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

// signClaims signs a hand-built assertion, for the cases SignClientAssertion
// would never make.
func signClaims(t testing.TB, key jwk.Key, alg jwa.SignatureAlgorithm, kid string, edit func(b *jwt.Builder) *jwt.Builder) string {
	t.Helper()
	b := jwt.NewBuilder().Issuer("app").Subject("app").Audience([]string{testTokenURL}).
		IssuedAt(assertionNow).Expiration(assertionNow.Add(4 * time.Minute)).JwtID("jti-1")
	if edit != nil {
		b = edit(b)
	}
	tok, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	// jwx writes the key's own kid into the header: sign with a copy
	// without one, so that the header says what the case wants.
	anon, err := key.Clone()
	if err != nil {
		t.Fatal(err)
	}
	_ = anon.Remove(jwk.KeyIDKey)
	hdr := jws.NewHeaders()
	if kid != "" {
		_ = hdr.Set(jws.KeyIDKey, kid)
	}
	s, err := jwt.Sign(tok, jwt.WithKey(alg, anon, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

func TestSignAndVerifyClientAssertion(t *testing.T) {
	for _, alg := range []string{"ES384", "RS384"} {
		t.Run(alg, func(t *testing.T) {
			key := clientKey(t, alg)
			a, err := SignClientAssertion(key, "app", testTokenURL, assertionNow)
			if err != nil {
				t.Fatal(err)
			}
			hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(a, ".")[0])
			if !strings.Contains(string(hdr), `"alg":"`+alg+`"`) || !strings.Contains(string(hdr), key.KeyID()) {
				t.Errorf("header %s: want alg %s and the key's kid", hdr, alg)
			}
			v := NewAssertionVerifier(testTokenURL, func() time.Time { return assertionNow.Add(time.Minute) })
			if id, err := AssertedClient(a); err != nil || id != "app" {
				t.Errorf("AssertedClient = %q, %v", id, err)
			}
			if err := v.VerifyClientAssertion(a, "app", publicSet(t, key)); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if err := v.VerifyClientAssertion(a, "app", publicSet(t, key)); !errors.Is(err, ErrBadAssertion) || !strings.Contains(err.Error(), "jti") {
				t.Errorf("replayed: %v, want a refusal naming the jti", err)
			}
		})
	}
}

func TestSignClientAssertionRefusesKeys(t *testing.T) {
	noKid := clientKey(t, "ES384")
	_ = noKid.Remove(jwk.KeyIDKey)
	pub, _ := jwk.PublicKeyOf(clientKey(t, "RS384"))
	for name, key := range map[string]jwk.Key{"P-256": clientKey(t, "ES256"), "no kid": noKid, "public": pub} {
		if _, err := SignClientAssertion(key, "app", testTokenURL, assertionNow); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestVerifyClientAssertionRefuses(t *testing.T) {
	es, rs, other := clientKey(t, "ES384"), clientKey(t, "RS384"), clientKey(t, "ES384")
	es256 := clientKey(t, "ES256")
	keys := publicSet(t, es, rs, es256)
	hmac, err := jwk.FromRaw([]byte("a shared secret of thirty-two bytes!"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := SignClientAssertion(es, "app", testTokenURL, assertionNow)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+es.KeyID()+`"}`)) + "." + parts[1] + "."
	tests := []struct {
		name, assertion, client, reason string
	}{
		{"wrong alg for the key (RS256)", signClaims(t, rs, jwa.RS256, rs.KeyID(), nil), "app", "RS384 or ES384"},
		{"ES256", signClaims(t, es256, jwa.ES256, es256.KeyID(), nil), "app", "RS384 or ES384"},
		{"HS256", signClaims(t, hmac, jwa.HS256, es.KeyID(), nil), "app", "RS384 or ES384"},
		{"alg none", none, "app", "RS384 or ES384"},
		{"wrong aud", signClaims(t, es, jwa.ES384, es.KeyID(), func(b *jwt.Builder) *jwt.Builder {
			return b.Audience([]string{"http://127.0.0.1:8080/other"})
		}), "app", "aud"},
		{"expired", signClaims(t, es, jwa.ES384, es.KeyID(), func(b *jwt.Builder) *jwt.Builder {
			return b.IssuedAt(assertionNow.Add(-10 * time.Minute)).Expiration(assertionNow.Add(-time.Minute))
		}), "app", "expired"},
		{"exp too far ahead", signClaims(t, es, jwa.ES384, es.KeyID(), func(b *jwt.Builder) *jwt.Builder {
			return b.Expiration(assertionNow.Add(time.Hour))
		}), "app", "five minutes"},
		{"no exp", signClaims(t, es, jwa.ES384, es.KeyID(), func(b *jwt.Builder) *jwt.Builder {
			tok, _ := b.Build()
			_ = tok.Remove(jwt.ExpirationKey)
			return jwt.NewBuilder().Issuer("app").Subject("app").Audience([]string{testTokenURL}).JwtID("x")
		}), "app", "exp"},
		{"no jti", signClaims(t, es, jwa.ES384, es.KeyID(), func(b *jwt.Builder) *jwt.Builder { return b.JwtID("") }), "app", "jti"},
		{"unknown kid", signClaims(t, other, jwa.ES384, other.KeyID(), nil), "app", "kid"},
		{"another key, a known kid", signClaims(t, other, jwa.ES384, es.KeyID(), nil), "app", "signature"},
		{"no kid", signClaims(t, es, jwa.ES384, "", nil), "app", "kid"},
		{"RS384 naming the EC key", signClaims(t, rs, jwa.RS384, es.KeyID(), nil), "app", "does not match"},
		{"iss of another client", good, "someone-else", "iss"},
		{"sub not the client", signClaims(t, es, jwa.ES384, es.KeyID(), func(b *jwt.Builder) *jwt.Builder { return b.Subject("x") }), "app", "sub"},
		{"garbage", "not.a.jwt", "app", "well-formed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewAssertionVerifier(testTokenURL, func() time.Time { return assertionNow })
			err := v.VerifyClientAssertion(tt.assertion, tt.client, keys)
			if !errors.Is(err, ErrBadAssertion) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("got %v, want ErrBadAssertion saying %q", err, tt.reason)
			}
		})
	}
}

// TestAssertionJTIForgotten: a jti is remembered while its assertion may
// be used, and the memory does not grow without end.
func TestAssertionJTIForgotten(t *testing.T) {
	key := clientKey(t, "ES384")
	now := assertionNow
	v := NewAssertionVerifier(testTokenURL, func() time.Time { return now })
	for range 3 {
		a, err := SignClientAssertion(key, "app", testTokenURL, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyClientAssertion(a, "app", publicSet(t, key)); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(10 * time.Minute)
	a, _ := SignClientAssertion(key, "app", testTokenURL, now)
	if err := v.VerifyClientAssertion(a, "app", publicSet(t, key)); err != nil {
		t.Fatal(err)
	}
	if n := len(v.seen); n != 1 {
		t.Errorf("%d jtis remembered, want 1 (the expired ones dropped)", n)
	}
}
