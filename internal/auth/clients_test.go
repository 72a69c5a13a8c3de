package auth

import (
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"strconv"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// jwksJSON is the JSON of a JWK set holding keys as they are (public or not).
func jwksJSON(t *testing.T, keys ...jwk.Key) string {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		if err := set.AddKey(k); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadClients(t *testing.T) {
	ec, rs := clientKey(t, "ES384"), clientKey(t, "RS384")
	pub := jwksJSON(t, publicKey(t, ec), publicKey(t, rs))
	file := `{"clients": [
	 {"client_id": "la-ZLA01", "kind": "la-system", "org_code": "ZLA01", "org_name": "LA one",
	  "scopes": ["system/Flag.cud", "system/Flag.rs"], "jwks": ` + pub + `},
	 {"client_id": "engine", "kind": "health-system", "name": "Engine", "org_code": "ZZT01", "org_name": "Trust",
	  "activities": ["B0170"], "scopes": ["system/Flag.rs"], "jwks": ` + pub + `},
	 {"client_id": "spa", "kind": "app", "public": true, "redirect_uris": ["https://spa.test/cb"],
	  "launch_url": "https://spa.test/launch", "scopes": ["launch", "openid", "user/Flag.rs"]}
	]}`
	cs, err := ReadClients(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range cs.All() {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, " ") != "la-ZLA01 engine spa" {
		t.Errorf("clients %v", ids)
	}
	c, ok := cs.Lookup("la-ZLA01")
	if !ok || c.JWKS.Len() != 2 || c.Kind != ClientLASystem || c.OrgName != "LA one" {
		t.Errorf("la-ZLA01 %+v", c)
	}
	if app, ok := cs.appByLaunchURL("https://spa.test/launch"); !ok || app.ID != "spa" {
		t.Errorf("launch URL lookup: %+v", app)
	}
}

func publicKey(t *testing.T, k jwk.Key) jwk.Key {
	t.Helper()
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// rsaPublicOfBits is an RSA public JWK whose modulus has exactly bits
// bits: the loader judges the size alone, so no real key (slow to make)
// is needed.
func rsaPublicOfBits(t *testing.T, bits int) jwk.Key {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.Add(n, big.NewInt(1))
	k, err := jwk.FromRaw(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "rsa-"+strconv.Itoa(bits))
	return k
}

// TestRSAKeySize: 2048 bits is the least an RSA key may have, and it is
// enough; EC keys stay on P-384.
func TestRSAKeySize(t *testing.T) {
	add := func(k jwk.Key) error {
		set := jwk.NewSet()
		_ = set.AddKey(k)
		return NewClients().Add(Client{ID: "la", Kind: ClientLASystem, OrgCode: "ZLA01", OrgName: "LA",
			Scopes: []string{"system/Flag.rs"}, JWKS: set})
	}
	for bits, ok := range map[int]bool{1024: false, 2040: false, 2047: false, 2048: true, 3072: true, 4096: true} {
		if err := add(rsaPublicOfBits(t, bits)); (err == nil) != ok {
			t.Errorf("RSA %d bits: %v, want accepted %v", bits, err, ok)
		}
	}
	if err := add(publicKey(t, clientKey(t, "RS384"))); err != nil {
		t.Errorf("a real 2048-bit RSA key: %v", err)
	}
	if err := add(publicKey(t, clientKey(t, "ES256"))); err == nil || !strings.Contains(err.Error(), "P-384") {
		t.Errorf("an EC P-256 key: %v", err)
	}
}

// TestAppScopes: an app holds user/, patient/ and context scopes only,
// whether it is read from the file or registered in code: never a system
// scope, nor one this server does not understand.
func TestAppScopes(t *testing.T) {
	for scope, ok := range map[string]bool{
		"user/Flag.rs": true, "patient/Flag.read": true, "launch": true, "launch/patient": true,
		"openid": true, "fhirUser": true, "profile": true,
		"system/Flag.write": false, "system/Flag.rs": false, "system/Subscription.cruds": false,
		"offline_access": false, "Flag.read": false,
	} {
		app := Client{ID: "app", Kind: ClientApp, Public: true, RedirectURIs: []string{"https://a.test/cb"}, Scopes: []string{scope}}
		if err := NewClients().Add(app); (err == nil) != ok {
			t.Errorf("RegisterApp with %s: %v, want accepted %v", scope, err, ok)
		}
		file := `{"clients": [{"client_id": "app", "kind": "app", "public": true, "redirect_uris": ["https://a.test/cb"], "scopes": ["` + scope + `"]}]}`
		if _, err := ReadClients(strings.NewReader(file)); (err == nil) != ok {
			t.Errorf("file with %s: %v, want accepted %v", scope, err, ok)
		}
	}
}

// TestReadClientsRefuses: the loader is strict, and says which client is
// at fault.
func TestReadClientsRefuses(t *testing.T) {
	ec := clientKey(t, "ES384")
	pub := jwksJSON(t, publicKey(t, ec))
	noKid := publicKey(t, ec)
	_ = noKid.Remove(jwk.KeyIDKey)
	p256 := publicKey(t, clientKey(t, "ES256"))
	rsWrongAlg := publicKey(t, clientKey(t, "RS384"))
	_ = rsWrongAlg.Set(jwk.AlgorithmKey, "RS256")
	sym, _ := jwk.FromRaw([]byte("secret"))
	_ = sym.Set(jwk.KeyIDKey, "s")
	la := func(extra string) string {
		return `{"clients": [{"client_id": "la", "kind": "la-system", "org_code": "ZLA01", "org_name": "LA",
		 "scopes": ["system/Flag.rs"]` + extra + `}]}`
	}
	app := func(extra string) string {
		return `{"clients": [{"client_id": "app", "kind": "app", "scopes": ["user/Flag.rs"]` + extra + `}]}`
	}
	tests := []struct{ name, file, says string }{
		{"not JSON", `{`, "JSON"},
		{"unknown field", la(`, "jwks": ` + pub + `, "secret": "x"`), "unknown field"},
		{"unknown field in a client", `{"clients": [{"client_id": "x", "colour": 1}]}`, "unknown field"},
		{"two values", la(`, "jwks": `+pub) + `{}`, "more than one"},
		{"duplicate id", `{"clients": [` + strings.TrimSuffix(strings.TrimPrefix(la(`, "jwks": `+pub), `{"clients": [`), `]}`) + `,` +
			strings.TrimSuffix(strings.TrimPrefix(la(`, "jwks": `+pub), `{"clients": [`), `]}`) + `]}`, "twice"},
		{"private key", la(`, "jwks": ` + jwksJSON(t, ec)), "never register a private key"},
		{"symmetric key", la(`, "jwks": ` + jwksJSON(t, sym)), "public RSA or EC"},
		{"no kid", la(`, "jwks": ` + jwksJSON(t, noKid)), "kid"},
		{"P-256", la(`, "jwks": ` + jwksJSON(t, p256)), "P-384"},
		{"RSA key for RS256", la(`, "jwks": ` + jwksJSON(t, rsWrongAlg)), "RS384"},
		{"RSA key of 2047 bits", la(`, "jwks": ` + jwksJSON(t, rsaPublicOfBits(t, 2047))), "at least 2048 bits, not 2047"},
		{"RSA key of 1024 bits", la(`, "jwks": ` + jwksJSON(t, rsaPublicOfBits(t, 1024))), "at least 2048 bits"},
		{"empty jwks", la(`, "jwks": {"keys": []}`), "no key"},
		{"system without keys", la(``), "jwks"},
		{"bad kind", `{"clients": [{"client_id": "x", "kind": "robot", "scopes": ["system/Flag.rs"]}]}`, "kind"},
		{"bad client id", `{"clients": [{"client_id": "a b", "kind": "app", "scopes": ["user/Flag.rs"]}]}`, "client_id"},
		{"LA with activities", la(`, "jwks": ` + pub + `, "activities": ["B0107"]`), "activities"},
		{"health system, unknown activity", `{"clients": [{"client_id": "h", "kind": "health-system", "org_code": "Z", "org_name": "Z",
		  "activities": ["B9999"], "scopes": ["system/Flag.rs"], "jwks": ` + pub + `}]}`, "B9999"},
		{"system with a user scope", la(`, "jwks": ` + pub + `, "scopes": ["user/Flag.rs"]`), "not one this kind of client may hold"},
		{"system, redirect", la(`, "jwks": ` + pub + `, "redirect_uris": ["https://x.test/cb"]`), "apps only"},
		{"app without redirect", app(`, "public": true`), "redirect_uris"},
		{"confidential app without keys", app(`, "redirect_uris": ["https://a.test/cb"]`), "jwks"},
		{"public app with keys", app(`, "public": true, "redirect_uris": ["https://a.test/cb"], "jwks": ` + pub), "no keys"},
		{"relative redirect", app(`, "public": true, "redirect_uris": ["/cb"]`), "absolute"},
		{"redirect with fragment", app(`, "public": true, "redirect_uris": ["https://a.test/cb#x"]`), "absolute"},
		{"app with a system scope", `{"clients": [{"client_id": "app", "kind": "app", "public": true, "redirect_uris": ["https://a.test/cb"],
		  "scopes": ["system/Flag.rs"]}]}`, "scope"},
		{"no scopes", `{"clients": [{"client_id": "app", "kind": "app", "public": true, "redirect_uris": ["https://a.test/cb"]}]}`, "scopes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadClients(strings.NewReader(tt.file))
			if cpis.KindOf(err) != cpis.Invalid || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("got %v; want Invalid saying %q", err, tt.says)
			}
		})
	}
}
