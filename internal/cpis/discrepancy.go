package cpis

import (
	"errors"
	"strings"
	"time"
)

// Discrepancy reports (SOP step 10): a practitioner who knows a child to be
// on a plan the register does not show, or sees an alert that does not
// reflect the current step-down status, reports it to the Trust's
// safeguarding team, who take it up with the responsible LA and mark it
// resolved. The report names the child, a reason from a fixed list and an
// optional short note: it travels inside the Trust and is stored by the
// register, so it must carry no clinical detail.

// DiscrepancyReason is why a practitioner thinks the register is wrong.
type DiscrepancyReason string

// The reasons a practitioner can give.
const (
	ReasonMissingAlert  DiscrepancyReason = "missing-alert"   // known to be on a plan, but no alert
	ReasonWrongStepDown DiscrepancyReason = "wrong-step-down" // an alert that does not reflect the current step-down status
	ReasonOther         DiscrepancyReason = "other"
)

// MaxDiscrepancyNote is the most characters (runes) a report's note may hold.
const MaxDiscrepancyNote = 500

// DiscrepancyReasons lists the reasons in the order a form shows them.
func DiscrepancyReasons() []DiscrepancyReason {
	return []DiscrepancyReason{ReasonMissingAlert, ReasonWrongStepDown, ReasonOther}
}

// Valid reports whether r is one of the reasons.
func (r DiscrepancyReason) Valid() bool {
	return r == ReasonMissingAlert || r == ReasonWrongStepDown || r == ReasonOther
}

// Display is the reason in the words the viewer's form and the
// Communication's reasonCode use; "" for an unknown reason.
func (r DiscrepancyReason) Display() string {
	switch r {
	case ReasonMissingAlert:
		return "Missing alert"
	case ReasonWrongStepDown:
		return "Wrong step-down status"
	case ReasonOther:
		return "Other"
	}
	return ""
}

// Discrepancy is one report, addressed to the safeguarding team of the
// reporter's organisation (OrgCode).
type Discrepancy struct {
	ID         string // server-assigned UUID: the Communication's id
	NHSNumber  NHSNumber
	Reason     DiscrepancyReason
	Note       string // optional, at most MaxDiscrepancyNote characters, SafeText
	OrgCode    string // the Trust whose safeguarding team it is addressed to: the reporter's organisation
	ReportedBy Actor
	ReportedAt time.Time
	ResolvedBy *Actor    // nil while open
	ResolvedAt time.Time // zero while open
}

// Resolved reports whether the safeguarding team has marked it resolved.
func (d Discrepancy) Resolved() bool { return d.ResolvedBy != nil }

// Check is what a report must satisfy before it is stored, whoever sends
// it: a child, a reason from the list, and a note that is short, shows as
// it is (SafeText) and so cannot smuggle control characters into a page or
// a log. Every problem is reported, as Invalid (InvalidNHSNumber for the
// child) errors naming the element of the Communication it would fill.
func (d Discrepancy) Check() error {
	const op = "cpis.Discrepancy.Check"
	var errs []error
	if d.NHSNumber == "" {
		errs = append(errs, E(op, InvalidNHSNumber, Expr("Communication.subject.identifier.value"), "a discrepancy report names the child's NHS number"))
	} else if _, err := ParseNHSNumber(string(d.NHSNumber)); err != nil {
		errs = append(errs, E(op, InvalidNHSNumber, Expr("Communication.subject.identifier.value"), "the child's NHS number is not valid: 10 digits passing the Modulus 11 check"))
	}
	if !d.Reason.Valid() {
		errs = append(errs, E(op, Invalid, Expr("Communication.reasonCode"), "the reason must be missing-alert, wrong-step-down or other"))
	}
	if d.Note != "" && !SafeText(d.Note, MaxDiscrepancyNote) {
		errs = append(errs, E(op, Invalid, Expr("Communication.payload.contentString"),
			"the note is at most 500 characters of text, without line breaks, control characters or surrounding spaces"))
	}
	return errors.Join(errs...)
}

// CleanNote is what an entry point makes of a note typed into a form
// before Check: line breaks, tabs and runs of spaces become one space, and
// surrounding spaces go, so that a note typed over two lines is not
// refused. Anything else Check refuses stays for it to refuse.
func CleanNote(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
