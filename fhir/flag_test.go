package fhir

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// roundTrip renders p for its owner and reads it back.
func roundTrip(tb testing.TB, p cpis.Plan, v cpis.View) cpis.Plan {
	tb.Helper()
	b, err := MarshalResource(FlagResource(p, today, v))
	if err != nil {
		tb.Fatalf("MarshalResource: %v", err)
	}
	got, err := ParseFlag(b)
	if err != nil {
		tb.Fatalf("ParseFlag of our own output: %v\n%s", err, b)
	}
	return got
}

// TestRoundTrip: what FlagResource writes for the owner, ParseFlag reads
// back as the same plan. Version and LastUpdated travel in meta, which
// ParseFlag ignores by design.
func TestRoundTrip(t *testing.T) {
	noOffice := examplePlans["flag-cla.json"]
	noOffice.OfficePhone = ""
	withID := storedPlan()
	tests := map[string]cpis.Plan{
		"CPP stored":       withID,
		"CLA":              examplePlans["flag-cla.json"],
		"UCPP":             examplePlans["flag-ucpp.json"],
		"no office number": noOffice,
		"no reference":     examplePlans["flag-cpp.json"],
	}
	ignore := cmpopts.IgnoreFields(cpis.Plan{}, "Version", "LastUpdated")
	for name, p := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(p, roundTrip(t, p, cpis.OwnerView), ignore); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthViewHidesBirthDate: the child's date of birth is for the LA only.
func TestHealthViewHidesBirthDate(t *testing.T) {
	p := storedPlan()
	b, err := MarshalResource(FlagResource(p, today, cpis.HealthView))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{ChildBirthDateURL, p.BirthDate.String()} {
		if strings.Contains(string(b), s) {
			t.Errorf("health view contains %q:\n%s", s, b)
		}
	}
	if got := roundTrip(t, p, cpis.HealthView); !got.BirthDate.IsZero() {
		t.Errorf("health view round trip has BirthDate %v", got.BirthDate)
	}
	owner, err := MarshalResource(FlagResource(p, today, cpis.OwnerView))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(owner), `"valueDate":"2014-03-15"`) {
		t.Errorf("owner view lacks the birth date:\n%s", owner)
	}
}

// TestReferenceOwnerOnly: the LA's plan reference is shown to the LA, never
// to health users (in a Flag or a CareTeam).
func TestReferenceOwnerOnly(t *testing.T) {
	p := storedPlan()
	for name, r := range map[string]proto.Message{
		"health Flag": FlagResource(p, today, cpis.HealthView),
		"CareTeam":    CareTeamResource(p, today),
	} {
		b, err := MarshalResource(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{LAReferenceSystem, p.Reference} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s contains %q:\n%s", name, s, b)
			}
		}
	}
	if got := FlagResource(p, today, cpis.OwnerView).GetIdentifier(); len(got) != 1 ||
		got[0].GetSystem().GetValue() != LAReferenceSystem || got[0].GetValue().GetValue() != p.Reference {
		t.Errorf("owner view identifier = %v, want the LA's reference", got)
	}
	p.Reference = ""
	if got := FlagResource(p, today, cpis.OwnerView).GetIdentifier(); got != nil {
		t.Errorf("a plan without a reference has identifier %v", got)
	}
}

// TestFlagStatus: the status is computed from the dates on the given day.
func TestFlagStatus(t *testing.T) {
	p := storedPlan() // 2026-06-01 to 2027-06-01
	deleted := p
	deleted.EnteredInError = true
	tests := []struct {
		name string
		p    cpis.Plan
		day  string
		want string
	}{
		{"before start", p, "2026-05-31", "inactive"},
		{"first day", p, "2026-06-01", "active"},
		{"last day", p, "2027-06-01", "active"},
		{"ended", p, "2027-06-02", "inactive"},
		{"withdrawn", deleted, "2026-11-15", "entered-in-error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := MarshalResource(FlagResource(tt.p, cpis.MustDate(tt.day), cpis.HealthView))
			if err != nil {
				t.Fatal(err)
			}
			if want := `"status":"` + tt.want + `"`; !strings.Contains(string(b), want) {
				t.Errorf("want %s in\n%s", want, b)
			}
		})
	}
}

// TestFlagCode: our coding always, SNOMED CT where the plan type has a concept.
func TestFlagCode(t *testing.T) {
	tests := []struct {
		t      cpis.PlanType
		snomed string
	}{
		{cpis.CPP, snomedCPP},
		{cpis.CLA, snomedCLA},
		{cpis.UCPP, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.t), func(t *testing.T) {
			cc := FlagResource(cpis.Plan{Type: tt.t}, today, cpis.HealthView).GetCode()
			var got []string
			for _, c := range cc.GetCoding() {
				got = append(got, c.GetSystem().GetValue()+"|"+c.GetCode().GetValue())
			}
			want := []string{PlanTypeSystem + "|" + string(tt.t)}
			if tt.snomed != "" {
				want = append(want, SNOMEDSystem+"|"+tt.snomed)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("codings (-want +got):\n%s", diff)
			}
			if cc.GetText().GetValue() != tt.t.Display() {
				t.Errorf("text = %q, want %q", cc.GetText().GetValue(), tt.t.Display())
			}
		})
	}
}

// TestUnstoredPlan: a plan with no id, version or time renders without them.
func TestUnstoredPlan(t *testing.T) {
	f := FlagResource(examplePlans["flag-cpp.json"], today, cpis.OwnerView)
	if f.GetId() != nil || f.GetMeta().GetVersionId() != nil || f.GetMeta().GetLastUpdated() != nil {
		t.Errorf("id %v, meta %v; want neither id nor version nor lastUpdated", f.GetId(), f.GetMeta())
	}
	if got := f.GetMeta().GetProfile(); len(got) != 1 || got[0].GetValue() != FlagProfileURL {
		t.Errorf("meta.profile = %v, want [%s]", got, FlagProfileURL)
	}
}
