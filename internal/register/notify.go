package register

import (
	"slices"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// notifications are the ASNs an access sends (docs/domain.md, Access to
// Service Notifications): one for each responsible LA of the plans shown,
// naming only that LA's plans, when a health user was shown plan data in
// unscheduled care. Scheduled care, refusals, searches that found nothing,
// LA reads and the audit trail send none. Whether an ASN is stored or
// coalesced with an earlier one is the store's to decide, atomically with
// every other replica (store.Store.AppendAudit).
func (s *Service) notifications(rec cpis.AuditRecord, plans []cpis.Plan) []cpis.ASN {
	if !rec.Access || !rec.Unscheduled {
		return nil
	}
	asns := make([]cpis.ASN, 0, len(rec.LACodes))
	for _, la := range rec.LACodes {
		var ids []string
		for _, p := range plans {
			if p.LA.Code == la && !slices.Contains(ids, p.ID) { // a history holds one plan's versions
				ids = append(ids, p.ID)
			}
		}
		a := rec.Actor
		asns = append(asns, cpis.ASN{
			ID:             s.newID(),
			AuditID:        rec.ID,
			Sent:           rec.Recorded,
			NHSNumber:      rec.Patient,
			LACode:         la,
			PlanIDs:        ids,
			OrgCode:        a.OrgCode,
			OrgName:        a.OrgName,
			UserName:       a.Name,
			RoleName:       a.RoleName,
			CoalesceWindow: s.asnWindow,
		})
	}
	return asns
}
