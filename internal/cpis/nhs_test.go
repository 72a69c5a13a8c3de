package cpis_test

import (
	"strings"
	"testing"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestParseNHSNumber(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"test number 9000000009", "9000000009", true},
		{"test number 9449306753", "9449306753", true},
		{"test number 9990276579", "9990276579", true},
		{"check value 11 becomes 0", "9990000050", true},
		{"wrong check digit", "9000000001", false},
		{"check value 11 is not written as 1", "9990000051", false},
		{"check value 10: no digit can follow 0", "9990000000", false},
		{"check value 10: no digit can follow 9", "9990000009", false},
		{"check value 10 is not written as 1", "9990000001", false},
		{"two digits swapped", "9449306735", false},
		{"empty", "", false},
		{"nine digits", "900000000", false},
		{"eleven digits", "90000000090", false},
		{"letter", "900000000X", false},
		{"space inside", "900 000 0009", false},
		{"leading space", " 900000009", false},
		{"sign", "+900000009", false},
		{"dashes", "900-000-00", false},
		{"Arabic-Indic digits", "٩٠٠٠٠٠٠٠٠٩", false},
		{"NUL", "900000000\x00", false},
	}
	for d := '0'; d <= '9'; d++ { // some pass Modulus 11, but none is a child's number
		tests = append(tests, struct {
			name string
			in   string
			ok   bool
		}{"one digit repeated " + string(d), strings.Repeat(string(d), 10), false})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := cpis.ParseNHSNumber(tt.in)
			if tt.ok {
				if err != nil || n.String() != tt.in {
					t.Fatalf("ParseNHSNumber = %q, %v; want %q", n, err, tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseNHSNumber accepted %q", tt.in)
			}
			if n != "" {
				t.Errorf("a rejected number returned %q", n)
			}
			if k := cpis.KindOf(err); k != cpis.InvalidNHSNumber {
				t.Errorf("kind = %v, want InvalidNHSNumber", k)
			}
			if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("error message quotes the number: %v", err)
			}
		})
	}
}

// referenceValid is Modulus 11 written out from the NHS definition, apart
// from ParseNHSNumber: weights 10 down to 2, remainder subtracted from 11,
// 11 read as 0, 10 never valid.
func referenceValid(s string) bool {
	if len(s) != 10 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	total := 0
	for i, weight := 0, 10; weight >= 2; i, weight = i+1, weight-1 {
		total += int(s[i]-'0') * weight
	}
	check := (11 - total%11) % 11
	return check != 10 && check == int(s[9]-'0')
}

func FuzzParseNHSNumber(f *testing.F) {
	for _, s := range []string{"9000000009", "9449306753", "9990276579", "9990000050", "9990000000", "", "900000000X", "٩٠٠٠٠٠٠٠٠٩"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := cpis.ParseNHSNumber(s)
		if want := referenceValid(s); want != (err == nil) {
			t.Fatalf("ParseNHSNumber(%q) error %v, reference says valid=%v", s, err, want)
		}
		if err != nil {
			if cpis.KindOf(err) != cpis.InvalidNHSNumber {
				t.Errorf("kind %v, want InvalidNHSNumber", cpis.KindOf(err))
			}
			if len(s) >= 5 && strings.Contains(err.Error(), s) {
				t.Errorf("error message quotes the input: %v", err)
			}
			return
		}
		if string(n) != s || len(n) != 10 {
			t.Errorf("ParseNHSNumber(%q) = %q", s, n)
		}
	})
}
