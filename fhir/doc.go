// Package fhir is the FHIR R4 wire model of the service: it turns domain
// values (cpis.Plan, cpis.AuditRecord, cpis.Subscription, *cpis.Error)
// into google/fhir R4 protos and reads CP-IS Flags, batch and transaction
// Bundles of Flag writes, their conditions, and Subscriptions (the R4
// Subscriptions Backport IG) from client JSON.
//
// Every resource this package produces (Flag, CareTeam, AuditEvent, the
// Communication of an ASN, OperationOutcome, the history Bundles of one plan
// and of the plan feed, the batch-response Bundles, the $import Parameters,
// the Subscription, its notification and $status Bundles, the
// CapabilityStatement) is built as an R4 proto and rendered by
// google/fhir's jsonformat package (MarshalResource), and a client's Flag or
// Bundle is read by jsonformat (ParseFlag, ParseWriteBundle,
// ParseSubscription). (The
// conformance resources in profiles/ are static JSON files that the api
// package serves as they are.) These pieces of JSON are handled by hand
// here, with encoding/json:
//
//   - The searchset Bundle (MarshalSearchset). Its envelope (resourceType,
//     type, total, link, meta.lastUpdated, and each entry's fullUrl and
//     search.mode) is written from the small structs in bundle.go; each
//     entry's resource is jsonformat's output, embedded unchanged. Building
//     the whole Bundle as a proto and rendering it with jsonformat cost more
//     than the search it reports (cmd/cpisbench). The bytes are the ones
//     jsonformat writes for the same Bundle built as a proto (keys in
//     alphabetical order, no HTML escaping): testdata/searchset.json, written
//     when jsonformat still rendered the whole Bundle, pins them
//     (TestGolden), TestSearchsetLastUpdated compares them with jsonformat's
//     rendering of the same Bundle, meta included, and the tests read the
//     output back with jsonformat's validating R4 reader.
//   - The top level of a client's Flag or Bundle (decodeEnvelope in
//     parse.go), decoded only to check that the body is one JSON object with
//     the expected resourceType before jsonformat reads it, so that the
//     commonest mistakes get clear messages and a wrong resourceType is never
//     echoed back.
//   - A client's batch or transaction Bundle (ParseWriteBundle) is split at
//     its entry array: jsonformat reads the Bundle without its entries, then
//     each entry on its own, wrapped in a Bundle of one. jsonformat reports
//     a problem anywhere in a Bundle by returning no Bundle at all, and one
//     entry of a batch that cannot be read must fail alone, not take the
//     other entries with it.
//   - FlagReference reads only a Flag's identifier, from a line that
//     ParseFlag refused, so that an import knows which plan the line was
//     about.
//
// No other FHIR JSON is written or read by hand.
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
	FlagProfileURL        = CanonicalBase + "/StructureDefinition/cpis-flag"
	EmergencyPhoneURL     = CanonicalBase + "/StructureDefinition/emergency-duty-telephone"
	OfficePhoneURL        = CanonicalBase + "/StructureDefinition/office-hours-telephone"
	ChildBirthDateURL     = CanonicalBase + "/StructureDefinition/child-birth-date"
	PlanTypeSystem        = CanonicalBase + "/CodeSystem/cpis-plan-type"
	PlanTypeValueSet      = CanonicalBase + "/ValueSet/cpis-plan-type"
	AccessTypeSystem      = CanonicalBase + "/CodeSystem/cpis-access-type"
	AccessTypeValueSet    = CanonicalBase + "/ValueSet/cpis-access-type"
	AuditEntityTypeSystem = CanonicalBase + "/CodeSystem/cpis-audit-entity-type" // AuditEvent entity types BALP lacks
	FlagCodeSearchURL     = CanonicalBase + "/SearchParameter/cpis-flag-code"
	FlagStatusSearchURL   = CanonicalBase + "/SearchParameter/cpis-flag-status"
	RequestIDSystem       = CanonicalBase + "/Id/request-id" // AuditEvent entity: the X-Request-ID
	TraceIDSystem         = CanonicalBase + "/Id/trace-id"   // AuditEvent entity: the national API's TraceID header
	ClientIDSystem        = CanonicalBase + "/Id/client-id"  // AuditEvent agent: an LA system's OAuth client id
	serverObserverSystem  = "urn:ietf:rfc:3986"              // the observer is named by its base URL
)

// Access to Service Notifications and the change feeds (issue 9): the
// Communication profile of an ASN and the code of its category.
const (
	ASNProfileURL          = CanonicalBase + "/StructureDefinition/cpis-asn"
	NotificationTypeSystem = CanonicalBase + "/CodeSystem/cpis-notification-type"
)

// Bulk upload (issue 8): the LA's plan reference, the CP-IS upload response
// codes (the HL7 V3 service's, docs/domain.md, Codes) and the $import
// operation.
const (
	LAReferenceSystem  = CanonicalBase + "/Id/la-plan-reference"                   // Flag.identifier: the LA's own plan reference (cpis.Plan.Reference)
	UploadRecordSystem = CanonicalBase + "/CodeSystem/cpis-upload-record-response" // the outcome of one record: CPR01 to CPR07
	UploadFileSystem   = CanonicalBase + "/CodeSystem/cpis-upload-file-response"   // the outcome of a whole $import file: CPF02 to CPF04
	ImportOperationURL = CanonicalBase + "/OperationDefinition/flag-import"        // POST /Flag/$import
)

// National and international systems (docs/domain.md, Identifier systems and
// Codes).
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
