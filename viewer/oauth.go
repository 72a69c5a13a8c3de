package viewer

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The scopes the viewer asks for: to read plans and the access history
// (user/Flag.rs), to send and, for the safeguarding team, read discrepancy
// reports (user/Communication.rs), and the launch context: the EHR's
// (launch) or a patient picked at the authorization server
// (launch/patient).
var (
	standaloneScopes = []string{"openid", "profile", "launch/patient", "user/Flag.rs", "user/Communication.rs"}
	ehrScopes        = []string{"openid", "profile", "launch", "user/Flag.rs", "user/Communication.rs"}
)

// maxLaunchID bounds the launch id an EHR passes; SMART leaves it opaque.
const maxLaunchID = 512

// launchID is what a launch id may hold: printable ASCII without spaces.
var launchID = regexp.MustCompile(`^[\x21-\x7e]+$`)

// oauthConfig is the viewer as an OAuth client asking for scopes. It has
// no secret: it authenticates with a signed client assertion.
func (a *app) oauthConfig(scopes []string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:    a.cfg.ClientID,
		Endpoint:    oauth2.Endpoint{AuthURL: a.cfg.AuthorizeURL, TokenURL: a.cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		RedirectURL: a.cfg.BaseURL + "/app/callback",
		Scopes:      scopes,
	}
}

// login starts a standalone launch (GET /app/login).
func (a *app) login(w http.ResponseWriter, r *http.Request) { a.startLogin(w, r, "") }

// launch starts an EHR launch (GET /app/launch?iss=&launch=): only from
// the FHIR server the viewer belongs to, since its tokens are for that
// server alone.
func (a *app) launch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if strings.TrimRight(q.Get("iss"), "/") != a.cfg.FHIRBase {
		a.errorPage(w, r, nil, http.StatusBadRequest, "This launch cannot be accepted",
			"The viewer works only with the CP-IS server it belongs to, and this launch named another FHIR server (iss).")
		return
	}
	l := q.Get("launch")
	if len(l) > maxLaunchID || !launchID.MatchString(l) {
		a.errorPage(w, r, nil, http.StatusBadRequest, "This launch cannot be accepted",
			"The launch has no launch context (launch). Open the viewer again from the patient's record.")
		return
	}
	a.startLogin(w, r, l)
}

// startLogin sends the browser to the authorization server, giving it
// the state, the PKCE verifier and the launch sealed in the login cookie
// for the callback: nothing is kept on the server.
func (a *app) startLogin(w http.ResponseWriter, r *http.Request, launch string) {
	p := pendingLogin{State: randomToken(), Verifier: oauth2.GenerateVerifier(), Launch: launch, Expiry: a.now().Add(loginTTL).Unix()}
	a.setLoginCookie(w, a.logins.seal(p))
	scopes := standaloneScopes
	opts := []oauth2.AuthCodeOption{
		oauth2.S256ChallengeOption(p.Verifier),
		oauth2.SetAuthURLParam("aud", a.cfg.FHIRBase),
	}
	if launch != "" {
		scopes = ehrScopes
		opts = append(opts, oauth2.SetAuthURLParam("launch", launch))
	}
	http.Redirect(w, r, a.oauthConfig(scopes).AuthCodeURL(p.State, opts...), http.StatusFound)
}

// callback completes a sign-in (GET /app/callback): the browser that
// started it (the sealed login cookie, opened by this process, not
// expired), with the state it was given, exchanges the code (PKCE
// verifier, client assertion) for an access token, which must verify as
// the API would verify it. The cookie is cleared, and the authorization
// server takes each code once, so a callback is good once. The session
// then starts, and the browser moves on by a page of its own rather than a
// redirect (see continuePage).
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	p, ok := a.logins.open(cookieValue(r, loginCookie), a.now())
	a.clearCookie(w, loginCookie)
	q := r.URL.Query()
	switch {
	case !ok:
		a.signInFailed(w, r, http.StatusBadRequest, "This sign-in was not started in this browser, took longer than 10 minutes, "+
			"or was interrupted by a restart of the service.")
		return
	case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(p.State)) != 1:
		a.signInFailed(w, r, http.StatusBadRequest, "The answer of the authorization server does not belong to this sign-in (state).")
		return
	case q.Get("error") != "":
		a.signInFailed(w, r, http.StatusBadRequest, "The authorization server did not sign you in ("+oauthErrorCode(q.Get("error"))+").")
		return
	case q.Get("code") == "":
		a.signInFailed(w, r, http.StatusBadRequest, "The authorization server sent no authorization code.")
		return
	}
	tok, err := a.exchange(r.Context(), q.Get("code"), p.Verifier)
	if err != nil {
		a.cfg.Logger.Warn("viewer sign-in: token exchange failed", exchangeAttrs(err)...)
		a.signInFailed(w, r, http.StatusBadGateway, "The authorization server did not issue a token.")
		return
	}
	a.startSession(w, r, tok)
}

// startSession verifies the token, starts a session and moves the browser
// on: to the child's page when the launch named a patient (after the
// care-setting choice for a dual-role user), else to Find patient.
func (a *app) startSession(w http.ResponseWriter, r *http.Request, tok *oauth2.Token) {
	pr, err := a.cfg.Verifier.Verify(r.Context(), tok.AccessToken)
	if err != nil {
		a.cfg.Logger.Warn("viewer sign-in: the access token does not verify", slog.String("error", err.Error()))
		a.signInFailed(w, r, http.StatusBadGateway, "The token the authorization server issued is not accepted by this server.")
		return
	}
	if pr.Kind != cpis.HealthUser {
		a.signInFailed(w, r, http.StatusForbidden, "The viewer is for health professionals signed in with their own identity.")
		return
	}
	now := a.now()
	s := &session{token: tok.AccessToken, name: pr.Name, role: pr.RoleName, org: pr.OrgName}
	if tok.ExpiresIn > 0 {
		s.expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	s.patient, s.launchUnusable = launchPatient(tok, a.cfg.Logger)
	s.launched = true
	if old := cookieValue(r, sessionCookie); old != "" {
		a.sessions.drop(old) // a new sign-in is a new session id: no fixation
	}
	s = a.sessions.add(s, now, a.cfg.IdleTimeout)
	a.setSessionCookie(w, s.id)
	next := "/app/"
	if s.patient != "" && !dualRole(pr) {
		next = "/app/patient"
	}
	a.render(w, r, nil, http.StatusOK, "continue", view{Title: "Signed in", Refresh: next})
}

// launchPatient is the patient of the launch context (the token
// response's patient: an NHS number), "" when there is none. unusable
// reports a patient that is not a valid NHS number (a real EHR's own
// Patient id, say): the user is told to find the patient by NHS number.
func launchPatient(tok *oauth2.Token, log *slog.Logger) (nhs cpis.NHSNumber, unusable bool) {
	raw, _ := tok.Extra("patient").(string)
	if raw == "" {
		return "", false
	}
	nhs, err := cpis.ParseNHSNumber(raw)
	if err != nil {
		log.Warn("viewer sign-in: the launch's patient is not a valid NHS number; the user is asked to find the patient")
		return "", true
	}
	return nhs, false
}

// exchange trades the code for a token, authenticating the viewer with a
// signed client assertion (SMART confidential asymmetric client) and
// proving with the PKCE verifier that it started the sign-in.
func (a *app) exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	assertion, err := auth.SignClientAssertion(a.cfg.Key, a.cfg.ClientID, a.cfg.TokenURL, a.now())
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, a.cfg.HTTPClient)
	return a.oauthConfig(nil).Exchange(ctx, code,
		oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", auth.ClientAssertionType),
		oauth2.SetAuthURLParam("client_assertion", assertion))
}

// exchangeAttrs describes a failed exchange for the log: the OAuth error
// code and status, never the token endpoint's free text.
func exchangeAttrs(err error) []any {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return []any{slog.String("oauth_error", oauthErrorCode(re.ErrorCode)), slog.Int("status", status)}
	}
	return []any{slog.String("error", err.Error())}
}

// oauthErrorCode is an OAuth error code fit to show and log: the codes
// are lower-case words and underscores (RFC 6749 section 4.1.2.1), and
// anything else is not repeated.
func oauthErrorCode(s string) string {
	if s == "" || len(s) > 40 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "unknown error"
	}
	return s
}

// signInFailed shows why a sign-in did not complete, with a way to start again.
func (a *app) signInFailed(w http.ResponseWriter, r *http.Request, status int, why string) {
	a.render(w, r, nil, status, "signin-failed", view{Title: "Sign-in was not completed", Data: why})
}

// logout ends the session (POST /app/logout): the form must come from the
// app, like every other, so that no other page can sign the user out.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	id := cookieValue(r, sessionCookie)
	if s, ok := a.sessions.get(id); ok {
		if !a.formFromApp(w, r, s) {
			a.errorPage(w, r, nil, http.StatusForbidden, "This form cannot be accepted",
				"The form did not come from this page of the viewer, or it has expired. Go back, reload the page and try again.")
			return
		}
		a.sessions.drop(id)
	}
	a.clearCookie(w, sessionCookie)
	a.signedOutPage(w, r, signedOut)
}
