package auth

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSMARTConfigurationJSON(t *testing.T) {
	b, err := json.Marshal(SMARTConfiguration("https://issuer.test", "https://issuer.test/token", "https://issuer.test/jwks"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"issuer":                                "https://issuer.test",
		"token_endpoint":                        "https://issuer.test/token",
		"jwks_uri":                              "https://issuer.test/jwks",
		"grant_types_supported":                 []any{"client_credentials"},
		"token_endpoint_auth_methods_supported": []any{"private_key_jwt"},
		"code_challenge_methods_supported":      []any{"S256"},
		"capabilities":                          []any{"client-confidential-asymmetric", "permission-v1", "permission-v2", "permission-user"},
		"scopes_supported": []any{
			"openid", "profile", "user/Flag.read", "user/Flag.rs", "user/AuditEvent.read", "user/AuditEvent.rs",
			"system/Flag.read", "system/Flag.rs", "system/Flag.write", "system/Flag.cud",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("smart-configuration (-want +got):\n%s", diff)
	}
}

// TestSupportedScopesAreUnderstood keeps scopes_supported truthful: every
// advertised resource scope is one that some check of this package grants on.
func TestSupportedScopesAreUnderstood(t *testing.T) {
	checks := []struct{ level, resource, perms string }{
		{"user", "Flag", "rs"}, {"user", "AuditEvent", "rs"}, {"system", "Flag", "rs"}, {"system", "Flag", "cud"},
	}
	for _, s := range SupportedScopes() {
		if s == "openid" || s == "profile" {
			continue
		}
		t.Run(s, func(t *testing.T) {
			sc, ok := parseScope(s)
			if !ok {
				t.Fatalf("advertised scope %q does not parse", s)
			}
			for _, c := range checks {
				if sc.allows(c.level, c.resource, c.perms) {
					return
				}
			}
			t.Errorf("advertised scope %q grants nothing", s)
		})
	}
}
