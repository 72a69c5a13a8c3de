package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// httpMetrics are the request metrics. Labels are route templates, methods
// and status classes only: never paths, which carry ids, nor query strings,
// which carry NHS numbers.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cpis_http_requests_total",
			Help: "HTTP requests served, by route template, method and status class.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cpis_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, audit commit included.",
			Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2},
		}, []string{"route", "method"}),
		handler: http.NotFoundHandler(),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
		m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	}
	return m
}

// observe records one served request.
func (m *httpMetrics) observe(route, method string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(route, method, statusClass(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

func statusClass(code int) string { return strconv.Itoa(code/100) + "xx" }

func (s *Server) serveMetrics(c echo.Context) error {
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}
