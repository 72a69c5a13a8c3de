// Package audit makes every access durable in the audit trail before the
// response that carries the data leaves the server. Requests hand their
// records to a Recorder and wait; the Recorder's writers commit whatever has
// queued up as one batch (group commit), so under load one transaction
// serves many requests and the audit trail does not become the bottleneck.
package audit

import (
	"context"
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
	// others in its batch.
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
// AppendAudit call, and answers each request with the outcome.
func (r *Recorder) commit(batch []*request) {
	waiting, recs := r.live(batch)
	if len(recs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.o.CommitTimeout)
	defer cancel()
	start := time.Now()
	err := r.a.AppendAudit(ctx, recs)
	r.m.observe(start, len(recs), err)
	if err != nil {
		r.o.Logger.Error("audit commit failed", slog.Int("records", len(recs)), slog.Int("requests", len(waiting)), slog.Any("error", err))
		err = cpis.E("audit.commit", cpis.Unavailable, "the audit trail could not be written", err)
	}
	for _, req := range waiting {
		req.answered <- err
	}
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
