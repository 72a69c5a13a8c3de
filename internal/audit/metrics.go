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
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_batch_records",
			Help:    "Audit records written per commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_commit_seconds",
			Help:    "Time to commit one batch of audit records, successful or not.",
			Buckets: latencyBuckets,
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cpis_audit_commit_failures_total",
			Help: "Audit commits that failed; every request in the batch was refused.",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cpis_audit_queue_wait_seconds",
			Help:    "Time audit records waited in the queue before their commit started.",
			Buckets: latencyBuckets,
		}),
	}
	if reg != nil {
		m.batchRecords = register(reg, m.batchRecords)
		m.commitTime = register(reg, m.commitTime)
		m.failures = register(reg, m.failures)
		m.queueWait = register(reg, m.queueWait)
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

// observe records one commit.
func (m *metrics) observe(start time.Time, records int, err error) {
	m.commitTime.Observe(time.Since(start).Seconds())
	m.batchRecords.Observe(float64(records))
	if err != nil {
		m.failures.Inc()
	}
}
