package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCORSOriginsConfig(t *testing.T) {
	for _, tt := range []struct {
		env  string
		want []string // nil with ok false: refused
		ok   bool
	}{
		{"", nil, true},
		{"https://ehr.example.org", []string{"https://ehr.example.org"}, true},
		{" https://ehr.example.org , http://localhost:3000,", []string{"https://ehr.example.org", "http://localhost:3000"}, true},
		{"http://[::1]:8081", []string{"http://[::1]:8081"}, true},
		{"*", nil, false},
		{"https://*.example.org", nil, false},
		{"https://ehr.example.org/", nil, false},
		{"https://ehr.example.org/app", nil, false},
		{"https://EHR.example.org", nil, false},
		{"https://ehr.example.org:443", nil, false},
		{"http://ehr.example.org:80", nil, false},
		{"https://ehr.example.org:", nil, false},
		{"ehr.example.org", nil, false},
		{"null", nil, false},
		{"file:///tmp", nil, false},
		{"https://user@ehr.example.org", nil, false},
		{"https://ehr.example.org?x=1", nil, false},
	} {
		t.Run(tt.env, func(t *testing.T) {
			cfg, err := loadConfig(nil, func(k string) string {
				if k == "CPIS_CORS_ORIGINS" {
					return tt.env
				}
				return ""
			})
			if (err == nil) != tt.ok {
				t.Fatalf("CPIS_CORS_ORIGINS=%q: error %v, want ok %v", tt.env, err, tt.ok)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "CPIS_CORS_ORIGINS") {
					t.Errorf("error %q does not name the setting", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, cfg.CORSOrigins); diff != "" {
				t.Errorf("CORSOrigins (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCORSEndToEnd: a page of a configured origin may preflight and then
// read, with a dev token; the CapabilityStatement says cors true.
func TestCORSEndToEnd(t *testing.T) {
	const page = "http://localhost:3000"
	ts := newTestServer(t, func(c *Config) { c.CORSOrigins = []string{page} })
	if _, cors := oauthURIs(t, ts); !cors {
		t.Errorf("cors false with CPIS_CORS_ORIGINS set")
	}
	pre := ts.do("OPTIONS", "/Flag", "", nil, "Origin", page, "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "authorization,x-request-id")
	if pre.Status != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != page {
		t.Errorf("preflight: %d, Allow-Origin %q", pre.Status, pre.Header.Get("Access-Control-Allow-Origin"))
	}
	other := ts.do("OPTIONS", "/Flag", "", nil, "Origin", "http://localhost:4000", "Access-Control-Request-Method", "GET")
	if other.Header.Get("Access-Control-Allow-Origin") != "" || other.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("preflight of another origin got CORS headers: %v", other.Header)
	}
	res := ts.as("community-nurse", "GET", "/Flag?patient=9000000009", nil, "Origin", page)
	mustStatus(t, res, http.StatusOK)
	if res.Header.Get("Access-Control-Allow-Origin") != page || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("read: Allow-Origin %q, Expose-Headers %q", res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Access-Control-Expose-Headers"))
	}
	if !strings.Contains(ts.logs.String(), `"method":"OPTIONS","route":"/Flag"`) {
		t.Errorf("the preflight is not logged under its route")
	}
}
