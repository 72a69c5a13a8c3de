package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
)

func TestPprofAddrMustBeLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{"0.0.0.0:6060", false},
		{":6060", false},
		{"10.1.2.3:6060", false},
		{"example.org:6060", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			env := map[string]string{"CPIS_PPROF_ADDR": tt.addr}
			_, err := loadConfig(nil, func(k string) string { return env[k] })
			if (err == nil) != tt.ok {
				t.Errorf("loadConfig with CPIS_PPROF_ADDR=%q: error %v, want ok %v", tt.addr, err, tt.ok)
			}
		})
	}
}

func TestServePprof(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		servePprof(ctx, ln, slog.New(slog.DiscardHandler))
		close(done)
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /debug/pprof/cmdline: %d", resp.StatusCode)
	}
	cancel()
	<-done
}
