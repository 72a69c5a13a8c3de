package register_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
)

func subscriber(c register.Caller) register.Caller {
	c.Principal.Scopes = append(c.Principal.Scopes, "system/Subscription.cruds")
	return c
}

func trustSystem() register.Caller {
	p := &auth.Principal{Actor: cpis.Actor{Kind: cpis.HealthSystem, UserID: "trust-engine", Name: "Trust engine", OrgCode: "ZZT01",
		Activities: []string{cpis.ActivityScheduledView}}, Scopes: []string{"system/Flag.rs", "system/Subscription.cruds"}}
	return register.Caller{Principal: p, RequestID: uuid.NewString(), At: at}
}

func watch(content cpis.PayloadContent) cpis.Subscription {
	return cpis.Subscription{Topic: cpis.TopicPlanChange, NHSNumber: "9990276579", Endpoint: "https://receiver.example.org/hook",
		Content: content, Timeout: 10 * time.Second, MaxCount: 100, Headers: []string{"Authorization: Bearer secret"}}
}

func TestWhoMaySubscribeToWhat(t *testing.T) {
	f := newFixture(t)
	asn := func(la string) cpis.Subscription {
		s := watch(cpis.ContentIDOnly)
		s.Topic, s.NHSNumber, s.LACode = cpis.TopicASN, "", la
		return s
	}
	tests := []struct {
		name   string
		c      register.Caller
		sub    cpis.Subscription
		kind   cpis.Kind // 0: allowed
		wantLA string
	}{
		{"an LA, its own ASNs", subscriber(laCaller("ZLA01")), asn(""), 0, "ZLA01"},
		{"an LA, its own ASNs by name", subscriber(laCaller("ZLA01")), asn("ZLA01"), 0, "ZLA01"},
		{"an LA, another's ASNs", subscriber(laCaller("ZLA01")), asn("ZLA02"), cpis.AccessDenied, ""},
		{"an LA, its plans on a child", subscriber(laCaller("ZLA01")), watch(cpis.ContentFullResource), 0, "ZLA01"},
		{"an LA without the scope", laCaller("ZLA01"), asn(""), cpis.AccessDenied, ""},
		{"the Trust's system, a child's plans", trustSystem(), watch(cpis.ContentFullResource), 0, ""},
		{"the Trust's system, ASNs", trustSystem(), asn("ZLA01"), cpis.AccessDenied, ""},
		{"a clinician", subscriber(healthCaller("R8000", cpis.ActivityUnscheduledView)), watch(cpis.ContentIDOnly), cpis.AccessDenied, ""},
		{"a plain http endpoint", trustSystem(), func() cpis.Subscription {
			s := watch(cpis.ContentIDOnly)
			s.Endpoint = "http://127.0.0.1:9/hook"
			return s
		}(), cpis.Invalid, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, err := f.svc.Subscribe(t.Context(), tt.c, tt.sub)
			if tt.kind != 0 {
				if cpis.KindOf(err) != tt.kind {
					t.Fatalf("Subscribe: %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.LACode != tt.wantLA || rec.Status != cpis.SubRequested || rec.Owner.UserID != tt.c.Principal.UserID || !rec.Created.Equal(at) {
				t.Errorf("stored %+v", rec.Subscription)
			}
		})
	}
}

func TestASubscriptionIsItsOwnersAlone(t *testing.T) {
	f := newFixture(t)
	owner, other := subscriber(laCaller("ZLA01")), subscriber(laCaller("ZLA02"))
	rec, err := f.svc.Subscribe(t.Context(), owner, watch(cpis.ContentIDOnly))
	if err != nil {
		t.Fatal(err)
	}
	sameLAOtherClient := subscriber(laCaller("ZLA01"))
	sameLAOtherClient.Principal.UserID = "another-client"
	for name, c := range map[string]register.Caller{"another LA": other, "another client of the LA": sameLAOtherClient, "the Trust's system": trustSystem()} {
		if _, err := f.svc.Subscription(t.Context(), c, rec.ID); cpis.KindOf(err) != cpis.NotFound {
			t.Errorf("%s read it: %v", name, err)
		}
		change := rec.Subscription
		change.Status = cpis.SubOff
		if _, err := f.svc.ChangeSubscription(t.Context(), c, change, nil); cpis.KindOf(err) != cpis.NotFound {
			t.Errorf("%s changed it: %v", name, err)
		}
		if err := f.svc.Unsubscribe(t.Context(), c, rec.ID); cpis.KindOf(err) != cpis.NotFound {
			t.Errorf("%s deleted it: %v", name, err)
		}
		if _, _, err := f.svc.SubscriptionEvents(t.Context(), c, rec.ID, 1, 0, 10, ""); cpis.KindOf(err) != cpis.NotFound {
			t.Errorf("%s replayed its events: %v", name, err)
		}
		if list, err := f.svc.Subscriptions(t.Context(), c); err != nil || len(list) != 0 {
			t.Errorf("%s lists %d subscriptions, %v", name, len(list), err)
		}
	}
	if list, err := f.svc.Subscriptions(t.Context(), owner); err != nil || len(list) != 1 {
		t.Errorf("the owner lists %d, %v", len(list), err)
	}
}

func TestChangingASubscription(t *testing.T) {
	f := newFixture(t)
	c := subscriber(laCaller("ZLA01"))
	rec, err := f.svc.Subscribe(t.Context(), c, watch(cpis.ContentIDOnly))
	if err != nil {
		t.Fatal(err)
	}
	masked := func(h string) bool { return h == cpis.HeaderName(h)+": ***" }
	change := rec.Subscription
	change.Headers = []string{"X-Unknown: ***"}
	if _, err := f.svc.ChangeSubscription(t.Context(), c, change, masked); cpis.KindOf(err) != cpis.Invalid {
		t.Errorf("a masked header with no stored value: %v", err)
	}
	change.Headers = []string{"authorization: ***", "X-Extra: 1"}
	change.Topic = cpis.TopicPlanChange
	got, err := f.svc.ChangeSubscription(t.Context(), c, change, masked)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"Authorization: Bearer secret", "X-Extra: 1"}; !slices.Equal(got.Headers, want) {
		t.Errorf("headers %q, want %q: a masked header keeps its stored value", got.Headers, want)
	}
	change.NHSNumber = "9434765919"
	if _, err := f.svc.ChangeSubscription(t.Context(), c, change, masked); cpis.KindOf(err) != cpis.Invalid {
		t.Errorf("the filter changed: %v", err)
	}
	change.NHSNumber, change.Status = rec.NHSNumber, cpis.SubError
	if _, err := f.svc.ChangeSubscription(t.Context(), c, change, masked); cpis.KindOf(err) != cpis.Invalid {
		t.Errorf("the owner set error: %v", err)
	}
	change.Status = cpis.SubOff
	if got, err = f.svc.ChangeSubscription(t.Context(), c, change, masked); err != nil || got.Status != cpis.SubOff {
		t.Fatalf("off: %v, %v", got.Status, err)
	}
	change.Status = cpis.SubActive
	if got, err = f.svc.ChangeSubscription(t.Context(), c, change, masked); err != nil || got.Status != cpis.SubRequested || got.State.Handshake {
		t.Fatalf("back on before any handshake: %v handshake %v, %v; want requested, a new handshake", got.Status, got.State.Handshake, err)
	}
}

func TestDeliveriesAreAuditedBeforeTheySend(t *testing.T) {
	f := newFixture(t)
	_, shown, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	planID := shown.Plans[0].ID
	recs := map[cpis.PayloadContent]store.SubscriptionRecord{}
	for _, content := range []cpis.PayloadContent{cpis.ContentFullResource, cpis.ContentIDOnly} {
		if recs[content], err = f.svc.Subscribe(t.Context(), trustSystem(), watch(content)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Delete, ID: planID}); err != nil {
		t.Fatal(err)
	}
	_, shown, err = f.svc.Apply(t.Context(), laCaller("ZLA01"), register.Write{Kind: register.Create, Plan: plan()})
	if err != nil {
		t.Fatal(err)
	}
	for content, rec := range recs {
		t.Run(string(content), func(t *testing.T) {
			state, err := f.store.MatchSubscriptionEvents(t.Context(), rec.ID, 100)
			if err != nil || state.Numbered != 2 {
				t.Fatalf("numbered %d, %v; want the withdrawal and the new plan", state.Numbered, err)
			}
			events, err := f.store.SubscriptionEvents(t.Context(), rec.ID, 1, 2, 10)
			if err != nil {
				t.Fatal(err)
			}
			sent := at.Add(time.Minute)
			n, err := f.svc.Deliverable(t.Context(), rec, events, content, sent)
			if err != nil {
				t.Fatal(err)
			}
			if n.View != cpis.HealthView || !n.Events[0].Withdrawn || n.Events[1].Withdrawn {
				t.Errorf("view %v, withdrawn %v %v; want the health view, the withdrawal without data", n.View, n.Events[0].Withdrawn, n.Events[1].Withdrawn)
			}
			audits, err := f.store.SearchAudit(t.Context(), store.AuditQuery{ActorUserID: "trust-engine", RecordedFrom: sent, Limit: 10})
			if err != nil {
				t.Fatal(err)
			}
			var mine []cpis.AuditRecord
			for _, a := range audits {
				if a.Query == "Subscription/"+rec.ID+" notification, events 1 to 2" {
					mine = append(mine, a)
				}
			}
			if len(mine) != 1 {
				t.Fatalf("%d audit records of the delivery, want 1 (one child): %+v", len(mine), audits)
			}
			a := mine[0]
			access := content == cpis.ContentFullResource
			if a.Access != access || a.Unscheduled || len(a.ASNs) != 0 || a.Patient != "9990276579" {
				t.Errorf("record %+v; want access %v, scheduled care, no ASN", a, access)
			}
			if access && !slices.Equal(a.PlanIDs, []string{shown.Plans[0].ID}) {
				t.Errorf("the access names %v, want only the plan shown", a.PlanIDs)
			}
		})
	}
	if got := f.asns(t, "ZLA01"); len(got) != 0 {
		t.Errorf("deliveries sent %d ASNs", len(got))
	}
}
