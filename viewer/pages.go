package viewer

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// templateFiles are the pages: layout.html around one page template each.
//
//go:embed templates
var templateFiles embed.FS

// pageNames are the page templates (templates/<name>.html).
var pageNames = []string{
	"signedout", "find", "patient", "directory", "safeguarding", "discrepancy",
	"reported", "continue", "signin-failed", "error", "stale",
}

// pages holds each page parsed with the layout.
type pages struct{ byName map[string]*template.Template }

// mustParsePages parses the embedded templates; they are part of the
// binary, so an error is a bug found by the first test.
func mustParsePages() *pages {
	p := &pages{byName: map[string]*template.Template{}}
	for _, name := range pageNames {
		t := template.Must(template.New("layout.html").ParseFS(templateFiles,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html"))
		p.byName[name] = t
	}
	return p
}

// view is what the layout needs, around one page's Data.
type view struct {
	Title    string // the page's title (and, usually, its h1)
	User     string // who is signed in: name, role, organisation; "" when signed out
	CSRF     string // the session's CSRF token for the forms
	Reviewer bool   // the user may review discrepancy reports
	Nav      string // the current navigation item
	Refresh  string // a path of the app to move on to (the sign-in's last page)
	// IdleSeconds, on a signed-in page, is the idle timeout for the
	// page's warning before the sign-out (idle.go); 0 when signed out.
	IdleSeconds int
	Data        any
}

// render writes a page. v is the signed-in visit, nil when signed out.
// The page is rendered into a buffer first, so that a template error
// becomes a 500 rather than half a page.
func (a *app) render(w http.ResponseWriter, r *http.Request, v *visit, status int, name string, data view) {
	if v != nil {
		data.User = userLine(v.p.Name, v.p.RoleName, v.p.OrgName)
		data.CSRF = v.s.csrf
		data.Reviewer = a.cfg.Register.MayReviewDiscrepancies(a.caller(v, ""))
		data.IdleSeconds = max(1, int(a.cfg.IdleTimeout/time.Second))
	}
	var buf bytes.Buffer
	if err := a.pages.byName[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		a.cfg.Logger.Error("viewer: rendering a page failed", slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "The page cannot be shown.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// messageView is an error page's text.
type messageView struct{ Heading, Message string }

// errorPage shows a page with a heading and a message, and nothing else.
func (a *app) errorPage(w http.ResponseWriter, r *http.Request, v *visit, status int, heading, message string) {
	a.render(w, r, v, status, "error", view{Title: heading, Data: messageView{heading, message}})
}

// fail shows what an error of the register means to the user, without any
// of the data the request was for. Its log line names the kind and the
// operation only: the request log (the API's middleware) has the rest.
func (a *app) fail(w http.ResponseWriter, r *http.Request, v *visit, err error) {
	kind, attrs := cpis.KindOf(err), errorAttrs(err)
	switch kind {
	case cpis.Unavailable:
		a.cfg.Logger.Warn("viewer: the register is unavailable", attrs...)
		a.errorPage(w, r, v, http.StatusServiceUnavailable, "CP-IS is unavailable",
			"CP-IS cannot be checked at the moment, and nothing has been shown. Follow the SOP's contingency "+
				"arrangements: review the alternative systems (such as the East London Clinical Portal) for recent "+
				"contacts and safeguarding indicators, check again in a few minutes, and check CP-IS retrospectively "+
				"once it is available. Report the outage through the ICT service portal.")
	case cpis.AccessDenied, cpis.ForbiddenUpdate:
		a.errorPage(w, r, v, http.StatusForbidden, "You cannot see this information",
			"Your role does not allow this: "+firstMessage(err)+".")
	case cpis.NotFound:
		a.errorPage(w, r, v, http.StatusNotFound, "Not found", firstMessage(err)+".")
	default:
		a.cfg.Logger.Error("viewer: unexpected error", attrs...)
		a.errorPage(w, r, v, http.StatusInternalServerError, "Something went wrong",
			"The information cannot be shown because of an error in the service. Try again; if it happens again, "+
				"report it through the ICT service portal.")
	}
}

// errorAttrs describe a register error for the log: its kind and
// operation, never its data.
func errorAttrs(err error) []any {
	attrs := []any{slog.String("error_kind", cpis.KindOf(err).String())}
	if p := cpis.Problems(err); len(p) > 0 {
		attrs = append(attrs, slog.String("error_op", p[0].Op))
	}
	return attrs
}

// firstMessage is the register's own words for an error: written for
// users of the API, and never holding personal data.
func firstMessage(err error) string {
	if p := cpis.Problems(err); len(p) > 0 && p[0].Msg != "" {
		return p[0].Msg
	}
	return "the request was refused"
}

// signedOutView is the sign-in page.
type signedOutView struct{ Message string }

// signedOutPage shows the sign-in page, saying why the user is there.
func (a *app) signedOutPage(w http.ResponseWriter, r *http.Request, why signedOutReason) {
	msg := ""
	switch why {
	case idleTimeout:
		msg = fmt.Sprintf("You were signed out after %d minutes without activity. Sign in again to continue.", int(a.cfg.IdleTimeout.Minutes()))
	case tokenExpired:
		msg = "Your sign-in has ended. Sign in again to continue."
	case signedOut:
		msg = "You have signed out."
	}
	a.render(w, r, nil, http.StatusOK, "signedout", view{Title: "Child protection information", Data: signedOutView{msg}})
}
