package fhir

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestParseCondition(t *testing.T) {
	const sys = LAReferenceSystem
	tests := []struct {
		name, query string
		want        string
		kind        cpis.Kind // of the one problem, when want is ""
	}{
		{"plain", "identifier=" + sys + "|HK-CP-0042", "HK-CP-0042", 0},
		{"percent-encoded", "identifier=https%3A%2F%2Fcpis.example.org%2Ffhir%2FId%2Fla-plan-reference%7CHK.CP_0042", "HK.CP_0042", 0},
		{"64 characters", "identifier=" + sys + "|" + strings.Repeat("a", 64), strings.Repeat("a", 64), 0},
		{"empty", "", "", cpis.InvalidSearch},
		{"not a query", "identifier=%zz", "", cpis.InvalidSearch},
		{"semicolon", "identifier=" + sys + "|a;b", "", cpis.InvalidSearch},
		{"another parameter", "patient=9990276579", "", cpis.InvalidSearch},
		{"identifier and another", "identifier=" + sys + "|a&_format=json", "", cpis.InvalidSearch},
		{"a modifier", "identifier:exact=" + sys + "|a", "", cpis.InvalidSearch},
		{"twice", "identifier=" + sys + "|a&identifier=" + sys + "|b", "", cpis.InvalidSearch},
		{"twice the same", "identifier=" + sys + "|a&identifier=" + sys + "|a", "", cpis.InvalidSearch},
		{"no system", "identifier=HK-CP-0042", "", cpis.InvalidSearch},
		{"no system, bar", "identifier=|HK-CP-0042", "", cpis.InvalidSearch},
		{"NHS number system", "identifier=" + NHSNumberSystem + "|9990276579", "", cpis.InvalidSearch},
		{"no value", "identifier=" + sys + "|", "", cpis.InvalidValue},
		{"no value, no equals", "identifier", "", cpis.InvalidSearch},
		{"two values", "identifier=" + sys + "|a," + sys + "|b", "", cpis.InvalidValue},
		{"65 characters", "identifier=" + sys + "|" + strings.Repeat("a", 65), "", cpis.InvalidValue},
		{"a space", "identifier=" + sys + "|a+b", "", cpis.InvalidValue},
		{"a second bar", "identifier=" + sys + "|a|b", "", cpis.InvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCondition(tt.query, "http.If-None-Exist")
			if got != tt.want {
				t.Errorf("reference = %q, want %q", got, tt.want)
			}
			var want []problem
			if tt.want == "" {
				want = []problem{{tt.kind, "http.If-None-Exist"}}
			}
			if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseConditionNeverEchoes: values (and names that are not plain words)
// are never repeated in a message.
func TestParseConditionNeverEchoes(t *testing.T) {
	for _, q := range []string{
		"identifier=" + LAReferenceSystem + "|Zebedee9990276578!",
		"identifier=https://Zebedee.example|9990276578",
		"Zebedee9990276578=1",
		"identifier:Zebedee=1",
		"identifier=Zebedee9990276578",
	} {
		t.Run(q, func(t *testing.T) {
			_, err := ParseCondition(q, "identifier")
			if err == nil {
				t.Fatal("accepted")
			}
			if s := err.Error(); strings.Contains(s, "Zebedee") || strings.Contains(s, "9990276578") {
				t.Errorf("message repeats input: %s", s)
			}
		})
	}
}
