package cpis

import "time"

// Activity codes of the national RBAC that govern viewing CP-IS
// (docs/domain.md, Unscheduled and scheduled care).
const (
	ActivityUnscheduledView = "B0107" // View CP-IS Flag; the read notifies the responsible LA
	ActivityScheduledView   = "B0170" // View CP-IS Flag without sending an ASN
)

// ActorKind tells a person using a health system from an LA's system.
type ActorKind string

// Actor kinds.
const (
	HealthUser ActorKind = "health-user" // a CIS2-authenticated practitioner
	LASystem   ActorKind = "la-system"   // a local authority's case-management system
	// HealthSystem is a health organisation's system acting on its own (a
	// Trust's interface engine): its organisation's ODS code and the NHS
	// activities it was granted take the place of a user's selected role.
	HealthSystem ActorKind = "health-system"
)

// Actor is who did something, as the audit trail records it: for a health
// user the CIS2 identity and the role selected at login; for an LA system its
// client id and the LA; for a health system its client id, organisation and
// activities.
type Actor struct {
	Kind          ActorKind
	UserID        string // SDS user id, or the system's client id
	Name          string // the practitioner's name; the client's name for an LA
	RoleProfileID string // SDS role profile id (URID) of the selected role
	RoleCode      string // e.g. S8001:G8005:R8000
	RoleName      string
	OrgCode       string // ODS code of the organisation; the LA code for an LA
	OrgName       string
	Activities    []string
}

// Can reports whether the actor's selected role carries the activity code.
func (a Actor) Can(activity string) bool {
	for _, c := range a.Activities {
		if c == activity {
			return true
		}
	}
	return false
}

// MayReadPlans reports whether the actor's role allows viewing CP-IS plans
// at all: a health user's selected role, or a health system's grant.
func (a Actor) MayReadPlans() bool {
	return a.IsHealth() && (a.Can(ActivityUnscheduledView) || a.Can(ActivityScheduledView))
}

// IsHealth reports whether the actor acts for a health organisation: a
// person or a system.
func (a Actor) IsHealth() bool { return a.Kind == HealthUser || a.Kind == HealthSystem }

// AuditAction is the FHIR AuditEvent.action code.
type AuditAction string

// Audit actions.
const (
	ActionCreate  AuditAction = "C"
	ActionRead    AuditAction = "R"
	ActionUpdate  AuditAction = "U"
	ActionDelete  AuditAction = "D"
	ActionExecute AuditAction = "E" // a search
)

// Audit outcomes (FHIR AuditEvent.outcome).
const (
	OutcomeSuccess      = 0
	OutcomeMinorFailure = 4
	OutcomeSeriousFail  = 8
)

// AuditRecord is one audited interaction with one patient's plans: who, when,
// what they asked for and what they were given.
type AuditRecord struct {
	ID          string // server-assigned UUID
	Recorded    time.Time
	Action      AuditAction
	Interaction string // FHIR restful-interaction code: read, vread, history-instance, search-type, create, update, delete
	Outcome     int
	Actor       Actor
	Patient     NHSNumber // the NHS number concerned; empty for an LA search of its own plans without one
	PlanIDs     []string  // the plans returned or written
	Query       string    // for a search: the request path and query as received
	RequestID   string    // X-Request-ID
	// TraceID is the TraceID header a caller of the national CP-IS API sends
	// (a UUID in its examples), "" when there was none: recorded so that an
	// access can be matched with the caller's own trace of it.
	TraceID string
	// Access marks a health user's view of plan data: such records make up the
	// "Child Protection Information Previously Viewed By" history.
	Access bool
	// Unscheduled marks a view in unscheduled care (B0107), of which the
	// responsible LAs are notified (ASNs); a scheduled-care view (B0170)
	// notifies no one.
	Unscheduled bool
	// ASNs are the notifications this access sends, one per responsible LA
	// of the plans shown: the store keeps each (unless coalesced) in the
	// same transaction as the record, so there is never one without the
	// other. Not read back: the event log holds them (store.Store.Events).
	ASNs []ASN
	// LACodes are the responsible LAs of the plans concerned, so that an LA can
	// be shown the access history of its own plans.
	LACodes []string
	// Source is the server instance that recorded it (its base URL): with
	// several replicas sharing one database, the trail says which one served.
	Source string
}

// AccessHistoryLength is how many accesses the "previously viewed by" list shows.
const AccessHistoryLength = 25
