package register_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
)

// asns returns the ASNs the store holds for an LA, oldest first.
func (f fixture) asns(t *testing.T, la string) []cpis.ASN {
	t.Helper()
	page, err := f.store.Events(t.Context(), store.EventQuery{Kind: store.ASNSent, LACode: la, Order: store.OldestFirst, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var out []cpis.ASN
	for _, e := range page.Events {
		out = append(out, e.ASN)
	}
	return out
}

func TestAnUnscheduledAccessSendsEachLAItsOwnASN(t *testing.T) {
	f := newFixture(t)
	mine, other := plan(), plan()
	other.LA, other.Type, other.BirthDate = cpis.LocalAuthority{Code: "ZLA02"}, cpis.CLA, cpis.MustDate("2014-03-15")
	var ids []string
	for _, p := range []cpis.Plan{mine, other} {
		_, shown, err := f.svc.Apply(t.Context(), laCaller(p.LA.Code), register.Write{Kind: register.Create, Plan: p})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, shown.Plans[0].ID)
	}
	c := healthCaller("R8000", cpis.ActivityUnscheduledView)
	c.Principal.Actor.Name, c.Principal.Actor.RoleName, c.Principal.Actor.OrgName = "Dr Test", "Clinical Practitioner Access Role", "A Trust"
	if _, err := f.svc.SearchPlans(t.Context(), c, store.PlanQuery{NHSNumber: "9990276579", Limit: 10}); err != nil {
		t.Fatal(err)
	}
	recs, err := f.store.SearchAudit(t.Context(), store.AuditQuery{ActorUserID: "555000000009", Limit: 5})
	if err != nil || len(recs) != 1 {
		t.Fatalf("audit %+v, %v", recs, err)
	}
	for i, la := range []string{"ZLA01", "ZLA02"} {
		got := f.asns(t, la)
		if len(got) != 1 {
			t.Fatalf("%s has %d ASNs, want 1", la, len(got))
		}
		a := got[0]
		want := cpis.ASN{ID: a.ID, AuditID: recs[0].ID, Sent: at, NHSNumber: "9990276579", LACode: la, PlanIDs: []string{ids[i]},
			OrgCode: "ZZT01", OrgName: "A Trust", UserName: "Dr Test", RoleName: "Clinical Practitioner Access Role"}
		if a.ID == "" || !a.Sent.Equal(want.Sent) || a.AuditID != want.AuditID || a.LACode != la || !slices.Equal(a.PlanIDs, want.PlanIDs) ||
			a.OrgCode != want.OrgCode || a.OrgName != want.OrgName || a.UserName != want.UserName || a.RoleName != want.RoleName {
			t.Errorf("%s's ASN %+v, want %+v", la, a, want)
		}
	}
}

func TestOnlyUnscheduledAccessesSendASNs(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	id := shown.Plans[0].ID
	no := false
	scheduled := healthCaller("R8001", cpis.ActivityScheduledView)
	both := healthCaller("R8000", cpis.ActivityUnscheduledView, cpis.ActivityScheduledView)
	both.Unscheduled = &no
	for _, c := range []register.Caller{scheduled, both, laCaller("ZLA01")} {
		if _, err := f.svc.ReadPlan(t.Context(), c, id); err != nil {
			t.Fatal(err)
		}
	}
	ed := healthCaller("R8000", cpis.ActivityUnscheduledView)
	if _, err := f.svc.SearchPlans(t.Context(), ed, store.PlanQuery{NHSNumber: "9992345675", Limit: 10}); err != nil {
		t.Fatal(err) // a search that finds nothing
	}
	if got := f.asns(t, "ZLA01"); len(got) != 0 {
		t.Fatalf("%d ASNs from reads that send none", len(got))
	}
	// The history of one plan's versions names the plan once.
	if _, _, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Delete, ID: id}); err != nil {
		t.Fatal(err)
	}
	ed.At = at.Add(time.Minute)
	if _, err := f.svc.ReadPlanVersion(t.Context(), ed, id, 1); err == nil {
		t.Fatal("a withdrawn plan's version was shown to a health user")
	}
	if got := f.asns(t, "ZLA01"); len(got) != 0 {
		t.Fatalf("a refused read sent %d ASNs", len(got))
	}
}

func TestFeedsAreForTheirOwnLASystemOnly(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()}); err != nil {
		t.Fatal(err)
	}
	q := store.EventQuery{Limit: 10}
	feed, err := f.svc.PlanChanges(t.Context(), laCaller("ZLA01"), q)
	if err != nil || len(feed.Events) != 1 || feed.Events[0].Plan.LA.Name != "London Borough of Hackney and City of London" {
		t.Fatalf("the LA's own feed: %+v, %v", feed, err)
	}
	if feed, err := f.svc.PlanChanges(t.Context(), laCaller("ZLA02"), q); err != nil || len(feed.Events) != 0 {
		t.Errorf("another LA's feed: %+v, %v", feed, err)
	}
	ed := healthCaller("R8000", cpis.ActivityUnscheduledView)
	if _, err := f.svc.PlanChanges(t.Context(), ed, q); cpis.KindOf(err) != cpis.AccessDenied {
		t.Errorf("a health user's feed: %v", err)
	}
	if _, err := f.svc.Notifications(t.Context(), ed, q, ""); cpis.KindOf(err) != cpis.AccessDenied {
		t.Errorf("a health user's notifications: %v", err)
	}
	if _, err := f.svc.Notifications(t.Context(), laCaller("ZLA01"), q, "ZLA02"); cpis.KindOf(err) != cpis.AccessDenied {
		t.Errorf("another LA's notifications: %v", err)
	}
	if _, err := f.svc.Notification(t.Context(), laCaller("ZLA01"), "no-such-id"); cpis.KindOf(err) != cpis.NotFound {
		t.Errorf("an unknown notification: %v", err)
	}
}

func TestReadingAFeedIsAuditedButIsNoAccess(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	id := shown.Plans[0].ID
	if _, err := f.svc.SearchPlans(t.Context(), healthCaller("R8000", cpis.ActivityUnscheduledView), store.PlanQuery{NHSNumber: "9990276579", Limit: 10}); err != nil {
		t.Fatal(err)
	}
	la := laCaller("ZLA01")
	la.Query = "/Communication"
	notes, err := f.svc.Notifications(t.Context(), la, store.EventQuery{Limit: 10}, "")
	if err != nil || len(notes.Events) != 1 {
		t.Fatalf("notifications %+v, %v", notes, err)
	}
	la.RequestID, la.Query = "read-2", "/Flag/_history"
	if _, err := f.svc.PlanChanges(t.Context(), la, store.EventQuery{Limit: 10}); err != nil {
		t.Fatal(err)
	}
	trail, err := f.store.SearchAudit(t.Context(), store.AuditQuery{OrgCode: "ZLA01", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, r := range trail {
		if r.Query == "/Communication" || r.Query == "/Flag/_history" {
			seen = append(seen, r.Interaction)
			if r.Access || r.Patient != "9990276579" {
				t.Errorf("the LA's read of its feed recorded as %+v", r)
			}
			if r.Interaction == "history-type" && !slices.Equal(r.PlanIDs, []string{id}) {
				t.Errorf("the feed's record names plans %v, want %s", r.PlanIDs, id)
			}
			if r.Interaction == "search-type" && len(r.PlanIDs) != 0 {
				t.Errorf("reading an ASN recorded as reading plans %v", r.PlanIDs)
			}
		}
	}
	slices.Sort(seen)
	if !slices.Equal(seen, []string{"history-type", "search-type"}) {
		t.Errorf("audited feed reads %v, want the history and the notification search", seen)
	}
	history, err := f.store.AccessHistory(t.Context(), store.AccessQuery{NHSNumber: "9990276579", Limit: 25})
	if err != nil || len(history) != 1 {
		t.Errorf("the access history holds %d records (%v), want the clinician's one", len(history), err)
	}
}
