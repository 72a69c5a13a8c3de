package fhir

import (
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	prpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/practitioner_role_go_proto"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The accessing practitioner, as the national CP-IS API returns it with
// GET /AuditEvent?...&_include=AuditEvent:entity-type=<v3-RoleClass>|ASSIGNED
// (UKCore-PractitionerRole, search.mode include). Each AuditEvent of a
// health user names the role in an entity of type v3-RoleClass#ASSIGNED:
//
//	PractitionerRole   no id (it is not a resource this server stores or
//	                   serves): its Bundle entry's fullUrl is urn:uuid:<u>,
//	                   u a name-based UUID of the user, role and organisation,
//	                   so the same role is one entry however many accesses.
//	identifier         the role profile id (sds-role-profile-id), when known.
//	practitioner       the user by SDS user id, with the name.
//	organization       the organisation by ODS code, with its name.
//	code               the selected role: code and name.
//	AuditEvent.entity  what = {reference urn:uuid:<u>, type PractitionerRole,
//	                   identifier as above, display the user's name}; type
//	                   v3-RoleClass#ASSIGNED "assigned entity".

// v3RoleClassSystem is the code system of the entity type the national API's
// _include names.
const v3RoleClassSystem = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"

// roleNamespace makes the urn:uuid of a practitioner role.
var roleNamespace = uuid.MustParse("3f0b6a52-5a6c-4b4e-9a57-8d0c2e1f7b64")

// PractitionerRoleURN is the fullUrl, and the reference from AuditEvents, of
// the role a health user acted in.
func PractitionerRoleURN(a cpis.Actor) string {
	key := a.UserID + "\x00" + a.RoleProfileID + "\x00" + a.RoleCode + "\x00" + a.OrgCode
	return "urn:uuid:" + uuid.NewSHA1(roleNamespace, []byte(key)).String()
}

// HasPractitionerRole reports whether the actor is shown as a
// PractitionerRole: a health user (an LA system is a Device).
func HasPractitionerRole(a cpis.Actor) bool { return a.Kind == cpis.HealthUser && a.UserID != "" }

// PractitionerRoleResource renders the role a health user acted in.
func PractitionerRoleResource(a cpis.Actor) *prpb.PractitionerRole {
	pr := &prpb.PractitionerRole{
		Practitioner: logicalRef("Practitioner", SDSUserIDSystem, a.UserID, a.Name),
	}
	if a.RoleProfileID != "" {
		pr.Identifier = []*dpb.Identifier{identifier(SDSRoleProfileSystem, a.RoleProfileID)}
	}
	if a.OrgCode != "" {
		pr.Organization = logicalRef("Organization", ODSSystem, a.OrgCode, a.OrgName)
	}
	if role := actorRole(a); role != nil {
		pr.Code = []*dpb.CodeableConcept{role}
	}
	return pr
}

// roleEntity is the AuditEvent entity naming the practitioner's role.
func roleEntity(a cpis.Actor) *aeEntity {
	what := &dpb.Reference{
		Reference: &dpb.Reference_Uri{Uri: str(PractitionerRoleURN(a))},
		Type:      uri("PractitionerRole"),
	}
	if a.RoleProfileID != "" {
		what.Identifier = identifier(SDSRoleProfileSystem, a.RoleProfileID)
	}
	if a.Name != "" {
		what.Display = str(a.Name)
	}
	return &aeEntity{What: what, Type: coding(v3RoleClassSystem, "ASSIGNED", "assigned entity")}
}
