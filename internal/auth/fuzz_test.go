package auth

import (
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
