package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	allowedOrigin = "https://ehr.example.test"
	otherOrigin   = "https://evil.example.test"
)

func corsServer(t *testing.T, origins ...string) (http.Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(Deps{
		Logger:      slog.New(slog.NewJSONHandler(&logBuffer{}, nil)),
		Registry:    reg,
		Now:         time.Now,
		NewID:       uuid.NewString,
		CORSOrigins: origins,
	}), reg
}

func serveWith(h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var corsHeaders = []string{
	"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Access-Control-Allow-Credentials",
}

func noCORSHeaders(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	for _, h := range corsHeaders {
		if v := rec.Header().Get(h); v != "" {
			t.Errorf("%s: %q, want none", h, v)
		}
	}
}

// TestCORSPreflight: a page of an allowed origin may send the FHIR headers
// to the FHIR routes; another origin's preflight gets no CORS header, so
// its browser refuses to send the request.
func TestCORSPreflight(t *testing.T) {
	h, reg := corsServer(t, allowedOrigin)
	preflight := func(origin, path, method string) *httptest.ResponseRecorder {
		return serveWith(h, http.MethodOptions, path, "Origin", origin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "authorization,content-type,if-match,prefer,x-request-id,isunscheduledaccessevent")
	}
	for _, tt := range []struct{ path, method string }{
		{"/Flag", "POST"}, {"/Flag", "GET"}, {"/Flag/abc", "PUT"}, {"/Flag/abc", "DELETE"},
		{"/AuditEvent", "GET"}, {"/metadata", "GET"}, {"/.well-known/smart-configuration", "GET"},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := preflight(allowedOrigin, tt.path, tt.method)
			if rec.Code != http.StatusNoContent {
				t.Errorf("status %d, want 204", rec.Code)
			}
			hd := rec.Header()
			if got := hd.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
				t.Errorf("Allow-Origin %q, want %q", got, allowedOrigin)
			}
			if !strings.Contains(hd.Get("Access-Control-Allow-Methods"), tt.method) {
				t.Errorf("Allow-Methods %q lacks %s", hd.Get("Access-Control-Allow-Methods"), tt.method)
			}
			allowed := strings.ToLower(hd.Get("Access-Control-Allow-Headers"))
			for _, want := range []string{"authorization", "content-type", "if-match", "prefer", "x-request-id", "x-correlation-id", "traceid", "isunscheduledaccessevent"} {
				if !strings.Contains(allowed, want) {
					t.Errorf("Allow-Headers %q lacks %s", allowed, want)
				}
			}
			if hd.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("credentials allowed")
			}
			if hd.Get("Access-Control-Max-Age") == "" || !strings.Contains(strings.Join(hd.Values("Vary"), ","), "Origin") {
				t.Errorf("Max-Age %q, Vary %q", hd.Get("Access-Control-Max-Age"), hd.Values("Vary"))
			}
			noCORSHeaders(t, preflight(otherOrigin, tt.path, tt.method))
			noCORSHeaders(t, preflight("null", tt.path, tt.method))
		})
	}
	// Preflights are counted under the route template and OPTIONS.
	if n := requestCount(t, reg, "/Flag/:id", "OPTIONS", "2xx"); n < 2 {
		t.Errorf("OPTIONS /Flag/:id 2xx counted %v times, want at least 2", n)
	}
}

// requestCount is the value of cpis_http_requests_total for these labels.
func requestCount(t *testing.T, reg *prometheus.Registry, route, method, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cpis_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["method"] == method && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no cpis_http_requests_total{route=%q,method=%q,status=%q}", route, method, status)
	return 0
}

// TestCORSActualRequests: answers carry Access-Control-Allow-Origin only
// for an allowed origin, refusals included, so that its page can read why.
func TestCORSActualRequests(t *testing.T) {
	h, _ := corsServer(t, allowedOrigin, "http://localhost:3000")
	for _, tt := range []struct {
		name, method, path, origin string
		status                     int
		allowed                    bool
	}{
		{"metadata, allowed", "GET", "/metadata", allowedOrigin, 200, true},
		{"metadata, second allowed origin", "GET", "/metadata", "http://localhost:3000", 200, true},
		{"metadata, other origin", "GET", "/metadata", otherOrigin, 200, false},
		{"metadata, no origin", "GET", "/metadata", "", 200, false},
		{"a prefix of an allowed origin", "GET", "/metadata", "https://ehr.example.tes", 200, false},
		{"an allowed origin as a suffix", "GET", "/metadata", "https://x.ehr.example.test", 200, false},
		{"another scheme", "GET", "/metadata", "http://ehr.example.test", 200, false},
		{"refusal, allowed", "GET", "/Flag?patient=9000000009", allowedOrigin, 401, true},
		{"refusal, other origin", "GET", "/Flag?patient=9000000009", otherOrigin, 401, false},
		{"OPTIONS that is no preflight", "OPTIONS", "/Flag", allowedOrigin, 204, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hs []string
			if tt.origin != "" {
				hs = []string{"Origin", tt.origin}
			}
			rec := serveWith(h, tt.method, tt.path, hs...)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d", rec.Code, tt.status)
			}
			if !tt.allowed {
				noCORSHeaders(t, rec)
				return
			}
			hd := rec.Header()
			if hd.Get("Access-Control-Allow-Origin") != tt.origin {
				t.Errorf("Allow-Origin %q, want %q", hd.Get("Access-Control-Allow-Origin"), tt.origin)
			}
			exposed := strings.ToLower(hd.Get("Access-Control-Expose-Headers"))
			for _, want := range []string{"etag", "location", "last-modified", "x-request-id", "x-correlation-id"} {
				if !strings.Contains(exposed, want) {
					t.Errorf("Expose-Headers %q lacks %s", exposed, want)
				}
			}
			if hd.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("Allow-Methods on an actual request")
			}
		})
	}
}

// TestNoCORSByDefault: without configured origins nothing is CORS, and the
// CapabilityStatement says so.
func TestNoCORSByDefault(t *testing.T) {
	h, _ := corsServer(t)
	noCORSHeaders(t, serveWith(h, "OPTIONS", "/Flag", "Origin", allowedOrigin, "Access-Control-Request-Method", "GET"))
	rec := serveWith(h, "GET", "/metadata", "Origin", allowedOrigin)
	noCORSHeaders(t, rec)
	if !strings.Contains(rec.Body.String(), `"cors":false`) {
		t.Errorf("metadata without CORS origins does not say cors false: %s", rec.Body)
	}
	h, _ = corsServer(t, allowedOrigin)
	if rec := serveWith(h, "GET", "/metadata"); !strings.Contains(rec.Body.String(), `"cors":true`) {
		t.Errorf("metadata with CORS origins does not say cors true: %s", rec.Body)
	}
}
