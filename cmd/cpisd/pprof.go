package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// checkPprofAddr accepts only a loopback address for CPIS_PPROF_ADDR:
// profiles show the server's internals and are for an operator on the
// machine, never for the API's clients.
func checkPprofAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return fmt.Errorf("CPIS_PPROF_ADDR must be a loopback host:port such as 127.0.0.1:6060, not %q", addr)
	}
	return nil
}

// pprofHandler serves net/http/pprof's endpoints under /debug/pprof/.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// servePprof serves the runtime profiles on ln, a listener apart from the
// API's, until ctx ends. Profiling is opt-in (CPIS_PPROF_ADDR) and off by
// default; cmd/cpisbench's README notes show how to take a CPU profile
// under load.
func servePprof(ctx context.Context, ln net.Listener, log *slog.Logger) {
	srv := &http.Server{Handler: pprofHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Info("serving profiles", slog.String("addr", ln.Addr().String()))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Warn("profiles", slog.String("error", err.Error()))
	}
}

// pprof listens on the configured address and serves profiles until ctx
// ends. A failure to listen is logged, not fatal: profiles are a
// diagnostic aid, and the API is already serving.
func (s *server) pprof(ctx context.Context) {
	ln, err := net.Listen("tcp", s.cfg.PprofAddr)
	if err != nil {
		s.log.Warn("profiles not served", slog.String("error", err.Error()))
		return
	}
	servePprof(ctx, ln, s.log)
}
