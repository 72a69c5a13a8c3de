package auth

import (
	"testing"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestMayReviewDiscrepancies: the token's half of reviewing discrepancy
// reports is a health user in an organisation with the Communication
// read scope (v1 or v2); the register adds the safeguarding role.
func TestMayReviewDiscrepancies(t *testing.T) {
	s := func(scopes ...string) []string { return scopes }
	noOrg := healthUser(s("user/Communication.rs"))
	noOrg.OrgCode = ""
	system := healthUser(s("system/Communication.rs"))
	system.Kind = cpis.HealthSystem
	tests := []struct {
		name string
		p    *Principal
		want bool
	}{
		{"nil principal", nil, false},
		{"user/Communication.rs", healthUser(s("user/Communication.rs")), true},
		{"user/Communication.read", healthUser(s("user/Communication.read")), true},
		{"user/Communication.r only", healthUser(s("user/Communication.r")), false},
		{"user/Flag.read only", healthUser(s("user/Flag.read"), "B0170"), false},
		{"system/Communication.rs", healthUser(s("system/Communication.rs")), false},
		{"no organisation", noOrg, false},
		{"a health system", system, false},
		{"an LA system", laSystem("ZLA01", "system/Communication.read", "user/Communication.rs"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.MayReviewDiscrepancies(); got != tt.want {
				t.Errorf("MayReviewDiscrepancies() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDevReviewerPersonas: of the dev personas, only the safeguarding
// lead's token may review, and the paediatrician may read in both care
// settings.
func TestDevReviewerPersonas(t *testing.T) {
	for _, p := range devPersonas() {
		pr := &Principal{Actor: cpis.Actor{Kind: p.Kind, UserID: p.UserID, OrgCode: p.OrgCode, Activities: p.Activities},
			Scopes: p.Scopes}
		if p.Kind == cpis.LASystem {
			pr.LACode = p.OrgCode
		}
		if got := pr.MayReviewDiscrepancies(); got != (p.Name == "safeguarding-lead") {
			t.Errorf("%s may review discrepancies: %v", p.Name, got)
		}
		if p.Name == "paediatrician" && !(pr.Can(cpis.ActivityUnscheduledView) && pr.Can(cpis.ActivityScheduledView) && pr.MayReadPlans()) {
			t.Errorf("the paediatrician cannot read in both care settings: %+v", p)
		}
	}
}
