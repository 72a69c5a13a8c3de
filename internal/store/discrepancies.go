package store

import (
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Discrepancy reports (cpis.Discrepancy) are kept in a table of their own
// (migration 0009), apart from plans and the audit trail: they are the
// Trust's working list, read by its safeguarding team and marked resolved,
// while the audit trail records who reported, read and resolved each.

// DiscrepancyQuery selects the discrepancy reports addressed to one
// organisation (Store.Discrepancies). They are returned open ones first,
// then resolved ones, each newest reported first (ties by id, descending):
// the safeguarding team's work list in the order it is worked.
type DiscrepancyQuery struct {
	OrgCode  string // the organisation addressed (its ODS code); required
	Open     bool   // only reports not yet resolved
	Resolved bool   // only reports resolved; Open and Resolved together are Invalid
	Limit    int    // 1..1000, else Invalid
}

// MaxDiscrepancies is the most reports one Store.Discrepancies returns.
const MaxDiscrepancies = 1000

// CheckDiscrepancyQuery is what every store checks of a DiscrepancyQuery
// before it runs it.
func CheckDiscrepancyQuery(op string, q DiscrepancyQuery) error {
	switch {
	case q.OrgCode == "":
		return cpis.E(op, cpis.Invalid, "discrepancy reports are listed for one organisation: it needs the ODS code")
	case q.Open && q.Resolved:
		return cpis.E(op, cpis.Invalid, "a report is open or resolved, not both")
	case q.Limit < 1 || q.Limit > MaxDiscrepancies:
		return cpis.E(op, cpis.Invalid, "a list of discrepancy reports is 1 to 1000")
	}
	return nil
}

// CheckDiscrepancy is what every store checks of a report before it
// stores it: an id, a child, an organisation addressed, a reporter and the
// time of the report, and no resolution yet. The report's own rules
// (cpis.Discrepancy.Check) are the register's to apply.
func CheckDiscrepancy(op string, d cpis.Discrepancy) error {
	if d.ID == "" || d.NHSNumber == "" || d.OrgCode == "" || d.ReportedBy.UserID == "" || d.ReportedAt.IsZero() {
		return cpis.E(op, cpis.Invalid, "a discrepancy report needs an id, an NHS number, an organisation, a reporter and a time")
	}
	if d.Resolved() || !d.ResolvedAt.IsZero() {
		return cpis.E(op, cpis.Invalid, "a discrepancy report is stored open: ResolveDiscrepancy resolves it")
	}
	return nil
}

// CheckResolution is what every store checks of a resolution before it
// records it: who resolved the report and when.
func CheckResolution(op string, by cpis.Actor, at time.Time) error {
	if by.UserID == "" || at.IsZero() {
		return cpis.E(op, cpis.Invalid, "resolving a discrepancy report needs the resolver and the time")
	}
	return nil
}
