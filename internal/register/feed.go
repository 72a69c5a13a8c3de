package register

import (
	"context"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Feed is a page of the event log as an LA system is shown it: its own
// plan changes (PlanChanges) or the ASNs sent to it (Notifications).
type Feed struct {
	Events  []store.Event
	More    bool             // further events match after these
	Horizon time.Time        // see store.EventPage
	Query   store.EventQuery // the query as run, narrowed to the caller's LA
	View    cpis.View        // how plans are shown: the owner's view
	Today   cpis.Date        // the day plan statuses are judged on
}

// Next is the query of the page after this one, if there is one: it
// continues after this page's last event, so that following pages
// neither skips nor repeats one.
func (f Feed) Next() (store.EventQuery, bool) {
	if !f.More || len(f.Events) == 0 {
		return store.EventQuery{}, false
	}
	next := f.Query
	next.After = store.EventKeyOf(f.Events[len(f.Events)-1])
	return next, true
}

// PollFrom is where the next poll of this feed starts (its _since, or
// _lastUpdated=ge), or zero when this page cannot say: only the last page
// of an oldest-first read has seen everything before the log's horizon.
func (f Feed) PollFrom() time.Time {
	if f.More || f.Query.Order != store.OldestFirst {
		return time.Time{}
	}
	return f.Horizon
}

// PlanChanges returns a page of the changes to the caller's own plans,
// oldest first (GET /Flag/_history): every version stored, in the order
// the writes committed. Only LA systems may read it: health users have no
// bulk access to the register. Audited as an LA's read of its plans, one
// record per child.
func (s *Service) PlanChanges(ctx context.Context, c Caller, q store.EventQuery) (Feed, error) {
	const op = "register.PlanChanges"
	p := c.Principal
	if !p.MayReadOwnPlans() {
		err := cpis.E(op, cpis.AccessDenied, "the change feed of plans is for local authority systems, of their own plans (scope system/Flag.read)")
		return Feed{}, s.refused(ctx, c, "history-type", "", err)
	}
	q.Kind, q.LACode, q.ASNID, q.Order = store.PlanChanged, p.LACode, "", store.OldestFirst
	f, err := s.feed(ctx, q, op)
	if err != nil {
		return Feed{}, err
	}
	f.Today = cpis.Today(c.At)
	for i := range f.Events {
		s.nameLA(&f.Events[i].Plan)
	}
	if err := s.auditedFeed(ctx, c, cpis.ActionRead, "history-type", f.Events); err != nil {
		return Feed{}, err
	}
	return f, nil
}

// Notifications returns a page of the ASNs sent to the caller's LA (GET
// /Communication), newest first unless q says otherwise. recipient is the
// LA the caller asked for, if it named one: another LA's is refused.
// Reading them is audited, one record per child, but is not an access of
// the child's plans.
func (s *Service) Notifications(ctx context.Context, c Caller, q store.EventQuery, recipient string) (Feed, error) {
	const op = "register.Notifications"
	if err := s.notificationReader(c, recipient, op); err != nil {
		return Feed{}, s.refused(ctx, c, "search-type", q.NHSNumber, err)
	}
	q.Kind, q.LACode = store.ASNSent, c.Principal.LACode
	f, err := s.feed(ctx, q, op)
	if err != nil {
		return Feed{}, err
	}
	if err := s.auditedFeed(ctx, c, cpis.ActionExecute, "search-type", f.Events); err != nil {
		return Feed{}, err
	}
	return f, nil
}

// Notification returns one ASN sent to the caller's LA (GET
// /Communication/{id}); another LA's answers NotFound like an unknown id.
func (s *Service) Notification(ctx context.Context, c Caller, id string) (store.Event, error) {
	const op = "register.Notification"
	if err := s.notificationReader(c, "", op); err != nil {
		return store.Event{}, s.refused(ctx, c, "read", "", err)
	}
	if !resourceID.MatchString(id) {
		return store.Event{}, cpis.E(op, cpis.NotFound, "no notification with this id")
	}
	q := store.EventQuery{Kind: store.ASNSent, LACode: c.Principal.LACode, ASNID: id, Limit: 1}
	f, err := s.feed(ctx, q, op)
	if err != nil {
		return store.Event{}, err
	}
	if len(f.Events) == 0 {
		return store.Event{}, cpis.E(op, cpis.NotFound, "no notification with this id")
	}
	if err := s.auditedFeed(ctx, c, cpis.ActionRead, "read", f.Events); err != nil {
		return store.Event{}, err
	}
	return f.Events[0], nil
}

// notificationReader decides whether the caller may read ASNs: an LA
// system, its own only.
func (s *Service) notificationReader(c Caller, recipient, op string) error {
	p := c.Principal
	switch {
	case !p.MayReadNotifications():
		return cpis.E(op, cpis.AccessDenied, "Access to Service Notifications are read by local authority systems, their own only (scope system/Communication.read)")
	case recipient != "" && recipient != p.LACode:
		return cpis.E(op, cpis.AccessDenied, cpis.Expr("recipient"), "a local authority reads only the notifications sent to it")
	}
	return nil
}

// feed reads one page of the event log.
func (s *Service) feed(ctx context.Context, q store.EventQuery, op string) (Feed, error) {
	page, err := s.store.Events(ctx, q)
	if err != nil {
		return Feed{}, cpis.E(op, err)
	}
	return Feed{Events: page.Events, More: page.More, Horizon: page.Horizon, Query: q, View: cpis.OwnerView}, nil
}

// auditedFeed records an LA's read of its feed: one record per child
// whose events it was given (one with no child for an empty page), naming
// the plans of plan changes; ASNs name none, since reading a notification
// is not an access of the child's plans.
func (s *Service) auditedFeed(ctx context.Context, c Caller, action cpis.AuditAction, interaction string, events []store.Event) error {
	var order []cpis.NHSNumber
	plans := map[cpis.NHSNumber][]cpis.Plan{}
	for _, e := range events {
		if _, seen := plans[e.NHSNumber]; !seen {
			order = append(order, e.NHSNumber)
			plans[e.NHSNumber] = nil
		}
		if e.Kind == store.PlanChanged {
			plans[e.NHSNumber] = append(plans[e.NHSNumber], e.Plan)
		}
	}
	if len(order) == 0 {
		order = append(order, "")
	}
	recs := make([]cpis.AuditRecord, 0, len(order))
	for _, n := range order {
		rec := s.record(c, action, interaction, n, plans[n])
		rec.Query = c.Query
		recs = append(recs, rec)
	}
	return s.audit.Record(ctx, recs...)
}
