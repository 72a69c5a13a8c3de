package viewer

import (
	"crypto/subtle"
	"net/http"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// A session's patient is the one most recently opened, in any tab. A form
// on a child's page (report a discrepancy, the care setting, the way back
// to the page) must act on the child it was shown for, not on whichever
// child another tab opened since: each such page gives its forms a view
// token, random and opaque (never the NHS number, never in a URL), that
// the session maps to the child.

// maxViewTokens bounds the view tokens a session keeps: its last views.
// A form older than that is refused and its child must be opened again.
const maxViewTokens = 20

// viewToken is one page's token and the child it was shown for.
type viewToken struct {
	token string
	nhs   cpis.NHSNumber
}

// newView gives a page showing child nhs in session id its token,
// forgetting the oldest beyond maxViewTokens. "" if the session is gone.
func (ss *sessions) newView(id string, nhs cpis.NHSNumber) string {
	t := viewToken{token: randomToken(), nhs: nhs}
	ok := ss.update(id, func(s *session) {
		keep := s.views[max(0, len(s.views)-(maxViewTokens-1)):]
		views := make([]viewToken, 0, len(keep)+1) // a new slice: copies of the session keep theirs
		s.views = append(append(views, keep...), t)
	})
	if !ok {
		return ""
	}
	return t.token
}

// viewed is the child the view token tok of session id was shown for.
// Every kept token is compared, in constant time.
func (ss *sessions) viewed(id, tok string) (cpis.NHSNumber, bool) {
	if tok == "" {
		return "", false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return "", false
	}
	var nhs cpis.NHSNumber
	for _, v := range s.views {
		if subtle.ConstantTimeCompare([]byte(tok), []byte(v.token)) == 1 {
			nhs = v.nhs
		}
	}
	return nhs, nhs != ""
}

// formChild reports whether a POSTed form's view token names the
// session's current child: the one the form acts on.
func (a *app) formChild(r *http.Request, v *visit) bool {
	nhs, ok := a.sessions.viewed(v.s.id, r.PostForm.Get("view"))
	return ok && v.s.patient != "" && nhs == v.s.patient
}

// staleView is the answer to a form of a child's page after another
// child was opened (or too many views ago): nothing is done, and the
// page offers to open the form's child again, by its token.
type staleView struct {
	Message string
	View    string // the form's token, if it still names a child
}

// otherChild refuses a form whose token does not name the current child.
// before says what the user was about to do ("reporting").
func (a *app) otherChild(w http.ResponseWriter, r *http.Request, v *visit, before string) {
	sv := staleView{Message: "You have since opened another patient's record: open this child again before " + before + ". Nothing has been sent."}
	if tok := r.PostForm.Get("view"); tok != "" {
		if _, ok := a.sessions.viewed(v.s.id, tok); ok {
			sv.View = tok
		}
	}
	a.render(w, r, v, http.StatusConflict, "stale", view{Title: "Another patient's record is open", Data: sv})
}

// reopen opens again the child a view token names (POST /app/patient
// with view: the way back from a report, or from the refusal above),
// whatever child the session holds now. A dual-role user whose care
// setting is not stated yet chooses it first.
func (a *app) reopen(w http.ResponseWriter, r *http.Request, v *visit, tok string) {
	nhs, ok := a.sessions.viewed(v.s.id, tok)
	if !ok {
		a.errorPage(w, r, v, http.StatusConflict, "This page has expired",
			"The child of this page can no longer be opened from it. Find the patient again by NHS number.")
		return
	}
	choose := dualRole(v.p) && v.s.unscheduled == nil
	a.sessions.update(v.s.id, func(s *session) { s.patient, s.launched, s.launchUnusable = nhs, choose, false })
	if choose {
		seeOther(w, r, "/app/")
		return
	}
	seeOther(w, r, "/app/patient")
}
