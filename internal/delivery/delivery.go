// Package delivery sends subscription notifications (docs/domain.md,
// Subscriptions): it claims the subscriptions due for delivery from the
// store, numbers their new events, has the register decide and audit what
// each notification may carry, renders it as the R4 Subscriptions Backport
// IG's history Bundle and POSTs it to the subscriber's rest-hook.
//
// Nothing is dropped. Delivery state lives in the store: a subscription is
// leased to one replica at a time, events are acknowledged by number only
// after a 2xx answer, and a failed attempt is retried with exponential
// backoff for the retry period before the subscription is set to error,
// its events kept. A killed replica's leases expire and another (or the
// restarted one) resumes from the first unacknowledged event: delivery is
// at least once, in event-number order per subscription.
//
// One slow or dead endpoint never delays the others: each subscription is
// worked on by its own goroutine, at most Workers at once, and a failing
// one waits out its backoff without holding a worker.
package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Defaults of Config.
const (
	DefaultPoll      = 250 * time.Millisecond
	DefaultWorkers   = 8
	DefaultLease     = 30 * time.Second
	DefaultRetryBase = time.Second
	DefaultRetryMax  = 10 * time.Minute
	DefaultRetryFor  = 24 * time.Hour
)

// Config is what a Deliverer is built from. Store, Register and Now are
// required; zero durations take the defaults above.
type Config struct {
	Store    store.Store
	Register *register.Service
	BaseURL  string           // the server's base URL, for the references notifications carry
	Now      func() time.Time // the injected clock
	Policy   Policy           // where notifications may be sent
	Logger   *slog.Logger
	Metrics  *Metrics // nil: no metrics

	Poll      time.Duration // how often the store is asked for due subscriptions
	Workers   int           // subscriptions worked on at once, per replica
	Lease     time.Duration // how long a claim holds a subscription; above the delivery timeout
	RetryBase time.Duration // the first backoff, doubling per failure
	RetryMax  time.Duration // the longest backoff
	RetryFor  time.Duration // how long failures are retried before the subscription is set to error
}

// Deliverer sends the notifications of every subscription.
type Deliverer struct {
	cfg   Config
	send  *sender
	log   *slog.Logger
	slots chan struct{}
	wg    sync.WaitGroup
	wake  chan struct{}
	// backlogged is whether the last claim took as many subscriptions as
	// there were free workers.
	backlogged atomic.Bool
}

// New builds a Deliverer.
func New(cfg Config) *Deliverer {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Poll, DefaultPoll)
	def(&cfg.Lease, DefaultLease)
	def(&cfg.RetryBase, DefaultRetryBase)
	def(&cfg.RetryMax, DefaultRetryMax)
	def(&cfg.RetryFor, DefaultRetryFor)
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Deliverer{
		cfg: cfg, send: newSender(cfg.Policy), log: cfg.Logger,
		slots: make(chan struct{}, cfg.Workers), wake: make(chan struct{}, 1),
	}
}

// Wake asks for a pass now rather than at the next poll: a write or read
// that committed events calls it, so a notification need not wait.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the attempts under way.
func (d *Deliverer) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	backlog := time.NewTicker(5 * time.Second)
	defer backlog.Stop()
	for {
		d.Pass(ctx)
		select {
		case <-ctx.Done():
			d.wg.Wait()
			return
		case <-t.C:
		case <-d.wake:
		case <-backlog.C:
			d.measureBacklog(ctx)
		}
	}
}

// Pass claims the subscriptions due now, as many as there are free
// workers, and starts working on each. Wait waits for them.
func (d *Deliverer) Pass(ctx context.Context) {
	free := d.cfg.Workers - len(d.slots)
	if free <= 0 || ctx.Err() != nil {
		return
	}
	lease := newLease()
	recs, err := d.cfg.Store.ClaimSubscriptions(ctx, store.Claim{Lease: lease, Now: d.cfg.Now(), For: d.cfg.Lease, Limit: free})
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("claiming subscriptions failed", slog.String("error", err.Error()))
		}
		return
	}
	// Only a claim that took all it could may have left work behind: then
	// a worker that frees up looks for more at once; otherwise the next
	// poll (or a Wake) will, and an idle replica does not claim in a loop.
	d.backlogged.Store(len(recs) == free)
	for _, rec := range recs {
		d.slots <- struct{}{}
		d.wg.Add(1)
		go func() {
			defer func() {
				<-d.slots
				if d.backlogged.Load() {
					d.Wake()
				}
				d.wg.Done()
			}()
			d.work(context.WithoutCancel(ctx), rec, lease)
		}()
	}
}

// Wait waits for the attempts Pass started.
func (d *Deliverer) Wait() { d.wg.Wait() }

// newLease is a claim's random token.
func newLease() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// job is one claimed subscription being worked on.
type job struct {
	d     *Deliverer
	rec   store.SubscriptionRecord
	lease string
}

// work delivers what rec has to deliver: its handshake, then its events in
// order until none is left, then a heartbeat if one is due; it stops at the
// first failure, which schedules the next attempt. The lease is extended
// with every acknowledgement and released at the end.
func (d *Deliverer) work(ctx context.Context, rec store.SubscriptionRecord, lease string) {
	j := &job{d: d, rec: rec, lease: lease}
	now := d.cfg.Now()
	if !rec.End.IsZero() && !now.Before(rec.End) {
		j.record(ctx, store.Progress{State: rec.State, Status: cpis.SubOff}, 0)
		return
	}
	if !rec.State.Handshake {
		if err := j.notify(ctx, "handshake", nil); err != nil {
			j.failed(ctx, err)
			return
		}
		j.rec.State.Handshake = true
		if !j.record(ctx, j.acknowledged(nil), d.cfg.Lease, cpis.SubActive) {
			return
		}
	}
	sent, ok := j.deliverEvents(ctx)
	if !ok {
		return
	}
	if !sent && j.heartbeatDue(d.cfg.Now()) {
		if err := j.notify(ctx, "heartbeat", nil); err != nil {
			j.failed(ctx, err)
			return
		}
		j.rec.State = j.acknowledged(nil).State
	}
	// To the back of the queue: claims take the earliest NextAttempt first,
	// so every subscription with something to send gets its turn.
	j.rec.State.NextAttempt = j.d.cfg.Now()
	j.record(ctx, store.Progress{State: j.rec.State}, 0)
}

// deliverEvents numbers the subscription's new events, then sends its
// undelivered ones, at most MaxCount per notification, until none is
// left. It reports whether it sent any, and false in ok when it stopped on
// a failure (already recorded). Acknowledgements are recorded once, with
// the release of the lease (work), unless more batches follow: every
// commit of delivery state costs a WAL flush that the reads' audit
// commits wait behind, and a lost acknowledgement only means a re-send.
// Events committed meanwhile are numbered by the next claim, which the
// store makes as soon as one comes (Store.ClaimSubscriptions).
func (j *job) deliverEvents(ctx context.Context) (sent, ok bool) {
	state, err := j.d.cfg.Store.MatchSubscriptionEvents(ctx, j.rec.ID, 1000)
	if err != nil {
		j.failed(ctx, err)
		return false, false
	}
	j.rec.State.Scanned, j.rec.State.Numbered = state.Scanned, state.Numbered
	j.rec.State.Delivered = max(j.rec.State.Delivered, state.Delivered)
	for range 1000 { // bounded: a busy subscription gives its worker back now and then
		st := j.rec.State
		if st.Delivered >= st.Numbered {
			return sent, true
		}
		events, err := j.d.cfg.Store.SubscriptionEvents(ctx, j.rec.ID, st.Delivered+1, st.Numbered, j.maxCount())
		if err != nil {
			j.failed(ctx, err)
			return sent, false
		}
		if len(events) == 0 { // removed by retention before they could be sent
			j.rec.State.Delivered = st.Numbered
			continue
		}
		if err := j.notify(ctx, "event-notification", events); err != nil {
			j.failed(ctx, err)
			return sent, false
		}
		sent = true
		j.d.cfg.Metrics.delivered(j.rec.Topic, j.d.cfg.Now(), events)
		p := j.acknowledged(events)
		if p.State.Delivered < p.State.Numbered && !j.record(ctx, p, j.d.cfg.Lease) {
			return sent, false
		}
	}
	return sent, true
}

func (j *job) maxCount() int {
	if j.rec.MaxCount > 0 {
		return j.rec.MaxCount
	}
	return cpis.DefaultMaxCount
}

// heartbeatDue reports whether the subscription asked for heartbeats and
// has been silent for a period.
func (j *job) heartbeatDue(now time.Time) bool {
	last := j.rec.State.LastSent
	if last.IsZero() {
		last = j.rec.Created
	}
	return j.rec.HeartbeatPeriod > 0 && !now.Before(last.Add(j.rec.HeartbeatPeriod))
}

// errChanged stops a job whose subscription its owner changed (or
// deleted) since the claim: the change ended the lease, and the next claim
// delivers the subscription as it now is.
var errChanged = errors.New("the subscription changed since it was claimed")

// notify prepares (register: rules and audit), renders and sends one
// notification, unless the subscription changed since the claim: a
// notification goes out only as the subscription now stands (endpoint,
// headers, status).
func (j *job) notify(ctx context.Context, typ string, events []store.SubscriptionEvent) error {
	cur, err := j.d.cfg.Store.Subscription(ctx, j.rec.ID)
	switch {
	case err != nil && cpis.KindOf(err) != cpis.NotFound:
		return err
	case err != nil || !cur.Updated.Equal(j.rec.Updated) || cur.Status == cpis.SubOff || cur.Status == cpis.SubError:
		return errChanged
	}
	at := j.d.cfg.Now()
	n, err := j.d.cfg.Register.Deliverable(ctx, j.rec, events, j.rec.Content, at)
	if err != nil {
		return err
	}
	body, err := fhir.MarshalResource(fhir.NotificationBundle(Notification(j.d.cfg.BaseURL, j.rec, typ, n, at)))
	if err != nil {
		return err
	}
	err = j.d.send.post(ctx, j.rec.Subscription, body)
	j.d.cfg.Metrics.attempt(j.rec.Topic, err)
	return err
}

// Notification is the FHIR notification of a notice: the subscription's
// status and counts, and its events as the register decided them.
func Notification(baseURL string, rec store.SubscriptionRecord, typ string, n register.Notice, at time.Time) fhir.Notification {
	status := rec.Status
	if typ == "handshake" || status == cpis.SubRequested && rec.State.Handshake {
		status = cpis.SubActive
	}
	out := fhir.Notification{
		BaseURL: baseURL, Subscription: rec.Subscription, Type: typ, Status: status,
		EventsSinceStart: rec.State.Numbered, Error: rec.Error, Timestamp: at, Today: n.Today, View: n.View,
	}
	for _, e := range n.Events {
		ev := fhir.NotificationEvent{Number: e.Number, Timestamp: e.Stamp, Withdrawn: e.Withdrawn, LastUpdated: e.Stamp}
		switch e.Kind {
		case store.PlanChanged:
			p := e.Plan
			ev.Plan = &p
		case store.ASNSent:
			a := e.ASN
			ev.ASN = &a
		}
		out.Events = append(out.Events, ev)
	}
	return out
}

// acknowledged is the progress after a 2xx answer to a notification of
// events (none for a handshake or heartbeat).
func (j *job) acknowledged(events []store.SubscriptionEvent) store.Progress {
	st := j.rec.State
	if len(events) > 0 {
		st.Delivered = events[len(events)-1].Number
	}
	st.Failures, st.FailingSince, st.LastError = 0, time.Time{}, ""
	st.LastSent, st.NextAttempt = j.d.cfg.Now(), j.d.cfg.Now()
	j.rec.State = st
	return store.Progress{State: st}
}

// failed schedules the next attempt after a failure, and sets the
// subscription to error once failures have lasted the retry period. Its
// events stay: setting it back to active resumes from the first
// undelivered one.
func (j *job) failed(ctx context.Context, err error) {
	if errors.Is(err, errChanged) {
		return // not the endpoint's failure; the lease is already gone
	}
	now := j.d.cfg.Now()
	st := j.rec.State
	st.Failures++
	if st.FailingSince.IsZero() {
		st.FailingSince = now
	}
	st.LastError = err.Error()
	st.NextAttempt = now.Add(cpis.Backoff(st.Failures, j.d.cfg.RetryBase, j.d.cfg.RetryMax))
	p := store.Progress{State: st}
	if now.Sub(st.FailingSince) >= j.d.cfg.RetryFor {
		p.Status, p.Error = cpis.SubError, "delivery has failed since "+st.FailingSince.UTC().Format(time.RFC3339)+": "+st.LastError
	}
	j.d.log.Info("subscription delivery failed", slog.String("subscription", j.rec.ID),
		slog.String("topic", string(j.rec.Topic)), slog.Int("failures", st.Failures), slog.String("reason", st.LastError))
	j.rec.State = st
	j.record(ctx, p, 0)
}

// record writes progress under the job's lease (extended by lease, or
// released when 0); status, if given, becomes the subscription's. It
// reports false when the lease is lost: another replica has the
// subscription now, and this one stops.
func (j *job) record(ctx context.Context, p store.Progress, lease time.Duration, status ...cpis.SubscriptionStatus) bool {
	p.Lease, p.Now, p.For = j.lease, j.d.cfg.Now(), lease
	if len(status) > 0 {
		p.Status = status[0]
	}
	if err := j.d.cfg.Store.RecordDelivery(ctx, j.rec.ID, p); err != nil {
		j.d.log.Warn("recording subscription delivery failed", slog.String("subscription", j.rec.ID), slog.String("error", err.Error()))
		return false
	}
	if p.Status != "" {
		j.rec.Status = p.Status
	}
	return true
}

// measureBacklog updates the queue-depth gauge.
func (d *Deliverer) measureBacklog(ctx context.Context) {
	if d.cfg.Metrics == nil {
		return
	}
	b, err := d.cfg.Store.SubscriptionBacklog(ctx)
	if err != nil {
		return
	}
	d.cfg.Metrics.backlog(b)
}
