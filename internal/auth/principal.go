package auth

import (
	"context"
	"slices"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Principal is the verified caller: the actor the audit trail records, plus
// what the token says about the client application.
type Principal struct {
	cpis.Actor
	Subject  string   // the token's sub claim
	ClientID string   // the OAuth client the token was issued to, when the token says
	Scopes   []string // as granted in the token, in token order
	// LACode is set only for a local authority's system and equals
	// Actor.OrgCode, so that a health user can never pass for an LA.
	LACode string
	// IdentityAssurance is the CIS2 id_assurance_level (e.g. "3" for a
	// smartcard); empty for LA systems.
	IdentityAssurance string
}

// HasScope reports whether the token carries any of the given scopes, compared exactly.
func (p *Principal) HasScope(scopes ...string) bool {
	if p == nil {
		return false
	}
	for _, s := range scopes {
		if slices.Contains(p.Scopes, s) {
			return true
		}
	}
	return false
}

// MayReadPlans reports whether the principal may view CP-IS plans as a health
// professional: a health user whose selected role holds B0107 or B0170, using
// a client granted user/Flag.read (SMART v1) or a v2 user/Flag scope with
// both read and search (e.g. user/Flag.rs); or a health organisation's
// system granted one of the activities and system/Flag.read (or .rs).
func (p *Principal) MayReadPlans() bool {
	switch {
	case p == nil || !p.Actor.MayReadPlans():
		return false
	case p.Kind == cpis.HealthSystem:
		return p.isHealthSystem() && p.grants("system", "Flag", "rs")
	}
	return p.grants("user", "Flag", "rs")
}

// MaySubscribe reports whether the principal is a system allowed perms
// (v2 letters, e.g. "c" to create, "rs" to read) on its own subscriptions:
// an LA's or a health organisation's system granted system/Subscription
// (v1 read or write, or v2 e.g. system/Subscription.cruds). What it may
// subscribe to is the register's to decide.
func (p *Principal) MaySubscribe(perms string) bool {
	return (p.isLA() || p.isHealthSystem()) && p.grants("system", "Subscription", perms)
}

// MayWritePlans reports whether the principal is a local authority's system
// allowed to create, update and remove plans: system/Flag.write (v1) or a v2
// system/Flag scope holding c, u and d (e.g. system/Flag.cud). Which plans it
// may change (only its own) is decided against LACode by the caller.
func (p *Principal) MayWritePlans() bool {
	return p.isLA() && p.grants("system", "Flag", "cud")
}

// MayReadOwnPlans reports whether the principal is a local authority's system
// allowed to read back the plans it is responsible for: system/Flag.read (v1)
// or a v2 system/Flag scope with read and search (e.g. system/Flag.rs).
func (p *Principal) MayReadOwnPlans() bool {
	return p.isLA() && p.grants("system", "Flag", "rs")
}

// MayReadNotifications reports whether the principal is a local
// authority's system allowed to read the Access to Service Notifications
// sent to it: system/Communication.read (v1) or a v2 system/Communication
// scope with read and search (e.g. system/Communication.rs).
func (p *Principal) MayReadNotifications() bool {
	return p.isLA() && p.grants("system", "Communication", "rs")
}

// MayAudit reports whether the token allows searching the audit trail of
// the principal's own organisation (Actor.OrgCode): a health user with a
// selected role in an organisation, granted user/AuditEvent.read (v1) or
// user/AuditEvent.rs (v2). It is the token's half only: the register also
// requires the selected role to be an auditing one (register.Config's
// AuditorRoles), because a client granted the scope may be used by anyone.
// No CP-IS view activity is needed: auditors need not view plans.
func (p *Principal) MayAudit() bool {
	return p != nil && p.Kind == cpis.HealthUser && p.OrgCode != "" && p.grants("user", "AuditEvent", "rs")
}

// MayReviewDiscrepancies reports whether the token allows reading the
// discrepancy reports addressed to the principal's own organisation
// (Actor.OrgCode), and marking them resolved: a health user with a
// selected role in an organisation, granted user/Communication.read (v1)
// or user/Communication.rs (v2). Resolving needs no write scope: it
// changes only the team's own work list, never the register. It is the
// token's half only: the register also requires the selected role to be
// a safeguarding one (register.Config's SafeguardingRoles), because a
// client granted the scope may be used by anyone. No CP-IS view activity
// is needed, as for auditors.
func (p *Principal) MayReviewDiscrepancies() bool {
	return p != nil && p.Kind == cpis.HealthUser && p.OrgCode != "" && p.grants("user", "Communication", "rs")
}

func (p *Principal) isHealthSystem() bool {
	return p != nil && p.Kind == cpis.HealthSystem && p.OrgCode != "" && p.UserID != ""
}

func (p *Principal) isLA() bool {
	return p != nil && p.Kind == cpis.LASystem && p.LACode != "" && p.LACode == p.OrgCode
}

// grants reports whether one scope of the token allows every permission in
// perms on resource in the given context.
func (p *Principal) grants(level, resource, perms string) bool {
	for _, s := range p.Scopes {
		if sc, ok := parseScope(s); ok && sc.allows(level, resource, perms) {
			return true
		}
	}
	return false
}

// principalKey is the context key of the verified principal; unexported so
// that only this package can set it.
type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal that authentication put in ctx, if any.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
