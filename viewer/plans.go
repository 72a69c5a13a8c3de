package viewer

import (
	"slices"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// planSentences explain each plan type in one sentence: the SOP's (NCRS's)
// words for CPP and UCPP; the SOP has none for CLA, so it is written in
// the same style.
var planSentences = map[cpis.PlanType]string{
	cpis.CPP: "A plan designed to keep a child safe, setting out how things can be made better for the family " +
		"and what support they will need. For more information contact the local authority.",
	cpis.CLA: "A child who is cared for by the local authority, for example in foster or residential care or " +
		"under a care order. For more information contact the local authority.",
	cpis.UCPP: "A plan designed to enable practitioners to work together with families to safeguard unborn babies " +
		"where vulnerability and risk indicators are identified. Since unborn children do not have NHS numbers, " +
		"this plan will form part of the mother's record where it will stay for up to 28 days after the expected " +
		"date of delivery.",
}

// patientView is the child protection information page.
type patientView struct {
	NHS         string // formatted 3-3-4
	Alert       bool   // any plan is shown
	ActiveCount int
	Active      []planView // active today
	Ended       []planView // ended, still in their display window
	Upcoming    []planView // recorded, starting later
	Setting     string     // the care setting of this read
	Viewed      []accessView
	// HistoryUnavailable says the access history could not be read: the
	// plans are shown without it.
	HistoryUnavailable bool
	Summary            string // "Copy summary for the record"
	Report             reportForm
}

// planView is one plan as the page shows it.
type planView struct {
	Type, Sentence  string
	Start, End      string // DD-Mon-YYYY
	LA              string // "Name (CODE)"
	Emergency       phone
	Office          phone
	Advice          *adviceView // nil without a directory
	Ended, Upcoming bool
	plan            cpis.Plan
}

// accessView is one line of "previously viewed by".
type accessView struct{ When, Name, Role, Org string }

// patientView builds the page from what the register returned.
func (a *app) patientView(v *visit, nhs cpis.NHSNumber, plans []cpis.Plan, today cpis.Date, trail []cpis.AuditRecord) patientView {
	pv := patientView{NHS: formatNHS(nhs), Alert: len(plans) > 0, Setting: careSetting(unscheduledRead(v)), Report: newReportForm(v.s.csrf)}
	plans = slices.Clone(plans)
	slices.SortStableFunc(plans, func(x, y cpis.Plan) int { return compareDates(y.Start, x.Start) })
	for _, p := range plans {
		pl := a.planView(p)
		switch {
		case p.StatusOn(today) == cpis.Active:
			pv.Active = append(pv.Active, pl)
		case today.After(p.End):
			pl.Ended = true
			pv.Ended = append(pv.Ended, pl)
		default:
			pl.Upcoming = true
			pv.Upcoming = append(pv.Upcoming, pl)
		}
	}
	pv.ActiveCount = len(pv.Active)
	for _, r := range trail {
		pv.Viewed = append(pv.Viewed, accessView{When: formatTime(r.Recorded), Name: r.Actor.Name, Role: r.Actor.RoleName, Org: orgLabel(r.Actor)})
	}
	pv.Summary = a.summary(v, pv)
	return pv
}

// planView is one plan with its directory advice.
func (a *app) planView(p cpis.Plan) planView {
	pl := planView{
		Type: p.Type.Display(), Sentence: planSentences[p.Type],
		Start: formatDate(p.Start), End: formatDate(p.End), LA: laLabel(p.LA),
		Emergency: phoneOf(p.EmergencyPhone), Office: phoneOf(p.OfficePhone), plan: p,
	}
	if a.cfg.Directory != nil {
		pl.Advice = a.advice(p.LA.Code)
	}
	return pl
}

// laLabel writes an LA as NCRS does: "Name (CODE)".
func laLabel(la cpis.LocalAuthority) string {
	if la.Name == "" {
		return la.Code
	}
	return la.Name + " (" + la.Code + ")"
}

// orgLabel writes an organisation: "Name (CODE)".
func orgLabel(a cpis.Actor) string {
	switch {
	case a.OrgName == "":
		return a.OrgCode
	case a.OrgCode == "":
		return a.OrgName
	}
	return a.OrgName + " (" + a.OrgCode + ")"
}

// compareDates orders dates, earliest first.
func compareDates(x, y cpis.Date) int {
	switch {
	case x.Before(y):
		return -1
	case x.After(y):
		return 1
	}
	return 0
}

// userLine is who is signed in, for the header and the summary.
func userLine(name, role, org string) string {
	parts := []string{}
	for _, s := range []string{name, role, org} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}
