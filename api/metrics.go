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
// which carry NHS numbers. Every label comes from a fixed set, whatever the
// client sends, so that no request can add series: a route outside the
// route table is "unmatched" and a method outside the standard ones "OTHER"
// (any token is a valid HTTP method, so an unauthenticated client could
// otherwise create a series per request).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
	routes   map[string]bool // the route table's path templates
}

// Label values for what the client chose freely.
const (
	routeUnmatched = "unmatched"
	methodOther    = "OTHER"
)

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
		routes:  map[string]bool{},
	}
	for _, r := range Routes() {
		m.routes[r.Path] = true
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

// routeLabel is the route template echo matched, if it is one of the route
// table's; otherwise (no route matched, or echo reports a node of its tree
// for a path it could not route) it is "unmatched".
func (m *httpMetrics) routeLabel(path string) string {
	if m.routes[path] {
		return path
	}
	return routeUnmatched
}

// methodLabel is the request method if it is a standard one, else "OTHER".
// Methods are case-sensitive: "get" is not GET.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodDelete, http.MethodPatch, http.MethodOptions:
		return method
	}
	return methodOther
}

func (s *Server) serveMetrics(c echo.Context) error {
	s.metrics.handler.ServeHTTP(c.Response(), c.Request())
	return nil
}
