package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func clockAt(t time.Time) func() time.Time { return func() time.Time { return t } }

// newTestVerifier builds a Verifier on ti by OpenID Connect discovery.
func newTestVerifier(tb testing.TB, ti *testIssuer, now func() time.Time) *Verifier {
	tb.Helper()
	v, err := NewVerifier(tb.Context(), Config{
		Issuer: ti.srv.URL, Audience: testAudience, Now: now, HTTPClient: ti.srv.Client(),
	})
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifyRules(t *testing.T) {
	ti := newTestIssuer(t)
	v := newTestVerifier(t, ti, clockAt(t0))
	base := ti.baseClaims()
	otherEC := newECKey(t, "ec-1") // same kid as the issuer's, different key
	tests := []struct {
		name  string
		token string
		want  string // "" for success, else the reason in the error
	}{
		{"ES256 valid", sign(t, jwa.ES256, ti.ec, "ec-1", base), ""},
		{"RS256 valid", sign(t, jwa.RS256, ti.rsa, "rsa-1", base), ""},
		{"EdDSA valid, key without alg", sign(t, jwa.EdDSA, ti.ed, "ed-1", base), ""},
		{"ES256 header on an Ed25519 key without alg", sign(t, jwa.ES256, newECKey(t, "x"), "ed-1", base), "does not match its key"},
		{"audience among several", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"aud": []string{"other", testAudience}})), ""},
		{"signed by another key", sign(t, jwa.ES256, otherEC, "ec-1", base), "signature does not verify"},
		{"unknown kid", sign(t, jwa.ES256, ti.ec, "ec-unknown", base), "is not one of the issuer's keys"},
		{"no kid", sign(t, jwa.ES256, ti.ec, "", base), "names no signing key"},
		{"alg none", unsigned(t, "ec-1", base), "algorithm is not accepted"},
		{"HS256 with the public key as secret", sign(t, jwa.HS256, ti.rsaPubPEM, "rsa-1", base), "algorithm is not accepted"},
		{"PS256 with a key published for RS256", sign(t, jwa.PS256, ti.rsa, "rsa-1", base), "does not match its key"},
		{"ES384 header on the ES256 key", sign(t, jwa.ES384, newECKeyP384(t), "ec-1", base), "does not match its key"},
		{"critical header extension", signWithHeaders(t, jwa.ES256, ti.ec, map[string]any{"kid": "ec-1", "crit": []string{"exp"}, "exp": 1}, base), "critical extensions"},
		{"wrong issuer", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iss": ti.srv.URL + "/"})), "(iss)"},
		{"no issuer", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iss": nil})), "(iss)"},
		{"wrong audience", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"aud": "https://elsewhere.test"})), "(aud)"},
		{"no audience", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"aud": nil})), "(aud)"},
		{"no exp", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": nil})), "no expiry"},
		{"no sub", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"sub": nil})), "no subject"},
		{"expired beyond skew", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": t0.Add(-61 * time.Second).Unix()})), "has expired"},
		{"expired within skew", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": t0.Add(-30 * time.Second).Unix()})), ""},
		{"nbf beyond skew", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"nbf": t0.Add(61 * time.Second).Unix()})), "not valid yet"},
		{"nbf within skew", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"nbf": t0.Add(30 * time.Second).Unix()})), ""},
		{"iat beyond skew", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iat": t0.Add(2 * time.Minute).Unix()})), "issued in the future"},
		{"exp not a number", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": "tomorrow"})), "registered claims are malformed"},
		{"exp 0, no iat", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": 0, "iat": nil})), "has expired"},
		{"exp 0", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": 0})), "has expired"},
		{"exp in the year 9000", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()})), "lifetime"},
		{"exp in the year 9000, no iat", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), "iat": nil})), "lifetime"},
		{"exp beyond int64 seconds", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": 1e300})), "registered claims are malformed"},
		{"lifetime 12 h", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": t0.Add(-time.Minute + 12*time.Hour).Unix()})), ""},
		{"lifetime 12 h and 1 s", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"exp": t0.Add(-time.Minute + 12*time.Hour + time.Second).Unix()})), "lifetime"},
		{"iat 0: lifetime since 1970", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iat": 0})), "lifetime"},
		{"no iat, 12 h left", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iat": nil, "exp": t0.Add(12 * time.Hour).Unix()})), ""},
		{"no iat, 12 h left and the skew", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iat": nil, "exp": t0.Add(12*time.Hour + MaxSkew).Unix()})), ""},
		{"no iat, 12 h and 2 min left", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iat": nil, "exp": t0.Add(12*time.Hour + 2*time.Minute).Unix()})), "lifetime"},
		{"exp before iat", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"iat": t0.Add(30 * time.Second).Unix(), "exp": t0.Add(20 * time.Second).Unix()})), "expires before it was issued"},
		{"empty sub", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"sub": ""})), "no subject"},
		{"sub not a string", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"sub": 7})), "registered claims are malformed"},
		{"payload not a JSON object", signPayload(t, ti.ec, "ec-1", []byte("[1,2]")), "registered claims are malformed"},
		{"la_code not a string", sign(t, jwa.ES256, ti.ec, "ec-1", with(base, map[string]any{"la_code": 7})), "identity claims are malformed"},
		{"garbage", "not-a-token", "not a signed JWT in compact form"},
		{"empty", "", "not a signed JWT in compact form"},
		{"JWE-shaped", "a.b.c.d.e", "not a signed JWT in compact form"},
		{"bad base64", "!!.!!.!!", "not a well-formed signed JWT"},
		{"base64 of no JSON", "YWJj.YWJj.YWJj", "not a well-formed signed JWT"},
		{"JWS JSON serialization", jsonSerialization(t, sign(t, jwa.ES256, ti.ec, "ec-1", base)), "not a well-formed signed JWT"},
		{"padded base64", strings.Replace(sign(t, jwa.ES256, ti.ec, "ec-1", base), ".", "=.", 1), "not a well-formed signed JWT"},
		{"too long", strings.Repeat("a", maxTokenBytes) + ".b.c", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(t.Context(), tt.token)
			if tt.want == "" {
				if err != nil || p == nil {
					t.Fatalf("Verify = %v, %v; want a principal", p, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded; want failure %q", tt.want)
			}
			if k := cpis.KindOf(err); k != cpis.Unauthenticated {
				t.Errorf("kind = %v, want unauthenticated (%v)", k, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not give the reason %q", err, tt.want)
			}
			assertNoTokenIn(t, err.Error(), tt.token)
		})
	}
}

// signPayload makes a compact ES256 JWS of payload as given, with header kid.
func signPayload(tb testing.TB, key jwk.Key, kid string, payload []byte) string {
	tb.Helper()
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, kid); err != nil {
		tb.Fatal(err)
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		tb.Fatal(err)
	}
	b, err := jws.Sign(payload, jws.WithKey(jwa.ES256, raw, jws.WithProtectedHeaders(h)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// jsonSerialization rewrites a compact JWS in the flattened JSON
// serialization (RFC 7515 section 7.2.2), valid as such, with an
// unprotected header that brings its dots to two, as in a compact JWS.
func jsonSerialization(tb testing.TB, compact string) string {
	tb.Helper()
	parts := strings.Split(compact, ".")
	b, err := json.Marshal(map[string]any{"protected": parts[0], "payload": parts[1], "signature": parts[2], "header": map[string]string{"x": "a.b.c"}})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// newECKeyP384 is a P-384 key under the kid of the issuer's P-256 key: an
// ES384 token naming it must be refused before any signature check.
func newECKeyP384(tb testing.TB) jwk.Key {
	tb.Helper()
	raw, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return withKid(tb, raw, "ec-1", jwa.ES384)
}

// assertNoTokenIn fails if msg repeats any part of token.
func assertNoTokenIn(tb testing.TB, msg, token string) {
	tb.Helper()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(msg, part) {
			tb.Errorf("error message repeats part of the token: %q", msg)
		}
	}
}

func TestVerifyMapsClaims(t *testing.T) {
	ti := newTestIssuer(t)
	v := newTestVerifier(t, ti, clockAt(t0))
	base := ti.baseClaims()
	roles := []map[string]any{
		{"person_roleid": "555000000198", "org_code": "ZZT02", "role_code": "S8000:G8000:R8001", "role_name": "Nurse Access Role", "activity_codes": []string{"B0170"}},
		{"person_roleid": "555000000199", "org_code": "ZZT01", "role_code": "S8000:G8000:R8000", "role_name": "Clinical Practitioner Access Role", "activity_codes": []string{"B0107", "B0170"}},
	}
	orgs := []map[string]any{{"org_code": "ZZT02", "org_name": "Other Trust"}, {"org_code": "ZZT01", "org_name": "Fictional Trust"}}
	health := with(base, map[string]any{
		"name": "Dr Test Person", "nhsid_useruid": "555000000099", "selected_roleid": "555000000199",
		"nhsid_nrbac_roles": roles, "nhsid_user_orgs": orgs, "id_assurance_level": 3,
		"azp": "ehr-client", "scope": "openid  user/Flag.read",
	})
	noRole := cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000099", Name: "Dr Test Person"}
	tests := []struct {
		name   string
		claims map[string]any
		want   *Principal
	}{
		{"health user, second role selected", health, &Principal{
			Actor: cpis.Actor{
				Kind: cpis.HealthUser, UserID: "555000000099", Name: "Dr Test Person", RoleProfileID: "555000000199",
				RoleCode: "S8000:G8000:R8000", RoleName: "Clinical Practitioner Access Role",
				OrgCode: "ZZT01", OrgName: "Fictional Trust", Activities: []string{"B0107", "B0170"},
			},
			Subject: "555000000099", ClientID: "ehr-client", Scopes: []string{"openid", "user/Flag.read"}, IdentityAssurance: "3",
		}},
		{"health user, client_id preferred to azp, string assurance", with(health, map[string]any{"client_id": "epr", "id_assurance_level": "3"}), &Principal{
			Actor: cpis.Actor{
				Kind: cpis.HealthUser, UserID: "555000000099", Name: "Dr Test Person", RoleProfileID: "555000000199",
				RoleCode: "S8000:G8000:R8000", RoleName: "Clinical Practitioner Access Role",
				OrgCode: "ZZT01", OrgName: "Fictional Trust", Activities: []string{"B0107", "B0170"},
			},
			Subject: "555000000099", ClientID: "epr", Scopes: []string{"openid", "user/Flag.read"}, IdentityAssurance: "3",
		}},
		{"selected role matches none", with(health, map[string]any{"selected_roleid": "555000000777"}), &Principal{
			Actor:   withRoleID(noRole, "555000000777"),
			Subject: "555000000099", ClientID: "ehr-client", Scopes: []string{"openid", "user/Flag.read"}, IdentityAssurance: "3",
		}},
		{"no selected role", with(health, map[string]any{"selected_roleid": nil}), &Principal{
			Actor:   noRole,
			Subject: "555000000099", ClientID: "ehr-client", Scopes: []string{"openid", "user/Flag.read"}, IdentityAssurance: "3",
		}},
		{"LA system with client_id and scp array", with(base, map[string]any{
			"sub": "la-sub", "client_id": "la-ZLA02", "azp": "ignored", "la_code": "ZLA02", "la_name": "London Borough of Newham",
			"scp": []string{"system/Flag.write", "system/Flag.read"},
		}), &Principal{
			Actor:   cpis.Actor{Kind: cpis.LASystem, UserID: "la-ZLA02", Name: "London Borough of Newham", OrgCode: "ZLA02", OrgName: "London Borough of Newham"},
			Subject: "la-sub", ClientID: "la-ZLA02", Scopes: []string{"system/Flag.write", "system/Flag.read"}, LACode: "ZLA02",
		}},
		{"LA system named by azp, no la_name, scp string", with(base, map[string]any{
			"sub": "la-sub", "azp": "la-azp", "la_code": "ZLA03", "scp": "system/Flag.cud system/Flag.rs",
		}), &Principal{
			Actor:   cpis.Actor{Kind: cpis.LASystem, UserID: "la-azp", Name: "la-azp", OrgCode: "ZLA03"},
			Subject: "la-sub", ClientID: "la-azp", Scopes: []string{"system/Flag.cud", "system/Flag.rs"}, LACode: "ZLA03",
		}},
		{"LA system known only by sub", with(base, map[string]any{"sub": "la-sub", "la_code": "ZLA04"}), &Principal{
			Actor:   cpis.Actor{Kind: cpis.LASystem, UserID: "la-sub", Name: "la-sub", OrgCode: "ZLA04"},
			Subject: "la-sub", ClientID: "la-sub", LACode: "ZLA04",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(t.Context(), sign(t, jwa.RS256, ti.rsa, "rsa-1", tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
		})
	}
}

func withRoleID(a cpis.Actor, id string) cpis.Actor {
	a.RoleProfileID = id
	return a
}
