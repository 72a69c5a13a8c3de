// Package audit makes every access durable in the audit trail before the
// response that carries the data leaves the server. Requests hand their
// records to a Recorder and wait; the Recorder's writers commit whatever has
// queued up as one batch (group commit), so under load one transaction
// serves many requests and the audit trail does not become the bottleneck.
// A batch the store refuses is retried request by request, so that records
// the database will not take (a poisoned value) fail only their own request.
package audit

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Appender stores audit records: all of them in one transaction, or none and
// an error. store.Store satisfies it.
type Appender interface {
	AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error
}

// Options tune a Recorder. Zero values take the defaults.
type Options struct {
	// MaxBatch is the most records one commit carries (default 512). The
	// records of one Record call are never split, so a call with more than
	// MaxBatch records is committed alone.
	MaxBatch int
	// Writers is how many batches may commit at once (default 1). One writer
	// lets the batch grow with the load while a commit is in flight, so each
	// commit carries more records. On PostgreSQL with 32 clients on 2 shared
	// cores (cmd/cpisbench, three interleaved rounds each), one writer on 4
	// connections gave 4,268 to 4,365 audited searches/s with p99 18.4 to
	// 21.6 ms, two writers 3,907 to 4,152 with p99 21.3 to 22.1 ms, and four
	// writers on 8 connections (the earlier setting) 3,465 to 3,491 with p99
	// 27.4 to 28.5 ms: more, smaller commits cost the database more CPU.
	// SQLite serialises writes anyway.
	Writers int
	// CommitTimeout bounds one commit (default 5s). Commits run on their own
	// context, not a request's: one cancelled request must not fail the
	// others in its batch. When a batch fails and its requests are retried
	// alone, all those retries together get one more CommitTimeout.
	CommitTimeout time.Duration
	// Registerer receives the recorder's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Logger receives commit failures; nil discards them.
	Logger *slog.Logger
}

// Defaults for Options.
const (
	DefaultMaxBatch      = 512
	DefaultWriters       = 1
	DefaultCommitTimeout = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Writers <= 0 {
		o.Writers = DefaultWriters
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = DefaultCommitTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Recorder commits audit records in batches and tells each caller when its
// own records are durable. It is safe for concurrent use.
type Recorder struct {
	a       Appender
	o       Options
	m       *metrics
	queue   chan *request
	mu      sync.RWMutex // guards closed against sends on a closed queue
	closed  bool
	writers sync.WaitGroup
}

// request is one Record call waiting for its commit.
type request struct {
	ctx      context.Context
	recs     []cpis.AuditRecord
	queued   time.Time
	answered chan error // buffered: a writer never waits for a caller
}

// NewRecorder starts a Recorder over a with o.Writers writer goroutines.
// Close stops them.
func NewRecorder(a Appender, o Options) *Recorder {
	o = o.withDefaults()
	r := &Recorder{
		a:     a,
		o:     o,
		m:     newMetrics(o.Registerer),
		queue: make(chan *request, o.MaxBatch),
	}
	r.writers.Add(o.Writers)
	for range o.Writers {
		go r.write()
	}
	return r
}

const opRecord = "audit.Record"

// Record makes recs durable and returns nil once the commit that carries them
// has succeeded. Otherwise it returns an error of kind cpis.Unavailable: the
// commit failed, ctx ended first, or the Recorder is closed. The records of
// one call are committed together or not at all. If ctx ends after the
// records were queued they may still be committed: an access the caller then
// does not serve is recorded all the same, which errs on the side of the audit.
func (r *Recorder) Record(ctx context.Context, recs ...cpis.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return ended(err)
	}
	req := &request{ctx: ctx, recs: recs, queued: time.Now(), answered: make(chan error, 1)}
	if err := r.enqueue(req); err != nil {
		return err
	}
	select {
	case err := <-req.answered:
		return err
	case <-ctx.Done():
		return ended(ctx.Err())
	}
}

// ended is the error of a caller whose context ended before its records
// were durable.
func ended(cause error) error {
	return cpis.E(opRecord, cpis.Unavailable, "the request ended before its audit record was written", cause)
}

// enqueue hands req to the writers, unless the Recorder is closed or ctx ends
// while the queue is full.
func (r *Recorder) enqueue(req *request) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return cpis.E(opRecord, cpis.Unavailable, "the audit recorder is shut down")
	}
	select {
	case r.queue <- req:
		return nil
	case <-req.ctx.Done():
		return cpis.E(opRecord, cpis.Unavailable, "the request ended before its audit record was queued", req.ctx.Err())
	}
}

// Close stops accepting records, commits what was already queued and waits
// for the writers to finish. It is safe to call more than once.
func (r *Recorder) Close() error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	r.writers.Wait()
	return nil
}

// write is one writer: take the first waiting request, add whatever else is
// already queued, commit, answer, repeat until the queue is closed and empty.
func (r *Recorder) write() {
	defer r.writers.Done()
	var next *request
	for {
		first := next
		if first == nil {
			var ok bool
			if first, ok = <-r.queue; !ok {
				return
			}
		}
		var batch []*request
		batch, next = r.gather(first)
		r.commit(batch)
	}
}

// gather drains the queue without waiting, up to MaxBatch records. A request
// that would overflow the batch is returned as the first of the next one.
func (r *Recorder) gather(first *request) (batch []*request, next *request) {
	batch = []*request{first}
	n := len(first.recs)
	for n < r.o.MaxBatch {
		select {
		case req, ok := <-r.queue:
			if !ok {
				return batch, nil
			}
			if n+len(req.recs) > r.o.MaxBatch {
				return batch, req
			}
			batch = append(batch, req)
			n += len(req.recs)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// commit writes the records of every request still waiting in one
// AppendAudit call, and answers each request with the outcome. A batch that
// fails for a reason other than the store being unavailable may have been
// failed by one request's records (a value the database refuses): then each
// request is retried alone, so that only the requests whose own records
// fail get the error.
func (r *Recorder) commit(batch []*request) {
	waiting, recs := r.live(batch)
	if len(recs) == 0 {
		return
	}
	start := time.Now()
	err := r.appendAudit(context.Background(), recs)
	r.m.observe(start, len(recs), err)
	if err == nil {
		for _, req := range waiting {
			req.answered <- nil
		}
		return
	}
	if len(waiting) > 1 && !unavailable(err) {
		r.retryAlone(waiting, err)
		return
	}
	r.o.Logger.Error("audit commit failed", slog.Int("records", len(recs)), slog.Int("requests", len(waiting)), slog.Any("error", err))
	reason := reasonRejected
	if unavailable(err) {
		reason = reasonUnavailable
	}
	r.m.refused.WithLabelValues(reason).Add(float64(len(waiting)))
	for _, req := range waiting {
		req.answered <- refused(err)
	}
}

// appendAudit runs one AppendAudit on its own context, bounded by CommitTimeout
// and by parent: a request's context must not end a commit that serves others.
func (r *Recorder) appendAudit(parent context.Context, recs []cpis.AuditRecord) error {
	ctx, cancel := context.WithTimeout(parent, r.o.CommitTimeout)
	defer cancel()
	return r.a.AppendAudit(ctx, recs)
}

// unavailable reports whether a commit failed because the store could not
// serve at all (down, overloaded, too slow) rather than because of what the
// records hold. Retrying requests alone then would only multiply the wait:
// a batch of 500 would become 500 commits that each fail, perhaps each
// after the full CommitTimeout.
func unavailable(err error) bool {
	return cpis.KindOf(err) == cpis.Unavailable ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// refused is the error of a caller whose records could not be committed.
func refused(cause error) error {
	return cpis.E("audit.commit", cpis.Unavailable, "the audit trail could not be written", cause)
}

// retryAlone commits the records of each request in a failed batch on their
// own, one attempt each, in queue order. All the attempts share one
// CommitTimeout, so a failed batch holds its writer for at most twice
// CommitTimeout however many requests it carried. Once an attempt fails
// because the store is unavailable, or the time is up, the requests not yet
// tried are refused untried.
func (r *Recorder) retryAlone(waiting []*request, batchErr error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), r.o.CommitTimeout)
	defer cancel()
	var tally retryTally
	var stop error // once set, the remaining requests are refused with it
	stopReason := ""
	for _, req := range waiting {
		if err := req.ctx.Err(); err != nil {
			req.answered <- ended(err) // the caller has gone: nothing to serve, nothing to record
			tally.gone++
			continue
		}
		if stop == nil && ctx.Err() != nil {
			stop, stopReason = cpis.E("audit.commit", cpis.Unavailable, "no time was left to retry the audit record alone", batchErr), reasonRetryTimeout
		}
		if stop != nil {
			r.m.refused.WithLabelValues(stopReason).Inc() // counted before the caller hears, so metrics never lag an answer
			req.answered <- refused(stop)
			tally.untried++
			continue
		}
		err := r.appendAudit(ctx, req.recs)
		req.answered <- r.tallySolo(&tally, err)
		if err != nil && unavailable(err) {
			stop, stopReason = err, reasonUnavailable
		}
	}
	elapsed := time.Since(start)
	r.m.retryTime.Observe(elapsed.Seconds())
	r.logRetry(len(waiting), tally, batchErr, elapsed)
}

// tallySolo counts the outcome of one request retried alone and returns the
// answer its caller gets.
func (r *Recorder) tallySolo(t *retryTally, err error) error {
	if err == nil {
		r.m.solo.WithLabelValues(outcomeCommitted).Inc()
		t.committed++
		return nil
	}
	r.m.solo.WithLabelValues(outcomeFailed).Inc()
	t.failed++
	if t.firstErr == nil {
		t.firstErr = err
	}
	reason := reasonRejected
	if unavailable(err) {
		reason = reasonUnavailable
	}
	r.m.refused.WithLabelValues(reason).Inc()
	return refused(err)
}

// retryTally counts what became of the requests of one failed batch.
type retryTally struct {
	committed, failed, untried, gone int
	firstErr                         error // of the first failed solo attempt
}

// logRetry writes one line per failed batch: a warning when every request
// was rescued, an error when some were refused.
func (r *Recorder) logRetry(requests int, t retryTally, batchErr error, elapsed time.Duration) {
	level := slog.LevelWarn
	attrs := []slog.Attr{
		slog.Int("requests", requests), slog.Int("committed", t.committed), slog.Int("failed", t.failed),
		slog.Int("untried", t.untried), slog.Int("gone", t.gone),
		slog.Duration("retry_duration", elapsed), slog.Any("batch_error", batchErr),
	}
	if t.failed+t.untried > 0 {
		level = slog.LevelError
	}
	if t.firstErr != nil {
		attrs = append(attrs, slog.Any("error", t.firstErr))
	}
	r.o.Logger.LogAttrs(context.Background(), level, "audit batch failed; retried each request alone", attrs...)
}

// live answers the requests whose caller has already gone (their access
// will not be served, so there is nothing to record) and returns the others
// with their records in queue order.
func (r *Recorder) live(batch []*request) (waiting []*request, recs []cpis.AuditRecord) {
	now := time.Now()
	for _, req := range batch {
		r.m.queueWait.Observe(now.Sub(req.queued).Seconds())
		if err := req.ctx.Err(); err != nil {
			req.answered <- ended(err)
			continue
		}
		waiting = append(waiting, req)
		recs = append(recs, req.recs...)
	}
	return waiting, recs
}
