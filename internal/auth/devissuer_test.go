package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

const devIssuerURL = "http://localhost:8080"

func newDevIssuer(tb testing.TB, dir string, now func() time.Time) *DevIssuer {
	tb.Helper()
	d, err := LoadOrCreateDevIssuer(dir, devIssuerURL, testAudience, now)
	if err != nil {
		tb.Fatalf("LoadOrCreateDevIssuer: %v", err)
	}
	return d
}

func devVerifier(tb testing.TB, d *DevIssuer, now func() time.Time) *Verifier {
	tb.Helper()
	v, err := NewVerifier(tb.Context(), Config{Issuer: d.Issuer(), Audience: testAudience, KeySet: d.PublicKeys(), Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func publicJSON(tb testing.TB, d *DevIssuer) string {
	tb.Helper()
	b, err := json.Marshal(d.PublicKeys())
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestDevIssuerKeyPersisted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet: created on first use
	first := newDevIssuer(t, dir, clockAt(t0))
	path := filepath.Join(dir, DevKeyFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %v, want 0600", mode)
	}
	tok, _, err := first.Token("ed-clinician")
	if err != nil {
		t.Fatal(err)
	}

	second := newDevIssuer(t, dir, clockAt(t0))
	if diff := cmp.Diff(publicJSON(t, first), publicJSON(t, second)); diff != "" {
		t.Errorf("public keys changed across loads (-first +second):\n%s", diff)
	}
	if _, err := devVerifier(t, second, clockAt(t0)).Verify(t.Context(), tok); err != nil {
		t.Errorf("a token minted before the reload does not verify after it: %v", err)
	}
	if k, _ := second.PublicKeys().Key(0); k == nil || k.KeyID() == "" {
		t.Errorf("public key has no kid")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the key file", len(entries))
	}
}

func TestDevIssuerConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	const n = 4
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d, err := LoadOrCreateDevIssuer(dir, devIssuerURL, testAudience, clockAt(t0))
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = publicJSON(t, d)
		})
	}
	wg.Wait()
	for i := 1; i < n; i++ {
		if keys[i] != keys[0] {
			t.Fatalf("concurrent first starts made different keys")
		}
	}
}

func TestDevIssuerRefusesBadKeyFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"not JSON", "garbage"},
		{"a public key", `{"kty":"EC","crv":"P-256","kid":"k","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}`},
		{"an HMAC key", `{"kty":"oct","kid":"k","alg":"HS256","k":"c2VjcmV0"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DevKeyFile)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateDevIssuer(dir, devIssuerURL, testAudience, clockAt(t0))
			if cpis.KindOf(err) != cpis.Invalid {
				t.Errorf("error = %v, want kind invalid", err)
			}
			if b, _ := os.ReadFile(path); string(b) != tt.content {
				t.Errorf("the bad key file was overwritten")
			}
		})
	}
}

func TestDevIssuerNeedsIssuerAndAudience(t *testing.T) {
	if _, err := LoadOrCreateDevIssuer(t.TempDir(), "", testAudience, nil); cpis.KindOf(err) != cpis.MissingValue {
		t.Errorf("no issuer: error = %v, want missing value", err)
	}
	if _, err := LoadOrCreateDevIssuer(t.TempDir(), devIssuerURL, "", nil); cpis.KindOf(err) != cpis.MissingValue {
		t.Errorf("no audience: error = %v, want missing value", err)
	}
}

// TestDevPersonas mints a token for every persona, verifies it as any token
// is verified, and checks that the principal is what the persona promises.
func TestDevPersonas(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	v := devVerifier(t, d, clockAt(t0))
	want := map[string]struct {
		may         predicates
		unscheduled bool
	}{
		"ed-clinician":    {predicates{read: true}, true},
		"community-nurse": {predicates{read: true}, false},
		"receptionist":    {predicates{audit: true}, false}, // the scope; the register refuses the role
		"auditor":         {predicates{audit: true}, false},
		"trust-system":    {predicates{read: true}, false},
		// The register decides the rest (a safeguarding role): here,
		// the scope of a reviewer.
		"safeguarding-lead": {predicates{read: true}, false},
		"paediatrician":     {predicates{read: true}, true},
	}
	for _, e := range cpis.TrustDirectory() {
		want["la:"+e.Code] = struct {
			may         predicates
			unscheduled bool
		}{predicates{write: true, readOwn: true}, false}
	}
	personas := d.Personas()
	if len(personas) != len(want) {
		t.Errorf("%d personas, want %d", len(personas), len(want))
	}
	for _, persona := range personas {
		t.Run(persona.Name, func(t *testing.T) {
			w, ok := want[persona.Name]
			if !ok {
				t.Fatalf("unexpected persona %q", persona.Name)
			}
			tok, exp, err := d.Token(persona.Name)
			if err != nil {
				t.Fatal(err)
			}
			if exp != time.Hour {
				t.Errorf("expiresIn = %v, want 1h", exp)
			}
			p, err := v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(personaPrincipal(persona), p); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			if got := answers(p); got != w.may {
				t.Errorf("(read, write, readOwn, audit) = %+v, want %+v", got, w.may)
			}
			if got := p.Can(cpis.ActivityUnscheduledView); got != w.unscheduled {
				t.Errorf("Can(B0107) = %v, want %v", got, w.unscheduled)
			}
		})
	}
}

// personaPrincipal is what a persona's token must verify to, written out
// from the persona's fields independently of the claim mapping.
func personaPrincipal(p Persona) *Principal {
	if p.Kind == cpis.HealthSystem {
		return &Principal{
			Actor: cpis.Actor{Kind: cpis.HealthSystem, UserID: p.UserID, Name: p.DisplayName, OrgCode: p.OrgCode,
				OrgName: p.OrgName, Activities: p.Activities},
			Subject: p.UserID, ClientID: p.UserID, Scopes: p.Scopes,
		}
	}
	if p.Kind == cpis.LASystem {
		return &Principal{
			Actor:   cpis.Actor{Kind: cpis.LASystem, UserID: p.UserID, Name: p.DisplayName, OrgCode: p.OrgCode, OrgName: p.OrgName},
			Subject: p.UserID, ClientID: p.UserID, Scopes: p.Scopes, LACode: p.OrgCode,
		}
	}
	var activities []string
	if len(p.Activities) > 0 {
		activities = p.Activities
	}
	return &Principal{
		Actor: cpis.Actor{
			Kind: cpis.HealthUser, UserID: p.UserID, Name: p.DisplayName, RoleProfileID: p.RoleProfileID,
			RoleCode: p.RoleCode, RoleName: p.RoleName, OrgCode: p.OrgCode, OrgName: p.OrgName, Activities: activities,
		},
		Subject: p.UserID, ClientID: devClientID, Scopes: p.Scopes, IdentityAssurance: "3",
	}
}

func TestDevTokenShape(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	tok, _, err := d.Token("la:ZLA01")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.ParseString(tok)
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	key, _ := d.PublicKeys().Key(0)
	if h.KeyID() != key.KeyID() || h.Algorithm().String() != "ES256" {
		t.Errorf("header kid %q alg %q; want kid %q alg ES256", h.KeyID(), h.Algorithm(), key.KeyID())
	}
	var c map[string]any
	if err := json.Unmarshal(msg.Payload(), &c); err != nil {
		t.Fatal(err)
	}
	wantTimes := map[string]float64{"iat": float64(t0.Unix()), "nbf": float64(t0.Unix()), "exp": float64(t0.Add(time.Hour).Unix())}
	for k, w := range wantTimes {
		if c[k] != w {
			t.Errorf("%s = %v, want %v", k, c[k], w)
		}
	}
	for k, w := range map[string]any{"iss": devIssuerURL, "aud": testAudience, "sub": "la-ZLA01", "la_code": "ZLA01", "client_id": "la-ZLA01", "scope": "system/Flag.write system/Flag.read system/Communication.read system/Subscription.cruds"} {
		if !cmp.Equal(c[k], w) && !cmp.Equal(c[k], []any{w}) {
			t.Errorf("%s = %v, want %v", k, c[k], w)
		}
	}
	tok2, _, _ := d.Token("la:ZLA01")
	msg2, err := jws.ParseString(tok2)
	if err != nil {
		t.Fatal(err)
	}
	var c2 map[string]any
	if err := json.Unmarshal(msg2.Payload(), &c2); err != nil {
		t.Fatal(err)
	}
	if c["jti"] == nil || c["jti"] == c2["jti"] {
		t.Errorf("jti %v then %v; want two distinct ids", c["jti"], c2["jti"])
	}
}

func TestDevTokenExpiry(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	tok, _, err := d.Token("community-nurse")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"59 minutes on", t0.Add(59 * time.Minute), true},
		{"an hour and two minutes on", t0.Add(time.Hour + 2*time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := devVerifier(t, d, clockAt(tt.at)).Verify(t.Context(), tok)
			if (err == nil) != tt.ok {
				t.Errorf("Verify error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestDevTokenUnknownPersona(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	for _, name := range []string{"", "nobody", "la:ZLA99", "LA:ZLA01"} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := d.Token(name); cpis.KindOf(err) != cpis.InvalidValue {
				t.Errorf("Token(%q) error = %v, want invalid value", name, err)
			}
		})
	}
}

func TestPersonasAreCopies(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	ps := d.Personas()
	ps[0].Scopes[0] = "system/Flag.write"
	ps[0].Activities = append(ps[0].Activities, "B0170")
	if diff := cmp.Diff(devPersonas(), d.Personas()); diff != "" {
		t.Errorf("changing the returned personas changed the issuer's (-want +got):\n%s", diff)
	}
}

// TestPersonasJSON checks the /dev/personas shape: every persona lists its
// activities and scopes as arrays, empty rather than null.
func TestPersonasJSON(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	b, err := json.Marshal(d.Personas())
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		t.Run(p["name"].(string), func(t *testing.T) {
			for _, k := range []string{"activities", "scopes"} {
				if _, ok := p[k].([]any); !ok {
					t.Errorf("%s = %v, want an array", k, p[k])
				}
			}
			if p["kind"] != string(cpis.HealthUser) && p["kind"] != string(cpis.LASystem) && p["kind"] != string(cpis.HealthSystem) {
				t.Errorf("kind = %v", p["kind"])
			}
		})
	}
}

// TestLASystemToken: a token for an LA outside the dev directory verifies
// as that LA's system, with the write and read scopes.
func TestLASystemToken(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	v := devVerifier(t, d, clockAt(t0))
	tok, ttl, err := d.LASystemToken(cpis.LocalAuthority{Code: "ZLB099", Name: "Benchmark Borough 99"})
	if err != nil || ttl != DevTokenLifetime {
		t.Fatalf("LASystemToken: %v, %v", ttl, err)
	}
	p, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != cpis.LASystem || p.LACode != "ZLB099" || !p.MayWritePlans() || !p.MayReadOwnPlans() {
		t.Errorf("principal %+v", p)
	}
}
