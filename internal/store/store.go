// Package store is the one storage contract of the service. Two backends
// implement it, internal/store/sqlite (embedded, the default) and
// internal/store/postgres (production); storetest holds the behaviour both
// must show. Stores are clock-free: every time they record comes from the
// caller, so the date rules stay testable.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Store holds plans with their version history, and the audit trail.
//
// Errors are *cpis.Error values with these kinds: NotFound, ForbiddenUpdate,
// PreconditionFailed, Conflict (a plan the LA already holds, see
// CheckOverlap), Unavailable (the database cannot be reached or the
// transaction could not commit; safe to retry), Invalid (a query the store
// cannot run), and Other for anything unexpected. Driver errors never leave a
// store untranslated.
type Store interface {
	// CreatePlan stores p as version 1. p.ID (a new UUID) and p.LastUpdated are
	// set by the caller; rec is the audit record of the write and is stored in
	// the same transaction. If rec.RequestID is not empty and a write with the
	// same request id by the same LA (p.LA.Code) was already stored, nothing is
	// written and the plan version that write stored is returned with
	// replayed true, so a retried request never creates a second plan.
	// Otherwise Conflict (CheckOverlap) if the LA already holds a plan that
	// p overlaps (cpis.Plan.Overlaps: same NHS number and type, neither
	// withdrawn, periods sharing a day): the same plan posted twice is
	// stored once. The check and the write are atomic, also across
	// processes sharing the database: of concurrent creates that overlap,
	// one succeeds and the others are Conflict.
	CreatePlan(ctx context.Context, p cpis.Plan, rec cpis.AuditRecord) (stored cpis.Plan, replayed bool, err error)

	// UpdatePlan replaces plan p.ID with p as version expectVersion+1, keeping
	// the old version in the history, atomically with the audit record rec.
	// NotFound if there is no such plan; ForbiddenUpdate if the stored plan's
	// LA is not p.LA.Code; PreconditionFailed if the current version is not
	// expectVersion (a concurrent writer won, or the client is stale);
	// Conflict, after those, if p would overlap another plan the LA holds, as
	// in CreatePlan (the plan's own current version does not count). Request
	// id replays are handled as in CreatePlan, before any of these checks.
	UpdatePlan(ctx context.Context, p cpis.Plan, expectVersion int, rec cpis.AuditRecord) (stored cpis.Plan, replayed bool, err error)

	// DeletePlan marks plan id entered-in-error as a new version, written at
	// time at by LA laCode, atomically with rec. expectVersion 0 means any
	// version. Errors as UpdatePlan. Deleting an already deleted plan (by its
	// own LA) succeeds whatever expectVersion, changes no plan, and returns
	// the plan as it is; rec is stored all the same, because every write
	// request is audited: the LA did ask.
	DeletePlan(ctx context.Context, id, laCode string, expectVersion int, at time.Time, rec cpis.AuditRecord) (cpis.Plan, error)

	// Plan returns the current version of plan id, or NotFound.
	Plan(ctx context.Context, id string) (cpis.Plan, error)

	// PlanVersion returns version v of plan id, or NotFound.
	PlanVersion(ctx context.Context, id string, v int) (cpis.Plan, error)

	// PlanHistory returns every version of plan id, newest first, or NotFound.
	PlanHistory(ctx context.Context, id string) ([]cpis.Plan, error)

	// SearchPlans returns one page of the plans matching q: their current
	// versions, or with q.AsOf their versions as of then. Invalid if q cannot
	// be run: a page outside PlanQuery's bounds, a status that does not
	// exist, or statuses without the day to judge them on. A plan type that
	// does not exist matches nothing.
	SearchPlans(ctx context.Context, q PlanQuery) (PlanPage, error)

	// AppendAudit stores recs in one transaction: all of them, or none and an
	// error. Only when it returns nil may a response carrying the data they
	// describe leave the server.
	AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error

	// AccessHistory returns the child's "previously viewed by" list: up to
	// q.Limit records with Access set for q.NHSNumber, newest first (ties
	// broken by id, descending), keeping only a record of which at least one
	// plan (AuditRecord.PlanIDs) is now not entered in error and, when
	// q.LACode is set, is that LA's. So an LA never learns who viewed
	// another LA's plan on the same child, and nobody who viewed plans that
	// were all withdrawn since. Invalid if q.Limit is not 1..1000 (as for a
	// page of SearchPlans) or q.NHSNumber is empty.
	AccessHistory(ctx context.Context, q AccessQuery) ([]cpis.AuditRecord, error)

	// SearchAudit returns the audit records matching q, newest first.
	// Invalid if the page is outside AuditQuery's bounds.
	SearchAudit(ctx context.Context, q AuditQuery) ([]cpis.AuditRecord, error)

	// Ping reports whether the store can serve requests now (Unavailable if not).
	Ping(ctx context.Context) error

	// Close releases the store's resources.
	Close() error
}

// Importer is offered by stores that can load many plans at once, for
// migrations from another system and for benchmarks.
type Importer interface {
	// ImportPlans stores every plan as its version 1, with the ID and
	// LastUpdated the caller set, in one transaction: all of them, or none
	// and an error. It writes no audit record: an import is an operator's
	// act, recorded by whoever runs it. It does not refuse plans that
	// overlap (CheckOverlap): an import takes another system's register as
	// it is, and any duplicates in it are for their LA to withdraw (until
	// then, an update of either of two overlapping plans is Conflict).
	// Invalid if a plan has no ID or LastUpdated, or fails
	// cpis.Plan.Validate; Conflict if a plan id is already stored or
	// appears twice; Unavailable as for Store.
	ImportPlans(ctx context.Context, plans []cpis.Plan) error
}

// Order is a sort order of search results by last update.
type Order int

// Sort orders. Ties are broken by plan id in the same direction, so that
// paging is stable.
const (
	NewestFirst Order = iota // -_lastUpdated, the default
	OldestFirst              // _lastUpdated
)

// PlanQuery selects plans. Zero fields do not constrain. At least one of
// NHSNumber and LACode is set by every caller.
//
// Paging: a page holds up to Limit plans; the next page is the same query
// with After set to the key of the last plan of this one (KeyOf), so that
// it starts after that plan whatever changed in between. To page over one
// unchanging register, page 1 runs with AsOf zero (the current plans) and
// every later page with AsOf set to the instant page 1 ran: then following
// the pages gives every plan as of page 1 exactly once, neither skipping
// one that was updated between pages nor repeating one.
type PlanQuery struct {
	NHSNumber cpis.NHSNumber
	LACode    string          // only plans this LA is responsible for
	Types     []cpis.PlanType // any of these
	// Statuses keeps plans whose status on Today is any of these. Statuses
	// depend on the day, so a store computes them from the dates, never from
	// a stored column.
	Statuses []cpis.Status
	Today    cpis.Date
	// VisibleOn, when set, keeps only plans health users may see that day:
	// not entered in error and within the display window (cpis.Plan.VisibleToHealth).
	VisibleOn cpis.Date
	// UpdatedFrom (inclusive) and UpdatedBefore (exclusive) bound LastUpdated.
	UpdatedFrom, UpdatedBefore time.Time
	Order                      Order
	// After, when set, keeps only plans that sort after this key in Order
	// (keyset paging). Invalid with an empty ID.
	After *PlanKey
	// AsOf, when set, runs the search on the register as it was at that
	// instant: for each plan its newest version with LastUpdated <= AsOf
	// (none: the plan did not exist yet), and every other field of the
	// query applies to that version, which is what the page returns. Two
	// exceptions keep an old snapshot from showing what may not be shown
	// now: NHSNumber and LACode must also hold for the plan's current
	// version, and so must VisibleOn, so a plan withdrawn or past its
	// display window since AsOf is never shown to health users.
	AsOf  time.Time
	Limit int // the page size: 1..1000, else Invalid
}

// PlanKey is where a plan sorts in a search: by LastUpdated, ties broken by
// ID, in the query's Order.
type PlanKey struct {
	LastUpdated time.Time
	ID          string
}

// KeyOf returns the key of p, as the After of the next page.
func KeyOf(p cpis.Plan) *PlanKey { return &PlanKey{LastUpdated: p.LastUpdated, ID: p.ID} }

// PlanPage is one page of search results.
type PlanPage struct {
	Plans []cpis.Plan
	More  bool // further matches exist after this page
}

// AccessQuery selects a child's access history (Store.AccessHistory).
type AccessQuery struct {
	NHSNumber cpis.NHSNumber
	LACode    string // the reading LA; "" for health readers
	Limit     int    // 1..1000, else Invalid
}

// AuditQuery selects audit records. Zero fields do not constrain.
type AuditQuery struct {
	Patient     cpis.NHSNumber
	OrgCode     string // the actor's organisation (ODS code, or LA code)
	ActorUserID string
	// RecordedFrom (inclusive) and RecordedBefore (exclusive) bound Recorded.
	RecordedFrom, RecordedBefore time.Time
	AccessOnly                   bool // only records with Access set
	// Before, when set, keeps only records that sort after this key, newest
	// first: older, or as old with a smaller ID (keyset paging). The trail
	// is append-only, so following pages by Before gives every record once.
	// Invalid with an empty ID.
	Before *AuditKey
	Limit  int // 1..1000, else Invalid
}

// AuditKey is where an audit record sorts: by Recorded, ties broken by ID,
// both descending.
type AuditKey struct {
	Recorded time.Time
	ID       string
}

// AuditKeyOf returns the key of r, as the Before of the next page.
func AuditKeyOf(r cpis.AuditRecord) *AuditKey { return &AuditKey{Recorded: r.Recorded, ID: r.ID} }

// CheckAccessQuery is what every store checks of an AccessQuery before it
// runs it.
func CheckAccessQuery(op string, q AccessQuery) error {
	switch {
	case q.NHSNumber == "":
		return cpis.E(op, cpis.Invalid, "an access history is of one child: it needs the NHS number")
	case q.Limit < 1 || q.Limit > 1000:
		return cpis.E(op, cpis.Invalid, "the access history is 1 to 1000 records")
	}
	return nil
}

// CheckImport is what every Importer checks before it writes: it refuses an
// import holding a plan the service would not store, one without an id or
// time of update, or breaking a rule of the SOP.
func CheckImport(op string, plans []cpis.Plan) error {
	for _, p := range plans {
		if p.ID == "" || p.LastUpdated.IsZero() {
			return cpis.E(op, cpis.Invalid, "every imported plan needs an id and a last-updated time")
		}
		if err := p.Validate(); err != nil {
			return cpis.E(op, cpis.Invalid, "an imported plan breaks a rule", err)
		}
	}
	return nil
}

// CheckOverlap is the rule every store applies before it writes p, with
// held the plans it now holds on p.NHSNumber (current versions, any LA,
// any status): Conflict, naming the first of held that p overlaps
// (cpis.Plan.Overlaps) other than p itself, or nil. The message names that
// plan by its id, a server-made UUID, and never the NHS number.
func CheckOverlap(op string, p cpis.Plan, held []cpis.Plan) error {
	for _, h := range held {
		if h.ID != p.ID && p.Overlaps(h) {
			return cpis.E(op, cpis.Conflict, cpis.Expr("Flag.period"), fmt.Sprintf(
				"this local authority already holds a %s for this child whose period overlaps: Flag/%s; change that plan instead",
				h.Type, h.ID))
		}
	}
	return nil
}
