package fhir

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// FuzzParseFlag feeds ParseFlag arbitrary bodies, seeded with the examples
// and a few near misses. ParseFlag must not panic; every problem it reports
// must be a *cpis.Error with an expression; and a body it accepts must come
// back as the same plan after a trip through FlagResource and ParseFlag.
func FuzzParseFlag(f *testing.F) {
	for name := range examplePlans {
		f.Add(readExample(f, name))
	}
	for _, s := range []string{
		"", "{}", "null", `{"resourceType":"Flag"}`, `{"resourceType":"Flag","text":{"div":"x"}}`,
		`{"resourceType":"Flag","period":{"start":"2026-06-01T10:00:00Z"}}`,
		`{"resourceType":"Flag","_status":{"extension":[{"url":"x","valueString":"y"}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseFlag(body)
		if err != nil {
			for _, e := range unjoin(err) {
				var ce *cpis.Error
				if !errors.As(e, &ce) || ce.Expression == "" {
					t.Fatalf("problem %v is not a *cpis.Error with an expression", e)
				}
			}
			return
		}
		again := roundTrip(t, p, cpis.OwnerView)
		if diff := cmp.Diff(p, again, cmpopts.IgnoreFields(cpis.Plan{}, "Version", "LastUpdated")); diff != "" {
			t.Fatalf("accepted plan does not round-trip (-parsed +again):\n%s", diff)
		}
	})
}
