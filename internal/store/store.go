// Package store is the one storage contract of the service. Two backends
// implement it, internal/store/sqlite (embedded, the default) and
// internal/store/postgres (production); storetest holds the behaviour both
// must show. Stores are clock-free: every time they record comes from the
// caller, so the date rules stay testable.
package store

import (
	"context"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Store holds plans with their version history, and the audit trail.
//
// Errors are *cpis.Error values with these kinds: NotFound, Conflict (a
// write clashing with what is stored: see WriteTx.Put), Unavailable (the
// database cannot be reached, a lock could not be had in time, or the
// transaction could not commit; safe to retry), Invalid (a query or write
// the store cannot run), and Other for anything unexpected. Driver errors
// never leave a store untranslated.
//
// The store applies no rule of the service to plans beyond what keeps its
// data whole (versions in sequence, one write per request id, an LA's
// references unique): who may write, the overlap rule and request-id
// replays are the application's (internal/register), which reads and writes
// inside one WriteTx.
type Store interface {
	// BeginWrite starts a write transaction on the plans of local authority
	// laCode. The writes of one LA are serialized, also across processes
	// sharing the database (PostgreSQL: a transaction-scoped advisory lock
	// keyed by the LA code and the schema, taken here, with lock_timeout
	// bounding the wait; SQLite: the one writer, so there every write
	// transaction, of any LA, and every AppendAudit waits for the one
	// open), so what the transaction reads of that LA's plans stays true
	// until it ends: the caller applies every rule to what it reads and
	// stores the outcome with Put. End it with Commit or Rollback; Rollback
	// after Commit does nothing, so `defer tx.Rollback(ctx)` is the pattern.
	// Unavailable if the lock cannot be had before ctx ends or the lock
	// timeout passes; Invalid without an LA code.
	BeginWrite(ctx context.Context, laCode string) (WriteTx, error)

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
	//
	// Each ASN of a record (AuditRecord.ASNs) is appended to the event log
	// (ASNSent) in the same transaction, unless it coalesces
	// (cpis.ASN.CoalescesWith) with an ASN the log holds or this call stores
	// before it (records and their ASNs in order). The check and the append
	// are atomic with respect to every other writer, on every replica: two
	// concurrent accesses inside one window never both send.
	AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error

	// Events returns one page of the event log (see events.go). Invalid if
	// CheckEventQuery refuses q.
	Events(ctx context.Context, q EventQuery) (EventPage, error)

	// DeleteEventsBefore removes the events with a Stamp before cutoff
	// (retention), with their numbers in every subscription, and returns
	// how many events it removed. Plan versions and audit records are not
	// touched.
	DeleteEventsBefore(ctx context.Context, cutoff time.Time) (int64, error)

	// CreateSubscription stores s (ID, Owner, Created and Updated set by
	// the caller) with a fresh delivery state: StartPosition and Scanned at
	// the log's head now, nothing numbered or delivered, NextAttempt =
	// s.Created. Conflict if the id is taken; Invalid without an id.
	CreateSubscription(ctx context.Context, s cpis.Subscription) (SubscriptionRecord, error)

	// Subscription returns subscription id with its delivery state, or
	// NotFound.
	Subscription(ctx context.Context, id string) (SubscriptionRecord, error)

	// SubscriptionsOf returns the subscriptions of o, oldest first (ties by
	// id).
	SubscriptionsOf(ctx context.Context, o Owner) ([]SubscriptionRecord, error)

	// UpdateSubscription replaces what its owner may change of subscription
	// c.Subscription.ID (every field but ID, Owner, Topic, LACode,
	// NHSNumber and Created) and returns it; NotFound if there is none.
	// With c.Resume it clears the failure state, makes the subscription
	// due at Updated and sets Handshake to c.Handshake (false: a new
	// handshake is sent). Numbering and Delivered are kept: delivery
	// resumes from the first undelivered event. It ends any lease: the
	// holder's next RecordDelivery is refused (Conflict), so no delivery
	// goes on with the subscription as it was, and the next claim takes it
	// as it now is.
	UpdateSubscription(ctx context.Context, c SubscriptionChange) (SubscriptionRecord, error)

	// DeleteSubscription removes subscription id and its numbering;
	// NotFound if there is none.
	DeleteSubscription(ctx context.Context, id string) error

	// MatchSubscriptionEvents numbers the events of subscription id
	// (subscriptions.go) committed after its last scan, in position order,
	// scanning at most limit (1..1000) positions' worth of matches, and
	// returns the state after. It runs whatever the status, so that $events
	// sees every event. Calls for one subscription are serialized, also
	// across replicas: no number is given twice nor skipped. NotFound if
	// the subscription is gone.
	MatchSubscriptionEvents(ctx context.Context, id string, limit int) (DeliveryState, error)

	// SubscriptionEvents returns the numbered events of subscription id
	// with from <= Number <= until, in number order, at most limit
	// (1..1000, else Invalid). Events retention removed are absent.
	SubscriptionEvents(ctx context.Context, id string, from, until int64, limit int) ([]SubscriptionEvent, error)

	// ClaimSubscriptions leases to c.Lease, until c.Now+c.For, up to
	// c.Limit subscriptions due at c.Now, earliest NextAttempt first: status
	// requested or active, no unexpired lease, NextAttempt <= c.Now, and
	// something to do: the handshake not acknowledged, Numbered >
	// Delivered, an event matching it (subscriptions.go) committed after
	// Scanned, or a heartbeat due
	// (HeartbeatPeriod > 0 and the later of LastSent and Created at most
	// c.Now-HeartbeatPeriod). Concurrent claims, on any replica, never
	// lease one subscription twice. Invalid if CheckClaim refuses c.
	ClaimSubscriptions(ctx context.Context, c Claim) ([]SubscriptionRecord, error)

	// RecordDelivery writes p's state for subscription id if p.Lease still
	// holds its lease (Conflict if another claimer took it since, NotFound
	// if it was deleted). p.Status applies only while the status is
	// requested or active, so that it never undoes its owner's "off".
	RecordDelivery(ctx context.Context, id string, p Progress) error

	// SubscriptionBacklog returns, per topic, the events numbered but not
	// yet delivered over every subscription that is not off: the delivery
	// queue's depth.
	SubscriptionBacklog(ctx context.Context) (map[cpis.Topic]int64, error)

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

	// CreateDiscrepancy stores a new, open discrepancy report
	// (discrepancies.go). Invalid if CheckDiscrepancy refuses it; Conflict
	// if its id is taken.
	CreateDiscrepancy(ctx context.Context, d cpis.Discrepancy) error

	// Discrepancy returns report id, or NotFound.
	Discrepancy(ctx context.Context, id string) (cpis.Discrepancy, error)

	// Discrepancies returns the reports matching q, open ones first, then
	// newest reported first (ties by id, descending). Invalid if
	// CheckDiscrepancyQuery refuses q.
	Discrepancies(ctx context.Context, q DiscrepancyQuery) ([]cpis.Discrepancy, error)

	// ResolveDiscrepancy marks report id resolved by `by` at `at`, and
	// returns it. A report already resolved is returned as it is: the
	// first resolution stands, so two reviewers resolving one report at
	// once both succeed and one resolution is recorded. NotFound if there
	// is no such report; Invalid without a resolver or a time.
	ResolveDiscrepancy(ctx context.Context, id string, by cpis.Actor, at time.Time) (cpis.Discrepancy, error)

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
	// act, recorded by whoever runs it. It applies no rule of the service
	// (the overlap rule, cpis.Plan.Overlaps, is the register's): an import
	// takes another system's register as it is, and any duplicates in it
	// are for their LA to withdraw. It stores no digest (Version.Digest
	// ""), so WriteTx.ByDigest finds none of these plans. Each plan is an
	// event of the log (PlanChanged), as if written. Invalid if a plan
	// has no ID or LastUpdated, or fails cpis.Plan.Validate; Conflict if a
	// plan id is already stored or appears twice, or a reference is held by
	// another of its LA's plans not entered in error (stored or imported);
	// Unavailable as for Store.
	ImportPlans(ctx context.Context, plans []cpis.Plan) error
}

// WriteTx is a write transaction on one LA's plans (Store.BeginWrite).
// Reads see what Put has stored in it. Errors are *cpis.Error of the
// contract's kinds; after any error the transaction can only be rolled back
// (every other method returns an error of the first one's kind). A WriteTx
// is not safe for concurrent use.
type WriteTx interface {
	// Plan returns the current version of plan id, whichever LA's, or
	// NotFound.
	Plan(ctx context.Context, id string) (cpis.Plan, error)

	// ByReference returns this LA's plans that are not entered in error and
	// carry one of refs, keyed by reference (absent when there is none).
	// Empty references are ignored.
	ByReference(ctx context.Context, refs []string) (map[string]cpis.Plan, error)

	// ByDigest returns this LA's plans that are not entered in error and
	// whose current version was stored with one of digests
	// (Version.Digest), keyed by digest (absent when there is none). Empty
	// digests are ignored. The store keeps digests as given and does not
	// keep them unique: should several plans hold one, the one with the
	// smallest id is returned. It costs an index probe per digest, however
	// many plans the LA holds: an import asks it for each chunk of lines
	// before it parses them, to skip those that wrote a plan as it is now.
	ByDigest(ctx context.Context, digests []string) (map[string]cpis.Plan, error)

	// ChildPlans returns this LA's plans not entered in error on any of the
	// NHS numbers (current versions), in no particular order: what the
	// overlap rule is checked against.
	ChildPlans(ctx context.Context, nhs []cpis.NHSNumber) ([]cpis.Plan, error)

	// Current calls fn with each of this LA's plans that is not entered in
	// error and ends on or after day (End >= day; the zero day: every one),
	// in no particular order, streaming (an LA may hold 300,000), stopping
	// at fn's first error, which it returns as it is and which leaves the
	// transaction usable. fn must not call the transaction's methods: the
	// store may still be reading.
	Current(ctx context.Context, day cpis.Date, fn func(cpis.Plan) error) error

	// Replay returns the version this LA's write with requestID stored, if
	// one did (false for an empty requestID).
	Replay(ctx context.Context, requestID string) (cpis.Plan, bool, error)

	// Put stores, in order, each version as the new current version of its
	// plan, with its request id (for Replay; "" for none) and its digest
	// (for ByDigest: the plan's digest becomes the version's, so a version
	// without one clears it), and every audit record in recs (recs may come
	// without versions: an audited request that changed nothing). A version
	// is 1 for a new plan, or one more than the plan's current version; a
	// plan may appear more than once, in version order. Conflict if: a new
	// plan's id is taken; a version is not one more than the current one
	// (the caller's reads are stale: a bug, given the lock); a request id is
	// already used by this LA (also by another version of the same call); a
	// reference is held by another of this LA's plans not entered in error.
	// A backend may store the versions of one call together, and then
	// refuses a reference only if two plans would still share it once they
	// all are: a call succeeds whenever storing its versions one at a time
	// would, and never leaves two plans sharing a reference. Invalid if a
	// version's plan, or the current version it follows, is not this
	// transaction's LA's, or has no ID, a version below 1 or no LastUpdated.
	// Put writes in bulk: a call with thousands of versions costs a few
	// statements, not thousands, and may be called many times in one
	// transaction (an import calls it once per chunk of about 1,000 lines).
	//
	// Every version stored is also an event of the log (PlanChanged), which
	// takes its position when the transaction commits (events.go).
	Put(ctx context.Context, versions []Version, recs []cpis.AuditRecord) error

	// Commit makes the transaction's writes durable and visible, and ends
	// it. Unavailable if it could not commit (nothing is stored then); an
	// error of the first one's kind if an earlier call failed.
	Commit(ctx context.Context) error

	// Rollback discards the transaction's writes and ends it. After Commit,
	// or a first Rollback, it does nothing and returns nil.
	Rollback(ctx context.Context) error
}

// Version is one plan version for WriteTx.Put.
type Version struct {
	Plan      cpis.Plan // its ID, Version and LastUpdated set by the caller
	RequestID string    // the X-Request-ID of the write that made it, or ""
	// Digest is the digest of the import line that wrote this version, or
	// "" for any other write: a plan changed since by any other write no
	// longer matches its old line. The store keeps it opaque, with the
	// plan's current version only (WriteTx.ByDigest), never in its history.
	Digest string
}

// CheckVersions is what every WriteTx.Put checks before it writes: each
// version is of laCode's plan, with an id, a version of at least 1 and a
// time of update.
func CheckVersions(op, laCode string, versions []Version) error {
	for _, v := range versions {
		p := v.Plan
		switch {
		case p.LA.Code != laCode:
			return cpis.E(op, cpis.Invalid, "a write transaction stores only its own local authority's plans")
		case p.ID == "" || p.Version < 1 || p.LastUpdated.IsZero():
			return cpis.E(op, cpis.Invalid, "every version stored needs a plan id, a version from 1 and a last-updated time")
		}
	}
	return nil
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

// TxState is what a store's write transaction keeps of itself: its first
// error, after which it can only be rolled back, and whether it has ended.
// Both stores embed it, so the contract's rules for a failed or ended
// WriteTx are written once.
type TxState struct {
	err   error
	ended bool
}

// Usable refuses a call once the transaction has failed or ended.
func (t *TxState) Usable(op string) error {
	switch {
	case t.err != nil:
		return cpis.E(op, "an earlier call of the write transaction failed: it can only be rolled back", t.err)
	case t.ended:
		return cpis.E(op, cpis.Other, "the write transaction has ended")
	}
	return nil
}

// Failed records err, already translated to the contract's kinds, as the
// transaction's first error, and returns it; nil stays nil.
func (t *TxState) Failed(err error) error {
	if err != nil && t.err == nil {
		t.err = err
	}
	return err
}

// End marks the transaction ended and reports whether it already was.
func (t *TxState) End() (already bool) {
	already, t.ended = t.ended, true
	return already
}
