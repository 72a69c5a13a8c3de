package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines decodes the JSON log lines.
func (l *logBuffer) lines(tb testing.TB) []map[string]any {
	tb.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(l.b.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			tb.Fatalf("log line is not JSON (%v): %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInventedMethodsAndPaths sends an unauthenticated flood of invented
// methods and paths, as a scanner does: the metrics must not gain a series
// per request, and none of it is an unexpected error worth an ERROR line.
func TestInventedMethodsAndPaths(t *testing.T) {
	logs := &logBuffer{}
	h := New(Deps{
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registry: prometheus.NewRegistry(),
		Now:      time.Now,
		NewID:    uuid.NewString,
	})
	serve := func(method, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code
	}
	const n = 1000
	statuses := map[int]int{}
	for i := range n {
		method := fmt.Sprintf("INVENTED%d", i)
		switch i % 10 {
		case 0:
			method = "get" // methods are case-sensitive: not GET
		case 1:
			method = http.MethodTrace
		case 2:
			method = http.MethodGet // a known method on an unknown path
		}
		paths := []string{"/Flag", "/Flag/" + uuid.NewString(), fmt.Sprintf("/scan%d/x", i), fmt.Sprintf("/Fl%d", i),
			"/StructureDefinition/a/b", "/dev/token", fmt.Sprintf("/Flag/%d/_history/1/%d", i, i)}
		statuses[serve(method, paths[i%len(paths)])]++
	}
	for code := range statuses {
		if code < 400 || code >= 500 {
			t.Errorf("status %d among the answers %v: want client errors only", code, statuses)
		}
	}

	series := scrape(t, h)
	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true, "PATCH": true, "OPTIONS": true, "OTHER": true}
	routes := map[string]bool{"unmatched": true}
	for _, r := range Routes() {
		routes[r.Path] = true
	}
	labels := regexp.MustCompile(`route="([^"]*)".*method="([^"]*)"|method="([^"]*)".*route="([^"]*)"`)
	for name, lines := range series {
		t.Logf("%d series of %s after %d invented requests", len(lines), name, n)
		// Invented methods on three kinds of path (a route, a route with an
		// id, no route) in one status class, plus GET on those and on
		// /metrics: a handful, whatever n is.
		if len(lines) > 12 {
			t.Errorf("%d series of %s after %d invented requests:\n%s", len(lines), name, n, strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			m := labels.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("no route and method labels in %s", l)
				continue
			}
			route, method := m[1]+m[4], m[2]+m[3]
			if !routes[route] || !methods[method] {
				t.Errorf("label outside the fixed sets: %s", l)
			}
		}
	}

	for _, line := range logs.lines(t) {
		if line["level"] == "ERROR" {
			t.Errorf("client error logged at ERROR: %v", line)
		}
	}
	if strings.Contains(logs.String(), "INVENTED") {
		t.Error("an invented method reached the log")
	}
}

// scrape reads /metrics through h and returns the series of the HTTP
// metrics: the lines of cpis_http_requests_total and of the duration
// histogram's _count, by metric name.
func scrape(tb testing.TB, h http.Handler) map[string][]string {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET /metrics: %d", rec.Code)
	}
	series := map[string][]string{}
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		for _, name := range []string{"cpis_http_requests_total", "cpis_http_request_duration_seconds_count"} {
			if strings.HasPrefix(l, name+"{") {
				series[name] = append(series[name], l)
			}
		}
	}
	if len(series) != 2 {
		tb.Fatalf("HTTP metrics missing from /metrics:\n%s", rec.Body)
	}
	return series
}

// TestObserveLogLevel: only an unexpected error (a 500) is an ERROR line; a
// client's mistake, the framework's 404 and 405 included, is a WARN.
func TestObserveLogLevel(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status int
		level  string
	}{
		{"served", nil, http.StatusOK, "INFO"},
		{"echo not found", echo.ErrNotFound, http.StatusNotFound, "WARN"},
		{"echo method not allowed", echo.ErrMethodNotAllowed, http.StatusMethodNotAllowed, "WARN"},
		{"echo body too large", echo.ErrStatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge, "WARN"},
		{"echo other client error", echo.NewHTTPError(http.StatusTeapot), http.StatusBadRequest, "WARN"},
		{"invalid", cpis.E("test", cpis.Invalid, "bad"), http.StatusBadRequest, "WARN"},
		{"unavailable", cpis.E("test", cpis.Unavailable, "down"), http.StatusServiceUnavailable, "WARN"},
		{"unexpected", errors.New("boom"), http.StatusInternalServerError, "ERROR"},
		{"echo internal error", echo.ErrInternalServerError, http.StatusInternalServerError, "ERROR"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			s := &Server{Deps: Deps{Logger: slog.New(slog.NewJSONHandler(logs, nil))}, metrics: newHTTPMetrics(nil)}
			e := echo.New()
			e.HTTPErrorHandler = s.handleError
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodGet, "/Flag", nil), rec)
			h := func(c echo.Context) error {
				if tt.err == nil {
					return c.NoContent(http.StatusOK)
				}
				return tt.err
			}
			if err := s.observe(h)(c); err != nil {
				t.Fatalf("observe returned %v", err)
			}
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			lines := logs.lines(t)
			if len(lines) != 1 || lines[0]["level"] != tt.level {
				t.Errorf("log %v, want one line at %s", lines, tt.level)
			}
		})
	}
}

func TestLabels(t *testing.T) {
	m := newHTTPMetrics(nil)
	for in, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "DELETE": "DELETE", "PATCH": "PATCH",
		"OPTIONS": "OPTIONS", "get": "OTHER", "TRACE": "OTHER", "CONNECT": "OTHER", "FOOBAR": "OTHER", "": "OTHER",
	} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"/Flag/:id": "/Flag/:id", "/metrics": "/metrics", "": "unmatched", "/Fl": "unmatched", "/Flag/123": "unmatched",
	} {
		if got := m.routeLabel(in); got != want {
			t.Errorf("routeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
