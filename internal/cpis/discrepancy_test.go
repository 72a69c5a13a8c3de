package cpis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestDiscrepancyCheck(t *testing.T) {
	valid := cpis.Discrepancy{NHSNumber: "9434765919", Reason: cpis.ReasonMissingAlert}
	tests := []struct {
		name   string
		modify func(*cpis.Discrepancy)
		want   []string // the problems' expressions; none for valid
	}{
		{"valid, no note", func(*cpis.Discrepancy) {}, nil},
		{"every reason", func(d *cpis.Discrepancy) { d.Reason = cpis.ReasonOther }, nil},
		{"a note of 500 characters, not bytes", func(d *cpis.Discrepancy) { d.Note = strings.Repeat("é", 500) }, nil},
		{"a note of 501 characters", func(d *cpis.Discrepancy) { d.Note = strings.Repeat("a", 501) },
			[]string{"Communication.payload.contentString"}},
		{"a note with a line break", func(d *cpis.Discrepancy) { d.Note = "two\nlines" }, []string{"Communication.payload.contentString"}},
		{"a note with a bidi override", func(d *cpis.Discrepancy) { d.Note = "call \u202e0101" }, []string{"Communication.payload.contentString"}},
		{"a note with surrounding spaces", func(d *cpis.Discrepancy) { d.Note = " note" }, []string{"Communication.payload.contentString"}},
		{"invalid UTF-8", func(d *cpis.Discrepancy) { d.Note = "a\xffb" }, []string{"Communication.payload.contentString"}},
		{"no child", func(d *cpis.Discrepancy) { d.NHSNumber = "" }, []string{"Communication.subject.identifier.value"}},
		{"a child failing Modulus 11", func(d *cpis.Discrepancy) { d.NHSNumber = "9434765918" }, []string{"Communication.subject.identifier.value"}},
		{"an unknown reason", func(d *cpis.Discrepancy) { d.Reason = "wrong-name" }, []string{"Communication.reasonCode"}},
		{"everything wrong at once", func(d *cpis.Discrepancy) { *d = cpis.Discrepancy{Note: "\x00"} },
			[]string{"Communication.subject.identifier.value", "Communication.reasonCode", "Communication.payload.contentString"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := valid
			tt.modify(&d)
			var got []string
			for _, p := range cpis.Problems(d.Check()) {
				got = append(got, p.Expression)
				if p.Kind != cpis.Invalid && p.Kind != cpis.InvalidNHSNumber {
					t.Errorf("problem %v of kind %v", p, p.Kind)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiscrepancyReasons(t *testing.T) {
	want := map[cpis.DiscrepancyReason]string{
		cpis.ReasonMissingAlert: "Missing alert", cpis.ReasonWrongStepDown: "Wrong step-down status", cpis.ReasonOther: "Other",
	}
	got := map[cpis.DiscrepancyReason]string{}
	for _, r := range cpis.DiscrepancyReasons() {
		if !r.Valid() {
			t.Errorf("%q is listed but not valid", r)
		}
		got[r] = r.Display()
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if r := cpis.DiscrepancyReason("missing"); r.Valid() || r.Display() != "" {
		t.Errorf("an unknown reason is valid %v, shown as %q", r.Valid(), r.Display())
	}
}

func TestDiscrepancyResolved(t *testing.T) {
	d := cpis.Discrepancy{}
	if d.Resolved() {
		t.Error("a new report is resolved")
	}
	d.ResolvedBy, d.ResolvedAt = &cpis.Actor{UserID: "555000000005"}, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	if !d.Resolved() {
		t.Error("a report with a resolver is not resolved")
	}
}

func TestCleanNote(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "",
		"  one line  ":              "one line",
		"two\r\nlines\tand  spaces": "two lines and spaces",
		"keeps \u202e for Check":    "keeps \u202e for Check",
	} {
		if got := cpis.CleanNote(in); got != want {
			t.Errorf("CleanNote(%q) = %q, want %q", in, got, want)
		}
		if want != "" && !strings.Contains(want, "\u202e") {
			d := cpis.Discrepancy{NHSNumber: "9434765919", Reason: cpis.ReasonOther, Note: cpis.CleanNote(in)}
			if err := d.Check(); err != nil {
				t.Errorf("a cleaned note %q is refused: %v", want, err)
			}
		}
	}
}
