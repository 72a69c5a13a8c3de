package register

import (
	"context"
	"fmt"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Notice is what a notification (or a $events answer) may carry of a
// subscription's events, decided for its owner: the events, and how their
// plans are shown.
type Notice struct {
	Events []NoticeEvent
	View   cpis.View // the owner's view of plans: OwnerView for an LA, HealthView for a health system
	Today  cpis.Date // the day plan statuses are judged on
}

// NoticeEvent is one event of a notice.
type NoticeEvent struct {
	store.SubscriptionEvent
	// Withdrawn marks a plan change a health system may no longer be shown
	// (the plan was withdrawn, or is outside its display window): the
	// notification names the plan but carries none of its data, which
	// tells the EPR to take its alert down.
	Withdrawn bool
}

// Deliverable prepares events of subscription rec for a notification with
// the given content, sent at instant at, and records its audit: only when
// it returns nil may the notification leave. A full-resource notification
// to a health system shows plan data, so it is recorded as an access, in
// scheduled care (no ASN: the system is not treating the child in an
// emergency); every other notification is recorded as an audit entry that
// is not an access: one record per child. Handshakes and heartbeats carry
// no events and record nothing.
func (s *Service) Deliverable(ctx context.Context, rec store.SubscriptionRecord, events []store.SubscriptionEvent, content cpis.PayloadContent, at time.Time) (Notice, error) {
	c := Caller{Principal: ownerPrincipal(rec.Owner), At: at, Query: deliveryQuery(rec.ID, events)}
	return s.notice(ctx, c, rec, events, content)
}

// SubscriptionEvents replays the events of one of the caller's
// subscriptions numbered since..until ($events; until 0: the last), at most limit of them, with
// the given content (the subscription's when ""). Audited as a
// delivery would be.
func (s *Service) SubscriptionEvents(ctx context.Context, c Caller, id string, since, until int64, limit int, content cpis.PayloadContent) (store.SubscriptionRecord, Notice, error) {
	const op = "register.SubscriptionEvents"
	if !c.Principal.MaySubscribe("r") {
		return store.SubscriptionRecord{}, Notice{}, cpis.E(op, cpis.AccessDenied, "reading subscriptions needs scope system/Subscription.read (or .r)")
	}
	rec, err := s.ownSubscription(ctx, c.Principal, id, op)
	if err != nil {
		return store.SubscriptionRecord{}, Notice{}, err
	}
	state, err := s.store.MatchSubscriptionEvents(ctx, id, 1000)
	if err != nil {
		return store.SubscriptionRecord{}, Notice{}, cpis.E(op, err)
	}
	rec.State = state
	if until == 0 || until > state.Numbered {
		until = state.Numbered
	}
	since = max(since, 1)
	var events []store.SubscriptionEvent
	if since <= until {
		if events, err = s.store.SubscriptionEvents(ctx, id, since, until, limit); err != nil {
			return store.SubscriptionRecord{}, Notice{}, cpis.E(op, err)
		}
	}
	if content == "" {
		content = rec.Content
	}
	n, err := s.notice(ctx, c, rec, events, content)
	return rec, n, err
}

// notice decides what c may be shown of events, and records it.
func (s *Service) notice(ctx context.Context, c Caller, rec store.SubscriptionRecord, events []store.SubscriptionEvent, content cpis.PayloadContent) (Notice, error) {
	today := cpis.Today(c.At)
	health := rec.Owner.IsHealth()
	n := Notice{Events: make([]NoticeEvent, len(events)), View: cpis.OwnerView, Today: today}
	if health {
		n.View = cpis.HealthView
	}
	for i, e := range events {
		s.nameLA(&e.Plan)
		n.Events[i] = NoticeEvent{SubscriptionEvent: e}
		if health && e.Kind == store.PlanChanged {
			shown, err := s.shownToHealth(ctx, e.Plan, today)
			if err != nil {
				return Notice{}, err
			}
			n.Events[i].Withdrawn = !shown
		}
	}
	if len(events) == 0 {
		return n, nil
	}
	return n, s.audit.Record(ctx, s.noticeRecords(c, n, health && content == cpis.ContentFullResource, content)...)
}

// shownToHealth reports whether a health reader may be shown version p
// today: it and the plan's current version within the display window and
// not withdrawn, as a search as of p's time would decide.
func (s *Service) shownToHealth(ctx context.Context, p cpis.Plan, today cpis.Date) (bool, error) {
	if !p.VisibleToHealth(today) {
		return false, nil
	}
	cur, err := s.store.Plan(ctx, p.ID)
	if err != nil {
		return false, cpis.E("register.shownToHealth", err)
	}
	return cur.VisibleToHealth(today), nil
}

// noticeRecords are the audit records of a notice: one per child, in the
// order of their first event. access marks a health system's
// full-resource notice: each child's record names the plans shown and is
// an access (scheduled care). Otherwise the records are not accesses, and
// name the plans whose ids were sent (none for empty content).
func (s *Service) noticeRecords(c Caller, n Notice, access bool, content cpis.PayloadContent) []cpis.AuditRecord {
	var order []cpis.NHSNumber
	plans := map[cpis.NHSNumber][]cpis.Plan{}
	for _, e := range n.Events {
		if _, seen := plans[e.NHSNumber]; !seen {
			order = append(order, e.NHSNumber)
			plans[e.NHSNumber] = nil
		}
		named := content != cpis.ContentEmpty && !(access && e.Withdrawn)
		if e.Kind == store.PlanChanged && named {
			plans[e.NHSNumber] = append(plans[e.NHSNumber], e.Plan)
		}
	}
	recs := make([]cpis.AuditRecord, 0, len(order))
	for _, nhs := range order {
		rec := s.record(c, cpis.ActionRead, "history-type", nhs, plans[nhs])
		rec.Query = c.Query
		rec.Access = access && len(plans[nhs]) > 0 // scheduled care: Unscheduled false, no ASN
		recs = append(recs, rec)
	}
	return recs
}

// ownerPrincipal is the subscribing system as it was when it subscribed:
// deliveries act with the rights it had then.
func ownerPrincipal(owner cpis.Actor) *auth.Principal {
	p := &auth.Principal{Actor: owner, ClientID: owner.UserID, Subject: owner.UserID}
	if owner.Kind == cpis.LASystem {
		p.LACode = owner.OrgCode
	}
	return p
}

// deliveryQuery says in the audit record which notification it was.
func deliveryQuery(id string, events []store.SubscriptionEvent) string {
	if len(events) == 0 {
		return "Subscription/" + id + " notification"
	}
	return fmt.Sprintf("Subscription/%s notification, events %d to %d", id, events[0].Number, events[len(events)-1].Number)
}
