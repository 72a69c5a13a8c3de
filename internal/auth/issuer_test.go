package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// t0 is the fixed "now" of the verifier tests.
var t0 = time.Date(2026, time.March, 2, 10, 0, 0, 0, time.UTC)

const testAudience = "https://cpis.example.test/fhir"

// testIssuer is an OpenID Connect issuer made for the tests: an ES256 key
// and an RS256 key, published as a JWKS and through a discovery document
// on an httptest server.
type testIssuer struct {
	srv       *httptest.Server
	ec, rsa   jwk.Key // private keys with kid and alg
	ed        jwk.Key // a private Ed25519 key with a kid and no alg, as some issuers publish
	rsaPubPEM []byte  // the RSA public key as PEM, the classic HS256 "secret"
	fetches   atomic.Int32
	failWith  atomic.Int32           // when not 0, the HTTP status /jwks answers instead of the keys
	onFetch   atomic.Pointer[func()] // when set, called by /jwks before it answers

	mu   sync.Mutex
	jwks jwk.Set // what /jwks serves; tests may replace it to rotate keys
}

func newTestIssuer(tb testing.TB) *testIssuer {
	tb.Helper()
	_, edRaw, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	ti := &testIssuer{ec: newECKey(tb, "ec-1"), rsa: newRSAKey(tb, "rsa-1"), ed: withKid(tb, edRaw, "ed-1", "")}
	ti.setKeys(tb, ti.ec, ti.rsa, ti.ed)
	var raw rsa.PrivateKey
	if err := ti.rsa.Raw(&raw); err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&raw.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	ti.rsaPubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.fetches.Add(1)
		if f := ti.onFetch.Load(); f != nil {
			(*f)()
		}
		if status := ti.failWith.Load(); status != 0 {
			http.Error(w, "unavailable", int(status))
			return
		}
		ti.mu.Lock()
		defer ti.mu.Unlock()
		json.NewEncoder(w).Encode(ti.jwks)
	})
	ti.srv = httptest.NewServer(mux)
	tb.Cleanup(ti.srv.Close)
	return ti
}

// setKeys makes /jwks serve the public halves of keys.
func (ti *testIssuer) setKeys(tb testing.TB, keys ...jwk.Key) {
	tb.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		pub, err := jwk.PublicKeyOf(k)
		if err != nil {
			tb.Fatal(err)
		}
		if err := set.AddKey(pub); err != nil {
			tb.Fatal(err)
		}
	}
	ti.mu.Lock()
	ti.jwks = set
	ti.mu.Unlock()
}

func newECKey(tb testing.TB, kid string) jwk.Key {
	tb.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return withKid(tb, raw, kid, jwa.ES256)
}

func newRSAKey(tb testing.TB, kid string) jwk.Key {
	tb.Helper()
	raw, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return withKid(tb, raw, kid, jwa.RS256)
}

// withKid wraps a raw key as a JWK with kid and, unless alg is "", alg.
func withKid(tb testing.TB, raw any, kid string, alg jwa.SignatureAlgorithm) jwk.Key {
	tb.Helper()
	k, err := jwk.FromRaw(raw)
	if err != nil {
		tb.Fatal(err)
	}
	if err := k.Set(jwk.KeyIDKey, kid); err != nil {
		tb.Fatal(err)
	}
	if alg != "" {
		if err := k.Set(jwk.AlgorithmKey, alg); err != nil {
			tb.Fatal(err)
		}
	}
	return k
}

// baseClaims are the registered claims of a token valid at t0 for the test issuer.
func (ti *testIssuer) baseClaims() map[string]any {
	return map[string]any{
		"iss": ti.srv.URL,
		"aud": testAudience,
		"sub": "555000000099",
		"iat": t0.Add(-time.Minute).Unix(),
		"nbf": t0.Add(-time.Minute).Unix(),
		"exp": t0.Add(time.Hour).Unix(),
	}
}

// sign makes a compact JWS of claims with key under alg, with header kid
// (none when kid is "").
func sign(tb testing.TB, alg jwa.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	tb.Helper()
	headers := map[string]any{}
	if kid != "" {
		headers[jws.KeyIDKey] = kid
	}
	return signWithHeaders(tb, alg, key, headers, claims)
}

// signWithHeaders makes a compact JWS of claims with key under alg and the
// given protected headers besides alg.
func signWithHeaders(tb testing.TB, alg jwa.SignatureAlgorithm, key any, headers, claims map[string]any) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	h := jws.NewHeaders()
	for k, v := range headers {
		if err := h.Set(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	// Sign with the raw key so that jwx does not copy a kid from a JWK.
	var rawKey any = key
	if k, ok := key.(jwk.Key); ok {
		if err := k.Raw(&rawKey); err != nil {
			tb.Fatal(err)
		}
	}
	b, err := jws.Sign(payload, jws.WithKey(alg, rawKey, jws.WithProtectedHeaders(h)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// unsigned makes an "alg":"none" token, which jwx will not sign.
func unsigned(tb testing.TB, kid string, claims map[string]any) string {
	tb.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "kid": kid}) + "." + enc(claims) + "."
}

// with returns a copy of m with the changes applied; a nil value deletes.
func with(m map[string]any, changes map[string]any) map[string]any {
	out := make(map[string]any, len(m)+len(changes))
	for k, v := range m {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}
