package fhir

import "testing"

// TestSubscriptionExamples parses the README's subscriptions in examples/:
// what client developers copy must be accepted as it is (in dev mode, for
// its loopback endpoint).
func TestSubscriptionExamples(t *testing.T) {
	for _, name := range []string{"subscription-asn.json", "subscription-plan-change.json"} {
		t.Run(name, func(t *testing.T) {
			sub, err := ParseSubscription(readExample(t, name))
			if err != nil {
				t.Fatalf("ParseSubscription: %v", err)
			}
			if err := sub.Check(true); err != nil {
				t.Errorf("Check: %v", err)
			}
			if sub.Content != "full-resource" || len(sub.Headers) != 1 {
				t.Errorf("parsed %+v", sub)
			}
		})
	}
}
