package auth

import (
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// AuthorizeRequest is an authorization request (RFC 6749 section 4.1.1,
// with PKCE and SMART's aud and launch), as the app's redirect sends it.
type AuthorizeRequest struct {
	ResponseType        string
	ClientID            string
	RedirectURI         string
	Scope               string
	State               string
	Aud                 string
	CodeChallenge       string
	CodeChallengeMethod string
	Launch              string // the launch id of GET /dev/launch, for an EHR launch
}

// PendingAuthorization is a checked request waiting for a person to choose
// a persona: the authorize page shows it. ID is an unguessable value bound
// to the request, kept server side: the page's form sends it back, and only
// a form holding it can complete the request, so another site cannot
// forge the choice (CSRF) nor alter what was asked.
type PendingAuthorization struct {
	ID         string
	ClientID   string
	ClientName string // the app's registered name; its client id when it has none
	Scopes     []string
	// AskPatient is set when the app asked for launch/patient without a
	// launch: the page offers an optional NHS number.
	AskPatient bool
	// RedirectOrigin is the origin (scheme://host[:port]) the form's answer
	// redirects to, which the page's Content-Security-Policy must allow.
	RedirectOrigin string
	Personas       []Persona
}

// pendingAuth is a PendingAuthorization's request, server side.
type pendingAuth struct {
	req     AuthorizeRequest
	expires time.Time
}

func (p pendingAuth) expiry() time.Time { return p.expires }

// authCode is what an authorization code stands for.
type authCode struct {
	clientID, redirectURI, challenge string
	persona                          Persona // its scopes narrowed to those granted
	scopes                           []string
	patient                          cpis.NHSNumber
	expires                          time.Time
}

func (c authCode) expiry() time.Time { return c.expires }

// launchContext is what a launch id stands for: who the EHR signed in, the
// patient open in it, and the app it launched.
type launchContext struct {
	persona  string
	patient  cpis.NHSNumber
	clientID string
	expires  time.Time
}

func (l launchContext) expiry() time.Time { return l.expires }

// codeChallengePattern is an S256 code challenge: BASE64URL(SHA-256), 43
// characters (RFC 7636 section 4.2).
var codeChallengePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// Authorize checks an authorization request. A request whose client or
// redirect_uri cannot be trusted fails with an OAuthError the caller shows
// as a page (RFC 6749 section 4.1.2.1: never redirect to an unchecked URI);
// any later fault is an *AuthorizeRedirect to send the user agent back with
// error=. With a launch, the EHR has signed the user in: the answer is a
// redirect with a code at once. Without one, it is the PendingAuthorization
// the authorize page shows. A request asking for no resource scope the app
// is registered for goes back with invalid_scope before anyone chooses.
func (a *DevAuthServer) Authorize(req AuthorizeRequest) (*PendingAuthorization, *AuthorizeRedirect, error) {
	c, err := a.checkClientRedirect(req.ClientID, req.RedirectURI)
	if err != nil {
		return nil, nil, err
	}
	if oe := a.checkAuthorizeRequest(req); oe != nil {
		return nil, errorRedirect(req, oe), nil
	}
	if !hasResourceScope(grantedScopes(strings.Fields(req.Scope), c.Scopes, c.Scopes)) {
		return nil, errorRedirect(req, errNoResourceScope), nil
	}
	if req.Launch != "" {
		redirect, oe := a.approveLaunch(req)
		if oe != nil {
			return nil, errorRedirect(req, oe), nil
		}
		return nil, redirect, nil
	}
	id, oe := a.putPending(req)
	if oe != nil {
		return nil, errorRedirect(req, oe), nil
	}
	return a.pendingView(id, req), nil, nil
}

// AuthorizeRedirect is where the user agent goes back to: the app's
// redirect URI with code and state, or with error, error_description and
// state.
type AuthorizeRedirect struct {
	URL string
}

// checkClientRedirect finds the app and requires redirectURI to be one it
// registered, exactly.
func (a *DevAuthServer) checkClientRedirect(clientID, redirectURI string) (Client, error) {
	c, ok := a.clients.Lookup(clientID)
	switch {
	case clientID == "" || !ok:
		return Client{}, oauthErr("invalid_client", "client_id names no registered app")
	case c.Kind != ClientApp:
		return Client{}, oauthErr("unauthorized_client", "this client is a system: it uses client_credentials, not a launch")
	case redirectURI == "" || !slices.Contains(c.RedirectURIs, redirectURI):
		return Client{}, oauthErr("invalid_request", "redirect_uri is not one the app registered (compared exactly)")
	}
	return c, nil
}

// checkAuthorizeRequest checks what is left once the redirect URI is known
// good: response_type, PKCE S256, aud and scope.
func (a *DevAuthServer) checkAuthorizeRequest(req AuthorizeRequest) *OAuthError {
	switch {
	case req.ResponseType != "code":
		return oauthErr("unsupported_response_type", "response_type must be code")
	case req.CodeChallengeMethod != "S256":
		return oauthErr("invalid_request", "PKCE is required with code_challenge_method S256 (plain is refused)")
	case !codeChallengePattern.MatchString(req.CodeChallenge):
		return oauthErr("invalid_request", "code_challenge must be the 43-character BASE64URL of a SHA-256")
	case strings.TrimRight(req.Aud, "/") != a.baseURL:
		return oauthErr("invalid_request", "aud must be this server's FHIR base URL")
	case strings.TrimSpace(req.Scope) == "":
		return oauthErr("invalid_scope", "scope is required")
	}
	return nil
}

// errorRedirect sends the user agent back to a checked redirect URI with
// an error (RFC 6749 section 4.1.2.1).
func errorRedirect(req AuthorizeRequest, oe *OAuthError) *AuthorizeRedirect {
	q := url.Values{"error": {oe.Code}, "error_description": {oe.Description}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	return &AuthorizeRedirect{URL: withQuery(req.RedirectURI, q)}
}

// putPending keeps req until a persona is chosen.
func (a *DevAuthServer) putPending(req AuthorizeRequest) (string, *OAuthError) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	prune(a.pending, now)
	if len(a.pending) >= maxOutstandingPerKind {
		return "", oauthErr("temporarily_unavailable", "too many authorizations are waiting; try again later")
	}
	id := newHandle()
	a.pending[id] = pendingAuth{req: req, expires: now.Add(PendingAuthLifetime)}
	return id, nil
}

// Approve completes the pending authorization id: the person chose
// persona and, when the page asked, may have given a patient's NHS number
// (patient, spaces allowed; empty for none). An id that is unknown, used or
// expired is an OAuthError to show as a page, and so is an unknown persona
// or one no one may sign in to an app as (see appSignIn). An NHS number
// failing Modulus 11 is an error of kind InvalidNHSNumber: the pending
// authorization stays, for Pending to show the page again. When the persona
// holds none of the resource scopes granted to the app, the redirect goes
// back with error=invalid_scope.
func (a *DevAuthServer) Approve(id, persona, patient string) (*AuthorizeRedirect, error) {
	pending, ok := a.Pending(id)
	if !ok {
		return nil, oauthErr("invalid_request", "this authorization request is unknown, used or expired: start again from the app")
	}
	nhs, err := parsePatient(patient)
	if err != nil {
		return nil, cpis.E("auth.DevAuthServer.Approve", cpis.InvalidNHSNumber, cpis.Expr("patient"), "not a valid NHS number", err)
	}
	p, ok := a.issuer.persona(persona)
	if !ok {
		return nil, oauthErr("invalid_request", "no such development persona")
	}
	if !appSignIn(p) {
		return nil, errSystemPersona
	}
	pa, ok := a.takePending(id)
	if !ok {
		return nil, oauthErr("invalid_request", "this authorization request is unknown, used or expired: start again from the app")
	}
	if !pending.AskPatient {
		nhs = ""
	}
	return a.issueCode(pa.req, p, nhs), nil
}

// Pending returns the pending authorization id, to show its page (again).
func (a *DevAuthServer) Pending(id string) (*PendingAuthorization, bool) {
	a.mu.Lock()
	pa, ok := a.pending[id]
	a.mu.Unlock()
	if !ok || !a.now().Before(pa.expires) {
		return nil, false
	}
	return a.pendingView(id, pa.req), true
}

// pendingView is what the authorize page shows of a pending request: the
// scopes the app may be granted of those it asked for, and the personas a
// person may sign in to it as.
func (a *DevAuthServer) pendingView(id string, req AuthorizeRequest) *PendingAuthorization {
	c, _ := a.clients.Lookup(req.ClientID)
	scopes := grantedScopes(strings.Fields(req.Scope), c.Scopes, c.Scopes)
	var personas []Persona
	for _, p := range a.issuer.Personas() {
		if appSignIn(p) {
			personas = append(personas, p)
		}
	}
	return &PendingAuthorization{
		ID: id, ClientID: req.ClientID, ClientName: firstNonEmpty(c.Name, req.ClientID), Scopes: scopes,
		AskPatient:     slices.Contains(scopes, "launch/patient"),
		RedirectOrigin: origin(req.RedirectURI),
		Personas:       personas,
	}
}

// appSignIn reports whether a person may sign in to an app as p, on the
// authorize page or through an EHR launch. This is the one place that
// decides it. Today only health users may: a system (an LA's
// case-management system, the Trust's interface engine) is no person at a
// browser; it authenticates itself with client_credentials and its own
// key. Letting a persona stand for a person of an LA would change this
// function, and only this one.
func appSignIn(p Persona) bool { return p.Kind == cpis.HealthUser }

// Refusals shared by the authorization paths.
var (
	errSystemPersona = oauthErr("invalid_request",
		"this persona is a system: a system signs in with client_credentials and its own key, not through an app")
	errNoResourceScope = oauthErr("invalid_scope",
		"no resource scope asked for is both registered for the app and held by the persona")
)

// parsePatient reads an optional NHS number, spaces allowed.
func parsePatient(s string) (cpis.NHSNumber, error) {
	s = strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if s == "" {
		return "", nil
	}
	return cpis.ParseNHSNumber(s)
}

// takePending removes and returns the pending authorization id: one use.
func (a *DevAuthServer) takePending(id string) (pendingAuth, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, ok := a.pending[id]
	delete(a.pending, id)
	return p, ok && a.now().Before(p.expires)
}

// approveLaunch answers an EHR launch: the launch's persona is signed in
// already, and the launch's patient is the context.
func (a *DevAuthServer) approveLaunch(req AuthorizeRequest) (*AuthorizeRedirect, *OAuthError) {
	a.mu.Lock()
	l, ok := a.launches[req.Launch]
	delete(a.launches, req.Launch)
	a.mu.Unlock()
	if !ok || !a.now().Before(l.expires) || l.clientID != req.ClientID {
		return nil, oauthErr("invalid_request", "launch is unknown, used, expired or made for another app")
	}
	p, ok := a.issuer.persona(l.persona)
	switch {
	case !ok:
		return nil, oauthErr("access_denied", "the launch's persona is gone")
	case !appSignIn(p):
		return nil, errSystemPersona
	}
	return a.issueCode(req, p, l.patient), nil
}

// issueCode grants what req asked within the app's registered scopes and
// p's, and redirects with a code for it; or with error=invalid_scope when
// no resource scope is left. The patient is the app's context only when
// it was granted a launch scope (launch for an EHR launch, launch/patient
// for a standalone one).
func (a *DevAuthServer) issueCode(req AuthorizeRequest, p Persona, patient cpis.NHSNumber) *AuthorizeRedirect {
	c, _ := a.clients.Lookup(req.ClientID) // registered: checked by Authorize, and never removed
	scopes := grantedScopes(strings.Fields(req.Scope), c.Scopes, p.Scopes)
	if !hasResourceScope(scopes) {
		return errorRedirect(req, errNoResourceScope)
	}
	if !slices.Contains(scopes, "launch") && !slices.Contains(scopes, "launch/patient") {
		patient = ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	prune(a.codes, now)
	if len(a.codes) >= maxOutstandingPerKind {
		return errorRedirect(req, oauthErr("temporarily_unavailable", "too many codes are outstanding; try again later"))
	}
	code := newHandle()
	a.codes[code] = authCode{
		clientID: req.ClientID, redirectURI: req.RedirectURI, challenge: req.CodeChallenge,
		persona: p, scopes: scopes, patient: patient, expires: now.Add(CodeLifetime),
	}
	q := url.Values{"code": {code}}
	if req.State != "" {
		q.Set("state", req.State)
	}
	return &AuthorizeRedirect{URL: withQuery(req.RedirectURI, q)}
}

// grantedScopes are the scopes asked for that a client may be granted, in
// the order asked, once each: a resource scope when both one of the
// client's registered scopes and one of holder's (the persona's) cover it;
// a context scope (launch, launch/patient, openid, fhirUser, profile) only
// when the client registered it by name, whatever the persona holds,
// because it opens no resource but says what the client may learn (the
// launch's patient, who signed in). A client is thus never granted more
// than its registration, whoever signs in.
func grantedScopes(asked, registered, holder []string) []string {
	out := []string{}
	for _, s := range asked {
		ok := covered(s, registered) && covered(s, holder)
		if contextScope(s) {
			ok = slices.Contains(registered, s)
		}
		if ok && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// hasResourceScope reports whether scopes open any resource: a token of
// context scopes alone could read nothing, so it is refused.
func hasResourceScope(scopes []string) bool {
	return slices.ContainsFunc(scopes, func(s string) bool { return !contextScope(s) })
}

// Launch acts as the EHR launching an app: persona is the person signed
// in to the EHR (never a system: see appSignIn), patient the NHS number of
// the child open in it (empty: none), app the launch URL of a registered
// app. It returns the URL to send the user agent to: app?iss=<FHIR base
// URL>&launch=<opaque id>. Errors are of kind InvalidValue (persona, app)
// or InvalidNHSNumber, and never quote the NHS number.
func (a *DevAuthServer) Launch(persona, patient, app string) (string, error) {
	const op = "auth.DevAuthServer.Launch"
	p, ok := a.issuer.persona(persona)
	switch {
	case !ok:
		return "", cpis.E(op, cpis.InvalidValue, cpis.Expr("persona"), "no such development persona; GET /dev/personas lists them")
	case !appSignIn(p):
		return "", cpis.E(op, cpis.InvalidValue, cpis.Expr("persona"), "persona is a system: an EHR launches an app for a person")
	}
	nhs, err := parsePatient(patient)
	if err != nil {
		return "", cpis.E(op, cpis.InvalidNHSNumber, cpis.Expr("patient"), "patient is not a valid NHS number", err)
	}
	c, ok := a.clients.appByLaunchURL(app)
	if !ok {
		return "", cpis.E(op, cpis.InvalidValue, cpis.Expr("app"), "app is not the launch URL of a registered app")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	prune(a.launches, now)
	if len(a.launches) >= maxOutstandingPerKind {
		return "", cpis.E(op, cpis.Unavailable, "too many launches are outstanding; try again later")
	}
	id := newHandle()
	a.launches[id] = launchContext{persona: persona, patient: nhs, clientID: c.ID, expires: now.Add(LaunchLifetime)}
	return withQuery(c.LaunchURL, url.Values{"iss": {a.baseURL}, "launch": {id}}), nil
}

// origin is scheme://host[:port] of an absolute URL.
func origin(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Scheme + "://" + p.Host
}
