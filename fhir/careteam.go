package fhir

import (
	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	ctpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/care_team_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The CareTeam shape answers the national CP-IS FHIR API's question
// (GET /CareTeam?patient:identifier=...): which LA is responsible for the
// child under which plan, and how to call it. One CareTeam per plan:
//
//	id, meta           the plan ID; versionId and lastUpdated (no profile:
//	                   CP-IS defines none for CareTeam).
//	status             active from start to end date, inactive after (and
//	                   before the start), entered-in-error once withdrawn.
//	category           the plan type, coded as Flag.code is (cpis-plan-type
//	                   plus SNOMED CT where one exists, text the display).
//	name               the plan type's display, e.g. "Child Protection Plan".
//	subject            the child (or, for a UCPP, the mother) by NHS number.
//	period             the plan's start and end dates.
//	managingOrganization, participant[0].member
//	                   the responsible LA by ODS code, with its name; the
//	                   participant's role is the text "Responsible local authority".
//	telecom            the LA's numbers as work phones: rank 1 the emergency
//	                   duty number, rank 2 the office-hours number. The same
//	                   numbers are also in the emergency-duty-telephone and
//	                   office-hours-telephone extensions, whose meaning does
//	                   not depend on reading rank.
//
// The child's date of birth is never included: CareTeams are for health readers.

// CareTeamResource renders plan p as a CP-IS CareTeam, as seen on day today.
func CareTeamResource(p cpis.Plan, today cpis.Date) *ctpb.CareTeam {
	ct := &ctpb.CareTeam{
		Meta:      resourceMeta(p, ""),
		Extension: planExtensions(p, cpis.HealthView),
		Status:    &ctpb.CareTeam_StatusCode{Value: careTeamStatus(p.StatusOn(today))},
		Category:  []*dpb.CodeableConcept{planTypeConcept(p.Type)},
		Name:      str(p.Type.Display()),
		Subject:   logicalRef("Patient", NHSNumberSystem, p.NHSNumber.String(), ""),
		Period:    planPeriod(p),
		Participant: []*ctpb.CareTeam_Participant{{
			Role:   []*dpb.CodeableConcept{{Text: str("Responsible local authority")}},
			Member: laRef(p.LA),
		}},
		ManagingOrganization: []*dpb.Reference{laRef(p.LA)},
		Telecom:              laTelecom(p),
	}
	if p.ID != "" {
		ct.Id = id(p.ID)
	}
	return ct
}

func careTeamStatus(s cpis.Status) cpb.CareTeamStatusCode_Value {
	switch s {
	case cpis.Active:
		return cpb.CareTeamStatusCode_ACTIVE
	case cpis.EnteredInError:
		return cpb.CareTeamStatusCode_ENTERED_IN_ERROR
	}
	return cpb.CareTeamStatusCode_INACTIVE
}

// laTelecom ranks the emergency duty number first: it is the one to call
// out of hours, when unscheduled care most needs it.
func laTelecom(p cpis.Plan) []*dpb.ContactPoint {
	var t []*dpb.ContactPoint
	if p.EmergencyPhone != "" {
		t = append(t, workPhone(p.EmergencyPhone, 1))
	}
	if p.OfficePhone != "" {
		t = append(t, workPhone(p.OfficePhone, 2))
	}
	return t
}
