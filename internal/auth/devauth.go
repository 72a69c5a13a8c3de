package auth

import (
	"crypto/rand"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Paths of the development authorization server, under the server's base
// URL. They exist in dev mode only and answer callers on this machine only.
const (
	DevAuthorizePath = "/dev/authorize"
	DevTokenPath     = "/dev/token"
	DevLaunchPath    = "/dev/launch"
	DevJWKSPath      = "/dev/jwks"
)

// Lifetimes of what the development authorization server hands out. Codes
// are short and used once (RFC 6749 section 4.1.2 recommends ten minutes at
// most); a pending authorization lasts while a person chooses a persona.
const (
	CodeLifetime          = 60 * time.Second
	LaunchLifetime        = 5 * time.Minute
	PendingAuthLifetime   = 10 * time.Minute
	maxOutstandingPerKind = 10000 // bounds the memory callers can fill
)

// DevAuthServer is the SMART authorization server of dev mode: the
// authorization code flow with PKCE for apps (standalone, or launched by
// GET /dev/launch acting as the EHR) and SMART Backend Services for
// registered systems, minting tokens with the DevIssuer so that they are
// verified and mapped exactly as the personas' are. Codes, launches and
// pending authorizations live in this process's memory, short and used
// once: dev mode runs one process. It holds no HTTP: package api serves it.
// It is safe for concurrent use.
type DevAuthServer struct {
	issuer     *DevIssuer
	clients    *Clients
	assertions *AssertionVerifier
	baseURL    string // the FHIR base URL: a launch's iss, the aud apps send
	mu         sync.Mutex
	pending    map[string]pendingAuth
	codes      map[string]authCode
	launches   map[string]launchContext
}

// DevAuthConfig configures a DevAuthServer.
type DevAuthConfig struct {
	Issuer *DevIssuer // mints the tokens; its clock is the server's
	// Clients are the registered clients; nil: none (apps may still be
	// added with RegisterApp).
	Clients *Clients
	// BaseURL is the server's public base URL, which is also its FHIR base
	// URL; no trailing slash. The endpoints are BaseURL + the Dev*Path.
	BaseURL string
}

// NewDevAuthServer builds the development authorization server.
func NewDevAuthServer(cfg DevAuthConfig) (*DevAuthServer, error) {
	const op = "auth.NewDevAuthServer"
	if cfg.Issuer == nil || cfg.BaseURL == "" {
		return nil, cpis.E(op, cpis.MissingValue, "the development authorization server needs the dev issuer and the base URL")
	}
	if cfg.Clients == nil {
		cfg.Clients = NewClients()
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	return &DevAuthServer{
		issuer: cfg.Issuer, clients: cfg.Clients, baseURL: base,
		assertions: NewAssertionVerifier(base+DevTokenPath, cfg.Issuer.now),
		pending:    map[string]pendingAuth{}, codes: map[string]authCode{}, launches: map[string]launchContext{},
	}, nil
}

// RegisterApp registers a SMART app in code, as cpisd does for the viewer
// at startup: c.Kind must be ClientApp, and c passes the checks of
// Clients.Add.
func (a *DevAuthServer) RegisterApp(c Client) error {
	if c.Kind != ClientApp {
		return cpis.E("auth.DevAuthServer.RegisterApp", cpis.Invalid, "RegisterApp takes apps only (kind app)")
	}
	return a.clients.Add(c)
}

// Clients is the set of registered clients.
func (a *DevAuthServer) Clients() *Clients { return a.clients }

// Issuer is the development issuer the server mints tokens with.
func (a *DevAuthServer) Issuer() *DevIssuer { return a.issuer }

// BaseURL is the FHIR base URL: the iss of launches and the aud apps send.
func (a *DevAuthServer) BaseURL() string { return a.baseURL }

// TokenURL is the token endpoint's URL, the aud of client assertions.
func (a *DevAuthServer) TokenURL() string { return a.baseURL + DevTokenPath }

// AuthorizeURL is the authorization endpoint's URL.
func (a *DevAuthServer) AuthorizeURL() string { return a.baseURL + DevAuthorizePath }

// SMARTConfiguration is the document /.well-known/smart-configuration
// serves in dev mode.
func (a *DevAuthServer) SMARTConfiguration() SMARTConfig { return DevSMARTConfiguration(a.baseURL) }

// OAuthError is a refusal worded as RFC 6749 sections 4.1.2.1 and 5.2 say:
// Code is the error code (invalid_request, invalid_client, invalid_grant,
// unauthorized_client, unsupported_grant_type, invalid_scope, access_denied,
// unsupported_response_type, temporarily_unavailable) and Description a
// sentence for the developer, without quote or backslash, never quoting an
// NHS number or a token.
type OAuthError struct {
	Code        string
	Description string
}

func (e *OAuthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code, description string) *OAuthError {
	return &OAuthError{Code: code, Description: description}
}

// AsOAuthError returns the OAuthError in err's chain, if any.
func AsOAuthError(err error) (*OAuthError, bool) {
	var oe *OAuthError
	ok := errors.As(err, &oe)
	return oe, ok
}

// now is the server's clock: the issuer's.
func (a *DevAuthServer) now() time.Time { return a.issuer.now() }

// newHandle is an unguessable opaque string (128 bits, base32): codes,
// launch ids and pending authorization ids. It never carries data.
func newHandle() string { return rand.Text() }

// withQuery returns u with the parameters of q added to its query.
func withQuery(u string, q url.Values) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	v := p.Query()
	for k, vs := range q {
		for _, s := range vs {
			v.Add(k, s)
		}
	}
	p.RawQuery = v.Encode()
	return p.String()
}

// prune drops the entries of m whose expiry has passed.
func prune[T interface{ expiry() time.Time }](m map[string]T, now time.Time) {
	for k, v := range m {
		if !now.Before(v.expiry()) {
			delete(m, k)
		}
	}
}
