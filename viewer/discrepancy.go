package viewer

import (
	"net/http"
	"regexp"
	"unicode/utf8"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// reportForm is the "Report a discrepancy" form (SOP step 10). View is
// the token of the page it is on, naming the child it is about.
type reportForm struct {
	CSRF    string
	View    string
	Reasons []reasonOption
	Note    string
	Error   string
	Max     int // the note's length limit
}

// reasonOption is one reason radio.
type reasonOption struct {
	Value, Label string
	Checked      bool
}

func newReportForm(csrf string) reportForm {
	f := reportForm{CSRF: csrf, Max: cpis.MaxDiscrepancyNote}
	for _, r := range cpis.DiscrepancyReasons() {
		f.Reasons = append(f.Reasons, reasonOption{Value: string(r), Label: r.Display()})
	}
	return f
}

// reportDiscrepancy sends a discrepancy report (POST /app/discrepancy) to
// the Trust safeguarding team, through the register (stored, audited),
// about the child whose page the form was on: its view token must name
// the session's current child, or nothing is sent (another tab has opened
// another child since).
func (a *app) reportDiscrepancy(w http.ResponseWriter, r *http.Request, v *visit) {
	if !a.formChild(r, v) {
		a.otherChild(w, r, v, "reporting")
		return
	}
	reason := cpis.DiscrepancyReason(r.PostForm.Get("reason"))
	f := newReportForm(v.s.csrf)
	f.View = r.PostForm.Get("view")
	f.Note = cpis.CleanNote(r.PostForm.Get("note"))
	for i := range f.Reasons {
		f.Reasons[i].Checked = f.Reasons[i].Value == string(reason)
	}
	switch {
	case !reason.Valid():
		f.Error = "Choose the reason for the report."
	case utf8.RuneCountInString(f.Note) > cpis.MaxDiscrepancyNote:
		f.Error = "The note is longer than 500 characters."
	}
	if f.Error == "" {
		d, err := a.cfg.Register.ReportDiscrepancy(r.Context(), a.caller(v, "Communication"),
			cpis.Discrepancy{NHSNumber: v.s.patient, Reason: reason, Note: f.Note})
		switch {
		case err == nil:
			a.render(w, r, v, http.StatusOK, "reported", view{Title: "Discrepancy reported", Data: reportedView{ID: d.ID, Reason: reason.Display(), View: f.View}})
			return
		case cpis.KindOf(err) != cpis.Invalid:
			a.fail(w, r, v, err)
			return
		}
		f.Error = "The report cannot be sent: " + firstMessage(err)
	}
	a.render(w, r, v, http.StatusUnprocessableEntity, "discrepancy", view{Title: "Report a discrepancy", Data: reportPage{NHS: formatNHS(v.s.patient), Form: f}})
}

// reportPage is the report form on a page of its own, shown again when
// what was sent is refused (without reading the plans again).
type reportPage struct {
	NHS  string
	Form reportForm
}

// reportedView confirms a report; View is the report's page's token, for
// the way back to that child.
type reportedView struct{ ID, Reason, View string }

// discrepancyView is one report as the safeguarding team sees it.
type discrepancyView struct {
	ID, Reported, Reason, NHS, Note, ReportedBy string
	Resolved, ResolvedBy                        string
}

// safeguardingView is the safeguarding team's list.
type safeguardingView struct{ Open, Resolved []discrepancyView }

// safeguarding lists discrepancy reports (GET /app/safeguarding) to those
// the register lets review them: the Trust safeguarding team.
func (a *app) safeguarding(w http.ResponseWriter, r *http.Request, v *visit) {
	c := a.caller(v, "Communication?category=discrepancy")
	if !a.cfg.Register.MayReviewDiscrepancies(c) {
		a.notReviewer(w, r, v)
		return
	}
	list, err := a.cfg.Register.Discrepancies(r.Context(), c, store.DiscrepancyQuery{OrgCode: v.p.OrgCode, Limit: maxReports})
	if err != nil {
		a.fail(w, r, v, err)
		return
	}
	var sv safeguardingView
	for _, d := range list {
		dv := discrepancyView{
			ID: d.ID, Reported: formatTime(d.ReportedAt), Reason: d.Reason.Display(), NHS: formatNHS(d.NHSNumber),
			Note: d.Note, ReportedBy: userLine(d.ReportedBy.Name, d.ReportedBy.RoleName, orgLabel(d.ReportedBy)),
		}
		if !d.Resolved() {
			sv.Open = append(sv.Open, dv)
			continue
		}
		dv.Resolved, dv.ResolvedBy = formatTime(d.ResolvedAt), userLine(d.ResolvedBy.Name, d.ResolvedBy.RoleName, "")
		sv.Resolved = append(sv.Resolved, dv)
	}
	a.render(w, r, v, http.StatusOK, "safeguarding", view{Title: "Discrepancy reports", Nav: "safeguarding", Data: sv})
}

// maxReports bounds the reports the list shows.
const maxReports = 200

// reportID is what a report's id may be (a UUID, as the register makes).
var reportID = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

// resolve marks a report resolved (POST /app/safeguarding/resolve).
func (a *app) resolve(w http.ResponseWriter, r *http.Request, v *visit) {
	c := a.caller(v, "Communication")
	if !a.cfg.Register.MayReviewDiscrepancies(c) {
		a.notReviewer(w, r, v)
		return
	}
	id := r.PostForm.Get("id")
	if !reportID.MatchString(id) {
		a.errorPage(w, r, v, http.StatusNotFound, "Report not found", "There is no discrepancy report with this reference.")
		return
	}
	if _, err := a.cfg.Register.ResolveDiscrepancy(r.Context(), c, id); err != nil {
		a.fail(w, r, v, err)
		return
	}
	seeOther(w, r, "/app/safeguarding")
}

// notReviewer refuses the safeguarding pages to anyone else.
func (a *app) notReviewer(w http.ResponseWriter, r *http.Request, v *visit) {
	a.errorPage(w, r, v, http.StatusForbidden, "You cannot see discrepancy reports",
		"Discrepancy reports are for the Trust safeguarding children team. Your role does not include reviewing them.")
}
