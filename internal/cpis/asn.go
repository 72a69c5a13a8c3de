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

// CoalescesWith reports whether a, a later access, sends no ASN because
// earlier was sent for the same child, organisation and LA within a's
// window: earlier.Sent is after a.Sent minus the window, and not after
// a.Sent. A window of 0 coalesces nothing.
func (a ASN) CoalescesWith(earlier ASN) bool {
	return a.CoalesceWindow > 0 && a.NHSNumber == earlier.NHSNumber && a.OrgCode == earlier.OrgCode &&
		a.LACode == earlier.LACode && earlier.Sent.After(a.Sent.Add(-a.CoalesceWindow)) && !earlier.Sent.After(a.Sent)
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
