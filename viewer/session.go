package viewer

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Cookie names. The session cookie holds only a random id; everything it
// stands for stays on the server. The login cookie holds a sign-in under
// way, sealed (loginstate.go).
const (
	sessionCookie = "cpis_session"
	loginCookie   = "cpis_login"
)

// loginTTL is how long a sign-in may take at the authorization server.
const loginTTL = 10 * time.Minute

// session is one signed-in user's state. It is kept in memory only (see
// the package doc): the access token never leaves the server.
type session struct {
	id       string
	token    string    // the access token: verified on every request
	expiry   time.Time // when the token expires by the server's clock; zero: unknown
	csrf     string    // the token every form of this session carries
	lastSeen time.Time // the last request, for the idle sign-out
	// The user, as the token said at sign-in: for the header only; every
	// request re-verifies the token for the caller itself.
	name, role, org string
	// The patient chosen (POST /app/patient or the launch), and the care
	// setting stated for the read: nil when the role has one activity
	// and the register infers it.
	patient     cpis.NHSNumber
	unscheduled *bool
	// launched marks a patient the EHR (or the authorization server's
	// patient picker) chose, whose care setting a dual-role user has
	// still to state.
	launched bool
	// launchUnusable marks a launch whose patient was not an NHS number
	// (an EHR's own Patient id): Find patient says so until a search.
	launchUnusable bool
	// views are the tokens of the last pages that showed a child, each
	// naming the child it was shown for (views.go): a form says by its
	// token which child it is about. Replaced, never changed in place,
	// so that copies made by get stay as they were.
	views []viewToken
}

// sessions is the in-memory session store, safe for concurrent use.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
}

func newSessions() *sessions { return &sessions{byID: map[string]*session{}} }

// add stores s under a fresh random id and the CSRF token, dropping
// sessions idle longer than idle so that the map does not grow forever.
func (ss *sessions) add(s *session, now time.Time, idle time.Duration) *session {
	s.id, s.csrf, s.lastSeen = randomToken(), randomToken(), now
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, o := range ss.byID {
		if now.Sub(o.lastSeen) > idle {
			delete(ss.byID, id)
		}
	}
	ss.byID[s.id] = s
	return s
}

// get returns a copy of the session with this id, if there is one.
func (ss *sessions) get(id string) (session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return session{}, false
	}
	return *s, true
}

// update changes the session with this id under the lock; false if it is
// gone (signed out meanwhile).
func (ss *sessions) update(id string, f func(*session)) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if ok {
		f(s)
	}
	return ok
}

// drop forgets a session: sign-out, idle or an expired token.
func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

// randomToken is 256 random bits, URL-safe: session ids, CSRF tokens,
// view tokens and OAuth state.
func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// setSessionCookie gives the browser the session id: HttpOnly (no script
// reads it), SameSite=Strict (no other site's page can make the browser
// send it), Secure unless in dev mode on loopback, and only for /app.
func (a *app) setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/app",
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
}

// clearCookie tells the browser to forget a cookie.
func (a *app) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/app", MaxAge: -1,
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// setLoginCookie gives the browser the sealed sign-in under way
// (loginstate.go). SameSite=Lax, because the callback is a top-level
// navigation from the authorization server, a cross-site one in
// production, on which a Strict cookie is not sent.
func (a *app) setLoginCookie(w http.ResponseWriter, sealed string) {
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: sealed, Path: "/app", MaxAge: int(loginTTL / time.Second),
		HttpOnly: true, Secure: a.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// cookieValue is the value of the named cookie, "" if absent.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}
