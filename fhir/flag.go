package fhir

import (
	"strconv"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	flagpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/flag_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The CP-IS Flag (profile cpis-flag), one plan as a FHIR R4 Flag. The same
// shape is written by FlagResource and read by ParseFlag; every choice below
// is also stated in profiles/StructureDefinition-cpis-flag.json.
//
//	id                 the plan ID. On input it is optional and returned to
//	                   the caller, which decides (create ignores it, update
//	                   compares it with the URL).
//	meta.versionId     the plan version; meta.lastUpdated when it was stored
//	                   (UTC, at the precision stored); meta.profile = [cpis-flag].
//	                   On input meta is accepted and ignored (If-Match carries
//	                   the version), except that meta.profile may name only
//	                   cpis-flag; meta.security, meta.tag, meta.source are refused.
//	status             computed from the dates on "today" (cpis.Plan.StatusOn);
//	                   entered-in-error once the LA has deleted the plan. On
//	                   input it is required (FHIR 1..1); active and inactive
//	                   are accepted and ignored; entered-in-error is refused
//	                   (withdraw a plan with DELETE).
//	category           exactly [PatientFlagCategory#CP-IS]; display optional
//	                   on input, but if sent must be the code's display. Any
//	                   other category (such as a CPP category) is refused:
//	                   CP-IS never holds it.
//	code.coding        our plan type (cpis-plan-type#CPP|CLA|UCPP), required,
//	                   exactly once; plus on output the SNOMED CT concept where
//	                   one exists (CPP 1064311000000109, CLA 764841000000100,
//	                   UCPP none). Input may repeat that SNOMED coding once;
//	                   a contradicting SNOMED code or any other system is
//	                   refused. Displays, when sent, must be ours.
//	code.text          the plan type's display on output; on input optional,
//	                   but if sent must be that display: free text could carry
//	                   what CP-IS must not hold.
//	subject            {type "Patient" (optional on input), identifier
//	                   {system nhs-number, value}}. No reference string and no
//	                   display: the dataset holds no names, and the child is
//	                   found by NHS number only.
//	period             start and end as full dates (YYYY-MM-DD); a time of
//	                   day or a partial date is refused.
//	author             {type "Organization" (optional on input), identifier
//	                   {system ods-organization-code, value LA code}, display
//	                   LA name}. No reference string. The name is the register
//	                   of local authorities' (cpis.Authorities): on input
//	                   display is optional and, if sent, must equal it.
//	extension          emergency-duty-telephone (1..1) and office-hours-telephone
//	                   (0..1): valueContactPoint {system phone, value, use work;
//	                   use optional on input but, if sent, work}; child-birth-date
//	                   (0..1): valueDate, full date, written for the responsible
//	                   LA (cpis.OwnerView) only, never for health users (cpis.HealthView).
//	                   Any other extension, and every modifierExtension, is refused.
//	identifier         0..1: the LA's own plan reference (cpis.Plan.Reference),
//	                   {system la-plan-reference, value 1 to 64 of A-Z a-z 0-9
//	                   . _ -}, the key its uploads and conditional writes
//	                   match plans by. Written for the responsible LA
//	                   (cpis.OwnerView) only, never for health users. On input
//	                   any other system, a second identifier, or any other
//	                   element of an Identifier (use, type ...) is refused.
//	anything else      text, contained, encounter, implicitRules,
//	                   language, element ids, extensions on elements, coding
//	                   versions, identifier use/type/period/assigner ... is
//	                   refused with the element's FHIRPath: data minimisation
//	                   rejects, it never trims. The check walks every set field
//	                   of the parsed proto against an allow-list, so an element
//	                   nobody thought of is refused too.
//
// Output key order is alphabetical (jsonformat renders a map).

// SNOMED CT concepts for plan types (docs/domain.md, Codes). A UCPP has none.
const (
	snomedCPP = "1064311000000109"
	snomedCLA = "764841000000100"
)

// snomedFor returns the SNOMED CT code and display for a plan type, if any.
func snomedFor(t cpis.PlanType) (code, display string, ok bool) {
	switch t {
	case cpis.CPP:
		return snomedCPP, "Child protection plan", true
	case cpis.CLA:
		return snomedCLA, "Looked after child", true
	}
	return "", "", false
}

// planTypeConcept is a plan type as a CodeableConcept: our coding, the
// SNOMED CT one where it exists, and the display as text.
func planTypeConcept(t cpis.PlanType) *dpb.CodeableConcept {
	cc := concept(coding(PlanTypeSystem, string(t), t.Display()))
	if c, d, ok := snomedFor(t); ok {
		cc.Coding = append(cc.Coding, coding(SNOMEDSystem, c, d))
	}
	cc.Text = str(t.Display())
	return cc
}

// flagStatus maps a domain status to the Flag status code.
func flagStatus(s cpis.Status) cpb.FlagStatusCode_Value {
	switch s {
	case cpis.Active:
		return cpb.FlagStatusCode_ACTIVE
	case cpis.EnteredInError:
		return cpb.FlagStatusCode_ENTERED_IN_ERROR
	}
	return cpb.FlagStatusCode_INACTIVE
}

// FlagResource renders plan p as a CP-IS Flag as seen on day today through
// view v. Zero Version and LastUpdated (a plan not yet stored) are left out
// of meta; an empty ID leaves out id.
func FlagResource(p cpis.Plan, today cpis.Date, v cpis.View) *flagpb.Flag {
	f := &flagpb.Flag{
		Meta:      resourceMeta(p, FlagProfileURL),
		Extension: planExtensions(p, v),
		Status:    &flagpb.Flag_StatusCode{Value: flagStatus(p.StatusOn(today))},
		Category:  []*dpb.CodeableConcept{concept(coding(FlagCategorySystem, FlagCategoryCode, FlagCategoryDisplay))},
		Code:      planTypeConcept(p.Type),
		Subject:   logicalRef("Patient", NHSNumberSystem, p.NHSNumber.String(), ""),
		Period:    planPeriod(p),
		Author:    laRef(p.LA),
	}
	if p.ID != "" {
		f.Id = id(p.ID)
	}
	if v == cpis.OwnerView && p.Reference != "" {
		f.Identifier = []*dpb.Identifier{identifier(LAReferenceSystem, p.Reference)}
	}
	return f
}

// resourceMeta is meta for one stored plan version; profile may be empty.
func resourceMeta(p cpis.Plan, profile string) *dpb.Meta {
	m := &dpb.Meta{}
	if p.Version > 0 {
		m.VersionId = id(strconv.Itoa(p.Version))
	}
	if !p.LastUpdated.IsZero() {
		m.LastUpdated = instant(p.LastUpdated)
	}
	if profile != "" {
		m.Profile = []*dpb.Canonical{canonical(profile)}
	}
	if m.VersionId == nil && m.LastUpdated == nil && m.Profile == nil {
		return nil
	}
	return m
}

func planPeriod(p cpis.Plan) *dpb.Period {
	per := &dpb.Period{}
	if !p.Start.IsZero() {
		per.Start = dateTime(p.Start)
	}
	if !p.End.IsZero() {
		per.End = dateTime(p.End)
	}
	return per
}

// laRef is the responsible LA as a Reference by ODS code, with its name.
func laRef(la cpis.LocalAuthority) *dpb.Reference {
	return logicalRef("Organization", ODSSystem, la.Code, la.Name)
}

// planExtensions are the LA's telephone numbers and, for the owner only,
// the child's date of birth.
func planExtensions(p cpis.Plan, v cpis.View) []*dpb.Extension {
	var exts []*dpb.Extension
	if p.EmergencyPhone != "" {
		exts = append(exts, phoneExtension(EmergencyPhoneURL, p.EmergencyPhone))
	}
	if p.OfficePhone != "" {
		exts = append(exts, phoneExtension(OfficePhoneURL, p.OfficePhone))
	}
	if v == cpis.OwnerView && !p.BirthDate.IsZero() {
		exts = append(exts, &dpb.Extension{
			Url:   uri(ChildBirthDateURL),
			Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Date{Date: date(p.BirthDate)}},
		})
	}
	return exts
}

func phoneExtension(url, number string) *dpb.Extension {
	return &dpb.Extension{
		Url:   uri(url),
		Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_ContactPoint{ContactPoint: workPhone(number, 0)}},
	}
}

// workPhone is a work telephone ContactPoint; rank 0 leaves rank out.
func workPhone(number string, rank uint32) *dpb.ContactPoint {
	cp := &dpb.ContactPoint{
		System: &dpb.ContactPoint_SystemCode{Value: cpb.ContactPointSystemCode_PHONE},
		Value:  str(number),
		Use:    &dpb.ContactPoint_UseCode{Value: cpb.ContactPointUseCode_WORK},
	}
	if rank > 0 {
		cp.Rank = &dpb.PositiveInt{Value: rank}
	}
	return cp
}
