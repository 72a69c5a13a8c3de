package register_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// The register's rules, without HTTP: a real embedded store and a real
// audit recorder, so that what an entry point other than the FHIR API
// (bulk upload, the viewer) would get is what these tests see.

// at is the instant of every call: a fixed day, so the rules do not depend
// on the day the tests run.
var at = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fixture is a Service over a fresh store, and the store to look behind it.
type fixture struct {
	svc   *register.Service
	store store.Store
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cpis.db"))
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.NewRecorder(st, audit.Options{})
	t.Cleanup(func() { rec.Close(); st.Close() })
	return fixture{
		svc:   register.New(register.Config{Store: st, Audit: rec, NewID: uuid.NewString, Source: "test", Authorities: cpis.DevAuthorities()}),
		store: st,
	}
}

func laCaller(code string) register.Caller {
	p := &auth.Principal{Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "la-" + code, OrgCode: code, OrgName: "whatever the token says"},
		LACode: code, Scopes: []string{"system/Flag.write", "system/Flag.read", "system/Communication.read"}}
	return register.Caller{Principal: p, RequestID: uuid.NewString(), At: at}
}

func healthCaller(role string, activities ...string) register.Caller {
	p := &auth.Principal{Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000009", Name: "Dr Test", RoleCode: role,
		OrgCode: "ZZT01", Activities: activities}, Scopes: []string{"user/Flag.read", "user/AuditEvent.read"}}
	return register.Caller{Principal: p, RequestID: uuid.NewString(), At: at, Query: "/Flag?patient=9990276579"}
}

func plan() cpis.Plan {
	return cpis.Plan{NHSNumber: "9990276579", Type: cpis.CPP, Start: cpis.MustDate("2026-06-01"), End: cpis.MustDate("2027-06-01"),
		LA: cpis.LocalAuthority{Code: "ZLA01"}, EmergencyPhone: "020 7946 0101", BirthDate: cpis.MustDate("2014-03-15")}
}

func TestWritesTakeTheLANameFromTheRegister(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	if stored := shown.Plans[0]; shown.View != cpis.OwnerView || stored.LA.Name != "London Borough of Hackney and City of London" {
		t.Errorf("stored %+v, view %v", shown.Plans[0], shown.View)
	}
	for name, tc := range map[string]struct {
		la   cpis.LocalAuthority
		kind cpis.Kind
	}{
		"a differing name":       {cpis.LocalAuthority{Code: "ZLA01", Name: "Hackney"}, cpis.Invalid},
		"a code not registered":  {cpis.LocalAuthority{Code: "ZLA99"}, cpis.Invalid},
		"another LA, registered": {cpis.LocalAuthority{Code: "ZLA02"}, cpis.ForbiddenUpdate},
	} {
		p := plan()
		p.LA = tc.la
		if _, _, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: p}); cpis.KindOf(err) != tc.kind {
			t.Errorf("%s: %v, want %v", name, err, tc.kind)
		}
	}
	// The writer's audit record names the LA by the register's name, not the token's.
	trail, err := f.store.SearchAudit(t.Context(), store.AuditQuery{OrgCode: "ZLA01", Limit: 10})
	if err != nil || len(trail) != 1 || trail[0].Actor.OrgName != "London Borough of Hackney and City of London" {
		t.Errorf("trail %+v, %v", trail, err)
	}
}

func TestTheCareSettingDecidesTheAuditAndTheRole(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	stored := shown.Plans[0]
	yes, no := true, false
	tests := []struct {
		name        string
		activities  []string
		said        *bool
		ok          bool
		unscheduled bool
	}{
		{"B0107, said nothing: unscheduled care", []string{cpis.ActivityUnscheduledView}, nil, true, true},
		{"B0170, said nothing: scheduled care", []string{cpis.ActivityScheduledView}, nil, true, false},
		{"B0107 says scheduled: needs B0170", []string{cpis.ActivityUnscheduledView}, &no, false, false},
		{"B0170 says unscheduled: needs B0107", []string{cpis.ActivityScheduledView}, &yes, false, false},
		{"both, says scheduled", []string{cpis.ActivityUnscheduledView, cpis.ActivityScheduledView}, &no, true, false},
		{"no activity", nil, nil, false, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := healthCaller("R8000", tt.activities...)
			c.Unscheduled, c.At = tt.said, at.Add(time.Duration(i+1)*time.Minute) // the newest record is this one
			_, err := f.svc.ReadPlan(t.Context(), c, stored.ID)
			if (err == nil) != tt.ok {
				t.Fatalf("ReadPlan: %v, want ok %v", err, tt.ok)
			}
			recs, err := f.store.SearchAudit(t.Context(), store.AuditQuery{ActorUserID: "555000000009", Limit: 1})
			if err != nil || len(recs) != 1 || recs[0].RequestID != c.RequestID {
				t.Fatalf("no audit record of this read: %+v, %v", recs, err)
			}
			r := recs[0]
			if tt.ok && (!r.Access || r.Unscheduled != tt.unscheduled || r.Outcome != cpis.OutcomeSuccess) {
				t.Errorf("record %+v, want an access, unscheduled %v", r, tt.unscheduled)
			}
			if !tt.ok && (r.Access || r.Outcome != cpis.OutcomeMinorFailure) {
				t.Errorf("a refused read recorded as %+v, want a failure that is not an access", r)
			}
		})
	}
}

func TestAnotherLAsPlanIsNotFound(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	stored := shown.Plans[0]
	other := plan()
	other.LA.Code = "ZLA02"
	apply := func(w register.Write) error {
		_, _, err := f.svc.Apply(t.Context(), laCaller("ZLA02"), w)
		return err
	}
	errUpdate := apply(register.Write{Kind: register.Update, ID: stored.ID, Plan: other, Expect: 1})
	errDelete := apply(register.Write{Kind: register.Delete, ID: stored.ID})
	errNone := apply(register.Write{Kind: register.Delete, ID: uuid.NewString()})
	errBad := apply(register.Write{Kind: register.Delete, ID: "\x00"})
	msg := func(err error) string { return cpis.Problems(err)[0].Msg }
	for _, err := range []error{errUpdate, errDelete, errNone, errBad} {
		if cpis.KindOf(err) != cpis.NotFound || msg(err) != msg(errNone) {
			t.Errorf("%v, want the same not-found as an unknown id: %v", err, errNone)
		}
	}
}

func TestAuditorsNeedAnAuditingRole(t *testing.T) {
	f := newFixture(t)
	for role, ok := range map[string]bool{"S8000:G8000:R0001": true, "S8000:G8000:R8009": false} {
		_, err := f.svc.AuditTrail(t.Context(), healthCaller(role), store.AuditQuery{Limit: 10})
		if (err == nil) != ok {
			t.Errorf("%s: %v, want ok %v", role, err, ok)
		}
	}
}
