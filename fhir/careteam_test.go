package fhir

import (
	"strings"
	"testing"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestCareTeamResource(t *testing.T) {
	p := storedPlan() // 2026-06-01 to 2027-06-01, both phones, a birth date
	noOffice := p
	noOffice.OfficePhone = ""
	deleted := p
	deleted.EnteredInError = true
	type shape struct {
		Status  cpb.CareTeamStatusCode_Value
		Telecom []string // value#rank
	}
	tests := []struct {
		name string
		p    cpis.Plan
		day  string
		want shape
	}{
		{"active", p, "2026-11-15", shape{cpb.CareTeamStatusCode_ACTIVE, []string{"020 7946 0101#1", "020 7946 0102#2"}}},
		{"ended", p, "2027-06-02", shape{cpb.CareTeamStatusCode_INACTIVE, []string{"020 7946 0101#1", "020 7946 0102#2"}}},
		{"not started", p, "2026-05-31", shape{cpb.CareTeamStatusCode_INACTIVE, []string{"020 7946 0101#1", "020 7946 0102#2"}}},
		{"withdrawn", deleted, "2026-11-15", shape{cpb.CareTeamStatusCode_ENTERED_IN_ERROR, []string{"020 7946 0101#1", "020 7946 0102#2"}}},
		{"no office number", noOffice, "2026-11-15", shape{cpb.CareTeamStatusCode_ACTIVE, []string{"020 7946 0101#1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := CareTeamResource(tt.p, cpis.MustDate(tt.day))
			got := shape{Status: ct.GetStatus().GetValue()}
			for _, c := range ct.GetTelecom() {
				got.Telecom = append(got.Telecom, c.GetValue().GetValue()+"#"+string(rune('0'+c.GetRank().GetValue())))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("shape (-want +got):\n%s", diff)
			}
			b, err := MarshalResource(ct)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{ChildBirthDateURL, tt.p.BirthDate.String()} {
				if strings.Contains(string(b), s) {
					t.Errorf("a CareTeam shows the date of birth (%s):\n%s", s, b)
				}
			}
		})
	}
}
