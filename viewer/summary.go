package viewer

import (
	"fmt"
	"strings"
)

// summary is the plain text of "Copy summary for the record": what the
// SOP asks to be documented in the patient's record after a CP-IS check
// (when, who, the outcome, the plans and whom to contact).
func (a *app) summary(v *visit, pv patientView) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("CP-IS check (Child Protection - Information Sharing)")
	line("Date and time: %s (UK time)", formatTime(a.now()))
	line("Checked by: %s", userLine(v.p.Name, v.p.RoleName, orgLabel(v.p.Actor)))
	line("Care setting: %s", pv.Setting)
	line("NHS number: %s", pv.NHS)
	if !pv.Alert {
		line("Outcome: No child protection information. CP-IS holds no plan for this NHS number.")
		return strings.TrimRight(b.String(), "\n")
	}
	line("Outcome: Child protection alert present (%s active)", plural(pv.ActiveCount, "plan", "plans"))
	n := 0
	for _, group := range []struct {
		status string
		plans  []planView
	}{{"active", pv.Active}, {"ended, still shown", pv.Ended}, {"not started yet", pv.Upcoming}} {
		for _, p := range group.plans {
			n++
			line("")
			summaryPlan(line, n, group.status, p)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// summaryPlan writes one plan of the summary.
func summaryPlan(line func(string, ...any), n int, status string, p planView) {
	line("Plan %d: %s (%s)", n, p.Type, status)
	line("  Start date: %s", p.Start)
	line("  End date: %s", p.End)
	line("  Responsible local authority: %s", p.LA)
	line("  Emergency duty number: %s", p.Emergency.Text)
	if p.Office.Text != "" {
		line("  Office hours number: %s", p.Office.Text)
	}
	switch ad := p.Advice; {
	case ad == nil:
	case !ad.InArea:
		line("  Out of area: not one of the Trust's local authorities; contact it on the numbers above.")
	default:
		line("  Call now: %s (%s)", ad.Call.Text, ad.CallLabel)
		if ad.Referral != "" {
			line("  How to refer: %s", ad.Referral)
		}
		if ad.ReferralContact.Text != "" {
			line("  Referral contact: %s", ad.ReferralContact.Text)
		}
	}
}
