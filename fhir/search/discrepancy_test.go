package search

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

func TestParseDiscrepancySearch(t *testing.T) {
	all := store.DiscrepancyQuery{Limit: MaxCount}
	tests := []struct {
		query    string
		strict   bool
		want     store.DiscrepancyQuery
		warnings int
		kind     cpis.Kind // of the error; Other for none
	}{
		{"", false, all, 0, cpis.Other},
		{"status=in-progress", false, store.DiscrepancyQuery{Open: true, Limit: MaxCount}, 0, cpis.Other},
		{"status=completed&_count=5", false, store.DiscrepancyQuery{Resolved: true, Limit: 5}, 0, cpis.Other},
		{"status=in-progress,completed", false, all, 0, cpis.Other},
		{"status=in-progress&status=in-progress,completed", false, store.DiscrepancyQuery{Open: true, Limit: MaxCount}, 0, cpis.Other},
		{"status=in-progress&status=completed", false, store.DiscrepancyQuery{}, 0, cpis.InvalidSearch},
		{"status=open", false, store.DiscrepancyQuery{}, 0, cpis.InvalidSearch},
		{"status:not=completed", false, store.DiscrepancyQuery{}, 0, cpis.InvalidSearch},
		{"_count=0", false, store.DiscrepancyQuery{}, 0, cpis.InvalidSearch},
		{"_count=500", false, all, 1, cpis.Other},
		{"category=discrepancy", false, all, 1, cpis.Other},
		{"category=discrepancy", true, store.DiscrepancyQuery{}, 0, cpis.InvalidSearch},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			q, warnings, err := ParseDiscrepancySearch(v, tt.strict)
			if tt.kind != cpis.Other {
				if cpis.KindOf(err) != tt.kind {
					t.Fatalf("error %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if len(warnings) != tt.warnings {
				t.Errorf("warnings %v, want %d", warnings, tt.warnings)
			}
			// The canonical link reads back to the same query.
			back, _, err := ParseDiscrepancySearch(EncodeDiscrepancy(q), true)
			if diff := cmp.Diff(q, back); err != nil || diff != "" {
				t.Errorf("EncodeDiscrepancy does not read back (-want +got), %v:\n%s", err, diff)
			}
		})
	}
}

// FuzzParseDiscrepancySearch: whatever the query, a parse that succeeds
// gives a query a store accepts (once the caller sets the organisation),
// and its canonical link reads back to it.
func FuzzParseDiscrepancySearch(f *testing.F) {
	for _, raw := range []string{"", "status=in-progress", "status=completed,in-progress&_count=7", "status:missing=true", "_count=x&status="} {
		f.Add(raw, false)
	}
	f.Fuzz(func(t *testing.T, raw string, strict bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, _, err := ParseDiscrepancySearch(v, strict)
		if err != nil {
			return
		}
		q.OrgCode = "ZZT01"
		if err := store.CheckDiscrepancyQuery("fuzz", q); err != nil {
			t.Fatalf("%q parses to a query the store refuses: %v", raw, err)
		}
		q.OrgCode = ""
		back, _, err := ParseDiscrepancySearch(EncodeDiscrepancy(q), true)
		if diff := cmp.Diff(q, back); err != nil || diff != "" {
			t.Errorf("%q: EncodeDiscrepancy does not read back (-want +got), %v:\n%s", raw, err, diff)
		}
	})
}
