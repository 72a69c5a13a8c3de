package cpis_test

import (
	"strings"
	"testing"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestReadAuthorities(t *testing.T) {
	a, err := cpis.ReadAuthorities(strings.NewReader("code,name\nZLA01,London Borough of Hackney and City of London\nZLA02, London Borough of Newham \n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 2 {
		t.Errorf("Len = %d, want 2", a.Len())
	}
	if la, ok := a.Lookup("ZLA02"); !ok || la.Name != "London Borough of Newham" {
		t.Errorf("Lookup(ZLA02) = %+v, %v", la, ok)
	}
	if _, ok := a.Lookup("ZLA99"); ok {
		t.Error("Lookup found a code the register does not hold")
	}
}

func TestReadAuthoritiesRefuses(t *testing.T) {
	tests := map[string]string{
		"no header":          "ZLA01,Hackney\n",
		"empty":              "",
		"header only":        "code,name\n",
		"three fields":       "code,name\nZLA01,Hackney,extra\n",
		"lower-case code":    "code,name\nzla01,Hackney\n",
		"code too long":      "code,name\nZLA0123456789,Hackney\n",
		"duplicate code":     "code,name\nZLA01,Hackney\nZLA01,Newham\n",
		"empty name":         "code,name\nZLA01,\n",
		"bidi override":      "code,name\nZLA01,Hackney\u202e\n",
		"name too long":      "code,name\nZLA01," + strings.Repeat("x", 101) + "\n",
		"control in name":    "code,name\nZLA01,\"Hack\nney\"\n",
		"unterminated quote": "code,name\nZLA01,\"Hackney\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := cpis.ReadAuthorities(strings.NewReader(in)); cpis.KindOf(err) != cpis.Invalid {
				t.Errorf("err = %v, want Invalid", err)
			}
		})
	}
}

func TestDevAuthoritiesAreTheTrustDirectoryAndOneOutOfArea(t *testing.T) {
	a := cpis.DevAuthorities()
	for _, e := range cpis.TrustDirectory() {
		if la, ok := a.Lookup(e.Code); !ok || la != e.LocalAuthority {
			t.Errorf("%s: %+v, %v", e.Code, la, ok)
		}
	}
	if la, ok := a.Lookup(cpis.OutOfAreaDevLA.Code); !ok || la != cpis.OutOfAreaDevLA {
		t.Errorf("out of area: %+v, %v", la, ok)
	}
	if _, ok := cpis.DevDirectory().Lookup(cpis.OutOfAreaDevLA.Code); ok {
		t.Error("the out-of-area LA is in the Trust's directory")
	}
	if a.Len() != len(cpis.TrustDirectory())+1 {
		t.Errorf("Len = %d", a.Len())
	}
}

// FuzzReadAuthorities: whatever the file holds, the register either refuses
// it or holds only names a reader may be shown.
func FuzzReadAuthorities(f *testing.F) {
	f.Add("code,name\nZLA01,London Borough of Hackney and City of London\n")
	f.Add("code,name\nZLA01,\"Hackney, City\"\n")
	f.Add("code,name\nZLA01,Hack\u202eney\n")
	f.Fuzz(func(t *testing.T, in string) {
		a, err := cpis.ReadAuthorities(strings.NewReader(in))
		if err != nil {
			if cpis.KindOf(err) != cpis.Invalid {
				t.Fatalf("kind %v, want Invalid: %v", cpis.KindOf(err), err)
			}
			return
		}
		for _, line := range strings.Split(in, "\n")[1:] {
			code, _, _ := strings.Cut(line, ",")
			if la, ok := a.Lookup(strings.TrimSpace(code)); ok && !cpis.SafeText(la.Name, cpis.MaxLANameLength) {
				t.Fatalf("the register holds a name a reader may not be shown: %q", la.Name)
			}
		}
	})
}
