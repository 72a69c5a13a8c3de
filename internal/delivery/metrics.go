package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Metrics are the delivery's Prometheus series, labelled by topic (a fixed
// set) and outcome only: never by subscription, endpoint or child.
type Metrics struct {
	depth    *prometheus.GaugeVec
	latency  *prometheus.HistogramVec
	attempts *prometheus.CounterVec
	events   *prometheus.CounterVec
}

// NewMetrics registers the delivery's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cpis_subscription_queue_depth",
			Help: "Events numbered for subscriptions (not off) and not yet acknowledged by their endpoints, by topic; refreshed every 5 s.",
		}, []string{"topic"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cpis_subscription_delivery_latency_seconds",
			Help:    "From an event's commit to its endpoint's 2xx answer, per event, by topic.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600},
		}, []string{"topic"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpis_subscription_notifications_total",
			Help: "Notifications attempted, by topic and outcome (delivered or failed).",
		}, []string{"topic", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpis_subscription_events_delivered_total",
			Help: "Events acknowledged by subscription endpoints, by topic.",
		}, []string{"topic"}),
	}
	for _, t := range cpis.Topics() {
		l := topicLabel(t)
		m.depth.WithLabelValues(l)
		m.latency.WithLabelValues(l)
		m.events.WithLabelValues(l)
		m.attempts.WithLabelValues(l, "delivered")
		m.attempts.WithLabelValues(l, "failed")
	}
	reg.MustRegister(m.depth, m.latency, m.attempts, m.events)
	return m
}

// topicLabel is a topic's short name: the last segment of its URL.
func topicLabel(t cpis.Topic) string {
	switch t {
	case cpis.TopicASN:
		return "access-to-service-notification"
	case cpis.TopicPlanChange:
		return "plan-change"
	}
	return "other"
}

func (m *Metrics) attempt(t cpis.Topic, err error) {
	if m == nil {
		return
	}
	outcome := "delivered"
	if err != nil {
		outcome = "failed"
	}
	m.attempts.WithLabelValues(topicLabel(t), outcome).Inc()
}

func (m *Metrics) delivered(t cpis.Topic, now time.Time, events []store.SubscriptionEvent) {
	if m == nil {
		return
	}
	l := topicLabel(t)
	for _, e := range events {
		m.latency.WithLabelValues(l).Observe(max(now.Sub(e.Stamp), 0).Seconds())
	}
	m.events.WithLabelValues(l).Add(float64(len(events)))
}

func (m *Metrics) backlog(b map[cpis.Topic]int64) {
	for _, t := range cpis.Topics() {
		m.depth.WithLabelValues(topicLabel(t)).Set(float64(b[t]))
	}
}
