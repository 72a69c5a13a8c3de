package fhir

import (
	"testing"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// entryShape is what the tests check of each Bundle entry.
type entryShape struct {
	FullURL, Type, Mode, Method, URL, Status string
}

func shapeOf(b *bcrpb.Bundle) []entryShape {
	var out []entryShape
	for _, e := range b.GetEntry() {
		typ, _ := typeAndID(e.GetResource())
		out = append(out, entryShape{
			FullURL: e.GetFullUrl().GetValue(),
			Type:    typ,
			Mode:    e.GetSearch().GetMode().GetValue().String(),
			Method:  e.GetRequest().GetMethod().GetValue().String(),
			URL:     e.GetRequest().GetUrl().GetValue(),
			Status:  e.GetResponse().GetStatus().GetValue(),
		})
	}
	return out
}

func TestSearchsetBundle(t *testing.T) {
	p := storedPlan()
	flagURL := testBase + "/Flag/" + p.ID
	warn := []*cpis.Error{{Kind: cpis.InvalidSearch, Expression: "foo", Msg: "foo is not supported and was ignored"}}
	const none = "INVALID_UNINITIALIZED"
	tests := []struct {
		name  string
		s     Searchset
		want  []entryShape
		links int
	}{
		{"no match", Searchset{BaseURL: testBase, Self: testBase + "/Flag?patient=x"}, nil, 1},
		{"match and next", Searchset{BaseURL: testBase, Self: testBase + "/Flag?a", Next: testBase + "/Flag?b",
			Entries: []proto.Message{FlagResource(p, today, cpis.HealthView)}},
			[]entryShape{{flagURL, "Flag", "MATCH", none, "", ""}}, 2},
		{"include and outcome", Searchset{BaseURL: testBase, Self: testBase + "/AuditEvent?a",
			Entries:  []proto.Message{AuditEventResource(healthSearchRecord(), testBase)},
			Included: []Included{{Resource: CareTeamResource(p, today)}}, Warnings: warn},
			[]entryShape{
				{testBase + "/AuditEvent/a3e1c2d4-0000-4000-8000-000000000001", "AuditEvent", "MATCH", none, "", ""},
				{testBase + "/CareTeam/" + p.ID, "CareTeam", "INCLUDE", none, "", ""},
				{"", "OperationOutcome", "OUTCOME", none, "", ""},
			}, 1},
	}
	validator := newValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := searchsetOf(t, validator, tt.s)
			if diff := cmp.Diff(tt.want, shapeOf(b)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if len(b.GetLink()) != tt.links {
				t.Errorf("%d links, want %d", len(b.GetLink()), tt.links)
			}
			if b.GetTotal() != nil {
				t.Errorf("total %v without Searchset.Total", b.GetTotal())
			}
		})
	}
}

// searchsetOf renders s and reads it back with jsonformat's validating R4
// reader, which also proves the JSON valid.
func searchsetOf(tb testing.TB, u *jsonformat.Unmarshaller, s Searchset) *bcrpb.Bundle {
	tb.Helper()
	j, err := MarshalSearchset(s)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := u.Unmarshal(j)
	if err != nil {
		tb.Fatalf("not valid FHIR R4: %v\n%s", err, j)
	}
	return r.(*bcrpb.ContainedResource).GetBundle()
}

// TestSearchsetTotal: a total is written when known, never negative.
func TestSearchsetTotal(t *testing.T) {
	validator := newValidator(t)
	for _, n := range []int{0, 3, -1} {
		b := searchsetOf(t, validator, Searchset{BaseURL: testBase, Self: testBase + "/Flag?a", Total: &n})
		if got, want := b.GetTotal(), uint32(max(n, 0)); got == nil || got.GetValue() != want {
			t.Errorf("Total %d: total %v, want %d", n, got, want)
		}
	}
}

// TestSearchsetBundleRefusesNonResource: a datatype is not a Bundle entry.
func TestSearchsetBundleRefusesNonResource(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a Coding entry")
		}
	}()
	_, _ = MarshalSearchset(Searchset{Entries: []proto.Message{&dpb.Coding{}}})
}

func TestHistoryBundle(t *testing.T) {
	p := storedPlan()
	v := func(n int, deleted bool) cpis.Plan {
		q := p
		q.Version, q.EnteredInError = n, deleted
		return q
	}
	url := "Flag/" + p.ID
	const none = "INVALID_UNINITIALIZED"
	flag := func(method, reqURL, status string) entryShape {
		return entryShape{testBase + "/" + url, "Flag", none, method, reqURL, status}
	}
	tests := []struct {
		name     string
		versions []cpis.Plan
		want     []entryShape
	}{
		{"empty", nil, nil},
		{"created", []cpis.Plan{v(1, false)}, []entryShape{flag("POST", "Flag", "201 Created")}},
		{"updated", []cpis.Plan{v(2, false), v(1, false)}, []entryShape{flag("PUT", url, "200 OK"), flag("POST", "Flag", "201 Created")}},
		{"deleted", []cpis.Plan{v(3, true), v(2, false), v(1, false)},
			[]entryShape{flag("DELETE", url, "200 OK"), flag("PUT", url, "200 OK"), flag("POST", "Flag", "201 Created")}},
		{"changed after delete", []cpis.Plan{v(3, true), v(2, true), v(1, false)},
			[]entryShape{flag("PUT", url, "200 OK"), flag("DELETE", url, "200 OK"), flag("POST", "Flag", "201 Created")}},
		{"page holding the delete only", []cpis.Plan{v(3, true)}, []entryShape{flag("DELETE", url, "200 OK")}},
	}
	validator := newValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := HistoryBundle(testBase, tt.versions, today, cpis.OwnerView)
			if diff := cmp.Diff(tt.want, shapeOf(b)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			if got := int(b.GetTotal().GetValue()); got != len(tt.versions) {
				t.Errorf("total = %d, want %d", got, len(tt.versions))
			}
			mustValidate(t, validator, b)
		})
	}
}

func newValidator(tb testing.TB) *jsonformat.Unmarshaller {
	tb.Helper()
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// mustValidate renders r and reads it back with jsonformat's validating reader.
func mustValidate(tb testing.TB, u *jsonformat.Unmarshaller, r proto.Message) {
	tb.Helper()
	b, err := MarshalResource(r)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := u.Unmarshal(b); err != nil {
		tb.Errorf("not valid FHIR R4: %v\n%s", err, b)
	}
}
