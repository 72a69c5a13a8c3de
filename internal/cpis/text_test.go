package cpis_test

import (
	"strings"
	"testing"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestSafeText(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"London Borough of Newham", true},
		{"Dr Siân O'Connor-Ní Bhriain", true},
		{"", true},
		{strings.Repeat("a", 100), true},
		{strings.Repeat("a", 101), false},
		{strings.Repeat("é", 100), true}, // characters, not bytes
		{"Newham\u202eredloh", false},    // right-to-left override
		{"Newham\u2066x\u2069", false},   // isolates
		{"Newham\u200f", false},          // right-to-left mark
		{"New\nham", false},
		{"New\tham", false},
		{"New\x00ham", false},
		{"New\x7fham", false},
		{"\xff", false},
		{" Newham", false},
		{"Newham ", false},
		{"Newham\u00a0", false},
	}
	for _, tt := range tests {
		if got := cpis.SafeText(tt.in, 100); got != tt.ok {
			t.Errorf("SafeText(%q) = %v, want %v", tt.in, got, tt.ok)
		}
	}
}
