package auth

import (
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// boundedClaims are the claims of a health user with two roles in two
// organisations, and of an LA system, with a setter for each claim that
// checkBounds covers; each setter writes s into one claim.
func boundedClaims(base map[string]any) (health, la map[string]any, setters map[string]func(m map[string]any, s string)) {
	role := func(id, org string) map[string]any {
		return map[string]any{"person_roleid": id, "org_code": org, "role_code": "S8000:G8000:R8000", "role_name": "Clinical Practitioner Access Role", "activity_codes": []string{"B0107"}}
	}
	health = with(base, map[string]any{
		"name": "Dr Zoë O'Brien-Smith", "nhsid_useruid": "555000000099", "selected_roleid": "555000000199", "id_assurance_level": "3",
		"nhsid_nrbac_roles": []map[string]any{role("555000000198", "ZZT02"), role("555000000199", "ZZT01")},
		"nhsid_user_orgs":   []map[string]any{{"org_code": "ZZT02", "org_name": "Other Trust"}, {"org_code": "ZZT01", "org_name": "St Mary's & St John's NHS Trust"}},
		"client_id":         "ehr-client", "azp": "ehr-azp", "scope": "user/Flag.read",
	})
	la = with(base, map[string]any{"la_code": "ZLA02", "la_name": "London Borough of Newham", "client_id": "la-ZLA02", "scope": "system/Flag.write"})
	top := func(name string) func(m map[string]any, s string) {
		return func(m map[string]any, s string) { m[name] = s }
	}
	// inList sets field of entry i of the list claim list, copying the list
	// so that the base claims stay as they are.
	inList := func(list string, i int, field string) func(m map[string]any, s string) {
		return func(m map[string]any, s string) {
			l := append([]map[string]any(nil), m[list].([]map[string]any)...)
			var v any = s
			if field == "activity_codes" {
				v = []string{"B0107", s}
			}
			l[i] = with(l[i], map[string]any{field: v})
			m[list] = l
		}
	}
	inRole := func(i int, field string) func(m map[string]any, s string) {
		return inList("nhsid_nrbac_roles", i, field)
	}
	inOrg := func(i int, field string) func(m map[string]any, s string) { return inList("nhsid_user_orgs", i, field) }
	setters = map[string]func(m map[string]any, s string){
		"name": top("name"), "la_name": top("la_name"),
		"sub": top("sub"), "nhsid_useruid": top("nhsid_useruid"), "selected_roleid": top("selected_roleid"),
		"id_assurance_level": top("id_assurance_level"), "la_code": top("la_code"), "client_id": top("client_id"), "azp": top("azp"),
		"selected role's role_name": inRole(1, "role_name"), "other role's role_name": inRole(0, "role_name"),
		"role_code": inRole(1, "role_code"), "org_code of a role": inRole(1, "org_code"), "person_roleid": inRole(0, "person_roleid"),
		"activity_codes":          inRole(1, "activity_codes"),
		"selected org's org_name": inOrg(1, "org_name"), "other org's org_name": inOrg(0, "org_name"), "org_code of an org": inOrg(0, "org_code"),
		// A health organisation's system.
		"ods_code": top("ods_code"), "system's org_name": top("org_name"),
		"system's activity_codes": func(m map[string]any, s string) { m["activity_codes"] = []string{"B0170", s} },
	}
	return health, la, setters
}

// isName reports whether the claim a setter writes is a name (up to
// maxNameRunes) rather than an id or a code (up to maxCodeRunes).
func isName(setter string) bool { return strings.Contains(setter, "name") }

// TestDisplayClaimsBounded puts each unsafe value into each bounded claim:
// the token must be refused as malformed, without echoing the value.
func TestDisplayClaimsBounded(t *testing.T) {
	ti := newTestIssuer(t)
	v := newTestVerifier(t, ti, clockAt(t0))
	health, la, setters := boundedClaims(ti.baseClaims())
	system := with(ti.baseClaims(), map[string]any{"ods_code": "ZZT01", "org_name": "St Mary's Trust", "activity_codes": []string{"B0170"},
		"client_id": "trust-engine", "scope": "system/Flag.rs"})
	for _, base := range []map[string]any{health, la, system} {
		if _, err := v.Verify(t.Context(), sign(t, jwa.ES256, ti.ec, "ec-1", base)); err != nil {
			t.Fatalf("the unaltered token: %v", err)
		}
	}
	unsafe := map[string]string{
		"newline": "Dr A\nAccessed by: Dr B", "carriage return": "A\rB", "tab": "A\tB", "NUL": "A\x00B", "DEL": "A\x7fB",
		"C1 NEL": "A\u0085B", "escape": "A\x1b[31mB",
		"RLO": "A\u202eB", "LRE": "A\u202aB", "PDF": "A\u202cB", "LRI": "A\u2066B", "PDI": "A\u2069B",
		"LRM": "A\u200eB", "RLM": "A\u200fB", "ALM": "A\u061cB", "line separator": "A\u2028B", "paragraph separator": "A\u2029B",
	}
	for setter, set := range setters {
		limit := maxCodeRunes
		if isName(setter) {
			limit = maxNameRunes
		}
		cases := map[string]string{"one rune too long": strings.Repeat("é", limit+1)}
		for k, s := range unsafe {
			cases[k] = s
		}
		base := health
		switch setter {
		case "la_name", "la_code":
			base = la
		case "ods_code", "system's org_name", "system's activity_codes":
			base = system
		}
		for name, s := range cases {
			t.Run(setter+"/"+name, func(t *testing.T) {
				m := with(base, nil)
				set(m, s)
				tok := sign(t, jwa.ES256, ti.ec, "ec-1", m)
				p, err := v.Verify(t.Context(), tok)
				if err == nil {
					t.Fatalf("accepted, principal %+v", p)
				}
				if k := cpis.KindOf(err); k != cpis.Unauthenticated {
					t.Errorf("kind = %v, want unauthenticated (%v)", k, err)
				}
				if !strings.Contains(err.Error(), "identity claims are malformed") {
					t.Errorf("error %q does not say the identity claims are malformed", err)
				}
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q repeats the claim", err)
				}
				assertNoTokenIn(t, err.Error(), tok)
			})
		}
		t.Run(setter+"/at the limit", func(t *testing.T) {
			m := with(base, nil)
			set(m, strings.Repeat("é", limit))
			if _, err := v.Verify(t.Context(), sign(t, jwa.ES256, ti.ec, "ec-1", m)); err != nil {
				t.Errorf("a claim of %d runes was refused: %v", limit, err)
			}
		})
	}
}

func TestPlainText(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", true},
		{"Dr Zoë O'Brien-Smith (locum)", true},
		{"Ysbyty Gwynedd – Bwrdd Iechyd Prifysgol Betsi Cadwaladr", true},
		{"مستشفى", true},    // right-to-left script itself is fine
		{"A\u200dB", true},  // a zero-width joiner is not a bidi control
		{"\xff", false},     // not UTF-8
		{"A\u2067B", false}, // RLI
		{"A\u2068B", false}, // FSI
		{"A\u202dB", false}, // LRO
		{"A\u202bB", false}, // RLE
		{"A\u009bB", false}, // C1 CSI
		{strings.Repeat("a", 65), false},
		{strings.Repeat("a", 64), true},
	}
	for _, tt := range tests {
		if got := plainText(tt.s, maxCodeRunes); got != tt.want {
			t.Errorf("plainText(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}
