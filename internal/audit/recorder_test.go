package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// memAppender is an in-memory audit trail that can be made slow, held or
// failing, and remembers exactly what each commit carried.
type memAppender struct {
	entered chan int                            // if not nil, gets the record count of each commit as it starts
	release chan struct{}                       // if not nil, each commit waits for a token (or its context)
	delay   time.Duration                       // each commit takes this long
	fail    func(call int) error                // if not nil, the outcome of commit number call (from 1)
	reject  func(recs []cpis.AuditRecord) error // if not nil, the outcome of a commit by what it carries

	mu      sync.Mutex
	calls   int
	batches [][]cpis.AuditRecord // committed batches only
}

func (a *memAppender) AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error {
	a.mu.Lock()
	a.calls++
	call := a.calls
	a.mu.Unlock()
	if a.entered != nil {
		a.entered <- len(recs)
	}
	if a.release != nil {
		select {
		case <-a.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	time.Sleep(a.delay)
	if a.fail != nil {
		if err := a.fail(call); err != nil {
			return err
		}
	}
	if a.reject != nil {
		if err := a.reject(recs); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, slices.Clone(recs))
	return nil
}

// stored returns the ids of every committed record, in commit order.
func (a *memAppender) stored() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for _, b := range a.batches {
		for _, r := range b {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func (a *memAppender) committed() [][]cpis.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.batches)
}

func (a *memAppender) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

func records(prefix string, n int) []cpis.AuditRecord {
	recs := make([]cpis.AuditRecord, n)
	for i := range recs {
		recs[i] = cpis.AuditRecord{ID: fmt.Sprintf("%s-%d", prefix, i), Action: cpis.ActionRead, Interaction: "read"}
	}
	return recs
}

func ids(recs []cpis.AuditRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// record calls r.Record in a goroutine and returns where its result will arrive.
func record(ctx context.Context, r *Recorder, recs ...cpis.AuditRecord) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Record(ctx, recs...) }()
	return done
}

// result waits for one Record result.
func result(tb testing.TB, done <-chan error) error {
	tb.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		tb.Fatal("Record did not return")
		return nil
	}
}

// waitFor polls cond until it holds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// started waits for the next commit to start and returns its record count.
func started(tb testing.TB, a *memAppender) int {
	tb.Helper()
	select {
	case n := <-a.entered:
		return n
	case <-time.After(10 * time.Second):
		tb.Fatal("no commit started")
		return 0
	}
}

// settled closes r, which waits until its writers are done, and gathers
// its metrics: a batch's metrics (the time its retries took) are observed
// after its callers have their answers, so a test that reads them as soon as
// it has its answers could read them a moment early.
func settled(t *testing.T, r *Recorder, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	r.Close()
	return gather(t, reg)
}

func newRecorder(tb testing.TB, a Appender, o Options) *Recorder {
	tb.Helper()
	r := NewRecorder(a, o)
	tb.Cleanup(func() { r.Close() })
	return r
}

// checkUnavailable fails unless err is a *cpis.Error of kind Unavailable
// whose chain holds cause (when cause is not nil).
func checkUnavailable(tb testing.TB, err, cause error) {
	tb.Helper()
	var ce *cpis.Error
	if !errors.As(err, &ce) || cpis.KindOf(err) != cpis.Unavailable {
		tb.Fatalf("error = %v, want a *cpis.Error of kind Unavailable", err)
	}
	if cause != nil && !errors.Is(err, cause) {
		tb.Errorf("error %v does not wrap %v", err, cause)
	}
}

func TestRecordConcurrent(t *testing.T) {
	for _, writers := range []int{1, 4} {
		t.Run(fmt.Sprintf("writers=%d", writers), func(t *testing.T) {
			a := &memAppender{delay: 2 * time.Millisecond}
			r := newRecorder(t, a, Options{Writers: writers})
			const n = 200
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Go(func() {
					rec := records(fmt.Sprintf("g%d", i), 1)
					if err := r.Record(t.Context(), rec...); err != nil {
						errs <- err
						return
					}
					// Acknowledged means committed: the record must be there now.
					if !slices.Contains(a.stored(), rec[0].ID) {
						errs <- fmt.Errorf("record %s acknowledged before it was stored", rec[0].ID)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			got := a.stored()
			slices.Sort(got)
			if len(got) != n || len(slices.Compact(slices.Clone(got))) != n {
				t.Fatalf("stored %d records (%d distinct), want %d once each", len(got), len(slices.Compact(got)), n)
			}
			biggest := 0
			for _, b := range a.committed() {
				biggest = max(biggest, len(b))
			}
			if biggest < 2 {
				t.Errorf("largest batch held %d requests in %d commits: no group commit happened", biggest, a.callCount())
			}
		})
	}
}

func TestRecordBatchLimits(t *testing.T) {
	a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100)}
	r := newRecorder(t, a, Options{MaxBatch: 10})
	first := record(t.Context(), r, records("first", 1)...)
	started(t, a) // the writer is now busy, so the rest queue up
	var queued []<-chan error
	var want [][]string
	for i := range 5 {
		recs := records(fmt.Sprintf("req%d", i), 3)
		want = append(want, ids(recs))
		queued = append(queued, record(t.Context(), r, recs...))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	big := records("big", 15)
	queued = append(queued, record(t.Context(), r, big...))
	waitFor(t, "big request to queue", func() bool { return len(r.queue) == 6 })
	for range 4 {
		a.release <- struct{}{}
	}
	for _, done := range append(queued, first) {
		if err := result(t, done); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int
	for _, b := range a.committed() {
		sizes = append(sizes, len(b))
	}
	// 1, then three requests of 3 (9 <= 10), then two of 3 (the big one would
	// overflow), then the big one alone although it exceeds MaxBatch.
	if diff := cmp.Diff([]int{1, 9, 6, 15}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	all := a.stored()
	for _, w := range append(want, ids(big)) {
		i := slices.Index(all, w[0])
		if i < 0 || !slices.Equal(all[i:i+len(w)], w) {
			t.Errorf("records of one request %v were split or reordered in %v", w, all)
		}
	}
}

func TestRecordCommitFailure(t *testing.T) {
	// The store is unavailable: the whole batch fails, nobody is retried.
	cause := cpis.E("store.AppendAudit", cpis.Unavailable, errors.New("disk full"))
	a := &memAppender{
		entered: make(chan int, 100), release: make(chan struct{}, 100),
		fail: func(call int) error {
			if call == 2 {
				return cause
			}
			return nil
		},
	}
	r := newRecorder(t, a, Options{})
	first := record(t.Context(), r, records("first", 1)...)
	started(t, a)
	var batch []<-chan error
	for i := range 3 {
		batch = append(batch, record(t.Context(), r, records(fmt.Sprintf("doomed%d", i), 2)...))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	a.release <- struct{}{}
	a.release <- struct{}{}
	if err := result(t, first); err != nil {
		t.Fatalf("first batch: %v", err)
	}
	for _, done := range batch {
		checkUnavailable(t, result(t, done), cause)
	}
	if diff := cmp.Diff([]string{"first-0"}, a.stored()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	if n := a.callCount(); n != 2 {
		t.Errorf("%d commits, want 2: requests were retried alone although the store was unavailable", n)
	}
	// The recorder goes on after a failed commit.
	a.release <- struct{}{}
	if err := r.Record(t.Context(), records("after", 1)...); err != nil {
		t.Fatalf("after a failed commit: %v", err)
	}
	if diff := cmp.Diff([]string{"first-0", "after-0"}, a.stored()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

func TestRecordCommitTimeout(t *testing.T) {
	a := &memAppender{release: make(chan struct{})} // never released: only the commit context ends it
	r := newRecorder(t, a, Options{CommitTimeout: 20 * time.Millisecond})
	checkUnavailable(t, r.Record(t.Context(), records("slow", 1)...), context.DeadlineExceeded)
	if got := a.stored(); len(got) != 0 {
		t.Errorf("stored %v after a timed-out commit", got)
	}
}

func TestRecordCancelledWhileQueued(t *testing.T) {
	a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100)}
	r := newRecorder(t, a, Options{})
	first := record(t.Context(), r, records("first", 1)...)
	started(t, a)
	ctx, cancel := context.WithCancel(t.Context())
	gone := record(ctx, r, records("gone", 1)...)
	waitFor(t, "request to queue", func() bool { return len(r.queue) == 1 })
	other := record(t.Context(), r, records("other", 1)...)
	waitFor(t, "request to queue", func() bool { return len(r.queue) == 2 })
	cancel()
	// The cancelled caller is answered at once, while the commit ahead of it is still held.
	checkUnavailable(t, result(t, gone), context.Canceled)
	a.release <- struct{}{}
	a.release <- struct{}{}
	for _, done := range []<-chan error{first, other} {
		if err := result(t, done); err != nil {
			t.Fatal(err)
		}
	}
	// Nobody serves the cancelled access, so its record is not written.
	if diff := cmp.Diff([]string{"first-0", "other-0"}, a.stored()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

func TestRecordCancelledDuringCommit(t *testing.T) {
	a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100)}
	r := newRecorder(t, a, Options{})
	first := record(t.Context(), r, records("first", 1)...)
	started(t, a)
	ctx, cancel := context.WithCancel(t.Context())
	gone := record(ctx, r, records("gone", 1)...)
	waitFor(t, "request to queue", func() bool { return len(r.queue) == 1 })
	other := record(t.Context(), r, records("other", 1)...)
	waitFor(t, "request to queue", func() bool { return len(r.queue) == 2 })
	a.release <- struct{}{}
	if n := started(t, a); n != 2 {
		t.Fatalf("second commit carries %d records, want 2", n)
	}
	cancel() // the commit holding "gone" and "other" is in flight
	checkUnavailable(t, result(t, gone), context.Canceled)
	a.release <- struct{}{}
	// The commit ran on its own context: one cancelled caller fails no one else.
	for _, done := range []<-chan error{first, other} {
		if err := result(t, done); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"first-0", "gone-0", "other-0"}, a.stored()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

func TestRecordContextAlreadyDone(t *testing.T) {
	a := &memAppender{}
	r := newRecorder(t, a, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	checkUnavailable(t, r.Record(ctx, records("late", 1)...), context.Canceled)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := a.callCount(); n != 0 {
		t.Errorf("%d commits for a request that had already ended", n)
	}
}

func TestRecordNothing(t *testing.T) {
	a := &memAppender{}
	r := newRecorder(t, a, Options{})
	if err := r.Record(t.Context()); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if n := a.callCount(); n != 0 {
		t.Errorf("%d commits for no records", n)
	}
}

func TestCloseDrains(t *testing.T) {
	a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100)}
	r := NewRecorder(a, Options{})
	var pending []<-chan error
	pending = append(pending, record(t.Context(), r, records("a", 1)...))
	started(t, a)
	for i := range 3 {
		pending = append(pending, record(t.Context(), r, records(fmt.Sprintf("q%d", i), 1)...))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	waitFor(t, "Close to stop accepting", func() bool {
		r.mu.RLock()
		defer r.mu.RUnlock()
		return r.closed
	})
	select {
	case <-closed:
		t.Fatal("Close returned while a commit was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	checkUnavailable(t, r.Record(t.Context(), records("too-late", 1)...), nil)
	a.release <- struct{}{}
	a.release <- struct{}{}
	if err := result(t, closed); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, done := range pending {
		if err := result(t, done); err != nil {
			t.Errorf("queued before Close: %v", err)
		}
	}
	if diff := cmp.Diff([]string{"a-0", "q0-0", "q1-0", "q2-0"}, a.stored()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	checkUnavailable(t, r.Record(t.Context(), records("after", 1)...), nil)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := &memAppender{fail: func(call int) error {
		if call == 2 {
			return errors.New("connection reset")
		}
		return nil
	}}
	r := newRecorder(t, a, Options{Registerer: reg})
	newRecorder(t, a, Options{Registerer: reg}) // a second recorder shares the instruments
	if err := r.Record(t.Context(), records("one", 3)...); err != nil {
		t.Fatal(err)
	}
	checkUnavailable(t, r.Record(t.Context(), records("two", 2)...), nil)
	if err := r.Record(t.Context(), records("three", 1)...); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	want := map[string]float64{
		"cpis_audit_batch_records count":      3,
		"cpis_audit_batch_records sum":        6,
		"cpis_audit_commit_seconds count":     3,
		"cpis_audit_commit_failures_total":    1,
		"cpis_audit_queue_wait_seconds count": 3,
		"cpis_audit_retry_seconds count":      0,
		// The failed batch held one request: nothing to retry alone.
		"cpis_audit_solo_retries_total{outcome=committed}":        0,
		"cpis_audit_solo_retries_total{outcome=failed}":           0,
		"cpis_audit_refused_requests_total{reason=rejected}":      1,
		"cpis_audit_refused_requests_total{reason=retry_timeout}": 0,
		"cpis_audit_refused_requests_total{reason=unavailable}":   0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

// gather reads counters and histogram counts and sums from reg.
func gather(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				name := mf.GetName()
				if ls := m.GetLabel(); len(ls) > 0 {
					var pairs []string
					for _, l := range ls {
						pairs = append(pairs, l.GetName()+"="+l.GetValue())
					}
					name += "{" + strings.Join(pairs, ",") + "}"
				}
				out[name] = c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				out[mf.GetName()+" count"] = float64(h.GetSampleCount())
				if mf.GetName() == "cpis_audit_batch_records" {
					out[mf.GetName()+" sum"] = h.GetSampleSum()
				}
			}
		}
	}
	return out
}

func TestOptionsDefaults(t *testing.T) {
	o := Options{}.withDefaults()
	if o.MaxBatch != DefaultMaxBatch || o.Writers != DefaultWriters || o.CommitTimeout != DefaultCommitTimeout || o.Logger == nil {
		t.Errorf("defaults = %+v", o)
	}
	o = Options{MaxBatch: 3, Writers: 2, CommitTimeout: time.Second}.withDefaults()
	if o.MaxBatch != 3 || o.Writers != 2 || o.CommitTimeout != time.Second {
		t.Errorf("explicit options overridden: %+v", o)
	}
}

// poisoned fails any commit that carries a record whose id starts with
// "poison", as PostgreSQL fails a COPY holding one invalid UTF-8 value.
func poisoned(recs []cpis.AuditRecord) error {
	for _, r := range recs {
		if strings.HasPrefix(r.ID, "poison") {
			return errPoison
		}
	}
	return nil
}

var errPoison = cpis.E("store.AppendAudit", errors.New("invalid byte sequence for encoding UTF8: 0xff"))

// holdBatch makes the next commit carry every request in reqs: it holds the
// writer on a first request, queues reqs behind it, and releases the writer.
// It returns the first request's result and each of reqs' results.
func holdBatch(t *testing.T, a *memAppender, r *Recorder, reqs ...[]cpis.AuditRecord) (first <-chan error, done []<-chan error) {
	t.Helper()
	first = record(t.Context(), r, records("first", 1)...)
	started(t, a)
	for i, recs := range reqs {
		done = append(done, record(t.Context(), r, recs...))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	return first, done
}

func TestRecordPoisonedRecordFailsOnlyItsRequest(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100), reject: poisoned}
	r := newRecorder(t, a, Options{Registerer: reg})
	// The poisoned request's first record is fine: it must not be stored either.
	bad := append(records("ok-of-poisoned", 1), records("poison", 1)...)
	first, done := holdBatch(t, a, r, records("good0", 2), bad, records("good1", 1), records("good2", 3))
	for range 6 { // first, the batch, then four requests alone
		a.release <- struct{}{}
	}
	if err := result(t, first); err != nil {
		t.Fatalf("first: %v", err)
	}
	for i, d := range done {
		err := result(t, d)
		if i == 1 {
			checkUnavailable(t, err, errPoison)
			continue
		}
		if err != nil {
			t.Errorf("request %d, batched with a poisoned record: %v", i, err)
		}
	}
	want := []string{"first-0", "good0-0", "good0-1", "good1-0", "good2-0", "good2-1", "good2-2"}
	if diff := cmp.Diff(want, a.stored()); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
	var sizes []int
	for _, b := range a.committed() {
		sizes = append(sizes, len(b))
	}
	if diff := cmp.Diff([]int{1, 2, 1, 3}, sizes); diff != "" {
		t.Errorf("committed batch sizes (-want +got):\n%s", diff)
	}
	if n := a.callCount(); n != 6 {
		t.Errorf("%d commits, want 6: one, the failed batch, one for each of its four requests", n)
	}
	got := settled(t, r, reg)
	for name, v := range map[string]float64{
		"cpis_audit_commit_failures_total":                   1,
		`cpis_audit_solo_retries_total{outcome=committed}`:   3,
		`cpis_audit_solo_retries_total{outcome=failed}`:      1,
		`cpis_audit_refused_requests_total{reason=rejected}`: 1,
		"cpis_audit_retry_seconds count":                     1,
	} {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
}

func TestRecordNoSoloRetryWhenUnavailable(t *testing.T) {
	for name, cause := range map[string]error{
		"store unavailable": cpis.E("store.AppendAudit", cpis.Unavailable, errors.New("connection refused")),
		"commit timed out":  context.DeadlineExceeded,
	} {
		t.Run(name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100),
				fail: func(call int) error {
					if call > 1 {
						return cause
					}
					return nil
				}}
			r := newRecorder(t, a, Options{Registerer: reg})
			var reqs [][]cpis.AuditRecord
			for i := range 50 {
				reqs = append(reqs, records(fmt.Sprintf("r%d", i), 1))
			}
			first, done := holdBatch(t, a, r, reqs...)
			a.release <- struct{}{}
			a.release <- struct{}{}
			if err := result(t, first); err != nil {
				t.Fatal(err)
			}
			for _, d := range done {
				checkUnavailable(t, result(t, d), cause)
			}
			if n := a.callCount(); n != 2 {
				t.Errorf("%d commits, want 2: a store that cannot serve was retried request by request", n)
			}
			if got := settled(t, r, reg)[`cpis_audit_refused_requests_total{reason=unavailable}`]; got != 50 {
				t.Errorf("refused as unavailable: %v, want 50", got)
			}
		})
	}
}

// A store that fails the batch for its content and then turns out to be
// unavailable on the first solo attempt is not asked again for the rest.
func TestRecordSoloRetriesStopWhenUnavailable(t *testing.T) {
	down := cpis.E("store.AppendAudit", cpis.Unavailable, errors.New("connection reset"))
	a := &memAppender{entered: make(chan int, 100), release: make(chan struct{}, 100),
		fail: func(call int) error {
			switch call {
			case 1:
				return nil
			case 2:
				return errPoison
			}
			return down
		}}
	reg := prometheus.NewRegistry()
	r := newRecorder(t, a, Options{Registerer: reg})
	first, done := holdBatch(t, a, r, records("a", 1), records("b", 1), records("c", 1), records("d", 1))
	for range 3 {
		a.release <- struct{}{}
	}
	if err := result(t, first); err != nil {
		t.Fatal(err)
	}
	for _, d := range done {
		checkUnavailable(t, result(t, d), nil)
	}
	if n := a.callCount(); n != 3 {
		t.Errorf("%d commits, want 3: the batch, one solo attempt, then none", n)
	}
	got := settled(t, r, reg)
	if got[`cpis_audit_refused_requests_total{reason=unavailable}`] != 4 || got[`cpis_audit_solo_retries_total{outcome=failed}`] != 1 {
		t.Errorf("metrics: %v", got)
	}
}

// However slow the store turns, the solo retries of one failed batch share
// one CommitTimeout: the requests not reached in time are refused untried.
func TestRecordSoloRetriesBounded(t *testing.T) {
	const timeout, solo = 60 * time.Millisecond, 25 * time.Millisecond
	gate := make(chan struct{})
	a := &memAppender{entered: make(chan int, 1000),
		reject: func(recs []cpis.AuditRecord) error {
			switch {
			case recs[0].ID == "first-0":
				<-gate // holds the writer, past CommitTimeout, while the batch queues
			case len(recs) > 1:
				return errPoison // fails the batch at once
			default:
				time.Sleep(solo) // each request alone is slow, but succeeds
			}
			return nil
		}}
	reg := prometheus.NewRegistry()
	r := newRecorder(t, a, Options{Registerer: reg, CommitTimeout: timeout})
	first := record(t.Context(), r, records("first", 1)...)
	started(t, a)
	var done []<-chan error
	for i := range 100 {
		done = append(done, record(t.Context(), r, records(fmt.Sprintf("r%d", i), 1)...))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	start := time.Now()
	close(gate)
	if err := result(t, first); err != nil {
		t.Fatal(err)
	}
	var ok int
	for _, d := range done {
		if err := result(t, d); err == nil {
			ok++
		} else {
			checkUnavailable(t, err, errPoison)
		}
	}
	// Unbounded, the retries would take 100 x 25 ms = 2.5 s.
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Errorf("the failed batch's retries took %v; CommitTimeout is %v", elapsed, timeout)
	}
	got := settled(t, r, reg)
	untried := got[`cpis_audit_refused_requests_total{reason=retry_timeout}`]
	if ok < 1 || ok > 10 || float64(ok)+untried != 100 || got[`cpis_audit_solo_retries_total{outcome=committed}`] != float64(ok) {
		t.Errorf("%d requests committed alone, %v refused untried; metrics %v", ok, untried, got)
	}
}
