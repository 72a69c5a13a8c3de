package fhir

import (
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	commpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/communication_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The Access to Service Notification as a Communication (profile cpis-asn,
// docs/domain.md, Access to Service Notifications). Every choice below is
// also stated in profiles/StructureDefinition-cpis-asn.json.
//
//	id                 the ASN's UUID.
//	meta.lastUpdated   the ASN's stamp on the change feed (store.Event.Stamp),
//	                   not the access time: it is what _lastUpdated searches
//	                   and what a poller asks again from. meta.profile = [cpis-asn].
//	status             completed: the notification is sent once it is stored.
//	category           exactly [cpis-notification-type#access-to-service].
//	subject            {type Patient, identifier {nhs-number, value}}: the
//	                   child (the mother, for an unborn child's plan).
//	recipient          exactly one: {type Organization, identifier
//	                   {ods-organization-code, the LA code}}.
//	sender             {type Organization, identifier {ods-organization-code,
//	                   the accessing organisation's code}, display its name}.
//	sent               the instant of the access.
//	about              Flag/{id} for each of the recipient's plans the reader
//	                   was shown, then AuditEvent/{id} of the access.
//	payload            one contentString: cpis.ASN.Message, the text for the
//	                   social worker (when, where, who, in which role).
//
// Nothing else: the register's own plans are the LA's to read, and the
// reader's clinical reasons are not the register's to pass on.

// The category of an ASN in our CodeSystem cpis-notification-type.
const (
	asnCategoryCode    = "access-to-service"
	asnCategoryDisplay = "Access to Service Notification"
)

// CommunicationResource renders ASN a as a cpis-asn Communication whose
// meta.lastUpdated is lastUpdated, the instant the feed published it
// (store.Event.Stamp); zero leaves it out.
func CommunicationResource(a cpis.ASN, lastUpdated time.Time) *commpb.Communication {
	c := &commpb.Communication{
		Meta:      &dpb.Meta{Profile: []*dpb.Canonical{canonical(ASNProfileURL)}},
		Status:    &commpb.Communication_StatusCode{Value: cpb.EventStatusCode_COMPLETED},
		Category:  []*dpb.CodeableConcept{concept(coding(NotificationTypeSystem, asnCategoryCode, asnCategoryDisplay))},
		Subject:   logicalRef("Patient", NHSNumberSystem, a.NHSNumber.String(), ""),
		Recipient: []*dpb.Reference{logicalRef("Organization", ODSSystem, a.LACode, "")},
		Sender:    logicalRef("Organization", ODSSystem, a.OrgCode, a.OrgName),
		About:     asnAbout(a),
		Payload: []*commpb.Communication_Payload{{Content: &commpb.Communication_Payload_ContentX{
			Choice: &commpb.Communication_Payload_ContentX_StringValue{StringValue: str(a.Message())},
		}}},
	}
	if a.ID != "" {
		c.Id = id(a.ID)
	}
	if !lastUpdated.IsZero() {
		c.Meta.LastUpdated = instant(lastUpdated)
	}
	if !a.Sent.IsZero() {
		c.Sent = dateTimeAt(a.Sent)
	}
	return c
}

// asnAbout references the plans shown, then the AuditEvent of the access.
func asnAbout(a cpis.ASN) []*dpb.Reference {
	refs := make([]*dpb.Reference, 0, len(a.PlanIDs)+1)
	for _, pid := range a.PlanIDs {
		refs = append(refs, &dpb.Reference{Reference: &dpb.Reference_FlagId{FlagId: &dpb.ReferenceId{Value: pid}}})
	}
	if a.AuditID != "" {
		refs = append(refs, &dpb.Reference{Reference: &dpb.Reference_AuditEventId{AuditEventId: &dpb.ReferenceId{Value: a.AuditID}}})
	}
	return refs
}

// dateTimeAt renders an instant as a FHIR dateTime in UTC, at the precision
// instant would give it, so that the access time comes back unchanged.
func dateTimeAt(t time.Time) *dpb.DateTime {
	in := instant(t)
	p := dpb.DateTime_MICROSECOND
	switch in.Precision {
	case dpb.Instant_SECOND:
		p = dpb.DateTime_SECOND
	case dpb.Instant_MILLISECOND:
		p = dpb.DateTime_MILLISECOND
	}
	return &dpb.DateTime{ValueUs: in.ValueUs, Timezone: utc, Precision: p}
}
