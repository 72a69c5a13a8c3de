package store

import (
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The event log: every plan version stored and every ASN sent, in the order
// their transactions committed. It is what the change feeds (GET
// /Flag/_history, GET /Communication) and the subscriptions read, and it is
// append-only: only retention (DeleteEventsBefore) removes events, oldest
// first.
//
// Why a feed position cannot be taken before commit: two transactions T1
// and T2 take positions (or timestamps) 10 and 11; T2 commits first; a
// poller reads 11 and moves past it; T1 then commits 10 behind the poller,
// which never sees it. So a store assigns the positions of a
// transaction's events at its commit, under one lock that every
// event-writing transaction takes as its last step and holds until its
// commit is visible (PostgreSQL: the row lock on the one row of
// event_head, taken by the UPDATE that advances it; SQLite: the one
// writer). Transactions hence take positions in the order they commit, a
// position is visible only once every lower one is, and a reader that has
// seen position p has seen everything before p and will see everything
// after it: following Position (or Stamp) never skips nor repeats an
// event, on any replica, across restarts. The lock is held from the
// events' insert to the commit, a few statements; transactions writing no
// event (searches that sent no ASN) never take it.
//
// Stamp is the event's instant on the feed's clock: the greatest of the
// writer's own time for it and one microsecond after the previous
// transaction's stamp, so stamps never decrease along positions and each
// transaction's are later than every earlier one's. The events of one
// transaction share its stamp. Stores stay clock-free: the writer's time is
// the plan version's LastUpdated or the ASN's Sent.

// EventKind tells what an event records.
type EventKind string

// Event kinds.
const (
	PlanChanged EventKind = "plan" // a plan version was stored (created, updated, withdrawn)
	ASNSent     EventKind = "asn"  // an Access to Service Notification was sent
)

// Event is one entry of the event log.
type Event struct {
	Position  int64     // 1, 2, ... in commit order; never reused
	Stamp     time.Time // see above: never decreases along Position
	Kind      EventKind
	LACode    string // the LA concerned: the plan's, or the ASN's recipient
	NHSNumber cpis.NHSNumber
	Plan      cpis.Plan // PlanChanged: the version stored
	ASN       cpis.ASN  // ASNSent: the notification (CoalesceWindow is not kept)
}

// EventKey is where an event sorts: by Stamp, ties broken by Position.
// Along the log both increase together, so this is the commit order.
type EventKey struct {
	Stamp    time.Time
	Position int64
}

// EventKeyOf returns the key of e, as the After of the next page.
func EventKeyOf(e Event) *EventKey { return &EventKey{Stamp: e.Stamp, Position: e.Position} }

// EventQuery selects events. Zero fields do not constrain.
type EventQuery struct {
	Kind      EventKind // "" for every kind
	LACode    string    // only this LA's events
	NHSNumber cpis.NHSNumber
	ASNID     string // ASNSent only: the notification with this id
	// From (inclusive) and Before (exclusive) bound Stamp.
	From, Before time.Time
	Order        Order // OldestFirst: commit order; NewestFirst: the reverse
	// After, when set, keeps only events that sort after this key in Order
	// (keyset paging: new events join only at the newest end, so following
	// pages oldest first reaches every later commit exactly once).
	After *EventKey
	Limit int // the page size: 1..1000, else Invalid
}

// EventPage is one page of the event log.
type EventPage struct {
	Events []Event
	More   bool // further matches exist after this page
	// Horizon is an instant up to which the log was complete when the page
	// was read: every event with a Stamp before it had committed (so a page
	// with More false, oldest first, holds every match before it), and every
	// event that commits later has a Stamp at or after it. A poller asking
	// next with From = Horizon misses nothing and repeats nothing. Zero if
	// the log was empty.
	Horizon time.Time
}

// CheckEventQuery is what every store checks of an EventQuery before it runs it.
func CheckEventQuery(op string, q EventQuery) error {
	switch {
	case q.Limit < 1 || q.Limit > 1000:
		return cpis.E(op, cpis.Invalid, "a page of events is 1 to 1000")
	case q.Kind != "" && q.Kind != PlanChanged && q.Kind != ASNSent:
		return cpis.E(op, cpis.Invalid, "no such kind of event")
	case q.ASNID != "" && q.Kind != ASNSent:
		return cpis.E(op, cpis.Invalid, "only ASNs are looked up by id")
	case q.After != nil && q.After.Position < 1:
		return cpis.E(op, cpis.Invalid, "an event key needs its position")
	}
	return nil
}
