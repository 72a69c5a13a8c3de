package fhir

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCapabilitySecurity: rest.security says what the caller says of access,
// and no more (the golden file holds the statement with every endpoint).
func TestCapabilitySecurity(t *testing.T) {
	const oauth = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
	tests := []struct {
		name string
		sec  Security
		want map[string]any // cors and extension of rest[0].security
	}{
		{"no token endpoint, no CORS", Security{}, map[string]any{"cors": false}},
		{"token endpoint only (dev mode)", Security{CORS: true, TokenURL: "http://127.0.0.1:8080/dev/token"}, map[string]any{
			"cors": true,
			"extension": []any{map[string]any{"url": oauth, "extension": []any{
				map[string]any{"url": "token", "valueUri": "http://127.0.0.1:8080/dev/token"},
			}}},
		}},
		{"authorize without token is not published", Security{AuthorizeURL: "https://issuer.test/authorize"}, map[string]any{"cors": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := MarshalResource(CapabilityStatement(testBase, "1.2.3", tt.sec))
			if err != nil {
				t.Fatal(err)
			}
			var cs struct {
				Rest []struct {
					Security map[string]any `json:"security"`
				} `json:"rest"`
			}
			if err := json.Unmarshal(b, &cs); err != nil {
				t.Fatal(err)
			}
			got := cs.Rest[0].Security
			delete(got, "service")
			delete(got, "description")
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rest.security (-want +got):\n%s", diff)
			}
		})
	}
}
