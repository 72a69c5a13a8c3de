package register_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// reporter is a practitioner of org who may view CP-IS (B0170), and so report.
func reporter(org string) register.Caller {
	p := &auth.Principal{Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000002", Name: "Nurse Bea Fictional",
		RoleProfileID: "555000000102", RoleCode: "S8000:G8000:R8001", RoleName: "Nurse Access Role", OrgCode: org,
		OrgName: "Trust " + org, Activities: []string{cpis.ActivityScheduledView}}, Scopes: []string{"user/Flag.read"}}
	return register.Caller{Principal: p, RequestID: uuid.NewString(), At: at, Query: "/app/discrepancy"}
}

// reviewer is a member of org's safeguarding team with the given scopes
// (by default the review scope) in the given role (by default the default
// safeguarding role).
func reviewer(org, role string, scopes ...string) register.Caller {
	if role == "" {
		role = register.DefaultSafeguardingRoles[0]
	}
	if scopes == nil {
		scopes = []string{"user/Flag.read", "user/Communication.rs"}
	}
	p := &auth.Principal{Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000005", Name: "Nurse Eve Invented",
		RoleCode: role, RoleName: "Safeguarding Children Lead", OrgCode: org, Activities: []string{cpis.ActivityScheduledView}},
		Scopes: scopes}
	return register.Caller{Principal: p, RequestID: uuid.NewString(), At: at.Add(time.Hour), Query: "/Communication"}
}

// lastRecord is the newest audit record of user.
func (f fixture) lastRecord(t *testing.T, user string) cpis.AuditRecord {
	t.Helper()
	recs, err := f.store.SearchAudit(t.Context(), store.AuditQuery{ActorUserID: user, Limit: 1})
	if err != nil || len(recs) != 1 {
		t.Fatalf("no audit record of %s: %+v, %v", user, recs, err)
	}
	return recs[0]
}

func TestReportDiscrepancy(t *testing.T) {
	f := newFixture(t)
	c := reporter("ZZT01")
	in := cpis.Discrepancy{NHSNumber: "9990276579", Reason: cpis.ReasonMissingAlert, Note: "Known to Luton children's services",
		ID: "chosen-by-the-caller", OrgCode: "ZZT02", ResolvedBy: &cpis.Actor{UserID: "x"}, ResolvedAt: at}
	got, err := f.svc.ReportDiscrepancy(t.Context(), c, in)
	if err != nil {
		t.Fatal(err)
	}
	want := cpis.Discrepancy{ID: got.ID, NHSNumber: in.NHSNumber, Reason: in.Reason, Note: in.Note, OrgCode: "ZZT01",
		ReportedBy: c.Principal.Actor, ReportedAt: at}
	if diff := cmp.Diff(want, got); diff != "" || got.ID == in.ID || got.ID == "" {
		t.Errorf("reported (-want +got):\n%s (id %q)", diff, got.ID)
	}
	stored, err := f.store.Discrepancy(t.Context(), got.ID)
	if diff := cmp.Diff(want, stored); err != nil || diff != "" {
		t.Errorf("stored (-want +got), %v:\n%s", err, diff)
	}
	rec := f.lastRecord(t, "555000000002")
	if rec.Action != cpis.ActionCreate || rec.Interaction != "create" || rec.Patient != in.NHSNumber || rec.Access ||
		rec.Outcome != cpis.OutcomeSuccess || rec.RequestID != c.RequestID || rec.Query != "/app/discrepancy" {
		t.Errorf("audit record %+v, want a create against the child that is not an access", rec)
	}
}

func TestWhoMayReport(t *testing.T) {
	f := newFixture(t)
	d := cpis.Discrepancy{NHSNumber: "9990276579", Reason: cpis.ReasonOther}
	auditor := reporter("ZZT01")
	auditor.Principal.Activities, auditor.Principal.Scopes = nil, []string{"user/AuditEvent.read"}
	noScope := reporter("ZZT01")
	noScope.Principal.Scopes = nil
	system := reporter("ZZT01")
	system.Principal.Kind, system.Principal.Scopes = cpis.HealthSystem, []string{"system/Flag.rs"}
	noOrg := reporter("")
	for name, tc := range map[string]struct {
		c       register.Caller
		audited bool // a health caller's refusal is recorded
	}{
		"a role without B0107 or B0170": {auditor, true},
		"no user/Flag.read":             {noScope, true},
		"a health system":               {system, true},
		"an LA system":                  {laCaller("ZLA01"), false},
		"no organisation":               {noOrg, true},
	} {
		t.Run(name, func(t *testing.T) {
			tc.c.Principal.UserID = uuid.NewString()
			_, err := f.svc.ReportDiscrepancy(t.Context(), tc.c, d)
			if cpis.KindOf(err) != cpis.AccessDenied {
				t.Fatalf("%v, want access denied", err)
			}
			recs, _ := f.store.SearchAudit(t.Context(), store.AuditQuery{ActorUserID: tc.c.Principal.UserID, Limit: 5})
			if !tc.audited {
				if len(recs) != 0 {
					t.Errorf("recorded %+v", recs)
				}
				return
			}
			if len(recs) != 1 || recs[0].Outcome != cpis.OutcomeMinorFailure || recs[0].Action != cpis.ActionCreate || recs[0].Patient != d.NHSNumber {
				t.Errorf("refusal recorded as %+v, want one failed create against the child", recs)
			}
		})
	}
	if ds, err := f.store.Discrepancies(t.Context(), store.DiscrepancyQuery{OrgCode: "ZZT01", Limit: 10}); err != nil || len(ds) != 0 {
		t.Errorf("stored %+v, %v after refusals", ds, err)
	}
}

func TestAnInvalidReportIsNotStored(t *testing.T) {
	f := newFixture(t)
	for name, d := range map[string]cpis.Discrepancy{
		"no child":          {Reason: cpis.ReasonOther},
		"an unknown reason": {NHSNumber: "9990276579", Reason: "because"},
		"a long note":       {NHSNumber: "9990276579", Reason: cpis.ReasonOther, Note: string(make([]rune, 501))},
		"a control":         {NHSNumber: "9990276579", Reason: cpis.ReasonOther, Note: "a\x1bb"},
	} {
		_, err := f.svc.ReportDiscrepancy(t.Context(), reporter("ZZT01"), d)
		if k := cpis.KindOf(err); k != cpis.Invalid && k != cpis.InvalidNHSNumber {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if ds, err := f.store.Discrepancies(t.Context(), store.DiscrepancyQuery{OrgCode: "ZZT01", Limit: 10}); err != nil || len(ds) != 0 {
		t.Errorf("stored %+v, %v", ds, err)
	}
}

// TestTheSafeguardingTeamReviewsItsOwn: the role and the scope are both
// needed, and each team sees and resolves its own organisation's reports.
func TestTheSafeguardingTeamReviewsItsOwn(t *testing.T) {
	f := newFixture(t)
	mine, err := f.svc.ReportDiscrepancy(t.Context(), reporter("ZZT01"), cpis.Discrepancy{NHSNumber: "9990276579", Reason: cpis.ReasonMissingAlert})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := f.svc.ReportDiscrepancy(t.Context(), reporter("ZZT02"), cpis.Discrepancy{NHSNumber: "9434765919", Reason: cpis.ReasonOther})
	if err != nil {
		t.Fatal(err)
	}
	lead := reviewer("ZZT01", "")
	for name, c := range map[string]register.Caller{
		"the scope without the role": reviewer("ZZT01", "S8000:G8000:R8001"),
		"the role without the scope": reviewer("ZZT01", "", "user/Flag.read"),
		"an LA system":               laCaller("ZLA01"),
	} {
		if f.svc.MayReviewDiscrepancies(c) {
			t.Errorf("%s may review", name)
		}
		_, errList := f.svc.Discrepancies(t.Context(), c, store.DiscrepancyQuery{})
		_, errRead := f.svc.Discrepancy(t.Context(), c, mine.ID)
		_, errResolve := f.svc.ResolveDiscrepancy(t.Context(), c, mine.ID)
		for _, err := range []error{errList, errRead, errResolve} {
			if cpis.KindOf(err) != cpis.AccessDenied {
				t.Errorf("%s: %v, want access denied", name, err)
			}
		}
	}
	if !f.svc.MayReviewDiscrepancies(lead) {
		t.Fatal("the safeguarding lead may not review")
	}
	list, err := f.svc.Discrepancies(t.Context(), lead, store.DiscrepancyQuery{OrgCode: "ZZT02"})
	if err != nil || len(list) != 1 || list[0].ID != mine.ID {
		t.Errorf("listed %+v, %v; want its own organisation's report only", list, err)
	}
	for _, id := range []string{theirs.ID, uuid.NewString(), "not an id!"} {
		_, errRead := f.svc.Discrepancy(t.Context(), lead, id)
		_, errResolve := f.svc.ResolveDiscrepancy(t.Context(), lead, id)
		if cpis.KindOf(errRead) != cpis.NotFound || cpis.KindOf(errResolve) != cpis.NotFound {
			t.Errorf("%s: %v, %v; want not found", id, errRead, errResolve)
		}
	}
	if d, err := f.store.Discrepancy(t.Context(), theirs.ID); err != nil || d.Resolved() {
		t.Errorf("another organisation's report: %+v, %v", d, err)
	}
}

func TestResolveDiscrepancy(t *testing.T) {
	f := newFixture(t)
	d, err := f.svc.ReportDiscrepancy(t.Context(), reporter("ZZT01"), cpis.Discrepancy{NHSNumber: "9990276579", Reason: cpis.ReasonWrongStepDown})
	if err != nil {
		t.Fatal(err)
	}
	lead := reviewer("ZZT01", "")
	got, err := f.svc.ResolveDiscrepancy(t.Context(), lead, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Resolved() || got.ResolvedBy.UserID != lead.Principal.UserID || !got.ResolvedAt.Equal(lead.At) {
		t.Errorf("resolved %+v, want by the lead at %v", got, lead.At)
	}
	rec := f.lastRecord(t, lead.Principal.UserID)
	if rec.Action != cpis.ActionUpdate || rec.Interaction != "update" || rec.Patient != d.NHSNumber || rec.Access {
		t.Errorf("audit record %+v, want an update against the child", rec)
	}
	// Again, by a colleague later: the first resolution stands, without error.
	colleague := reviewer("ZZT01", "")
	colleague.Principal.UserID, colleague.At = "555000000008", lead.At.Add(time.Hour)
	again, err := f.svc.ResolveDiscrepancy(t.Context(), colleague, d.ID)
	if err != nil || again.ResolvedBy.UserID != lead.Principal.UserID || !again.ResolvedAt.Equal(lead.At) {
		t.Errorf("resolving again: %+v, %v; want the first resolution", again, err)
	}
	open, err := f.svc.Discrepancies(t.Context(), lead, store.DiscrepancyQuery{Open: true})
	if err != nil || len(open) != 0 {
		t.Errorf("open reports %+v, %v", open, err)
	}
	read, err := f.svc.Discrepancy(t.Context(), lead, d.ID)
	if err != nil || !read.Resolved() {
		t.Errorf("read %+v, %v", read, err)
	}
}

// TestDiscrepanciesAreNotAccesses: reporting, listing, reading and
// resolving are each audited, naming the child, but the child's
// "previously viewed by" shows only who viewed plans.
func TestDiscrepanciesAreNotAccesses(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	viewer := healthCaller("R8000", cpis.ActivityScheduledView)
	viewer.At = at.Add(-time.Minute) // before the report
	if _, err := f.svc.ReadPlan(t.Context(), viewer, shown.Plans[0].ID); err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.ReportDiscrepancy(t.Context(), reporter("ZZT01"), cpis.Discrepancy{NHSNumber: "9990276579", Reason: cpis.ReasonWrongStepDown})
	if err != nil {
		t.Fatal(err)
	}
	lead := reviewer("ZZT01", "")
	if _, err := f.svc.Discrepancies(t.Context(), lead, store.DiscrepancyQuery{}); err != nil {
		t.Fatal(err)
	}
	lead.At = lead.At.Add(time.Minute) // each later than the one before, so the trail's order is theirs
	if _, err := f.svc.Discrepancy(t.Context(), lead, d.ID); err != nil {
		t.Fatal(err)
	}
	lead.At = lead.At.Add(time.Minute)
	if _, err := f.svc.ResolveDiscrepancy(t.Context(), lead, d.ID); err != nil {
		t.Fatal(err)
	}
	recs, err := f.store.SearchAudit(t.Context(), store.AuditQuery{Patient: "9990276579", OrgCode: "ZZT01", Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Action)+" "+r.Interaction)
		if r.Actor.UserID != viewer.Principal.UserID && r.Access {
			t.Errorf("%s %s recorded as an access", r.Action, r.Interaction)
		}
	}
	want := []string{"U update", "R read", "E search-type", "C create", "R read"} // newest first
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the child's trail (-want +got):\n%s", diff)
	}
	trail, err := f.svc.AuditTrail(t.Context(), viewer, store.AuditQuery{Patient: "9990276579", Limit: 25})
	if err != nil {
		t.Fatal(err)
	}
	if len(trail.Records) != 1 || trail.Records[0].Actor.UserID != viewer.Principal.UserID {
		t.Errorf("previously viewed by %+v, want the one plan read", trail.Records)
	}
}

// TestAnEmptyListIsAudited: a list that names no child is recorded too.
func TestAnEmptyListIsAudited(t *testing.T) {
	f := newFixture(t)
	lead := reviewer("ZZT01", "")
	if ds, err := f.svc.Discrepancies(t.Context(), lead, store.DiscrepancyQuery{}); err != nil || len(ds) != 0 {
		t.Fatalf("%+v, %v", ds, err)
	}
	if rec := f.lastRecord(t, lead.Principal.UserID); rec.Action != cpis.ActionExecute || rec.Patient != "" || rec.Query != "/Communication" {
		t.Errorf("audit record %+v", rec)
	}
}

func TestSafeguardingRolesAreConfigured(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cpis.db"))
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.NewRecorder(st, audit.Options{})
	t.Cleanup(func() { rec.Close(); st.Close() })
	svc := register.New(register.Config{Store: st, Audit: rec, NewID: uuid.NewString, Authorities: cpis.DevAuthorities(),
		SafeguardingRoles: []string{"S8000:G8000:R8002"}})
	if svc.MayReviewDiscrepancies(reviewer("ZZT01", "")) || !svc.MayReviewDiscrepancies(reviewer("ZZT01", "S8000:G8000:R8002")) {
		t.Error("the configured roles are not the ones that review")
	}
}
