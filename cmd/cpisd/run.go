package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/cpis-fhir/cpis/api"
	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/delivery"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole server: it starts, serves until ctx ends, then drains
// in-flight requests and stops.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		return err
	}
	srv, err := start(ctx, cfg, stdout, time.Now)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-srv.done:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return srv.shutdown(sctx)
}

// server is one running instance: its listener, HTTP server and the
// resources to release on shutdown.
type server struct {
	cfg      Config
	log      *slog.Logger
	URL      string // the base URL it serves on
	store    store.Store
	now      func() time.Time // the injected clock
	recorder *audit.Recorder
	// deliverer sends subscription notifications (background).
	deliverer *delivery.Deliverer
	http      *http.Server
	done      chan error // receives Serve's error if it stops on its own
	stopBg    context.CancelFunc
	bg        sync.WaitGroup // background maintenance
	stopOnce  sync.Once
	stopErr   error
}

// start listens, opens the store, and serves in the background. Tests call
// it with Addr 127.0.0.1:0 and their own clock.
func start(ctx context.Context, cfg Config, logOut io.Writer, now func() time.Time) (_ *server, err error) {
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ln, scheme, err := listen(cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	base := cfg.BaseURL
	if base == "" {
		base = scheme + "://" + ln.Addr().String()
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	srv := &server{cfg: cfg, log: log, URL: base, store: st, now: now, done: make(chan error, 1)}
	if err := srv.upkeep(ctx); err != nil {
		// Not fatal: records wait in the default partition until a later run.
		log.Warn("upkeep at start", slog.String("error", err.Error()))
	}
	if err := srv.build(ctx, now); err != nil {
		st.Close()
		return nil, err
	}
	go func() {
		if err := srv.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			srv.done <- err
		}
	}()
	srv.background()
	log.Info("serving", slog.String("addr", ln.Addr().String()), slog.String("store", storeKind(cfg)),
		slog.Bool("dev_mode", cfg.DevMode()), slog.String("version", version))
	return srv, nil
}

// listen opens the listener: TCP on cfg.Addr, capped at cfg.MaxConnections
// connections at once, with TLS when a certificate is configured. It
// returns the scheme it serves.
func listen(cfg Config) (net.Listener, string, error) {
	var cert tls.Certificate
	if cfg.TLSCertFile != "" {
		var err error
		if cert, err = tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, "", fmt.Errorf("CPIS_TLS_CERT_FILE, CPIS_TLS_KEY_FILE: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if cfg.MaxConnections > 0 {
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	if cfg.TLSCertFile == "" {
		return ln, "http", nil
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), "https", nil
}

// build wires the audit recorder, token verification and HTTP handler.
func (s *server) build(ctx context.Context, now func() time.Time) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.recorder = audit.NewRecorder(s.store, audit.Options{Registerer: reg, Logger: s.log})
	las, err := s.cfg.authorities()
	if err != nil {
		s.recorder.Close()
		return err
	}
	sc := s.cfg.Subscriptions
	policy := delivery.Policy{Dev: s.cfg.DevMode(), AllowedHosts: sc.AllowedHosts}
	rg := register.New(register.Config{
		Store: s.store, Audit: s.recorder, NewID: uuid.NewString, Source: s.URL,
		Authorities: las, AuditorRoles: s.cfg.AuditorRoles, ASNCoalesceWindow: s.cfg.ASNCoalesceWindow, SafeguardingRoles: s.cfg.SafeguardingRoles,
		DevEndpoints: s.cfg.DevMode(), EndpointPolicy: policy.Check,
	})
	s.deliverer = delivery.New(delivery.Config{
		Store: s.store, Register: rg, BaseURL: s.URL, Now: now, Policy: policy, Logger: s.log,
		Metrics: delivery.NewMetrics(reg), Poll: sc.Poll, Workers: sc.Workers, Lease: sc.Lease,
		RetryBase: sc.RetryBase, RetryMax: sc.RetryMax, RetryFor: sc.RetryFor,
	})
	deps := api.Deps{
		Register: rg,
		Now:      now, NewID: uuid.NewString, Logger: s.log, Registry: reg, BaseURL: s.URL, Version: version,
		CORSOrigins: s.cfg.CORSOrigins, MaxBundleEntries: s.cfg.MaxBundleEntries, Wake: s.deliverer.Wake,
	}
	if err := s.identity(ctx, &deps, now); err != nil {
		s.recorder.Close()
		return err
	}
	if err := s.viewerApp(&deps, now); err != nil {
		s.recorder.Close()
		return err
	}
	if s.cfg.Demo {
		if err := loadDemo(ctx, deps.Register, now); err != nil {
			s.recorder.Close()
			return err
		}
	}
	s.http = &http.Server{
		Handler:           api.New(deps),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return nil
}

// identity sets up token verification and what is published of it (the
// SMART configuration): in dev mode the dev issuer and authorization
// server, else the configured issuer.
func (s *server) identity(ctx context.Context, deps *api.Deps, now func() time.Time) error {
	if !s.cfg.DevMode() {
		return s.issuerIdentity(ctx, deps, now)
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	dev, err := auth.LoadOrCreateDevIssuer(s.cfg.DataDir, s.URL+"/dev", s.cfg.Audience, now)
	if err != nil {
		return fmt.Errorf("dev issuer: %w", err)
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: dev.Issuer(), Audience: s.cfg.Audience, KeySet: dev.PublicKeys(), Now: now, MaxLifetime: s.cfg.MaxTokenLifetime})
	if err != nil {
		return fmt.Errorf("dev verifier: %w", err)
	}
	clients, err := s.cfg.clients()
	if err != nil {
		return err
	}
	devAuth, err := auth.NewDevAuthServer(auth.DevAuthConfig{Issuer: dev, Clients: clients, BaseURL: s.URL})
	if err != nil {
		return fmt.Errorf("dev authorization server: %w", err)
	}
	smart := devAuth.SMARTConfiguration()
	deps.Verifier, deps.Dev, deps.DevAuth, deps.SMART = v, dev, devAuth, &smart
	return nil
}

// issuerIdentity trusts the configured issuer. Its discovery document is
// read once, for the keys (unless CPIS_JWKS_URL names them) and for the
// endpoints the SMART configuration passes on. When that document cannot be
// had or offers no usable token endpoint, the server still starts if it has
// the keys, but publishes no SMART configuration (404) and says why.
func (s *server) issuerIdentity(ctx context.Context, deps *api.Deps, now func() time.Time) error {
	disc, derr := auth.Discover(ctx, nil, s.cfg.Issuer)
	jwks := s.cfg.JWKSURL
	if jwks == "" {
		if derr != nil {
			return fmt.Errorf("token issuer %s: %w", s.cfg.Issuer, derr)
		}
		jwks = disc.JWKSURI // "" fails in NewVerifier's discovery, with its reason
	}
	v, err := auth.NewVerifier(ctx, auth.Config{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, JWKSURL: jwks, Now: now, MaxLifetime: s.cfg.MaxTokenLifetime})
	if err != nil {
		return fmt.Errorf("token issuer %s: %w", s.cfg.Issuer, err)
	}
	deps.Verifier = v
	err = derr
	if err == nil {
		var smart auth.SMARTConfig
		if smart, err = auth.SMARTFromDiscovery(disc, jwks); err == nil {
			deps.SMART = &smart
			s.log.Info("SMART configuration", slog.String("token_endpoint", smart.TokenEndpoint),
				slog.String("authorization_endpoint", smart.AuthorizationEndpoint), slog.Any("capabilities", smart.Capabilities))
			return nil
		}
	}
	s.log.Warn("no SMART configuration is published (/.well-known/smart-configuration answers 404): "+
		"clients must be told the token endpoint by other means", slog.String("reason", err.Error()))
	return nil
}

// background starts the pprof listener, if configured, the store's
// periodic upkeep, if it needs any (start ran the first), and the
// subscriptions' delivery.
func (s *server) background() {
	ctx, cancel := context.WithCancel(context.Background())
	s.stopBg = cancel
	if s.cfg.PprofAddr != "" {
		s.bg.Go(func() { s.pprof(ctx) })
	}
	if _, ok := s.store.(auditPartitions); ok || s.cfg.EventRetentionDays > 0 {
		s.bg.Go(func() { s.maintain(ctx) })
	}
	s.bg.Go(func() { s.deliverer.Run(ctx) })
}

// shutdown stops accepting requests, lets in-flight ones finish (their audit
// records included), then closes the recorder and the store. Calling it
// again returns the first call's result.
func (s *server) shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		err := s.http.Shutdown(ctx)
		s.stopBg()
		s.bg.Wait()
		s.stopErr = errors.Join(err, s.recorder.Close(), s.store.Close())
		s.log.Info("stopped")
	})
	return s.stopErr
}

// openStore opens PostgreSQL when a database URL is configured, and the
// embedded SQLite database otherwise.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		st, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("postgres: %w", err)
		}
		return st, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "cpis.db"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return st, nil
}

func storeKind(cfg Config) string {
	if cfg.DatabaseURL != "" {
		return "postgres"
	}
	return "sqlite"
}
