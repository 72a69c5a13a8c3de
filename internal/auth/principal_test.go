package auth

import (
	"context"
	"testing"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// predicates are the answers of the four authorisation checks, in order:
// read plans, write plans, read own plans, audit.
type predicates struct{ read, write, readOwn, audit bool }

func answers(p *Principal) predicates {
	return predicates{p.MayReadPlans(), p.MayWritePlans(), p.MayReadOwnPlans(), p.MayAudit()}
}

func healthUser(scopes []string, activities ...string) *Principal {
	return &Principal{
		Actor:  cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000001", OrgCode: "ZZT01", Activities: activities},
		Scopes: scopes,
	}
}

func laSystem(code string, scopes ...string) *Principal {
	return &Principal{Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "la-" + code, OrgCode: code}, LACode: code, Scopes: scopes}
}

func TestPredicates(t *testing.T) {
	s := func(scopes ...string) []string { return scopes }
	tests := []struct {
		name string
		p    *Principal
		want predicates
	}{
		{"nil principal", nil, predicates{}},
		{"B0107 with user/Flag.read", healthUser(s("user/Flag.read"), "B0107"), predicates{read: true}},
		{"B0170 with user/Flag.read", healthUser(s("user/Flag.read"), "B0170"), predicates{read: true}},
		{"B0107 with v2 user/Flag.rs", healthUser(s("user/Flag.rs"), "B0107"), predicates{read: true}},
		{"B0107 with v2 user/Flag.cruds", healthUser(s("user/Flag.cruds"), "B0107"), predicates{read: true}},
		{"B0107 with v2 user/Flag.r only (no search)", healthUser(s("user/Flag.r"), "B0107"), predicates{}},
		{"B0107 with v2 user/Flag.s only (no read)", healthUser(s("user/Flag.s"), "B0107"), predicates{}},
		{"B0107 with v2 permissions out of order", healthUser(s("user/Flag.sr"), "B0107"), predicates{}},
		{"B0107 with v2 query-restricted scope", healthUser(s("user/Flag.rs?category=CP-IS"), "B0107"), predicates{}},
		{"B0107 with wildcard resource", healthUser(s("user/*.read"), "B0107"), predicates{}},
		{"B0107 with wildcard permission", healthUser(s("user/Flag.*"), "B0107"), predicates{}},
		{"B0107 with patient/Flag.read", healthUser(s("patient/Flag.read"), "B0107"), predicates{}},
		{"B0107 with system/Flag.read", healthUser(s("system/Flag.read"), "B0107"), predicates{}},
		{"B0107 with a Flag scope of another case", healthUser(s("user/flag.read"), "B0107"), predicates{}},
		{"B0107 without scopes", healthUser(nil, "B0107"), predicates{}},
		{"other activity with user/Flag.read", healthUser(s("user/Flag.read"), "B0264"), predicates{}},
		{"no activity, user/AuditEvent.read", healthUser(s("user/AuditEvent.read")), predicates{audit: true}},
		{"no activity, user/AuditEvent.rs", healthUser(s("user/AuditEvent.rs")), predicates{audit: true}},
		{"no activity, user/AuditEvent.r", healthUser(s("user/AuditEvent.r")), predicates{}},
		{"auditor without an organisation", &Principal{Actor: cpis.Actor{Kind: cpis.HealthUser}, Scopes: s("user/AuditEvent.read")}, predicates{}},
		{"B0107 with read and audit scopes", healthUser(s("user/Flag.read", "user/AuditEvent.read"), "B0107"), predicates{read: true, audit: true}},
		{"health user with system/Flag.write", healthUser(s("system/Flag.write", "system/Flag.read"), "B0107"), predicates{}},
		{"LA with v1 write and read", laSystem("ZLA01", "system/Flag.write", "system/Flag.read"), predicates{write: true, readOwn: true}},
		{"LA with v2 cud and rs", laSystem("ZLA01", "system/Flag.cud", "system/Flag.rs"), predicates{write: true, readOwn: true}},
		{"LA with v2 cruds", laSystem("ZLA01", "system/Flag.cruds"), predicates{write: true, readOwn: true}},
		{"LA with v2 cu (no delete)", laSystem("ZLA01", "system/Flag.cu"), predicates{}},
		{"LA with read only", laSystem("ZLA01", "system/Flag.read"), predicates{readOwn: true}},
		{"LA with user/Flag.read and B0107", &Principal{Actor: cpis.Actor{Kind: cpis.LASystem, OrgCode: "ZLA01", Activities: []string{"B0107"}}, LACode: "ZLA01", Scopes: s("user/Flag.read")}, predicates{}},
		{"LA with user/AuditEvent.read", laSystem("ZLA01", "user/AuditEvent.read"), predicates{}},
		{"LA without la code", laSystem("", "system/Flag.write", "system/Flag.read"), predicates{}},
		{"LA whose LACode differs from its org", &Principal{Actor: cpis.Actor{Kind: cpis.LASystem, OrgCode: "ZLA02"}, LACode: "ZLA01", Scopes: s("system/Flag.write")}, predicates{}},
		{"health user carrying an LA code", &Principal{Actor: cpis.Actor{Kind: cpis.HealthUser, OrgCode: "ZLA01"}, LACode: "ZLA01", Scopes: s("system/Flag.write")}, predicates{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := answers(tt.p); got != tt.want {
				t.Errorf("(read, write, readOwn, audit) = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHasScope(t *testing.T) {
	p := &Principal{Scopes: []string{"openid", "user/Flag.read"}}
	tests := []struct {
		name string
		p    *Principal
		ask  []string
		want bool
	}{
		{"one held", p, []string{"user/Flag.read"}, true},
		{"any of several", p, []string{"user/Flag.rs", "openid"}, true},
		{"none held", p, []string{"user/Flag.rs"}, false},
		{"prefix is not a match", p, []string{"user/Flag"}, false},
		{"nothing asked", p, nil, false},
		{"nil principal", nil, []string{"openid"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.HasScope(tt.ask...); got != tt.want {
				t.Errorf("HasScope(%q) = %v, want %v", tt.ask, got, tt.want)
			}
		})
	}
}

func TestPrincipalContext(t *testing.T) {
	p := laSystem("ZLA01")
	tests := []struct {
		name   string
		ctx    context.Context
		want   *Principal
		wantOK bool
	}{
		{"set", WithPrincipal(context.Background(), p), p, true},
		{"not set", context.Background(), nil, false},
		{"set to nil", WithPrincipal(context.Background(), nil), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := PrincipalFrom(tt.ctx)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("PrincipalFrom = %p, %v; want %p, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestHealthSystems(t *testing.T) {
	sys := func(activities []string, scopes ...string) *Principal {
		return &Principal{Actor: cpis.Actor{Kind: cpis.HealthSystem, UserID: "trust-engine", OrgCode: "ZZT01", Activities: activities}, Scopes: scopes}
	}
	b0170 := []string{cpis.ActivityScheduledView}
	tests := []struct {
		name      string
		p         *Principal
		read      bool
		subscribe bool
	}{
		{"scheduled care, both scopes", sys(b0170, "system/Flag.rs", "system/Subscription.cruds"), true, true},
		{"v1 scopes", sys(b0170, "system/Flag.read", "system/Subscription.write"), true, true},
		{"no activity", sys(nil, "system/Flag.rs", "system/Subscription.cruds"), false, true},
		{"a user scope does not serve a system", sys(b0170, "user/Flag.rs"), false, false},
		{"no organisation", &Principal{Actor: cpis.Actor{Kind: cpis.HealthSystem, UserID: "x", Activities: b0170}, Scopes: []string{"system/Flag.rs", "system/Subscription.cruds"}}, false, false},
		{"a health user with system scopes", healthUser([]string{"system/Flag.rs", "system/Subscription.cruds"}, cpis.ActivityScheduledView), false, false},
		{"an LA system subscribes", laSystem("ZLA01", "system/Subscription.cruds"), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.MayReadPlans(); got != tt.read {
				t.Errorf("MayReadPlans = %v, want %v", got, tt.read)
			}
			if got := tt.p.MaySubscribe("c"); got != tt.subscribe {
				t.Errorf("MaySubscribe(c) = %v, want %v", got, tt.subscribe)
			}
			if tt.p.MayWritePlans() || tt.p.Kind == cpis.HealthSystem && (tt.p.MayReadOwnPlans() || tt.p.MayReadNotifications() || tt.p.MayAudit()) {
				t.Error("a health system may write plans, read an LA's own or its ASNs, or audit")
			}
		})
	}
}
