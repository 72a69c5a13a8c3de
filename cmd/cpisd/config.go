package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	devclients "github.com/cpis-fhir/cpis/examples/clients"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/delivery"
)

// Config is the whole configuration of the server, built once from the
// environment and flags, then passed down. Secrets may come from files
// (the _FILE variants), as container platforms mount them.
type Config struct {
	Addr        string     // CPIS_ADDR, --addr: where to listen
	DataDir     string     // CPIS_DATA_DIR, --data-dir: the SQLite database and the dev signing key
	DatabaseURL string     // CPIS_DATABASE_URL or CPIS_DATABASE_URL_FILE: PostgreSQL; empty means SQLite
	Issuer      string     // CPIS_OIDC_ISSUER: the token issuer; empty means dev mode
	JWKSURL     string     // CPIS_JWKS_URL: the issuer's keys; empty means OIDC discovery
	Audience    string     // CPIS_AUDIENCE: the aud tokens must carry
	BaseURL     string     // CPIS_BASE_URL: the public base URL; default http://<addr>
	Demo        bool       // CPIS_DEMO=1, --demo: load a few demo plans (dev mode)
	LogLevel    slog.Level // CPIS_LOG_LEVEL: debug, info, warn, error
	// AuditRetentionMonths (CPIS_AUDIT_RETENTION_MONTHS) keeps the current
	// month of AuditEvents and this many before it, dropping older monthly
	// partitions (PostgreSQL). 0 keeps everything.
	AuditRetentionMonths int
	// EventRetentionDays (CPIS_EVENT_RETENTION_DAYS) keeps this many days
	// of the event log (plan changes and ASNs, which the feeds and
	// subscriptions replay), deleting older events hourly. 0 keeps
	// everything. Plan versions and the audit trail are not touched.
	EventRetentionDays int
	// ASNCoalesceWindow (CPIS_ASN_COALESCE_WINDOW, a Go duration) is how
	// long after an ASN for a child, accessing organisation and LA later
	// accesses send none: default 24h; 0 sends one ASN per access.
	ASNCoalesceWindow time.Duration
	// PprofAddr (CPIS_PPROF_ADDR) serves net/http/pprof on this loopback
	// address, apart from the API, for profiling under load. Empty, the
	// default, serves no profiles.
	PprofAddr string
	// AuditorRoles (CPIS_AUDITOR_ROLES, comma-separated role codes) are the
	// roles whose holders may search their organisation's audit trail, given
	// the scope user/AuditEvent.read too. Unset: register.DefaultAuditorRoles.
	AuditorRoles []string
	// SafeguardingRoles (CPIS_SAFEGUARDING_ROLES, comma-separated role
	// codes) are the roles whose holders review their organisation's
	// discrepancy reports, given the scope user/Communication.read too.
	// Unset: register.DefaultSafeguardingRoles (the dev safeguarding lead's).
	SafeguardingRoles []string
	// LARegisterFile (CPIS_LA_REGISTER_FILE) is the register of local
	// authorities, a CSV file "code,name" (the national list in
	// production). Required outside dev mode; in dev mode the Trust's six
	// LAs are the register unless a file is given.
	LARegisterFile string
	// ClientsFile (CPIS_CLIENTS_FILE) registers the clients of the dev
	// authorization server: LA and health systems (SMART Backend Services)
	// and SMART apps, a JSON file (auth.ReadClients). Dev mode only; unset,
	// examples/clients/dev-clients.json, built in.
	ClientsFile string
	// MaxTokenLifetime (CPIS_MAX_TOKEN_LIFETIME, a Go duration) is the
	// longest lifetime a bearer token may have (exp - iat); 0 means
	// auth.DefaultMaxLifetime (12 h).
	MaxTokenLifetime time.Duration
	// TLSCertFile and TLSKeyFile (CPIS_TLS_CERT_FILE, CPIS_TLS_KEY_FILE),
	// both or neither: serve HTTPS with this certificate chain and key
	// (PEM). Without them the server speaks plain HTTP, for a TLS-terminating
	// proxy in front or for dev mode on loopback.
	TLSCertFile, TLSKeyFile string
	// MaxConnections (CPIS_MAX_CONNECTIONS) caps the client connections
	// served at once; more wait to be accepted. 0 means no cap.
	MaxConnections int
	// CORSOrigins (CPIS_CORS_ORIGINS, comma-separated) are the exact
	// browser origins (scheme://host[:port]) whose pages may call the
	// server. Unset: none, and no CORS headers are sent.
	CORSOrigins []string
	// MaxBundleEntries (CPIS_MAX_BUNDLE_ENTRIES) bounds the entries of a
	// batch or transaction Bundle; 0 means 1,000.
	MaxBundleEntries int
	// LADirectoryFile (CPIS_LA_DIRECTORY) is the Trust's LA directory
	// (YAML or JSON, cpis.ReadDirectory): per LA its referral route,
	// office hours and numbers, for the viewer's advice. Unset: in dev
	// mode the six dev LAs, otherwise none (the viewer gives no advice
	// rather than calling every child out of area).
	LADirectoryFile string
	// ViewerClientID and ViewerKeyFile (CPIS_VIEWER_CLIENT_ID,
	// CPIS_VIEWER_KEY_FILE), both or neither: outside dev mode, the web
	// viewer's client id at the issuer and its private signing key (a
	// JWK, ES384 or RS384, with a kid). Without them the viewer is not
	// served (/app answers 404). In dev mode the viewer makes its own key
	// and registers itself with the dev authorization server.
	ViewerClientID, ViewerKeyFile string
	// Subscription delivery (internal/delivery). AllowedHosts
	// (CPIS_SUBSCRIPTION_ALLOWED_HOSTS, comma-separated host names) may be
	// endpoints even though they resolve to private or loopback addresses;
	// the rest are Go durations and a count: CPIS_SUBSCRIPTION_RETRY_FOR
	// (24h: how long failed deliveries are retried before the subscription
	// is set to error), CPIS_SUBSCRIPTION_RETRY_BASE (1s, doubling) and
	// CPIS_SUBSCRIPTION_RETRY_MAX (10m) for the backoff,
	// CPIS_SUBSCRIPTION_POLL (250ms), CPIS_SUBSCRIPTION_LEASE (30s: a dead
	// replica's subscriptions are taken over after this) and
	// CPIS_SUBSCRIPTION_WORKERS (8 endpoints served at once per replica).
	Subscriptions   SubscriptionConfig
	ShutdownTimeout time.Duration
}

// SubscriptionConfig is the delivery's part of Config.
type SubscriptionConfig struct {
	AllowedHosts                  []string
	RetryFor, RetryBase, RetryMax time.Duration
	Poll, Lease                   time.Duration
	Workers                       int
}

// defaultMaxConnections is CPIS_MAX_CONNECTIONS when it is not set: far
// above what a replica serves well (a few hundred clients), low enough that
// a flood of idle connections cannot exhaust file descriptors.
const defaultMaxConnections = 1024

// DevMode reports whether the server is its own token issuer.
func (c Config) DevMode() bool { return c.Issuer == "" }

// loadConfig reads the configuration; flags win over the environment.
func loadConfig(args []string, getenv func(string) string) (Config, error) {
	c := Config{
		Addr:              or(getenv("CPIS_ADDR"), "127.0.0.1:8080"),
		DataDir:           or(getenv("CPIS_DATA_DIR"), "data"),
		Issuer:            strings.TrimRight(getenv("CPIS_OIDC_ISSUER"), "/"),
		JWKSURL:           getenv("CPIS_JWKS_URL"),
		Audience:          getenv("CPIS_AUDIENCE"),
		BaseURL:           strings.TrimRight(getenv("CPIS_BASE_URL"), "/"),
		Demo:              truthy(getenv("CPIS_DEMO")),
		PprofAddr:         getenv("CPIS_PPROF_ADDR"),
		AuditorRoles:      list(getenv("CPIS_AUDITOR_ROLES")),
		SafeguardingRoles: list(getenv("CPIS_SAFEGUARDING_ROLES")),
		LARegisterFile:    getenv("CPIS_LA_REGISTER_FILE"),
		ClientsFile:       getenv("CPIS_CLIENTS_FILE"),
		TLSCertFile:       getenv("CPIS_TLS_CERT_FILE"),
		TLSKeyFile:        getenv("CPIS_TLS_KEY_FILE"),
		LADirectoryFile:   getenv("CPIS_LA_DIRECTORY"),
		ViewerClientID:    getenv("CPIS_VIEWER_CLIENT_ID"),
		ViewerKeyFile:     getenv("CPIS_VIEWER_KEY_FILE"),
		MaxConnections:    defaultMaxConnections,
		ASNCoalesceWindow: cpis.DefaultASNCoalesceWindow,
		ShutdownTimeout:   20 * time.Second,
	}
	var err error
	if c.DatabaseURL, err = secret(getenv, "CPIS_DATABASE_URL"); err != nil {
		return c, err
	}
	if v := getenv("CPIS_MAX_TOKEN_LIFETIME"); v != "" {
		if c.MaxTokenLifetime, err = time.ParseDuration(v); err != nil || c.MaxTokenLifetime <= 0 {
			return c, fmt.Errorf("CPIS_MAX_TOKEN_LIFETIME must be a positive Go duration such as 8h, not %q", v)
		}
	}
	if v := getenv("CPIS_MAX_BUNDLE_ENTRIES"); v != "" {
		if c.MaxBundleEntries, err = strconv.Atoi(v); err != nil || c.MaxBundleEntries < 1 || c.MaxBundleEntries > 10000 {
			return c, fmt.Errorf("CPIS_MAX_BUNDLE_ENTRIES must be a whole number from 1 to 10000, not %q", v)
		}
	}
	if v := getenv("CPIS_MAX_CONNECTIONS"); v != "" {
		if c.MaxConnections, err = strconv.Atoi(v); err != nil || c.MaxConnections < 0 {
			return c, fmt.Errorf("CPIS_MAX_CONNECTIONS must be a whole number (0: no cap), not %q", v)
		}
	}
	if c.CORSOrigins, err = origins(getenv("CPIS_CORS_ORIGINS")); err != nil {
		return c, err
	}
	if v := getenv("CPIS_ASN_COALESCE_WINDOW"); v != "" {
		if c.ASNCoalesceWindow, err = time.ParseDuration(v); err != nil || c.ASNCoalesceWindow < 0 {
			return c, fmt.Errorf("CPIS_ASN_COALESCE_WINDOW must be a Go duration such as 24h (0: one ASN per access), not %q", v)
		}
	}
	if c.Subscriptions, err = subscriptionConfig(getenv); err != nil {
		return c, err
	}
	if v := getenv("CPIS_EVENT_RETENTION_DAYS"); v != "" {
		if c.EventRetentionDays, err = strconv.Atoi(v); err != nil || c.EventRetentionDays < 0 {
			return c, fmt.Errorf("CPIS_EVENT_RETENTION_DAYS must be a whole number of days (0: keep all), not %q", v)
		}
	}
	if v := getenv("CPIS_AUDIT_RETENTION_MONTHS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && n < 12) {
			return c, fmt.Errorf("CPIS_AUDIT_RETENTION_MONTHS must be 0 (keep all) or at least 12, not %q", v)
		}
		c.AuditRetentionMonths = n
	}
	if err := c.LogLevel.UnmarshalText([]byte(or(getenv("CPIS_LOG_LEVEL"), "info"))); err != nil {
		return c, fmt.Errorf("CPIS_LOG_LEVEL: %w", err)
	}
	fs := flag.NewFlagSet("cpisd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory")
	fs.BoolVar(&c.Demo, "demo", c.Demo, "load demo plans")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("flags: %w (known: --addr, --data-dir, --demo)", err)
	}
	return c, c.validate()
}

// subscriptionConfig reads the delivery's settings.
func subscriptionConfig(getenv func(string) string) (SubscriptionConfig, error) {
	sc := SubscriptionConfig{AllowedHosts: list(getenv("CPIS_SUBSCRIPTION_ALLOWED_HOSTS")), Workers: delivery.DefaultWorkers}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"CPIS_SUBSCRIPTION_RETRY_FOR", &sc.RetryFor, delivery.DefaultRetryFor},
		{"CPIS_SUBSCRIPTION_RETRY_BASE", &sc.RetryBase, delivery.DefaultRetryBase},
		{"CPIS_SUBSCRIPTION_RETRY_MAX", &sc.RetryMax, delivery.DefaultRetryMax},
		{"CPIS_SUBSCRIPTION_POLL", &sc.Poll, delivery.DefaultPoll},
		{"CPIS_SUBSCRIPTION_LEASE", &sc.Lease, delivery.DefaultLease},
	} {
		*d.v = d.def
		if v := getenv(d.name); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return sc, fmt.Errorf("%s must be a positive Go duration such as %s, not %q", d.name, d.def, v)
			}
			*d.v = t
		}
	}
	if v := getenv("CPIS_SUBSCRIPTION_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return sc, fmt.Errorf("CPIS_SUBSCRIPTION_WORKERS must be a whole number from 1 to 1000, not %q", v)
		}
		sc.Workers = n
	}
	return sc, nil
}

func (c *Config) validate() error {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("CPIS_TLS_CERT_FILE and CPIS_TLS_KEY_FILE go together: set both, or neither")
	}
	if (c.ViewerClientID == "") != (c.ViewerKeyFile == "") {
		return errors.New("CPIS_VIEWER_CLIENT_ID and CPIS_VIEWER_KEY_FILE go together: set both, or neither")
	}
	if c.PprofAddr != "" {
		if err := checkPprofAddr(c.PprofAddr); err != nil {
			return err
		}
	}
	if c.DevMode() {
		c.Audience = or(c.Audience, "cpis")
		return nil
	}
	if c.Audience == "" {
		return errors.New("CPIS_AUDIENCE is required when CPIS_OIDC_ISSUER is set")
	}
	if c.LARegisterFile == "" {
		return errors.New("CPIS_LA_REGISTER_FILE is required when CPIS_OIDC_ISSUER is set: the register of local authorities, a CSV file with the header code,name")
	}
	if c.Demo {
		return errors.New("demo plans are for dev mode only: unset CPIS_DEMO or CPIS_OIDC_ISSUER")
	}
	if c.ClientsFile != "" {
		return errors.New("CPIS_CLIENTS_FILE is for dev mode only: with CPIS_OIDC_ISSUER set, clients are registered with that issuer")
	}
	return nil
}

// authorities is the register of local authorities: the file, or in dev
// mode without one the Trust's directory.
func (c Config) authorities() (*cpis.Authorities, error) {
	if c.LARegisterFile == "" {
		return cpis.DevAuthorities(), nil
	}
	f, err := os.Open(c.LARegisterFile)
	if err != nil {
		return nil, fmt.Errorf("CPIS_LA_REGISTER_FILE: %w", err)
	}
	defer f.Close()
	a, err := cpis.ReadAuthorities(f)
	if err != nil {
		return nil, fmt.Errorf("CPIS_LA_REGISTER_FILE %s: %w", c.LARegisterFile, err)
	}
	return a, nil
}

// clients are the dev authorization server's registered clients: the
// file, or the built-in dev clients.
func (c Config) clients() (*auth.Clients, error) {
	if c.ClientsFile == "" {
		return auth.ReadClients(bytes.NewReader(devclients.DevClients))
	}
	f, err := os.Open(c.ClientsFile)
	if err != nil {
		return nil, fmt.Errorf("CPIS_CLIENTS_FILE: %w", err)
	}
	defer f.Close()
	cs, err := auth.ReadClients(f)
	if err != nil {
		return nil, fmt.Errorf("CPIS_CLIENTS_FILE %s: %w", c.ClientsFile, err)
	}
	return cs, nil
}

// directory is the Trust's LA directory: the file, or in dev mode
// without one the dev directory; nil outside dev mode without a file.
func (c Config) directory() (*cpis.Directory, error) {
	if c.LADirectoryFile == "" {
		if c.DevMode() {
			return cpis.DevDirectory(), nil
		}
		return nil, nil
	}
	f, err := os.Open(c.LADirectoryFile)
	if err != nil {
		return nil, fmt.Errorf("CPIS_LA_DIRECTORY: %w", err)
	}
	defer f.Close()
	d, err := cpis.ReadDirectory(f)
	if err != nil {
		return nil, fmt.Errorf("CPIS_LA_DIRECTORY %s: %w", c.LADirectoryFile, err)
	}
	return d, nil
}

// secret reads NAME, or the contents of the file named by NAME_FILE.
func secret(getenv func(string) string, name string) (string, error) {
	if v := getenv(name); v != "" {
		return v, nil
	}
	path := getenv(name + "_FILE")
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// list splits a comma-separated setting, dropping empty items.
func list(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// origins reads CPIS_CORS_ORIGINS: origins as browsers send them in the
// Origin header (scheme://host[:port], lower case, no default port, no path),
// since they are compared exactly. "*" and patterns are refused: a page that
// may read patient data must be named.
func origins(v string) ([]string, error) {
	var out []string
	for _, o := range list(v) {
		u, err := url.Parse(o)
		ok := err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
			u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery && !strings.HasSuffix(u.Host, ":") &&
			!strings.ContainsAny(o, "*?#@")
		if ok {
			p := u.Port()
			ok = o == strings.ToLower(o) && !(u.Scheme == "https" && p == "443") && !(u.Scheme == "http" && p == "80")
		}
		if !ok {
			return nil, fmt.Errorf("CPIS_CORS_ORIGINS: %q is not an origin as browsers send it: scheme://host[:port] in lower case, without path, default port or wildcard", o)
		}
		out = append(out, o)
	}
	return out, nil
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}
