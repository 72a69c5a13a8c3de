package viewer

import (
	"net/http"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// maxNHSInput bounds what the NHS number field may hold: ten digits with
// spaces, generously.
const maxNHSInput = 40

// Care settings as the form sends them.
const (
	settingUnscheduled = "unscheduled"
	settingScheduled   = "scheduled"
)

// findView is the Find patient form.
type findView struct {
	Dual       bool   // ask for the care setting: the role holds B0107 and B0170
	NHS        string // what was typed, shown again with an error
	Setting    string // the care setting chosen
	Error      string // why the NHS number was refused
	SettingErr string // why the care setting was refused
	// Launched is the patient an EHR launch chose, formatted, when a
	// dual-role user has still to choose the care setting for it; View is
	// then the choice's view token, naming that child.
	Launched string
	View     string
	// LaunchUnusable says that the launching system's patient was not an
	// NHS number, so the user must find the patient.
	LaunchUnusable bool
}

// findForm is the start page (GET /app/) of a signed-in user (signedIn
// shows the sign-in page to anyone else): Find patient, or, after an EHR
// launch with a patient, the care-setting choice a dual-role user makes
// before the read.
func (a *app) findForm(w http.ResponseWriter, r *http.Request, v *visit) {
	f := findView{Dual: dualRole(v.p), Setting: settingOf(v.s.unscheduled), LaunchUnusable: v.s.launchUnusable}
	if f.Dual && v.s.launched && v.s.patient != "" {
		f.Launched, f.View = formatNHS(v.s.patient), a.sessions.newView(v.s.id, v.s.patient)
	}
	a.renderFind(w, r, v, http.StatusOK, f)
}

func (a *app) renderFind(w http.ResponseWriter, r *http.Request, v *visit, status int, f findView) {
	title := "Find patient"
	if f.Launched != "" {
		title = "Choose the care setting"
	}
	a.render(w, r, v, status, "find", view{Title: title, Nav: "find", Data: f})
}

// findPatient takes the Find patient form (POST /app/patient): a valid
// NHS number (spaces allowed) and, for a dual-role user, the care
// setting. Nothing is read here: the number goes into the session and the
// browser is sent to the child's page, so that it never appears in a URL.
// A form with a view token instead opens that view's child again (reopen).
func (a *app) findPatient(w http.ResponseWriter, r *http.Request, v *visit) {
	if tok := r.PostForm.Get("view"); tok != "" {
		a.reopen(w, r, v, tok)
		return
	}
	f := findView{Dual: dualRole(v.p), NHS: r.PostForm.Get("nhs"), Setting: r.PostForm.Get("setting")}
	nhs, err := parseNHSInput(f.NHS)
	if err != nil {
		f.Error = "This is not a valid NHS number. An NHS number has 10 digits, for example 943 476 5919, and passes the Modulus 11 check."
	}
	unscheduled, ok := a.settingFor(v, f.Setting)
	if !ok {
		f.SettingErr = "Choose the care setting of this check."
	}
	if f.Error != "" || f.SettingErr != "" {
		if len(f.NHS) > maxNHSInput {
			f.NHS = ""
		}
		a.renderFind(w, r, v, http.StatusUnprocessableEntity, f)
		return
	}
	a.sessions.update(v.s.id, func(s *session) {
		s.patient, s.unscheduled, s.launched, s.launchUnusable = nhs, unscheduled, false, false
	})
	seeOther(w, r, "/app/patient")
}

// chooseSetting takes the care setting for a launched patient (POST
// /app/setting), then shows the child's page. The form's view token must
// name the session's current child: the choice is for the child it
// showed.
func (a *app) chooseSetting(w http.ResponseWriter, r *http.Request, v *visit) {
	if v.s.patient == "" {
		seeOther(w, r, "/app/")
		return
	}
	if !a.formChild(r, v) {
		a.otherChild(w, r, v, "choosing the care setting")
		return
	}
	unscheduled, ok := a.settingFor(v, r.PostForm.Get("setting"))
	if !ok || unscheduled == nil {
		a.renderFind(w, r, v, http.StatusUnprocessableEntity, findView{
			Dual: dualRole(v.p), Launched: formatNHS(v.s.patient), View: r.PostForm.Get("view"),
			SettingErr: "Choose the care setting of this check.",
		})
		return
	}
	a.sessions.update(v.s.id, func(s *session) { s.unscheduled, s.launched = unscheduled, false })
	seeOther(w, r, "/app/patient")
}

// settingFor reads the care setting a form stated: required of a
// dual-role user, and nil (the register infers it from the one activity)
// for anyone else.
func (a *app) settingFor(v *visit, setting string) (*bool, bool) {
	if !dualRole(v.p) {
		return nil, true
	}
	switch setting {
	case settingUnscheduled:
		t := true
		return &t, true
	case settingScheduled:
		f := false
		return &f, true
	}
	return nil, false
}

// settingOf is the form value of a stated care setting.
func settingOf(unscheduled *bool) string {
	switch {
	case unscheduled == nil:
		return ""
	case *unscheduled:
		return settingUnscheduled
	}
	return settingScheduled
}

// parseNHSInput reads an NHS number as typed: spaces between the digits
// are allowed (943 476 5919), nothing else.
func parseNHSInput(s string) (cpis.NHSNumber, error) {
	if len(s) > maxNHSInput {
		return "", cpis.E("viewer.parseNHSInput", cpis.InvalidNHSNumber, "too long")
	}
	return cpis.ParseNHSNumber(strings.Join(strings.Fields(s), ""))
}

// showPatient is the child protection information page (GET
// /app/patient): one audited search of the register, exactly as a FHIR
// client's GET /Flag (one access record per view), then the access
// history, read after the search so that it lists this view too. If the
// search fails, nothing is shown; if only the history does, the plans
// still are (the alert matters most), with a notice. The page's forms
// carry a new view token naming this child.
func (a *app) showPatient(w http.ResponseWriter, r *http.Request, v *visit) {
	nhs := v.s.patient
	if nhs == "" || (v.s.launched && dualRole(v.p) && v.s.unscheduled == nil) {
		seeOther(w, r, "/app/")
		return
	}
	ctx := r.Context()
	shown, err := a.cfg.Register.SearchPlans(ctx, a.caller(v, patientQuery("Flag", nhs)),
		store.PlanQuery{NHSNumber: nhs, Order: store.NewestFirst, Limit: maxPlans})
	if err != nil {
		a.fail(w, r, v, err)
		return
	}
	trail, err := a.cfg.Register.AuditTrail(ctx, a.caller(v, patientQuery("AuditEvent", nhs)),
		store.AuditQuery{Patient: nhs, Limit: cpis.AccessHistoryLength})
	if err != nil {
		a.cfg.Logger.Warn("viewer: the access history could not be read; the plans are shown without it", errorAttrs(err)...)
	}
	pv := a.patientView(v, nhs, shown.Plans, shown.Today, trail.Records)
	pv.HistoryUnavailable = err != nil
	pv.Report.View = a.sessions.newView(v.s.id, nhs)
	title := "No child protection information"
	if pv.Alert {
		title = "Child protection alert present"
	}
	a.render(w, r, v, http.StatusOK, "patient", view{Title: title, Nav: "patient", Data: pv})
}

// maxPlans bounds the plans one page shows: a child has a handful.
const maxPlans = 100
