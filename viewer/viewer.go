// Package viewer is the clinician's web viewer of CP-IS, served by cpisd at
// /app/: the "Child protection information" tab of the SOP as a
// server-rendered web app (html/template, no JavaScript needed).
//
// It is a SMART on FHIR app of its own server: a confidential client that
// signs in with the authorization code flow, PKCE (S256) and a signed client
// assertion (golang.org/x/oauth2, auth.SignClientAssertion), launched
// standalone (GET /app/login) or by an EHR (GET /app/launch?iss=&launch=).
// Every page that shows plans calls the application layer
// (register.Service) with a register.Caller built from the verified access
// token, exactly as a FHIR read does: the same rules, the same audit record,
// one access per view.
//
// Sessions live in this process's memory, on purpose: the access token
// then never leaves the server (it is neither written to disk nor sent to
// the browser, whose cookie holds only a random session id). The price is
// that a user's session belongs to one replica: a load balancer in front of
// several replicas must keep each user on one (sticky sessions), and a
// restart of that replica means signing in again, which with an EHR launch
// or single sign-on is one click.
//
// A sign-in under way is not kept on the server at all: its OAuth state,
// PKCE verifier, launch and expiry travel sealed (AES-256-GCM) in the
// short-lived cpis_login cookie, so that anonymous requests to start a
// sign-in cost no memory and can refuse no one. The sealing key is made
// at random when the viewer starts, per process: a sign-in started on one
// replica and finished on another (or across a restart) fails cleanly,
// with the page that offers to sign in again; sticky sessions avoid it.
//
// Safe by default: a Content-Security-Policy without inline script or
// style, HttpOnly SameSite=Strict session cookies (Secure except in dev mode
// on loopback), a CSRF token on every form and the Origin checked on every
// POST, a per-view token on every form of a child's page so that a form
// acts only on the child it was shown for, sign-out after IdleTimeout
// without activity (signed-in pages warn a minute before, offer to stay
// signed in, and then leave the child's page so that a shared
// workstation's screen is cleared: idle.go), HEAD refused on pages
// that read the register (it would be an audited read with nothing shown),
// and no NHS number, name or token in any URL or log line.
package viewer

import (
	"context"
	"embed"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// DefaultIdleTimeout is how long a session lasts without activity: the
// NHS's usual screen-lock time for shared clinical workstations.
const DefaultIdleTimeout = 15 * time.Minute

// TokenVerifier turns an access token into the caller's identity; the
// FHIR API's verifier (api.TokenVerifier), so that the viewer trusts
// exactly the tokens the API does.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*auth.Principal, error)
}

// Config is what the viewer needs. Every field is required except Logger,
// NewID, HTTPClient and IdleTimeout, which have defaults.
type Config struct {
	BaseURL      string // the server's public base URL, no trailing slash; the app is BaseURL+"/app"
	FHIRBase     string // the iss an EHR launch must name: the FHIR base URL (BaseURL)
	AuthorizeURL string // the SMART authorization endpoint
	TokenURL     string // the SMART token endpoint
	ClientID     string // the viewer's client id at the authorization server
	Key          jwk.Key
	Verifier     TokenVerifier
	Register     *register.Service
	Directory    *cpis.Directory
	Now          func() time.Time // the injected clock
	NewID        func() string    // request ids when the API middleware set none
	Logger       *slog.Logger
	// SecureCookies marks cookies Secure; false only in dev mode on
	// loopback over plain HTTP, where a browser would not send them back.
	SecureCookies bool
	// IdleTimeout signs a user out after this long without a request;
	// 0 means DefaultIdleTimeout.
	IdleTimeout time.Duration
	// HTTPClient calls the token endpoint; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
}

// app is the viewer: its configuration, sessions and pages.
type app struct {
	cfg      Config
	origin   string // scheme://host of BaseURL: what a POST's Origin must be
	sessions *sessions
	logins   *sealer // seals the sign-ins under way into the login cookie
	pages    *pages
	csp      string
}

// New builds the viewer's handler. It serves paths under /app (it is
// mounted there, so it sees whole paths).
func New(cfg Config) http.Handler {
	a := newApp(cfg)
	return a.routes()
}

func newApp(cfg Config) *app {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	cfg.FHIRBase = strings.TrimRight(cfg.FHIRBase, "/")
	a := &app{
		cfg:      cfg,
		origin:   originOf(cfg.BaseURL),
		sessions: newSessions(),
		logins:   newSealer(),
		pages:    mustParsePages(),
	}
	a.csp = contentSecurityPolicy(originOf(cfg.AuthorizeURL))
	return a
}

// staticFiles are the stylesheet and the one optional script.
//
//go:embed static
var staticFiles embed.FS

// routes is the viewer's whole surface.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /app", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/app/", http.StatusSeeOther)
	})
	mux.Handle("GET /app/{$}", a.signedIn(a.findForm))
	mux.HandleFunc("GET /app/login", a.login)
	mux.HandleFunc("GET /app/launch", a.launch)
	mux.HandleFunc("GET /app/callback", a.callback)
	mux.HandleFunc("POST /app/logout", a.logout)
	mux.HandleFunc("POST /app/session/extend", a.extendSession)
	mux.Handle("POST /app/patient", a.signedIn(a.findPatient))
	mux.Handle("GET /app/patient", a.signedIn(a.showPatient))
	mux.HandleFunc("HEAD /app/patient", methodNotAllowed("GET, POST"))
	mux.Handle("POST /app/setting", a.signedIn(a.chooseSetting))
	mux.Handle("POST /app/discrepancy", a.signedIn(a.reportDiscrepancy))
	mux.Handle("GET /app/directory", a.signedIn(a.directory))
	mux.Handle("GET /app/safeguarding", a.signedIn(a.safeguarding))
	mux.HandleFunc("HEAD /app/safeguarding", methodNotAllowed("GET"))
	mux.Handle("POST /app/safeguarding/resolve", a.signedIn(a.resolve))
	mux.Handle("GET /app/static/", staticHandler())
	mux.HandleFunc("/app/", a.notFound)
	return a.secure(mux)
}

// methodNotAllowed refuses HEAD on a page that reads the register: a GET
// pattern also matches HEAD, which would run the audited read (and, in
// unscheduled care, notify the LA) with nothing shown to anyone. allow
// lists the methods the page does answer.
func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// staticHandler serves the embedded files, which browsers may cache: they
// hold nothing personal and change only with a release.
func staticHandler() http.Handler {
	fs := http.StripPrefix("/app", http.FileServerFS(staticFiles))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fs.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows only the app's own stylesheet and script,
// no inline code, requests by script to the app only (the idle warning's
// "Stay signed in"), forms that post to the app (and the authorization
// server, which a sign-in form's redirect reaches), and no framing.
func contentSecurityPolicy(authorizeOrigin string) string {
	formAction := "'self'"
	if authorizeOrigin != "" {
		formAction += " " + authorizeOrigin
	}
	return "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action " + formAction + "; frame-ancestors 'none'; base-uri 'none'"
}

// secure sets the headers every answer of the app carries. Pages are never
// stored by a cache (they may name a child); static files set their own
// Cache-Control. The referrer policy is same-origin, not no-referrer:
// under no-referrer a browser sends "Origin: null" with the app's own
// forms, and the Origin check of every POST could not tell them from
// another site's; no other site is ever sent a referrer.
func (a *app) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", a.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// originOf is the origin of a URL as a browser writes it in an Origin
// header: scheme://host[:port], the scheme and host in lower case, the
// scheme's default port (https 443, http 80) left out; "" if it has none.
// Both sides of the Origin check are written so, and
// CPIS_BASE_URL=https://host:443 is the origin https://host.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // IPv6
	}
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return scheme + "://" + host
	}
	return scheme + "://" + host + ":" + port
}

// now is the injected clock.
func (a *app) now() time.Time { return a.cfg.Now() }

// notFound answers a path the app does not have.
func (a *app) notFound(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "There is no page at this address.")
}
