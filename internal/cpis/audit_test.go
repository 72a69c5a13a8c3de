package cpis_test

import (
	"testing"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestActorMayReadPlans(t *testing.T) {
	tests := []struct {
		name  string
		actor cpis.Actor
		want  bool
	}{
		{"unscheduled care", cpis.Actor{Kind: cpis.HealthUser, Activities: []string{"B0001", cpis.ActivityUnscheduledView}}, true},
		{"scheduled care", cpis.Actor{Kind: cpis.HealthUser, Activities: []string{cpis.ActivityScheduledView}}, true},
		{"health user without a CP-IS activity", cpis.Actor{Kind: cpis.HealthUser, Activities: []string{"B0264"}}, false},
		{"health user with no activities", cpis.Actor{Kind: cpis.HealthUser}, false},
		{"an LA system, whatever it claims", cpis.Actor{Kind: cpis.LASystem, Activities: []string{cpis.ActivityUnscheduledView}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.actor.MayReadPlans(); got != tt.want {
				t.Errorf("MayReadPlans = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestActorCan(t *testing.T) {
	a := cpis.Actor{Activities: []string{cpis.ActivityScheduledView}}
	if !a.Can(cpis.ActivityScheduledView) || a.Can(cpis.ActivityUnscheduledView) {
		t.Errorf("Can is wrong for %v", a.Activities)
	}
}

func TestTrustDirectory(t *testing.T) {
	dir := cpis.TrustDirectory()
	if len(dir) != 6 {
		t.Fatalf("%d local authorities, want the Trust's 6", len(dir))
	}
	codes := map[string]bool{}
	for _, e := range dir {
		if codes[e.Code] || e.Name == "" || !cpis.ValidPhone(e.EmergencyPhone) || !cpis.ValidPhone(e.OfficePhone) {
			t.Errorf("bad directory entry %+v", e)
		}
		codes[e.Code] = true
	}
}
