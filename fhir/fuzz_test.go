package fhir

import (
	"errors"
	"strconv"
	"strings"
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

// FuzzParseCondition feeds ParseCondition arbitrary conditions. It must not
// panic; a problem is one *cpis.Error with the expression it was given; an
// accepted condition names a valid reference, which reads back the same
// when written in the canonical form.
func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{
		"", "identifier=" + LAReferenceSystem + "|HK-1", "identifier=https%3A%2F%2Fcpis.example.org%2Ffhir%2FId%2Fla-plan-reference%7CHK-1",
		"identifier=HK-1", "identifier=" + LAReferenceSystem + "|a&identifier=" + LAReferenceSystem + "|b",
		"identifier:exact=x", "patient=9990276579", "identifier=%zz", "identifier=" + LAReferenceSystem + "|a;b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		ref, err := ParseCondition(query, "http.If-None-Exist")
		if err != nil {
			var ce *cpis.Error
			if !errors.As(err, &ce) || ce.Expression != "http.If-None-Exist" || ref != "" {
				t.Fatalf("problem %v (reference %q) is not a *cpis.Error at the given expression", err, ref)
			}
			return
		}
		if !cpis.ValidReference(ref) {
			t.Fatalf("accepted reference %q is not valid", ref)
		}
		if again, err := ParseCondition("identifier="+LAReferenceSystem+"|"+ref, "x"); err != nil || again != ref {
			t.Fatalf("reference %q reads back as %q, %v", ref, again, err)
		}
	})
}

// FuzzParseWriteBundle feeds ParseWriteBundle arbitrary bodies, seeded with
// Bundles of each kind of entry. It must not panic; every problem must be a
// *cpis.Error with an expression, an entry's inside that entry; an entry
// read without problems has a method and what that method needs, and its
// Flag round-trips as ParseFlag's does.
func FuzzParseWriteBundle(f *testing.F) {
	flag := string(readExample(f, "flag-cpp.json"))
	for _, s := range []string{
		"", "{}", `{"resourceType":"Bundle","type":"batch"}`, `{"resourceType":"Bundle","type":"transaction","entry":[{}]}`,
		`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"POST","url":"Flag","ifNoneExist":"identifier=` +
			LAReferenceSystem + `|HK-1"},"resource":` + flag + `}]}`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"Flag/abc","ifMatch":"W/\"2\""},"resource":` + flag + `},` +
			`{"request":{"method":"DELETE","url":"Flag?identifier=` + LAReferenceSystem + `|HK-2"}},null,7,{"resource":{"resourceType":"Patient"}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := ParseWriteBundle(body, 20)
		checkProblems(t, err, "Bundle")
		if err != nil {
			return
		}
		if len(b.Entries) > 20 {
			t.Fatalf("%d entries read, at most 20 allowed", len(b.Entries))
		}
		for i, e := range b.Entries {
			checkProblems(t, e.Err, "Bundle.entry["+strconv.Itoa(i)+"]")
			if e.Err != nil {
				continue
			}
			checkEntry(t, e)
		}
	})
}

// checkProblems fails tb unless every problem in err is a *cpis.Error whose
// expression starts with prefix.
func checkProblems(tb testing.TB, err error, prefix string) {
	tb.Helper()
	for _, e := range unjoin(err) {
		var ce *cpis.Error
		if !errors.As(e, &ce) || !strings.HasPrefix(ce.Expression, prefix) {
			tb.Fatalf("problem %v is not a *cpis.Error under %s", e, prefix)
		}
	}
}

// checkEntry fails tb unless an accepted entry is one of the writes
// WriteEntry describes.
func checkEntry(tb testing.TB, e WriteEntry) {
	tb.Helper()
	byID, byRef := e.ID != "", e.Reference != ""
	ok := false
	switch e.Method {
	case "POST":
		ok = !byID && !byRef && e.IfMatch == 0
	case "PUT":
		ok = byID != byRef && (byRef || e.IfMatch > 0) && e.IfNoneExist == ""
	case "DELETE":
		ok = byID != byRef && e.IfNoneExist == "" && e.Plan == (cpis.Plan{})
	}
	if !ok {
		tb.Fatalf("accepted entry %+v is not a write", e)
	}
	if e.Method != "DELETE" {
		again := roundTrip(tb, e.Plan, cpis.OwnerView)
		if diff := cmp.Diff(e.Plan, again, cmpopts.IgnoreFields(cpis.Plan{}, "Version", "LastUpdated")); diff != "" {
			tb.Fatalf("accepted plan does not round-trip (-parsed +again):\n%s", diff)
		}
	}
}

// FuzzParseSubscription feeds ParseSubscription arbitrary bodies, seeded
// with the golden subscriptions and near misses. It must not panic; every
// problem must be a *cpis.Error with an expression under Subscription; and
// a subscription it accepts must come back the same, headers masked, after
// a trip through SubscriptionResource and ParseSubscription.
func FuzzParseSubscription(f *testing.F) {
	for _, s := range []cpis.Subscription{planSubscription(), asnSubscription()} {
		b, err := MarshalResource(SubscriptionResource(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(mustJSON(f, minimalSubscription()))
	for _, s := range []string{
		"", "{}", "null", `{"resourceType":"Subscription"}`, `{"resourceType":"Subscription","_criteria":{"extension":[{}]}}`,
		`{"resourceType":"Subscription","channel":{"_payload":{"extension":[{"url":"` + payloadContentURL + `","valueCode":"empty"}]}}}`,
		`{"resourceType":"Subscription","channel":{"extension":[{"url":"` + maxCountURL + `","valuePositiveInt":4294967295}]}}`,
		`{"resourceType":"Subscription","contained":[{"resourceType":"Patient"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSubscription(body)
		if err != nil {
			checkProblems(t, err, "Subscription")
			return
		}
		want := s
		want.Headers = nil
		for _, h := range s.Headers {
			want.Headers = append(want.Headers, MaskHeader(h))
		}
		again := roundTripSubscription(t, s)
		if diff := cmp.Diff(want, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("accepted subscription does not round-trip (-parsed +again):\n%s", diff)
		}
	})
}
