package auth

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// FuzzVerify feeds arbitrary bearer tokens to a verifier. Whatever comes in,
// Verify must not panic, must fail only with Unauthenticated and without
// echoing the token, and may succeed only with the principal of a token the
// development issuer really minted (base64 slack in the last character of a
// signature can make another string decode to the same token).
func FuzzVerify(f *testing.F) {
	d := newDevIssuer(f, f.TempDir(), clockAt(t0))
	v := devVerifier(f, d, clockAt(t0))
	minted := map[string]*Principal{}
	for _, p := range d.Personas() {
		tok, _, err := d.Token(p.Name)
		if err != nil {
			f.Fatal(err)
		}
		minted[p.UserID] = personaPrincipal(p)
		f.Add(tok)
		f.Add(tok[:len(tok)/2])
		f.Add(strings.Replace(tok, ".", "..", 1))
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add(`eyJhbGciOiJub25lIn0.e30.`)
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(t.Context(), token)
		if err != nil {
			if k := cpis.KindOf(err); k != cpis.Unauthenticated {
				t.Fatalf("kind %v: %v", k, err)
			}
			assertNoTokenIn(t, err.Error(), token)
			return
		}
		want, ok := minted[p.Subject]
		if !ok {
			t.Fatalf("a token the issuer never minted verified, subject %q", p.Subject)
		}
		if diff := cmp.Diff(want, p); diff != "" {
			t.Fatalf("principal (-want +got):\n%s", diff)
		}
	})
}

// FuzzClientAssertion feeds arbitrary client assertions to the token
// endpoint's checks: they must not panic, must refuse with ErrBadAssertion
// without echoing the assertion, and may accept only one the client signed.
func FuzzClientAssertion(f *testing.F) {
	key := clientKey(f, "ES384")
	keys := publicSet(f, key)
	good, err := SignClientAssertion(key, "app", testTokenURL, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add("a.b.c")
	f.Add(`eyJhbGciOiJub25lIn0.e30.`)
	f.Fuzz(func(t *testing.T, assertion string) {
		v := NewAssertionVerifier(testTokenURL, clockAt(t0))
		_, _ = AssertedClient(assertion)
		err := v.VerifyClientAssertion(assertion, "app", keys)
		if err == nil {
			if assertion != good && !strings.HasPrefix(assertion, good[:strings.LastIndex(good, ".")]) {
				t.Fatalf("an assertion the client never signed was accepted")
			}
			return
		}
		if !errors.Is(err, ErrBadAssertion) {
			t.Fatalf("error %v does not wrap ErrBadAssertion", err)
		}
		if len(assertion) > 8 && strings.Contains(err.Error(), assertion) {
			t.Fatalf("the error echoes the assertion")
		}
	})
}

// FuzzReadClients: the clients file loader never panics and fails only
// with Invalid.
func FuzzReadClients(f *testing.F) {
	f.Add(`{"clients": []}`)
	f.Add(`{"clients": [{"client_id": "app", "kind": "app", "public": true, "redirect_uris": ["https://a.test/cb"], "scopes": ["user/Flag.rs"]}]}`)
	f.Add(`{"clients": [{"client_id": "la", "kind": "la-system", "jwks": {"keys": [{"kty": "EC"}]}}]}`)
	f.Fuzz(func(t *testing.T, file string) {
		if _, err := ReadClients(strings.NewReader(file)); err != nil && cpis.KindOf(err) != cpis.Invalid {
			t.Fatalf("kind %v: %v", cpis.KindOf(err), err)
		}
	})
}
