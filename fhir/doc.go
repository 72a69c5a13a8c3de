// Package fhir is the FHIR R4 wire model of the service: it turns domain
// values (cpis.Plan, cpis.AuditRecord, *cpis.Error) into google/fhir R4
// protos and reads CP-IS Flags from client JSON. JSON is produced and read
// only by google/fhir's jsonformat package; no FHIR JSON struct is written by
// hand here.
//
// The package is pure: it has no clock (callers pass "today"), no logger and
// no configuration. Its only shared state is the jsonformat marshaller and
// unmarshaller, created once (see codec.go).
package fhir

import "github.com/cpis-fhir/cpis/internal/cpis"

// CanonicalBase is the root of the canonical URLs of this server's own
// conformance resources. ".example" is a reserved top-level domain, so these
// URLs cannot collide with anyone else's; replace it on publication.
const CanonicalBase = "https://cpis.example.org/fhir"

// Canonical URLs of the conformance resources in profiles/.
const (
	FlagProfileURL       = CanonicalBase + "/StructureDefinition/cpis-flag"
	EmergencyPhoneURL    = CanonicalBase + "/StructureDefinition/emergency-duty-telephone"
	OfficePhoneURL       = CanonicalBase + "/StructureDefinition/office-hours-telephone"
	ChildBirthDateURL    = CanonicalBase + "/StructureDefinition/child-birth-date"
	PlanTypeSystem       = CanonicalBase + "/CodeSystem/cpis-plan-type"
	PlanTypeValueSet     = CanonicalBase + "/ValueSet/cpis-plan-type"
	AccessTypeSystem     = CanonicalBase + "/CodeSystem/cpis-access-type"
	AccessTypeValueSet   = CanonicalBase + "/ValueSet/cpis-access-type"
	FlagCodeSearchURL    = CanonicalBase + "/SearchParameter/cpis-flag-code"
	FlagStatusSearchURL  = CanonicalBase + "/SearchParameter/cpis-flag-status"
	RequestIDSystem      = CanonicalBase + "/Id/request-id" // AuditEvent entity: the X-Request-ID
	ClientIDSystem       = CanonicalBase + "/Id/client-id"  // AuditEvent agent: an LA system's OAuth client id
	serverObserverSystem = "urn:ietf:rfc:3986"              // the observer is named by its base URL
)

// National and international systems (CPIS.md section 4).
const (
	NHSNumberSystem      = cpis.NHSNumberSystem
	ODSSystem            = "https://fhir.nhs.uk/Id/ods-organization-code"
	SDSUserIDSystem      = "https://fhir.nhs.uk/Id/sds-user-id"
	SDSRoleProfileSystem = "https://fhir.nhs.uk/Id/sds-role-profile-id"
	FlagCategorySystem   = "https://fhir.nhs.uk/England/CodeSystem/PatientFlagCategory"
	FlagCategoryCode     = "CP-IS"
	FlagCategoryDisplay  = "Child Protection - Information Sharing"
	SpineErrorSystem     = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode"
	SNOMEDSystem         = "http://snomed.info/sct"
)
