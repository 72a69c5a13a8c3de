package viewer

import (
	"crypto/subtle"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// maxFormBytes bounds a form's body: the largest, a discrepancy report,
// is a reason and a note of 500 characters.
const maxFormBytes = 16 << 10

// headerRequestID is where the API's middleware leaves the request id (on
// the response, once it has checked or made it).
const headerRequestID = "X-Request-ID"

// visit is one request of a signed-in user: the session as it was, and
// the principal its access token verifies to now.
type visit struct {
	s         session
	p         *auth.Principal
	requestID string
}

// visitHandler serves a signed-in user.
type visitHandler func(w http.ResponseWriter, r *http.Request, v *visit)

// signedOutReason is why a page shows the sign-in page instead.
type signedOutReason int

const (
	notSignedIn signedOutReason = iota
	idleTimeout
	tokenExpired
	signedOut
)

// signedIn runs h for a signed-in user: the session exists, has not been
// idle longer than IdleTimeout, its token still verifies (so a revoked or
// expired token ends the session), and a POST carries the session's CSRF
// token from a page of this app. Anything else shows the sign-in page,
// saying why.
func (a *app) signedIn(h visitHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, p, reason, ok := a.liveSession(w, r)
		if !ok {
			a.signedOutPage(w, r, reason)
			return
		}
		v := &visit{s: s, p: p, requestID: a.requestID(w)}
		if r.Method == http.MethodPost && !a.formFromApp(w, r, s) {
			a.errorPage(w, r, v, http.StatusForbidden, "This form cannot be accepted",
				"The form did not come from this page of the viewer, or it has expired. Go back, reload the page and try again.")
			return
		}
		a.touch(s.id)
		h(w, r, v)
	})
}

// liveSession is the request's session and the principal its token
// verifies to now. A session that has ended (idle, token expired or
// revoked) is dropped and its cookie cleared; the reason says why there
// is none.
func (a *app) liveSession(w http.ResponseWriter, r *http.Request) (session, *auth.Principal, signedOutReason, bool) {
	id := cookieValue(r, sessionCookie)
	s, ok := a.sessions.get(id)
	if id == "" || !ok {
		return session{}, nil, notSignedIn, false
	}
	if reason, ended := a.ended(s); ended {
		a.endSession(w, id)
		return session{}, nil, reason, false
	}
	p, err := a.cfg.Verifier.Verify(r.Context(), s.token)
	if err != nil {
		a.endSession(w, id)
		return session{}, nil, tokenExpired, false
	}
	return s, p, 0, true
}

// endSession forgets a session that has ended and tells the browser to
// forget its cookie.
func (a *app) endSession(w http.ResponseWriter, id string) {
	a.sessions.drop(id)
	a.clearCookie(w, sessionCookie)
}

// touch records activity on a session now, for the idle sign-out; false
// if the session is gone (signed out meanwhile).
func (a *app) touch(id string) bool {
	now := a.now()
	return a.sessions.update(id, func(s *session) { s.lastSeen = now })
}

// ended reports whether the session is over: idle for too long, or its
// token past its expiry, both by the injected clock.
func (a *app) ended(s session) (signedOutReason, bool) {
	now := a.now()
	switch {
	case now.Sub(s.lastSeen) > a.cfg.IdleTimeout:
		return idleTimeout, true
	case !s.expiry.IsZero() && !now.Before(s.expiry):
		return tokenExpired, true
	}
	return 0, false
}

// formFromApp checks a POST: a form body of bounded size, sent from a page
// of this app (the Origin header, when the browser sends one, is the
// app's, both written by originOf; "null" is no origin and refused),
// carrying the session's CSRF token (compared in constant time).
func (a *app) formFromApp(w http.ResponseWriter, r *http.Request, s session) bool {
	if o := r.Header.Get("Origin"); o != "" && (a.origin == "" || originOf(o) != a.origin) {
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return false
	}
	got := r.PostForm.Get("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// requestID is the id the API's middleware gave this request (it checks a
// client's X-Request-ID, or makes one, and sets it on the response), so
// that the audit record and the request log agree; a new one otherwise.
func (a *app) requestID(w http.ResponseWriter) string {
	if id := w.Header().Get(headerRequestID); id != "" {
		return id
	}
	if a.cfg.NewID != nil {
		return a.cfg.NewID()
	}
	return uuid.NewString()
}

// caller is the request as the register sees it. query is the FHIR
// request this page stands for: it goes into the audit record (as a FHIR
// client's request would), never into a URL or a log.
func (a *app) caller(v *visit, query string) register.Caller {
	return register.Caller{
		Principal:   v.p,
		RequestID:   v.requestID,
		At:          a.now(),
		Unscheduled: v.s.unscheduled,
		Query:       query,
	}
}

// patientQuery is the FHIR search a page of one child stands for.
func patientQuery(resource string, nhs cpis.NHSNumber) string {
	return fmt.Sprintf("%s?patient:identifier=%s|%s", resource, cpis.NHSNumberSystem, nhs)
}

// dualRole reports whether the user's role holds both view activities, and
// so must say which care setting a read is in (the register would
// otherwise take unscheduled care, and notify the LA).
func dualRole(p *auth.Principal) bool {
	return p.Can(cpis.ActivityUnscheduledView) && p.Can(cpis.ActivityScheduledView)
}

// unscheduledRead is the care setting a read of this visit is in, as the
// register decides it.
func unscheduledRead(v *visit) bool {
	if v.s.unscheduled != nil {
		return *v.s.unscheduled
	}
	return v.p.Can(cpis.ActivityUnscheduledView)
}

// seeOther answers a form with a redirect to a page of the app
// (POST-redirect-GET): the NHS number stays in the session, never in the URL.
func seeOther(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}
