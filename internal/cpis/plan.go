package cpis

import (
	"errors"
	"regexp"
	"strings"
	"time"
)

// PlanType is the kind of statutory plan an LA records.
type PlanType string

// Plan types (SOP, "Type of Plan").
const (
	CPP  PlanType = "CPP"  // Child Protection Plan, on the child's NHS number
	CLA  PlanType = "CLA"  // Child Looked After, on the child's NHS number
	UCPP PlanType = "UCPP" // Unborn Child Protection Plan, on the mother's NHS number
)

// PlanTypes lists every plan type, in display order.
var PlanTypes = []PlanType{CPP, CLA, UCPP}

// Valid reports whether t is one of the three plan types.
func (t PlanType) Valid() bool { return t == CPP || t == CLA || t == UCPP }

// Display is the plan type's name as health staff see it.
func (t PlanType) Display() string {
	switch t {
	case CPP:
		return "Child Protection Plan"
	case CLA:
		return "Child Looked After"
	case UCPP:
		return "Unborn Child Protection Plan"
	}
	return string(t)
}

// Status is a plan's status on a given day (FHIR Flag.status).
type Status string

// Plan statuses.
const (
	Active         Status = "active"           // from the start date to the end date, inclusive
	Inactive       Status = "inactive"         // ended (still within its display window), or not yet started
	EnteredInError Status = "entered-in-error" // removed by its LA
)

// Display windows after a plan's end date (SOP, "End Date").
const (
	ChildPlanDisplayDays  = 364 // CPP and CLA
	UnbornPlanDisplayDays = 28  // UCPP
)

// Plan is the whole CP-IS dataset for one plan, and nothing more.
type Plan struct {
	ID             string    // server-assigned, stable across versions
	Version        int       // 1 on create, +1 on every change
	NHSNumber      NHSNumber // the child's, or the mother's for a UCPP
	Type           PlanType
	Start, End     Date
	LA             LocalAuthority // the responsible LA: the only one who may change the plan
	EmergencyPhone string         // LA emergency duty number, mandatory
	OfficePhone    string         // LA office-hours number, optional
	// BirthDate is the child's date of birth, sent by the LA so that the
	// 18th-birthday rule can be checked. Mandatory for CPP and CLA, absent for
	// UCPP. Never shown to health users: it is not part of the shared dataset.
	BirthDate Date
	// Reference is the LA's own reference for the plan, from its
	// case-management system (empty when it sent none): the key its uploads
	// match plans by. Unique among the LA's plans that are not entered in
	// error; two LAs may use the same value. Shown to the owning LA only.
	Reference      string
	EnteredInError bool      // set by DELETE: the plan is withdrawn, not erased
	LastUpdated    time.Time // when this version was stored
}

// View is what a reader may see of a plan.
type View int

// Views.
const (
	HealthView View = iota // health users: the shared dataset, without the child's date of birth
	OwnerView              // the responsible LA: everything it sent, with the date of birth
)

// SameContent reports whether p and o hold the same plan data as an LA sends
// it: subject, type, dates, LA, telephone numbers, date of birth and the
// LA's reference. Ids,
// versions, times of storage and the LA's name (which the server owns) are
// not compared. A retried write is recognised by it, and a write that would
// change nothing can be answered without writing.
func (p Plan) SameContent(o Plan) bool {
	return p.NHSNumber == o.NHSNumber && p.Type == o.Type && p.Start == o.Start && p.End == o.End &&
		p.LA.Code == o.LA.Code && p.EmergencyPhone == o.EmergencyPhone && p.OfficePhone == o.OfficePhone &&
		p.BirthDate == o.BirthDate && p.Reference == o.Reference && p.EnteredInError == o.EnteredInError
}

// Overlaps reports whether p and o are one plan held twice: the same LA's
// plans of the same type on the same NHS number, neither withdrawn, whose
// periods share at least a day. Both dates are inclusive, so a plan ending
// on the day the other starts overlaps it; one starting the day after does
// not. The register refuses a write that would make an LA hold two plans
// that overlap (internal/register); a plan overlaps itself, which is not
// counted.
func (p Plan) Overlaps(o Plan) bool {
	return p.NHSNumber == o.NHSNumber && p.Type == o.Type && p.LA.Code == o.LA.Code &&
		!p.EnteredInError && !o.EnteredInError &&
		!p.Start.After(o.End) && !o.Start.After(p.End)
}

// DisplayUntil is the last day health users may see the plan.
func (p Plan) DisplayUntil() Date {
	if p.Type == UCPP {
		return p.End.AddDays(UnbornPlanDisplayDays)
	}
	return p.End.AddDays(ChildPlanDisplayDays)
}

// StatusOn is the plan's status on the given day.
func (p Plan) StatusOn(today Date) Status {
	switch {
	case p.EnteredInError:
		return EnteredInError
	case !today.Before(p.Start) && !today.After(p.End):
		return Active
	default:
		return Inactive
	}
}

// VisibleToHealth reports whether health users may see the plan on the given
// day: it has not been withdrawn and its display window has not closed.
func (p Plan) VisibleToHealth(today Date) bool {
	return !p.EnteredInError && !today.After(p.DisplayUntil())
}

// ukPhone is a UK telephone number as a reader must be able to dial it:
// digits with single spaces between them, starting 0 or +44 (no brackets,
// hyphens, extensions or words: anything a reader sees is bounded).
var ukPhone = regexp.MustCompile(`^(\+44 ?|0)[0-9]( ?[0-9]){8,12}$`)

// maxPhoneLength bounds a telephone number as written, spaces included.
const maxPhoneLength = 20

// ValidPhone reports whether s is a UK telephone number that can be dialled:
// digits and single spaces, one leading + (for +44), 10 or 11 digits after
// the 0 or 44 prefix is taken as 0.
func ValidPhone(s string) bool {
	if len(s) > maxPhoneLength || !ukPhone.MatchString(s) {
		return false
	}
	n := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			n++
		}
	}
	if strings.HasPrefix(s, "+") {
		n-- // +44 stands for the leading 0 and one more digit
	}
	return n >= 10 && n <= 11
}

// planReference is what an LA's own plan reference may be.
var planReference = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidReference reports whether s can be an LA's plan reference: 1 to 64
// of A-Z a-z 0-9 . _ -.
func ValidReference(s string) bool { return planReference.MatchString(s) }

// MaxUnbornPlanDays is the longest a UCPP may run: it starts during the
// pregnancy and ends on the expected date of delivery, and a pregnancy is
// about 280 days.
const MaxUnbornPlanDays = 300

// Validate checks every rule of the SOP that a single plan must satisfy on
// its own. It reports all the problems it finds, joined, each an *Error of
// kind Invalid with the FHIRPath of the element at fault. It does not check
// who may write the plan, nor the LA against the register of local
// authorities (whose name the server owns): those are the application
// layer's (internal/register).
func (p Plan) Validate() error {
	const op = "cpis.Plan.Validate"
	var errs []error
	bad := func(expr, msg string) { errs = append(errs, E(op, Invalid, Expr(expr), msg)) }

	if p.NHSNumber == "" {
		errs = append(errs, E(op, InvalidNHSNumber, Expr("Flag.subject.identifier.value"), "the subject's NHS number is missing"))
	} else if _, err := ParseNHSNumber(string(p.NHSNumber)); err != nil {
		errs = append(errs, E(op, InvalidNHSNumber, Expr("Flag.subject.identifier.value"), "the subject's NHS number is not valid: 10 digits passing the Modulus 11 check"))
	}
	if !p.Type.Valid() {
		bad("Flag.code", "the plan type must be one of CPP, CLA or UCPP")
	}
	if p.Start.IsZero() {
		bad("Flag.period.start", "a plan must have a start date")
	}
	if p.End.IsZero() {
		bad("Flag.period.end", "a plan must have an end date")
	}
	if !p.Start.IsZero() && !p.End.IsZero() && p.End.Before(p.Start) {
		bad("Flag.period.end", "the end date is before the start date")
	}
	errs = append(errs, p.validateBirthDate(op)...)
	if p.Reference != "" && !ValidReference(p.Reference) {
		bad("Flag.identifier", "the LA's plan reference must be 1 to 64 of A-Z a-z 0-9 . _ -")
	}
	if p.Type == UCPP && !p.Start.IsZero() && !p.End.IsZero() && p.End.After(p.Start.AddDays(MaxUnbornPlanDays)) {
		bad("Flag.period.end", "an unborn child protection plan ends on the expected date of delivery: at most 300 days after it starts")
	}
	if p.LA.Code == "" {
		bad("Flag.author.identifier.value", "the responsible local authority's code is missing")
	}
	if p.EmergencyPhone == "" {
		bad("Flag.extension('emergency-duty-telephone')", "the LA emergency duty telephone number is mandatory")
	} else if !ValidPhone(p.EmergencyPhone) {
		bad("Flag.extension('emergency-duty-telephone')", "the LA emergency duty telephone number is not a UK telephone number")
	}
	if p.OfficePhone != "" && !ValidPhone(p.OfficePhone) {
		bad("Flag.extension('office-hours-telephone')", "the LA office-hours telephone number is not a UK telephone number")
	}
	return errors.Join(errs...)
}

// validateBirthDate applies the 18th-birthday rule: a CPP or CLA needs the
// child's date of birth and may not end after the child turns 18. A UCPP is
// for a child not yet born, so it must not carry one.
func (p Plan) validateBirthDate(op string) []error {
	const expr = "Flag.extension('child-birth-date')"
	if p.Type == UCPP {
		if !p.BirthDate.IsZero() {
			return []error{E(op, Invalid, Expr(expr), "an unborn child protection plan has no date of birth")}
		}
		return nil
	}
	if !p.Type.Valid() {
		return nil
	}
	if p.BirthDate.IsZero() {
		return []error{E(op, Invalid, Expr(expr), "a CPP or CLA plan needs the child's date of birth to check the 18th-birthday rule")}
	}
	var errs []error
	if !p.Start.IsZero() && p.Start.Before(p.BirthDate) {
		errs = append(errs, E(op, Invalid, Expr("Flag.period.start"), "the plan starts before the child's date of birth"))
	}
	if eighteen := p.BirthDate.AddYears(18); !p.End.IsZero() && p.End.After(eighteen) {
		errs = append(errs, E(op, Invalid, Expr("Flag.period.end"), "a CPP or CLA plan cannot end after the child's 18th birthday"))
	}
	return errs
}
