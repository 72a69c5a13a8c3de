package fhir

import (
	"strings"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	commpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/communication_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// A discrepancy report (cpis.Discrepancy) as a Communication, as the
// Trust's safeguarding team reads it (GET /Communication):
//
//	id                 the report's UUID.
//	meta.lastUpdated   when it was resolved, or reported while open.
//	status             in-progress while open, completed once resolved.
//	category           exactly [cpis-notification-type#discrepancy].
//	subject            {type Patient, identifier {nhs-number, value}}.
//	sent               when it was reported.
//	recipient          exactly one: {type Organization, identifier
//	                   {ods-organization-code, the Trust's code}, display
//	                   its safeguarding team}.
//	sender             the reporting practitioner: {type PractitionerRole,
//	                   identifier sds-role-profile-id} (Practitioner by
//	                   sds-user-id when the role profile id is unknown),
//	                   display "name (role, organisation)".
//	reasonCode         exactly one: cpis-discrepancy-reason#<reason>.
//	payload            one contentString, the note, when there is one.
//	note               once resolved, one Annotation: author the resolver
//	                   (Practitioner by sds-user-id, display "name (role,
//	                   organisation)"), time the resolution, text "Marked resolved".
//
// No profile is claimed: cpis-asn is the ASNs' alone.

// The category of a discrepancy report in our CodeSystem cpis-notification-type.
const (
	discrepancyCategoryCode    = "discrepancy"
	discrepancyCategoryDisplay = "Discrepancy report"
	resolvedNote               = "Marked resolved"
)

// DiscrepancyReasonSystem is the CodeSystem of a report's reasonCode: the
// cpis.DiscrepancyReason codes, with their Display.
const DiscrepancyReasonSystem = CanonicalBase + "/CodeSystem/cpis-discrepancy-reason"

// DiscrepancyResource renders report d as a Communication.
func DiscrepancyResource(d cpis.Discrepancy) *commpb.Communication {
	c := &commpb.Communication{
		Meta:       &dpb.Meta{LastUpdated: instant(d.ReportedAt)},
		Status:     &commpb.Communication_StatusCode{Value: cpb.EventStatusCode_IN_PROGRESS},
		Category:   []*dpb.CodeableConcept{concept(coding(NotificationTypeSystem, discrepancyCategoryCode, discrepancyCategoryDisplay))},
		Subject:    logicalRef("Patient", NHSNumberSystem, d.NHSNumber.String(), ""),
		Sent:       dateTimeAt(d.ReportedAt),
		Recipient:  []*dpb.Reference{logicalRef("Organization", ODSSystem, d.OrgCode, safeguardingTeam(d.ReportedBy.OrgName))},
		Sender:     practitionerRef(d.ReportedBy, true),
		ReasonCode: []*dpb.CodeableConcept{concept(coding(DiscrepancyReasonSystem, string(d.Reason), d.Reason.Display()))},
	}
	if d.ID != "" {
		c.Id = id(d.ID)
	}
	if d.Note != "" {
		c.Payload = []*commpb.Communication_Payload{{Content: &commpb.Communication_Payload_ContentX{
			Choice: &commpb.Communication_Payload_ContentX_StringValue{StringValue: str(d.Note)},
		}}}
	}
	if d.Resolved() {
		c.Status.Value = cpb.EventStatusCode_COMPLETED
		c.Meta.LastUpdated = instant(d.ResolvedAt)
		c.Note = []*dpb.Annotation{{
			Author: &dpb.Annotation_AuthorX{Choice: &dpb.Annotation_AuthorX_Reference{Reference: practitionerRef(*d.ResolvedBy, false)}},
			Time:   dateTimeAt(d.ResolvedAt),
			Text:   markdown(resolvedNote),
		}}
	}
	return c
}

// practitionerRef is a health user by the role they acted in (withRole,
// when its role profile id is known) or by their SDS user id, displayed as
// "name (role, organisation)".
func practitionerRef(a cpis.Actor, withRole bool) *dpb.Reference {
	display := actorDisplay(a)
	if withRole && a.RoleProfileID != "" {
		return logicalRef("PractitionerRole", SDSRoleProfileSystem, a.RoleProfileID, display)
	}
	return logicalRef("Practitioner", SDSUserIDSystem, a.UserID, display)
}

// actorDisplay is "name (role, organisation)", leaving out what is unknown.
func actorDisplay(a cpis.Actor) string {
	var where []string
	for _, s := range []string{a.RoleName, a.OrgName} {
		if s != "" {
			where = append(where, s)
		}
	}
	name := a.Name
	if name == "" {
		name = "A practitioner"
	}
	if len(where) == 0 {
		return name
	}
	return name + " (" + strings.Join(where, ", ") + ")"
}

// safeguardingTeam names the recipient: the team of the reporter's organisation.
func safeguardingTeam(orgName string) string {
	if orgName == "" {
		return "Safeguarding children team"
	}
	return "Safeguarding children team, " + orgName
}
