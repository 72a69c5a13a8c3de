package audit

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets span 0.1 ms (an SQLite commit on a fast disk) to over a
// second (a PostgreSQL commit in trouble), in seconds.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// metrics are the Recorder's instruments. Without a Registerer they still
// exist, unregistered, so the code that feeds them needs no nil checks.
type metrics struct {
	batchRecords prometheus.Histogram
	commitTime   prometheus.Histogram
	failures     prometheus.Counter
	queueWait    prometheus.Histogram
	solo         *prometheus.CounterVec // by outcome
	refused      *prometheus.CounterVec // by reason
	retryTime    prometheus.Histogram
}

// Label values of solo (outcome) and refused (reason).
const (
	outcomeCommitted = "committed"
	outcomeFailed    = "failed"

	reasonUnavailable  = "unavailable"   // the store could not serve (down, overloaded, timed out)
	reasonRejected     = "rejected"      // the store refused the request's own records
	reasonRetryTimeout = "retry_timeout" // the failed batch's retries ran out of time before this one
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_batch_records",
			Help:    "Audit records per batch commit, successful or not (retries of one request alone are not counted).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_commit_seconds",
			Help:    "Time to commit one batch of audit records, successful or not (retries of one request alone are not counted).",
			Buckets: latencyBuckets,
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpis_audit_commit_failures_total",
			Help: "Batch commits that failed. Unless the store was unavailable, each request of the batch was then retried alone (cpis_audit_solo_retries_total).",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_queue_wait_seconds",
			Help:    "Time audit records waited in the queue before their commit started.",
			Buckets: latencyBuckets,
		}),
		solo: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpis_audit_solo_retries_total",
			Help: "Requests whose batch commit failed, retried alone, by outcome (committed, failed).",
		}, []string{"outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpis_audit_refused_requests_total",
			Help: "Requests answered with an error because their audit records could not be committed, by reason: " +
				"unavailable (the store could not serve), rejected (the store refused the request's own records), " +
				"retry_timeout (its batch failed and the retries ran out of time before reaching it).",
		}, []string{"reason"}),
		retryTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_retry_seconds",
			Help:    "Time spent retrying the requests of one failed batch alone; the writer commits nothing else meanwhile.",
			Buckets: latencyBuckets,
		}),
	}
	for _, o := range []string{outcomeCommitted, outcomeFailed} {
		m.solo.WithLabelValues(o)
	}
	for _, r := range []string{reasonUnavailable, reasonRejected, reasonRetryTimeout} {
		m.refused.WithLabelValues(r)
	}
	if reg != nil {
		m.batchRecords = register(reg, m.batchRecords)
		m.commitTime = register(reg, m.commitTime)
		m.failures = register(reg, m.failures)
		m.queueWait = register(reg, m.queueWait)
		m.solo = register(reg, m.solo)
		m.refused = register(reg, m.refused)
		m.retryTime = register(reg, m.retryTime)
	}
	return m
}

// register adds c to reg, or returns the collector already registered under
// its name, so that a second Recorder on one registry (tests, a restart in
// process) shares the instruments instead of panicking.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	if err != nil {
		panic(err) // a name clash with another kind of metric is a programming error
	}
	return c
}

// observe records one batch commit.
func (m *metrics) observe(start time.Time, records int, err error) {
	m.commitTime.Observe(time.Since(start).Seconds())
	m.batchRecords.Observe(float64(records))
	if err != nil {
		m.failures.Inc()
	}
}
