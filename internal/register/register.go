// Package register is the CP-IS register as its users meet it: who may read,
// write and audit what, what each reader is shown, and the audit record of
// every access, committed before the data leaves. It is the one application
// layer: every entry point (the FHIR API today; bulk upload, subscriptions,
// the web viewer and reports to come) calls it with a Caller, so all of them
// get the same rules and the same audit.
//
// It knows nothing of HTTP or of FHIR's wire format: entry points parse
// their input into domain values and store queries, call the Service, and
// render what it returns (the plans, and the View the caller may see them
// through). It has no clock of its own: the Caller carries the instant of
// the request.
package register

import (
	"context"
	"slices"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Caller is who asks, and when: what every entry point knows of a request.
type Caller struct {
	Principal *auth.Principal // the verified caller; never nil for an operation
	RequestID string          // X-Request-ID: recorded, and the idempotency key of writes
	TraceID   string          // the national API's TraceID, recorded when given
	At        time.Time       // the instant of the request, from the entry point's injected clock
	// Unscheduled is the caller's statement of the care setting
	// (IsUnscheduledAccessEvent): nil when it made none.
	Unscheduled *bool
	// Query is the request as received (path and query), recorded in the
	// audit record of a search or of a refusal.
	Query string
}

// Recorder makes audit records durable: Record returns nil once they are
// committed, and an Unavailable error when they cannot be.
type Recorder interface {
	Record(ctx context.Context, recs ...cpis.AuditRecord) error
}

// Config is what a Service is built from. Store, Audit and NewID are required.
type Config struct {
	Store store.Store
	Audit Recorder
	NewID func() string // new plan and audit record ids (UUIDs)
	// Source names this server instance in the audit records it writes
	// (its base URL), so that the trail says which replica served.
	Source string
	// Authorities is the register of local authorities: a plan's LA must be
	// in it, and is always shown with its name from it. Required.
	Authorities *cpis.Authorities
	// AuditorRoles are the role codes whose holders may search the audit
	// trail of their organisation: the scope alone is not enough. Nil means
	// DefaultAuditorRoles.
	AuditorRoles []string
	// SafeguardingRoles are the role codes whose holders, given the scope
	// user/Communication.read too, review their organisation's discrepancy
	// reports and mark them resolved. Nil means DefaultSafeguardingRoles.
	SafeguardingRoles []string
	// ASNCoalesceWindow is how long after an ASN for a child, accessing
	// organisation and LA later accesses send none (cpis.ASN): 0 sends one
	// per access. cmd/cpisd defaults it to cpis.DefaultASNCoalesceWindow.
	ASNCoalesceWindow time.Duration
	// DevEndpoints lets subscriptions deliver over plain http to a
	// loopback host (dev mode only).
	DevEndpoints bool
	// EndpointPolicy, when set, vets a subscription's endpoint beyond its
	// form (cpis.CheckEndpoint): where its host resolves to
	// (internal/delivery's network policy). It is checked again at each
	// delivery, since DNS may change.
	EndpointPolicy func(ctx context.Context, endpoint string) error
}

// DefaultAuditorRoles are the auditing roles when none are configured: the
// national RBAC's Privacy Officer role, which the dev auditor holds.
var DefaultAuditorRoles = []string{"S8000:G8000:R0001"}

// Service applies the register's rules. It is safe for concurrent use.
type Service struct {
	store        store.Store
	audit        Recorder
	newID        func() string
	source       string
	las          *cpis.Authorities
	auditorRoles []string
	asnWindow    time.Duration
	// safeguardingRoles review discrepancy reports (discrepancy.go).
	safeguardingRoles []string

	devEndpoints   bool
	endpointPolicy func(context.Context, string) error
}

// New builds a Service.
func New(cfg Config) *Service {
	roles := cfg.AuditorRoles
	if roles == nil {
		roles = DefaultAuditorRoles
	}
	return &Service{
		store:        cfg.Store,
		audit:        cfg.Audit,
		newID:        cfg.NewID,
		source:       cfg.Source,
		las:          cfg.Authorities,
		auditorRoles: slices.Clone(roles),
		asnWindow:    max(cfg.ASNCoalesceWindow, 0),

		safeguardingRoles: safeguardingRoles(cfg.SafeguardingRoles),

		devEndpoints:   cfg.DevEndpoints,
		endpointPolicy: cfg.EndpointPolicy,
	}
}

// Ready reports whether the register can serve now (Unavailable if not).
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

// Shown is what a reader is given: plans (or the versions of one plan), the
// view it may see them through, and the day their status is judged on.
type Shown struct {
	Plans []cpis.Plan
	View  cpis.View
	Today cpis.Date
	More  bool // a search has further matches after these
}

// shown is what a reader is given, each plan with its LA's name from the
// register (a plan stored before the register owned names, or an LA
// renamed since, still shows the register's name).
func (s *Service) shown(r reader, today cpis.Date, plans []cpis.Plan, more bool) Shown {
	for i := range plans {
		s.nameLA(&plans[i])
	}
	return Shown{Plans: plans, View: r.view, Today: today, More: more}
}

// nameLA gives p its LA's name from the register.
func (s *Service) nameLA(p *cpis.Plan) {
	if la, ok := s.las.Lookup(p.LA.Code); ok {
		p.LA.Name = la.Name
	}
}

// stamp is the time a write or an audit record is recorded: the request's
// instant, in UTC, at the microsecond precision both stores keep.
func stamp(at time.Time) time.Time { return at.UTC().Truncate(time.Microsecond) }
