package viewer

import "net/http"

// The idle sign-out, the WCAG 2.2.1 (Timing Adjustable) way. The server
// ends a session IdleTimeout after its last request, whatever the page
// does: without JavaScript the next request finds it ended. Every
// signed-in page carries the timeout as data (the idle-warning dialog's
// data-idle-seconds); app.js warns a minute before it, offers "Stay
// signed in", and when the time is up opens the start page, so that a
// shared workstation's screen no longer shows the child. Only that button
// extends the session: keystrokes and pointer movement on the page do
// not, so that the page's timer and the server's agree.

// extendSession is POST /app/session/extend, the warning's "Stay signed
// in": it only moves the session's last activity to now. It reads nothing
// from the register and writes no audit record, as nothing is shown. The
// request must come from the page by fetch, which always sends an Origin
// with a POST: the Origin is required here (not only checked when sent,
// as for forms), with the session's CSRF token. It answers 204, or 403
// with no body when there is no live session or the request is not the
// page's (the page then opens the start page, which says why).
func (a *app) extendSession(w http.ResponseWriter, r *http.Request) {
	s, _, _, ok := a.liveSession(w, r)
	if !ok || r.Header.Get("Origin") == "" || !a.formFromApp(w, r, s) || !a.touch(s.id) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
