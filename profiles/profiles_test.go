package profiles

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/go-cmp/cmp"
)

const canonicalBase = "https://cpis.example.org/fhir/"

// TestFilesAreValidR4 reads every embedded file with jsonformat's validating
// R4 unmarshaller: well-formed, known elements, required elements present.
func TestFilesAreValidR4(t *testing.T) {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no conformance resources embedded")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			body, err := files.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := u.Unmarshal(body); err != nil {
				t.Errorf("not valid FHIR R4: %v", err)
			}
		})
	}
}

// TestIndex checks that each file is named after its type and id, that its
// canonical URL sits under our base at Type/id (a topic's, a Basic's, at
// SubscriptionTopic/id), and that Lookup finds it.
func TestIndex(t *testing.T) {
	all := All()
	names, _ := fs.Glob(files, "*.json")
	if len(all) != len(names) {
		t.Fatalf("All() lists %d resources, %d files embedded", len(all), len(names))
	}
	urls := map[string]bool{}
	for _, e := range all {
		t.Run(e.Type+"/"+e.ID, func(t *testing.T) {
			if _, err := fs.Stat(files, e.Type+"-"+e.ID+".json"); err != nil {
				t.Errorf("no file named %s-%s.json: %v", e.Type, e.ID, err)
			}
			want := canonicalBase + e.Type + "/" + e.ID
			if e.Type == "Basic" {
				want = canonicalBase + "SubscriptionTopic/" + e.ID
			}
			if e.URL != want {
				t.Errorf("url = %q, want %q", e.URL, want)
			}
			if urls[e.URL] {
				t.Errorf("url %q defined twice", e.URL)
			}
			urls[e.URL] = true
			body, ok := Lookup(e.Type, e.ID)
			if !ok || !strings.Contains(string(body), `"id": "`+e.ID+`"`) {
				t.Errorf("Lookup(%q, %q) = %d bytes, %v", e.Type, e.ID, len(body), ok)
			}
		})
	}
}

func TestLookupMissing(t *testing.T) {
	tests := []struct{ typ, id string }{
		{"StructureDefinition", "no-such-profile"},
		{"Flag", "cpis-flag"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.id, func(t *testing.T) {
			if body, ok := Lookup(tt.typ, tt.id); ok || body != nil {
				t.Errorf("Lookup(%q, %q) = %d bytes, %v; want nothing", tt.typ, tt.id, len(body), ok)
			}
		})
	}
}

// TestLookupReturnsCopy makes sure a caller cannot change what others are served.
func TestLookupReturnsCopy(t *testing.T) {
	a, _ := Lookup("CodeSystem", "cpis-plan-type")
	want := string(a)
	a[0] = 'X'
	b, _ := Lookup("CodeSystem", "cpis-plan-type")
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("second Lookup changed (-want +got):\n%s", diff)
	}
}
