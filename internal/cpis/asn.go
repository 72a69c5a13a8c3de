package cpis

import (
	"fmt"
	"time"
)

// ASN is an Access to Service Notification (docs/domain.md, Access to
// Service Notifications): the message that tells a local authority a child
// on one of its plans was seen in unscheduled care. It carries only what
// the social worker needs to follow it up: when, where, by whom and in
// which role, which of the LA's plans were shown, and the audit record of
// the access. Nothing of another LA's plans and no clinical detail.
type ASN struct {
	ID        string    // server-assigned UUID: the Communication's id
	AuditID   string    // the AuditEvent of the access that sent it
	Sent      time.Time // the instant of the access
	NHSNumber NHSNumber // the child (the mother, for an unborn child's plan)
	LACode    string    // the recipient: the responsible LA
	PlanIDs   []string  // the recipient's plans the reader was shown
	OrgCode   string    // ODS code of the accessing organisation
	OrgName   string
	UserName  string // the practitioner
	RoleName  string // the role they selected at login
	// CoalesceWindow is how long after an ASN for the same child,
	// organisation and LA a later access sends none (0: every access sends
	// one). The store applies it when it stores the ASN, atomically with
	// every other writer (store.Store.AppendAudit).
	CoalesceWindow time.Duration
}

// DefaultASNCoalesceWindow is the ASN coalescing window unless configured:
// at most one ASN per child, accessing organisation and responsible LA in
// any 24 hours.
const DefaultASNCoalesceWindow = 24 * time.Hour

// CoalescesWith reports whether a sends no ASN because other, sent for
// the same child, organisation and LA, is less than a's window away from it,
// before or after: audit records are committed in batches, and replicas
// commit side by side, so an access may be stored after a later one. Hence
// no two ASNs for one child, organisation and LA are ever less than a window
// apart. A window of 0 coalesces nothing.
func (a ASN) CoalescesWith(other ASN) bool {
	d := a.Sent.Sub(other.Sent)
	return a.CoalesceWindow > 0 && a.NHSNumber == other.NHSNumber && a.OrgCode == other.OrgCode &&
		a.LACode == other.LACode && d < a.CoalesceWindow && d > -a.CoalesceWindow
}

// Message is the ASN's text for the social worker: when (UK time), where,
// who and in which role. Nothing else: the LA knows its own plans, and the
// reader's clinical reasons are not the register's to pass on.
func (a ASN) Message() string {
	at := a.Sent.In(london)
	who := orUnknown(a.UserName, "a practitioner")
	role := orUnknown(a.RoleName, "an unnamed role")
	where := orUnknown(a.OrgName, "an organisation")
	if a.OrgCode != "" {
		where += " (ODS " + a.OrgCode + ")"
	}
	return fmt.Sprintf("Child protection information for this child was viewed in unscheduled care on %s at %s (UK time) at %s by %s, in the role %s.",
		at.Format("Monday 2 January 2006"), at.Format("15:04"), where, who, role)
}

func orUnknown(s, unknown string) string {
	if s == "" {
		return unknown
	}
	return s
}
