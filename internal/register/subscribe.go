package register

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Subscriptions (docs/domain.md, Subscriptions): who may subscribe to
// what, and who may see and change a subscription. A subscription is its
// owner's alone: any other caller is answered NotFound, word for word as
// for an id that does not exist, so ids cannot be probed.

// Subscribe stores a new subscription of the caller's (POST
// /Subscription). sub holds what the caller asked for; the register sets
// its id, owner, status (requested: the handshake comes next) and times.
// An LA system may subscribe to its own ASNs and to the plan changes of its
// own plans on a child; a health organisation's system, to the plan
// changes on a child it may read plans of. Audited (not an access).
func (s *Service) Subscribe(ctx context.Context, c Caller, sub cpis.Subscription) (store.SubscriptionRecord, error) {
	const op = "register.Subscribe"
	p := c.Principal
	if !p.MaySubscribe("c") {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.AccessDenied, "subscriptions are for local authority and health organisation systems (scope system/Subscription.write or .c)")
	}
	la, err := subscriberLA(p, sub, op)
	if err != nil {
		return store.SubscriptionRecord{}, err
	}
	at := stamp(c.At)
	sub.ID, sub.Owner, sub.LACode = s.newID(), p.Actor, la
	sub.Status, sub.Error, sub.Created, sub.Updated = cpis.SubRequested, "", at, at
	if err := s.checkSubscription(ctx, sub, op); err != nil {
		return store.SubscriptionRecord{}, err
	}
	if err := s.audit.Record(ctx, s.record(c, cpis.ActionCreate, "create", sub.NHSNumber, nil)); err != nil {
		return store.SubscriptionRecord{}, err
	}
	rec, err := s.store.CreateSubscription(ctx, sub)
	if err != nil {
		return store.SubscriptionRecord{}, cpis.E(op, err)
	}
	return rec, nil
}

// subscriberLA decides whether p may subscribe to sub's topic with sub's
// filter, and returns the LA whose events it receives.
func subscriberLA(p *auth.Principal, sub cpis.Subscription, op string) (string, error) {
	switch sub.Topic {
	case cpis.TopicASN:
		switch {
		case !p.MayReadNotifications():
			return "", cpis.E(op, cpis.AccessDenied, "ASNs are sent to local authority systems (scope system/Communication.read)")
		case sub.LACode != "" && sub.LACode != p.LACode:
			return "", cpis.E(op, cpis.AccessDenied, cpis.Expr("Subscription.criteria"), "a local authority subscribes only to the notifications sent to it")
		}
		return p.LACode, nil
	case cpis.TopicPlanChange:
		switch {
		case sub.LACode != "":
			return "", cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.criteria"), "the plan-change topic is filtered by patient:identifier only")
		case p.MayReadOwnPlans():
			return p.LACode, nil // its own plans on the child
		case p.Kind == cpis.HealthSystem && p.MayReadPlans():
			return "", nil // every LA's plans on the child, as a read would show them
		}
		return "", cpis.E(op, cpis.AccessDenied, "watching a child's plans needs a local authority system (system/Flag.read) or a health organisation's system with B0107 or B0170 and system/Flag.read")
	}
	return "", cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.criteria"), "no such subscription topic")
}

// checkSubscription applies the rules every stored subscription keeps:
// its form (cpis.Subscription.Check) and the delivery's network policy for
// its endpoint.
func (s *Service) checkSubscription(ctx context.Context, sub cpis.Subscription, op string) error {
	if err := sub.Check(s.devEndpoints); err != nil {
		return cpis.E(op, err)
	}
	if s.endpointPolicy != nil {
		if err := s.endpointPolicy(ctx, sub.Endpoint); err != nil {
			return cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.channel.endpoint"), "the endpoint is not allowed", err)
		}
	}
	return nil
}

// Subscription returns one of the caller's subscriptions (GET
// /Subscription/{id}, $status); NotFound for any other.
func (s *Service) Subscription(ctx context.Context, c Caller, id string) (store.SubscriptionRecord, error) {
	const op = "register.Subscription"
	if !c.Principal.MaySubscribe("r") {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.AccessDenied, "reading subscriptions needs scope system/Subscription.read (or .r)")
	}
	return s.ownSubscription(ctx, c.Principal, id, op)
}

// ownSubscription reads subscription id if p owns it.
func (s *Service) ownSubscription(ctx context.Context, p *auth.Principal, id, op string) (store.SubscriptionRecord, error) {
	notFound := cpis.E(op, cpis.NotFound, "no subscription with this id")
	if !resourceID.MatchString(id) {
		return store.SubscriptionRecord{}, notFound
	}
	rec, err := s.store.Subscription(ctx, id)
	switch {
	case cpis.KindOf(err) == cpis.NotFound:
		return store.SubscriptionRecord{}, notFound
	case err != nil:
		return store.SubscriptionRecord{}, cpis.E(op, err)
	case store.OwnerOf(rec.Subscription) != ownerOf(p):
		return store.SubscriptionRecord{}, notFound
	}
	return rec, nil
}

// ownerOf is the owner a subscription of p's has.
func ownerOf(p *auth.Principal) store.Owner {
	return store.Owner{OrgCode: p.OrgCode, ClientID: p.UserID}
}

// Subscriptions returns the caller's subscriptions, oldest first (GET
// /Subscription).
func (s *Service) Subscriptions(ctx context.Context, c Caller) ([]store.SubscriptionRecord, error) {
	const op = "register.Subscriptions"
	if !c.Principal.MaySubscribe("s") {
		return nil, cpis.E(op, cpis.AccessDenied, "listing subscriptions needs scope system/Subscription.read (or .s)")
	}
	recs, err := s.store.SubscriptionsOf(ctx, ownerOf(c.Principal))
	if err != nil {
		return nil, cpis.E(op, err)
	}
	return recs, nil
}

// ChangeSubscription replaces what the owner may change of a subscription
// (PUT /Subscription/{id}): its endpoint, headers, payload, heartbeat,
// timeout, max-count, end, reason and status. The topic and the filter
// cannot change: that is a new subscription. A header sent back masked
// (masked reports it) keeps its stored value. Setting an error or off
// subscription back to active or requested resumes delivery from its first
// undelivered event; a new endpoint is greeted with a new handshake.
func (s *Service) ChangeSubscription(ctx context.Context, c Caller, sub cpis.Subscription, masked func(string) bool) (store.SubscriptionRecord, error) {
	const op = "register.ChangeSubscription"
	if !c.Principal.MaySubscribe("u") {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.AccessDenied, "changing subscriptions needs scope system/Subscription.write (or .u)")
	}
	cur, err := s.ownSubscription(ctx, c.Principal, sub.ID, op)
	if err != nil {
		return store.SubscriptionRecord{}, err
	}
	if sub.Topic != cur.Topic || sub.NHSNumber != cur.NHSNumber || (sub.LACode != "" && sub.LACode != cur.LACode) {
		return store.SubscriptionRecord{}, cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.criteria"), "the topic and filter of a subscription cannot change: create a new subscription")
	}
	change, err := changeOf(cur, sub, masked, stamp(c.At), op)
	if err != nil {
		return store.SubscriptionRecord{}, err
	}
	if err := s.checkSubscription(ctx, change.Subscription, op); err != nil {
		return store.SubscriptionRecord{}, err
	}
	if err := s.audit.Record(ctx, s.record(c, cpis.ActionUpdate, "update", cur.NHSNumber, nil)); err != nil {
		return store.SubscriptionRecord{}, err
	}
	rec, err := s.store.UpdateSubscription(ctx, change)
	if err != nil {
		return store.SubscriptionRecord{}, cpis.E(op, err)
	}
	return rec, nil
}

// changeOf is the stored change an owner's PUT asks for.
func changeOf(cur store.SubscriptionRecord, sub cpis.Subscription, masked func(string) bool, at time.Time, op string) (store.SubscriptionChange, error) {
	next := cur.Subscription
	next.Updated = at
	next.Endpoint, next.Content, next.Reason = sub.Endpoint, sub.Content, sub.Reason
	next.HeartbeatPeriod, next.Timeout, next.MaxCount, next.End = sub.HeartbeatPeriod, sub.Timeout, sub.MaxCount, sub.End
	var err error
	if next.Headers, err = keepMasked(cur.Headers, sub.Headers, masked, op); err != nil {
		return store.SubscriptionChange{}, err
	}
	change := store.SubscriptionChange{Subscription: next, Handshake: cur.State.Handshake}
	newEndpoint := sub.Endpoint != cur.Endpoint
	switch sub.Status {
	case cpis.SubOff:
		next.Status, next.Error = cpis.SubOff, ""
	case cpis.SubActive, cpis.SubRequested, "":
		switch {
		case newEndpoint || !cur.State.Handshake:
			next.Status, next.Error = cpis.SubRequested, ""
			change.Resume, change.Handshake = true, false
		case cur.Status == cpis.SubError || cur.Status == cpis.SubOff:
			next.Status, next.Error = cpis.SubActive, ""
			change.Resume = true
		}
	default:
		return store.SubscriptionChange{}, cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.status"), "a subscription's owner sets its status to active, requested or off")
	}
	change.Subscription = next
	return change, nil
}

// keepMasked returns the headers asked for, each header sent back masked
// replaced by the stored one of the same name (names compare as HTTP's
// do, ignoring case). A masked header naming none is refused: its value
// is not known.
func keepMasked(stored, asked []string, masked func(string) bool, op string) ([]string, error) {
	out := make([]string, 0, len(asked))
	for _, h := range asked {
		if masked != nil && masked(h) {
			i := slices.IndexFunc(stored, func(s string) bool { return strings.EqualFold(cpis.HeaderName(s), cpis.HeaderName(h)) })
			if i < 0 {
				return nil, cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.channel.header"),
					"a masked header (\"Name: ***\") keeps the stored header of that name, and there is none: send its value")
			}
			h = stored[i]
		}
		out = append(out, h)
	}
	return out, nil
}

// Unsubscribe deletes one of the caller's subscriptions (DELETE
// /Subscription/{id}). Audited.
func (s *Service) Unsubscribe(ctx context.Context, c Caller, id string) error {
	const op = "register.Unsubscribe"
	if !c.Principal.MaySubscribe("d") {
		return cpis.E(op, cpis.AccessDenied, "deleting subscriptions needs scope system/Subscription.write (or .d)")
	}
	cur, err := s.ownSubscription(ctx, c.Principal, id, op)
	if err != nil {
		return err
	}
	if err := s.audit.Record(ctx, s.record(c, cpis.ActionDelete, "delete", cur.NHSNumber, nil)); err != nil {
		return err
	}
	if err := s.store.DeleteSubscription(ctx, id); err != nil {
		return cpis.E(op, err)
	}
	return nil
}
