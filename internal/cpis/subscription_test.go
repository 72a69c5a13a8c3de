package cpis_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func validSubscription() cpis.Subscription {
	return cpis.Subscription{
		Topic: cpis.TopicPlanChange, NHSNumber: "9434765919", Endpoint: "https://receiver.example.org/hook",
		Content: cpis.ContentIDOnly, Timeout: 5 * time.Second, MaxCount: 10,
		Headers: []string{"Authorization: Bearer x"},
	}
}

func TestSubscriptionCheck(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*cpis.Subscription)
		dev    bool
		want   string // "" for valid; else a part of the message
	}{
		{"valid", func(*cpis.Subscription) {}, false, ""},
		{"unknown topic", func(s *cpis.Subscription) { s.Topic = "https://example.org/topic" }, false, "no such subscription topic"},
		{"plan-change without a child", func(s *cpis.Subscription) { s.NHSNumber = "" }, false, "watches one child"},
		{"an invalid NHS number", func(s *cpis.Subscription) { s.NHSNumber = "9434765918" }, false, "not valid"},
		{"ASN topic with a child", func(s *cpis.Subscription) { s.Topic = cpis.TopicASN }, false, "recipient only"},
		{"unknown content", func(s *cpis.Subscription) { s.Content = "everything" }, false, "payload content"},
		{"a long heartbeat", func(s *cpis.Subscription) { s.HeartbeatPeriod = 25 * time.Hour }, false, "heartbeat"},
		{"a long timeout", func(s *cpis.Subscription) { s.Timeout = 11 * time.Second }, false, "timeout"},
		{"max-count too high", func(s *cpis.Subscription) { s.MaxCount = 1001 }, false, "max-count"},
		{"too many headers", func(s *cpis.Subscription) { s.Headers = make([]string, 11) }, false, "at most 10"},
		{"a header without a value", func(s *cpis.Subscription) { s.Headers = []string{"Authorization:"} }, false, "Name: value"},
		{"a header on two lines", func(s *cpis.Subscription) { s.Headers = []string{"X-A: b\r\nX-B: c"} }, false, "one line"},
		{"a header the server sets", func(s *cpis.Subscription) { s.Headers = []string{"Host: evil.example"} }, false, "server's to set"},
		{"a header name with a space", func(s *cpis.Subscription) { s.Headers = []string{"X A: b"} }, false, "token"},
		{"http outside dev", func(s *cpis.Subscription) { s.Endpoint = "http://127.0.0.1:9/hook" }, false, "https"},
		{"http to loopback in dev", func(s *cpis.Subscription) { s.Endpoint = "http://127.0.0.1:9/hook" }, true, ""},
		{"http to localhost in dev", func(s *cpis.Subscription) { s.Endpoint = "http://localhost:9/hook" }, true, ""},
		{"http elsewhere in dev", func(s *cpis.Subscription) { s.Endpoint = "http://example.org/hook" }, true, "loopback"},
		{"credentials in the URL", func(s *cpis.Subscription) { s.Endpoint = "https://u:p@example.org/hook" }, false, "credentials"},
		{"a relative URL", func(s *cpis.Subscription) { s.Endpoint = "/hook" }, false, "absolute"},
		{"another scheme", func(s *cpis.Subscription) { s.Endpoint = "ftp://example.org/hook" }, false, "https"},
		{"a fragment", func(s *cpis.Subscription) { s.Endpoint = "https://example.org/hook#x" }, false, "fragment"},
		{"a long URL", func(s *cpis.Subscription) { s.Endpoint = "https://example.org/" + strings.Repeat("a", 2048) }, false, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSubscription()
			tt.modify(&s)
			err := s.Check(tt.dev)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Check: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Check accepted it; want an error saying %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Check: %v; want it to say %q", err, tt.want)
			case tt.want != "" && cpis.KindOf(err) != cpis.Invalid:
				t.Fatalf("kind %v, want Invalid", cpis.KindOf(err))
			}
		})
	}
}

func TestBackoffDoublesToItsCeiling(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 12; n++ {
		got = append(got, cpis.Backoff(n, time.Second, 10*time.Minute))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoff after %d failures = %v, want %v (all: %v)", i+1, got[i], want[i]*time.Second, got)
		}
	}
	if d := cpis.Backoff(1000000, time.Second, 10*time.Minute); d != 10*time.Minute {
		t.Fatalf("a long outage backs off %v, want the ceiling", d)
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST.": true, "a.localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"example.org": false, "10.0.0.1": false, "localhost.example.org": false, "127.0.0.1.nip.io": false,
	} {
		if got := cpis.IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
