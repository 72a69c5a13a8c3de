package register

import (
	"context"
	"regexp"
	"slices"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// reader is a caller allowed to read plans, and how: a health user sees
// plans within their display window without the child's date of birth; an
// LA system sees its own plans whatever their dates.
type reader struct {
	p           *auth.Principal
	health      bool
	unscheduled bool // the read notifies the responsible LA
	view        cpis.View
}

// reader decides whether the caller may read plans at all, and in which
// care setting.
func (s *Service) reader(c Caller, op string) (reader, error) {
	p := c.Principal
	switch {
	case p.MayReadPlans():
		u, err := unscheduled(c, op)
		return reader{p: p, health: true, unscheduled: u, view: cpis.HealthView}, err
	case p.MayReadOwnPlans():
		return reader{p: p, view: cpis.OwnerView}, nil
	}
	return reader{}, cpis.E(op, cpis.AccessDenied,
		"viewing CP-IS information needs a role with activity B0107 or B0170 and scope user/Flag.read, or a local authority system token")
}

// unscheduled decides the care setting of a health user's read. Without a
// statement, a role that holds B0107 reads as unscheduled care (the ED
// default); true needs B0107, and false (no notification to the LA) B0170.
func unscheduled(c Caller, op string) (bool, error) {
	p := c.Principal
	switch {
	case c.Unscheduled == nil:
		return p.Can(cpis.ActivityUnscheduledView), nil
	case *c.Unscheduled && !p.Can(cpis.ActivityUnscheduledView):
		return false, cpis.E(op, cpis.AccessDenied, cpis.Expr("http.IsUnscheduledAccessEvent"), "an unscheduled-care access needs a role with activity B0107")
	case !*c.Unscheduled && !p.Can(cpis.ActivityScheduledView):
		return false, cpis.E(op, cpis.AccessDenied, cpis.Expr("http.IsUnscheduledAccessEvent"), "a scheduled-care access (no notification to the LA) needs a role with activity B0170")
	}
	return *c.Unscheduled, nil
}

// maySee reports whether r may see plan p on the given day.
func (r reader) maySee(p cpis.Plan, today cpis.Date) bool {
	if r.health {
		return p.VisibleToHealth(today)
	}
	return p.LA.Code == r.p.LACode
}

// mayAudit reports whether p may search its organisation's audit trail: the
// scope, and a role this register counts as auditing.
func (s *Service) mayAudit(p *auth.Principal) bool {
	return p.MayAudit() && slices.Contains(s.auditorRoles, p.RoleCode)
}

// writer returns the caller if it may write plans: an LA system.
func writer(c Caller, op string) (*auth.Principal, error) {
	if !c.Principal.MayWritePlans() {
		return nil, cpis.E(op, cpis.AccessDenied, "changing plans needs a local authority system token with scope system/Flag.write")
	}
	return c.Principal, nil
}

// refused records a health user's (or system's) refused read as an AuditEvent with a
// failure outcome (not an access: nothing was shown), then returns err.
// Information governance must see who tried as well as who looked. Other
// callers' refusals and other errors are returned as they are.
func (s *Service) refused(ctx context.Context, c Caller, interaction string, nhs cpis.NHSNumber, err error) error {
	if cpis.KindOf(err) != cpis.AccessDenied || !c.Principal.IsHealth() {
		return err
	}
	rec := s.record(c, cpis.ActionRead, interaction, nhs, nil)
	if interaction == "search-type" {
		rec.Action = cpis.ActionExecute
	}
	rec.Outcome, rec.Query = cpis.OutcomeMinorFailure, c.Query
	if aerr := s.audit.Record(ctx, rec); aerr != nil {
		return aerr
	}
	return err
}

// resourceID is what a FHIR logical id may be. Ids we make are UUIDs; any
// other string cannot name a plan, so it is answered as not found before
// it reaches the store (a NUL or invalid UTF-8 would upset PostgreSQL).
var resourceID = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

// checkID refuses an id no plan can have, as not found.
func checkID(op, id string) error {
	if !resourceID.MatchString(id) {
		return cpis.E(op, cpis.NotFound, "no plan with this id")
	}
	return nil
}
