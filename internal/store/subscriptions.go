package store

import (
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Subscriptions and their delivery state live in the store, not in a
// process: a replica killed mid-delivery loses nothing, and several
// replicas on one database share the work, each subscription delivered by
// one of them at a time (a lease).
//
// Numbering. Each subscription numbers the events of the log that match
// it 1, 2, 3 ... (the IG's eventNumber; events-since-subscription-start is
// the highest number given so far). MatchSubscriptionEvents extends the
// numbering: it scans the log after the position it reached, in position
// order, and numbers each match. Because positions become visible in order
// (events.go), a scan never skips an event that commits later. Numbers are
// kept (subscription_event) so that $events replays exactly what was or
// will be delivered, until retention removes the event.
//
// A subscription's events are those committed after it was created
// (Position > the log's head at creation) that match: for cpis.TopicASN,
// kind ASNSent and LACode the subscription's; for cpis.TopicPlanChange,
// kind PlanChanged, NHSNumber the subscription's, and LACode the
// subscription's when it has one.

// SubscriptionRecord is a subscription with its delivery state.
type SubscriptionRecord struct {
	cpis.Subscription
	State DeliveryState
}

// DeliveryState is where a subscription's delivery stands.
type DeliveryState struct {
	StartPosition int64 // the log's head when it was created: its events come after
	Scanned       int64 // the log position MatchSubscriptionEvents has scanned up to
	Numbered      int64 // events numbered so far: events-since-subscription-start
	Delivered     int64 // the highest event number its endpoint acknowledged
	Handshake     bool  // the handshake was acknowledged
	// Failures counts consecutive failed attempts; FailingSince is when the
	// first of them was made (zero when the last attempt succeeded).
	Failures     int
	FailingSince time.Time
	NextAttempt  time.Time // no attempt before this instant
	LastSent     time.Time // the last notification acknowledged, for heartbeats
	LastError    string    // what the last failure was, for the owner ($status)
}

// Owner names the system a subscription belongs to: only it may see or
// change it.
type Owner struct {
	OrgCode  string // ODS code, or the LA code
	ClientID string // Actor.UserID of the subscribing system
}

// OwnerOf returns the owner of s.
func OwnerOf(s cpis.Subscription) Owner {
	return Owner{OrgCode: s.Owner.OrgCode, ClientID: s.Owner.UserID}
}

// SubscriptionEvent is an event of the log with its number in one
// subscription.
type SubscriptionEvent struct {
	Number int64
	Event
}

// Claim asks for subscriptions due for delivery (Store.ClaimSubscriptions).
type Claim struct {
	Lease string        // a new random token: who holds the claimed leases
	Now   time.Time     // the claimer's clock
	For   time.Duration // the lease's length: another claimer may take it after Now+For
	Limit int           // at most this many (1..1000)
}

// Progress is what a lease holder records after an attempt
// (Store.RecordDelivery).
type Progress struct {
	Lease string
	Now   time.Time
	For   time.Duration // the lease is extended to Now+For; 0 releases it
	// The state after the attempt: Delivered, Handshake, Failures,
	// FailingSince, NextAttempt, LastSent and LastError are written as
	// given (Delivered never decreases: a smaller value is ignored).
	State DeliveryState
	// Status, when set, becomes the subscription's status (with Error):
	// active after the handshake, error when retries ran out, off at its end.
	Status cpis.SubscriptionStatus
	Error  string
}

// SubscriptionChange is an owner's change of a subscription
// (Store.UpdateSubscription): the new subscription as a whole.
type SubscriptionChange struct {
	Subscription cpis.Subscription
	// Resume clears the failure state (Failures, FailingSince, LastError)
	// and makes it due now: set when the owner sets an error or off
	// subscription back to requested or active, or changes its endpoint.
	// Handshake false asks for a new handshake.
	Resume    bool
	Handshake bool
}

// CheckClaim is what every store checks of a Claim.
func CheckClaim(op string, c Claim) error {
	if c.Lease == "" || c.Limit < 1 || c.Limit > 1000 || c.For <= 0 || c.Now.IsZero() {
		return cpis.E(op, cpis.Invalid, "a claim needs a lease token, a clock, a lease length and a limit of 1 to 1000")
	}
	return nil
}
