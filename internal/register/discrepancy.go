package register

import (
	"context"
	"slices"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Discrepancy reports (SOP step 10, cpis.Discrepancy). A practitioner who
// may view CP-IS reports that the register looks wrong for a child; the
// report goes to the safeguarding team of the practitioner's own
// organisation, whose members (a safeguarding role, and the scope
// user/Communication.read) list, read and resolve their organisation's
// reports and no other's. Each of the four is audited like a read,
// committed before the answer leaves, naming the child: none is an access
// of plan data, so none appears in the child's "previously viewed by".
//
// A report and its resolution are stored before their audit record is
// committed: the report row itself names who reported and who resolved,
// and when, so should the audit commit fail after it (the caller gets
// Unavailable) nothing is lost of who did what; the reverse order could
// leave the trail recording a report that was never stored.

// DefaultSafeguardingRoles are the safeguarding roles when none are
// configured: the role the dev persona safeguarding-lead holds. No
// national RBAC role is a Trust's safeguarding lead, so this one is
// invented, like the dev people; a deployment names the roles its
// safeguarding team selects (cmd/cpisd: CPIS_SAFEGUARDING_ROLES).
var DefaultSafeguardingRoles = []string{"S8000:G8000:R8099"}

// DefaultDiscrepancyLimit is how many reports a list holds when the
// caller does not say: a Trust's open reports are a handful.
const DefaultDiscrepancyLimit = 100

// safeguardingRoles is roles, or the default when none are given.
func safeguardingRoles(roles []string) []string {
	if roles == nil {
		roles = DefaultSafeguardingRoles
	}
	return slices.Clone(roles)
}

// MayReviewDiscrepancies reports whether the caller may list, read and
// resolve its organisation's discrepancy reports: the scope
// (auth.Principal.MayReviewDiscrepancies) and a safeguarding role. Entry
// points ask it to choose what to offer (GET /Communication answers these
// callers with reports, LA systems with ASNs).
func (s *Service) MayReviewDiscrepancies(c Caller) bool {
	p := c.Principal
	return p.MayReviewDiscrepancies() && slices.Contains(s.safeguardingRoles, p.RoleCode)
}

// ReportDiscrepancy stores d, a report from a practitioner who may view
// CP-IS, addressed to the safeguarding team of the reporter's
// organisation, and returns it as stored. d carries the NHS number, the
// reason and the note (cpis.Discrepancy.Check: Invalid, nothing stored);
// the register fills in the id, the organisation, the reporter and the
// time, and ignores any resolution. Audited as a create, against the
// child.
func (s *Service) ReportDiscrepancy(ctx context.Context, c Caller, d cpis.Discrepancy) (cpis.Discrepancy, error) {
	const op = "register.ReportDiscrepancy"
	p := c.Principal
	var err error
	switch {
	case p.Kind != cpis.HealthUser || !p.MayReadPlans():
		err = cpis.E(op, cpis.AccessDenied, "discrepancy reports are made by practitioners who may view CP-IS: a role with activity B0107 or B0170 and scope user/Flag.read")
	case p.OrgCode == "":
		err = cpis.E(op, cpis.AccessDenied, "a discrepancy report goes to the safeguarding team of the reporter's organisation: the token names none")
	}
	if err != nil {
		child := d.NHSNumber // recorded only if it is one
		if _, perr := cpis.ParseNHSNumber(string(child)); perr != nil {
			child = ""
		}
		return cpis.Discrepancy{}, s.refusedDiscrepancy(ctx, c, cpis.ActionCreate, "create", child, err)
	}
	if err := d.Check(); err != nil {
		return cpis.Discrepancy{}, cpis.E(op, err)
	}
	d = cpis.Discrepancy{ID: s.newID(), NHSNumber: d.NHSNumber, Reason: d.Reason, Note: d.Note,
		OrgCode: p.OrgCode, ReportedBy: p.Actor, ReportedAt: stamp(c.At)}
	if err := s.store.CreateDiscrepancy(ctx, d); err != nil {
		return cpis.Discrepancy{}, cpis.E(op, err)
	}
	if err := s.auditedDiscrepancy(ctx, c, cpis.ActionCreate, "create", d.NHSNumber); err != nil {
		return cpis.Discrepancy{}, err
	}
	return d, nil
}

// Discrepancies lists the reports addressed to the caller's organisation,
// open ones first, then newest first (store.Store.Discrepancies): q's
// OrgCode is the caller's whatever it says, and a Limit of 0 is
// DefaultDiscrepancyLimit. Audited as a search, one record per child
// listed (one naming no child for an empty list).
func (s *Service) Discrepancies(ctx context.Context, c Caller, q store.DiscrepancyQuery) ([]cpis.Discrepancy, error) {
	const op = "register.Discrepancies"
	if err := s.reviewer(c, op); err != nil {
		return nil, s.refusedDiscrepancy(ctx, c, cpis.ActionExecute, "search-type", "", err)
	}
	q.OrgCode = c.Principal.OrgCode
	if q.Limit == 0 {
		q.Limit = DefaultDiscrepancyLimit
	}
	ds, err := s.store.Discrepancies(ctx, q)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	var children []cpis.NHSNumber
	for _, d := range ds {
		if !slices.Contains(children, d.NHSNumber) {
			children = append(children, d.NHSNumber)
		}
	}
	if err := s.auditedDiscrepancy(ctx, c, cpis.ActionExecute, "search-type", children...); err != nil {
		return nil, err
	}
	return ds, nil
}

// Discrepancy returns report id, if it is addressed to the caller's
// organisation (otherwise NotFound, whether or not it exists). Audited as
// a read, against the child.
func (s *Service) Discrepancy(ctx context.Context, c Caller, id string) (cpis.Discrepancy, error) {
	const op = "register.Discrepancy"
	if err := s.reviewer(c, op); err != nil {
		return cpis.Discrepancy{}, s.refusedDiscrepancy(ctx, c, cpis.ActionRead, "read", "", err)
	}
	d, err := s.ownDiscrepancy(ctx, c, id, op)
	if err != nil {
		return cpis.Discrepancy{}, err
	}
	if err := s.auditedDiscrepancy(ctx, c, cpis.ActionRead, "read", d.NHSNumber); err != nil {
		return cpis.Discrepancy{}, err
	}
	return d, nil
}

// ResolveDiscrepancy marks report id resolved by the caller, and returns
// it. A report already resolved keeps its first resolution and is
// returned as it is, without error: two members of the team resolving one
// report at once both see it resolved. Audited as an update, against the
// child, each time.
func (s *Service) ResolveDiscrepancy(ctx context.Context, c Caller, id string) (cpis.Discrepancy, error) {
	const op = "register.ResolveDiscrepancy"
	if err := s.reviewer(c, op); err != nil {
		return cpis.Discrepancy{}, s.refusedDiscrepancy(ctx, c, cpis.ActionUpdate, "update", "", err)
	}
	d, err := s.ownDiscrepancy(ctx, c, id, op)
	if err != nil {
		return cpis.Discrepancy{}, err
	}
	if !d.Resolved() {
		if d, err = s.store.ResolveDiscrepancy(ctx, d.ID, c.Principal.Actor, stamp(c.At)); err != nil {
			return cpis.Discrepancy{}, cpis.E(op, err)
		}
	}
	if err := s.auditedDiscrepancy(ctx, c, cpis.ActionUpdate, "update", d.NHSNumber); err != nil {
		return cpis.Discrepancy{}, err
	}
	return d, nil
}

// reviewer refuses a caller that may not review discrepancy reports.
func (s *Service) reviewer(c Caller, op string) error {
	if !s.MayReviewDiscrepancies(c) {
		return cpis.E(op, cpis.AccessDenied, "discrepancy reports are read by the safeguarding team: a safeguarding role and scope user/Communication.read")
	}
	return nil
}

// ownDiscrepancy reads report id if it is addressed to the caller's
// organisation; NotFound otherwise, whether or not it exists, so that
// another organisation's ids cannot be probed.
func (s *Service) ownDiscrepancy(ctx context.Context, c Caller, id, op string) (cpis.Discrepancy, error) {
	notFound := cpis.E(op, cpis.NotFound, "no discrepancy report with this id")
	if !resourceID.MatchString(id) {
		return cpis.Discrepancy{}, notFound
	}
	d, err := s.store.Discrepancy(ctx, id)
	switch {
	case cpis.KindOf(err) == cpis.NotFound:
		return cpis.Discrepancy{}, notFound
	case err != nil:
		return cpis.Discrepancy{}, cpis.E(op, err)
	case d.OrgCode != c.Principal.OrgCode:
		return cpis.Discrepancy{}, notFound
	}
	return d, nil
}

// auditedDiscrepancy records one interaction with discrepancy reports,
// one record per child (one naming none when there is no child), and
// returns once they are committed. None is an access: no plan was shown.
// The request as received is kept, so that the trail tells a report from
// a plan write by its path.
func (s *Service) auditedDiscrepancy(ctx context.Context, c Caller, action cpis.AuditAction, interaction string, children ...cpis.NHSNumber) error {
	if len(children) == 0 {
		children = []cpis.NHSNumber{""}
	}
	recs := make([]cpis.AuditRecord, 0, len(children))
	for _, n := range children {
		rec := s.record(c, action, interaction, n, nil)
		rec.Query = c.Query
		recs = append(recs, rec)
	}
	return s.audit.Record(ctx, recs...)
}

// refusedDiscrepancy records a health caller's refused attempt, as a
// failure of the action it tried, then returns err: information
// governance sees who tried as well as who did. Other callers' refusals,
// and other errors, are returned as they are (as refused does for reads).
func (s *Service) refusedDiscrepancy(ctx context.Context, c Caller, action cpis.AuditAction, interaction string, nhs cpis.NHSNumber, err error) error {
	if cpis.KindOf(err) != cpis.AccessDenied || !c.Principal.IsHealth() {
		return err
	}
	rec := s.record(c, action, interaction, nhs, nil)
	rec.Outcome, rec.Query = cpis.OutcomeMinorFailure, c.Query
	if aerr := s.audit.Record(ctx, rec); aerr != nil {
		return aerr
	}
	return err
}
