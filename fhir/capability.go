package fhir

import (
	"strings"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	cspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/capability_statement_go_proto"
	vspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/valuesets_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// capabilityDate is CapabilityStatement.date (required by FHIR): the day its
// content last changed. Change it with the content; it is not a build time,
// so the statement stays byte-for-byte reproducible.
const capabilityDate = "2026-12-01"

// nationalAuditInclude is the _include the national CP-IS API sends with
// AuditEvent searches; the search package accepts it.
const nationalAuditInclude = "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED"

// searchParam describes one search parameter of the statement.
type searchParam struct {
	name, definition, doc string
	typ                   cpb.SearchParamTypeCode_Value
}

const (
	hl7SearchParam = "http://hl7.org/fhir/SearchParameter/"
	patientDoc     = "The NHS number: patient=<nhs> or patient:identifier=" + NHSNumberSystem + "|<nhs>."
	countDoc       = "Page size."
	cursorDoc      = "Where the next page starts, as the next link writes it (opaque): pages neither skip nor repeat a result when data changes between them."
)

var (
	flagSearch = []searchParam{
		{"patient", hl7SearchParam + "clinical-patient", patientDoc + " For a UCPP, the mother's.", cpb.SearchParamTypeCode_REFERENCE},
		{"subject", hl7SearchParam + "Flag-subject", "As patient, in the form subject:identifier=" + NHSNumberSystem + "|<nhs>.", cpb.SearchParamTypeCode_REFERENCE},
		{"code", FlagCodeSearchURL, "Plan type: " + PlanTypeSystem + "|CPP, CLA or UCPP, or the SNOMED CT code.", cpb.SearchParamTypeCode_TOKEN},
		{"status", FlagStatusSearchURL, "active, inactive or entered-in-error, computed from the dates on the day of the search.", cpb.SearchParamTypeCode_TOKEN},
		{"_lastUpdated", hl7SearchParam + "Resource-lastUpdated", "When the plan version was stored.", cpb.SearchParamTypeCode_DATE},
		{"_count", "", countDoc, cpb.SearchParamTypeCode_NUMBER},
		{"_cursor", "", cursorDoc, cpb.SearchParamTypeCode_STRING},
		{"_sort", "", "_lastUpdated or -_lastUpdated (the default).", cpb.SearchParamTypeCode_SPECIAL},
	}
	auditSearch = []searchParam{
		{"patient", hl7SearchParam + "AuditEvent-patient", patientDoc, cpb.SearchParamTypeCode_REFERENCE},
		{"agent", hl7SearchParam + "AuditEvent-agent", "The user: agent:identifier=" + SDSUserIDSystem + "|<id>.", cpb.SearchParamTypeCode_REFERENCE},
		{"date", hl7SearchParam + "AuditEvent-date", "When the access was recorded.", cpb.SearchParamTypeCode_DATE},
		{"_count", "", countDoc, cpb.SearchParamTypeCode_NUMBER},
		{"_cursor", "", cursorDoc, cpb.SearchParamTypeCode_STRING},
		{"_include", "", "The national API's form only: returns the accessing practitioners' roles (the ASSIGNED entities) as PractitionerRole entries, search mode include.", cpb.SearchParamTypeCode_SPECIAL},
	}
	communicationSearch = []searchParam{
		{"patient", hl7SearchParam + "clinical-patient", patientDoc, cpb.SearchParamTypeCode_REFERENCE},
		{"recipient", hl7SearchParam + "Communication-recipient", "The local authority notified: recipient:identifier=" + ODSSystem + "|<code>. " +
			"An LA system's own code is implied by its token; another LA's is refused.", cpb.SearchParamTypeCode_REFERENCE},
		{"_lastUpdated", hl7SearchParam + "Resource-lastUpdated", "When the notification joined the feed (its meta.lastUpdated).", cpb.SearchParamTypeCode_DATE},
		{"_count", "", countDoc, cpb.SearchParamTypeCode_NUMBER},
		{"_cursor", "", cursorDoc, cpb.SearchParamTypeCode_STRING},
		{"_sort", "", "-_lastUpdated (the default, newest first) or _lastUpdated.", cpb.SearchParamTypeCode_SPECIAL},
		{"status", hl7SearchParam + "Communication-status", "Discrepancy reports only: in-progress (open) or completed (resolved).", cpb.SearchParamTypeCode_TOKEN},
	}
	careTeamSearch = []searchParam{
		{"patient", hl7SearchParam + "clinical-patient", patientDoc, cpb.SearchParamTypeCode_REFERENCE},
	}
)

// Security is what the statement says of access to this server: facts the
// caller decides, so that this package knows nothing of tokens.
type Security struct {
	// CORS is true when browser pages of other origins may call the server.
	CORS bool
	// TokenURL and AuthorizeURL are the OAuth 2.0 endpoints the SMART
	// configuration publishes; empty when it publishes none.
	TokenURL, AuthorizeURL string
}

// oauthURIsURL is SMART's extension for OAuth endpoints in a
// CapabilityStatement (rest.security), with sub-extensions authorize and
// token. SMART 2 deprecates it for .well-known/smart-configuration; clients
// such as fhirclient still read it when that document is missing.
const oauthURIsURL = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"

// CapabilityStatement describes this server (GET /metadata): base URL
// baseURL, software version version, access as sec says.
func CapabilityStatement(baseURL, version string, sec Security) *cspb.CapabilityStatement {
	return &cspb.CapabilityStatement{
		Name:        str("CPISServer"),
		Title:       str("CP-IS FHIR R4 server"),
		Status:      &cspb.CapabilityStatement_StatusCode{Value: cpb.PublicationStatusCode_ACTIVE},
		Date:        dateTime(cpis.MustDate(capabilityDate)),
		Publisher:   str("CP-IS FHIR open-source project"),
		Description: markdown("Child Protection - Information Sharing: local authorities record child protection and looked-after plans; health staff see them by NHS number, and every view is recorded."),
		Kind:        &cspb.CapabilityStatement_KindCode{Value: cpb.CapabilityStatementKindCode_INSTANCE},
		Software:    &cspb.CapabilityStatement_Software{Name: str("cpis"), Version: str(version)},
		Implementation: &cspb.CapabilityStatement_Implementation{
			Description: str("CP-IS FHIR R4 server"),
			Url:         &dpb.Url{Value: baseURL},
		},
		FhirVersion: &cspb.CapabilityStatement_FhirVersionCode{Value: cpb.FHIRVersionCode_V_4_0_1},
		Format: []*cspb.CapabilityStatement_FormatCode{
			{Value: "application/fhir+json"}, {Value: "json"},
		},
		Rest: []*cspb.CapabilityStatement_Rest{{
			Mode:     &cspb.CapabilityStatement_Rest_ModeCode{Value: cpb.RestfulCapabilityModeCode_SERVER},
			Security: restSecurity(sec),
			Resource: []*cspb.CapabilityStatement_Rest_Resource{
				flagCapability(), auditCapability(), careTeamCapability(), communicationCapability(),
				subscriptionCapability(), topicCapability(),
				readOnly("StructureDefinition"), readOnly("CodeSystem"), readOnly("ValueSet"), readOnly("SearchParameter"),
				readOnly("OperationDefinition"),
			},
			Interaction: []*cspb.CapabilityStatement_Rest_SystemInteraction{
				systemInteraction(vspb.SystemRestfulInteractionValueSet_TRANSACTION, transactionDoc),
				systemInteraction(vspb.SystemRestfulInteractionValueSet_BATCH, batchDoc),
			},
		}},
	}
}

func restSecurity(sec Security) *cspb.CapabilityStatement_Rest_Security {
	desc := "OAuth 2.0 bearer tokens: CIS2 users through SMART on FHIR, local authority systems with client credentials."
	if sec.TokenURL != "" {
		desc += " The endpoints are in .well-known/smart-configuration."
	} else {
		desc += " This server publishes no token endpoint: its operator says how to get tokens."
	}
	return &cspb.CapabilityStatement_Rest_Security{
		Extension:   oauthURIs(sec),
		Cors:        boolean(sec.CORS),
		Service:     []*dpb.CodeableConcept{concept(coding("http://terminology.hl7.org/CodeSystem/restful-security-service", "SMART-on-FHIR", "SMART-on-FHIR"))},
		Description: markdown(desc),
	}
}

// oauthURIs is the oauth-uris extension naming the endpoints of sec; none
// when there is no token endpoint.
func oauthURIs(sec Security) []*dpb.Extension {
	if sec.TokenURL == "" {
		return nil
	}
	var subs []*dpb.Extension
	if sec.AuthorizeURL != "" {
		subs = append(subs, uriExtension("authorize", sec.AuthorizeURL))
	}
	subs = append(subs, uriExtension("token", sec.TokenURL))
	return []*dpb.Extension{{Url: uri(oauthURIsURL), Extension: subs}}
}

func uriExtension(url, value string) *dpb.Extension {
	return &dpb.Extension{
		Url:   uri(url),
		Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Uri{Uri: uri(value)}},
	}
}

func flagCapability() *cspb.CapabilityStatement_Rest_Resource {
	r := resourceCapability(cpb.ResourceTypeCode_FLAG, flagSearch,
		vspb.TypeRestfulInteractionValueSet_READ, vspb.TypeRestfulInteractionValueSet_VREAD,
		vspb.TypeRestfulInteractionValueSet_HISTORY_INSTANCE, vspb.TypeRestfulInteractionValueSet_HISTORY_TYPE,
		vspb.TypeRestfulInteractionValueSet_SEARCH_TYPE,
		vspb.TypeRestfulInteractionValueSet_CREATE, vspb.TypeRestfulInteractionValueSet_UPDATE,
		vspb.TypeRestfulInteractionValueSet_DELETE)
	for _, i := range r.Interaction {
		if i.Code.Value == vspb.TypeRestfulInteractionValueSet_HISTORY_TYPE {
			i.Documentation = markdown(feedDoc)
		}
	}
	r.Profile = canonical(FlagProfileURL)
	r.Versioning = &cspb.CapabilityStatement_Rest_Resource_VersioningCode{Value: cpb.ResourceVersionPolicyCode_VERSIONED_UPDATE}
	r.ReadHistory = boolean(true)
	r.UpdateCreate = boolean(false)
	r.ConditionalCreate = boolean(true)
	r.ConditionalUpdate = boolean(true)
	r.ConditionalDelete = &cspb.CapabilityStatement_Rest_Resource_ConditionalDeleteCode{Value: cpb.ConditionalDeleteStatusCode_SINGLE}
	r.Documentation = markdown(flagDoc)
	r.Operation = []*cspb.CapabilityStatement_Rest_Resource_Operation{{
		Name:          str("import"),
		Definition:    canonical(ImportOperationURL),
		Documentation: markdown(importDoc),
	}}
	return r
}

// Documentation of the writes of issue 8, bulk upload.
const (
	flagDoc = "Local authority systems write their own plans. A plan may carry the LA's own reference, Flag.identifier " +
		LAReferenceSystem + " (shown to that LA only). Conditional create (If-None-Exist), update (PUT /Flag?...) and " +
		"delete (DELETE /Flag?..., one plan at most) take exactly one condition, " + conditionForm + "."
	importDoc = "POST /Flag/$import: an LA's file of plans as NDJSON, one Flag with its reference per line, matched by " +
		"reference; mode=delta|full, dryRun, force. Answers a Parameters resource with the outcome and counts and " +
		"each refused line by number (never its content)."
	// feedDoc is the plan feed of issue 9. R4 has no place for the
	// parameters of a history interaction, so they are stated here.
	feedDoc = "GET /Flag/_history, for local authority systems: every version of the LA's own plans, in the order " +
		"they were committed, oldest first. _count is the page size; follow the next link to the last page. " +
		"_since (an instant with seconds and a time zone) asks again from the meta.lastUpdated of the last page of an " +
		"earlier poll (the page without a next link). Polling this way misses no change and repeats none."
	transactionDoc = "POST / with a transaction Bundle of Flag writes (POST, PUT, DELETE, conditional or not; at most " +
		"1,000 entries by default): all are stored or none. A failure is one OperationOutcome naming Bundle.entry[i]."
	batchDoc = "POST / with a batch Bundle of Flag writes (at most 1,000 entries by default): each entry succeeds or fails " +
		"alone, and its response carries an OperationOutcome with the Spine code and the CP-IS upload record response (" +
		UploadRecordSystem + ")."
)

func systemInteraction(code vspb.SystemRestfulInteractionValueSet_Value, doc string) *cspb.CapabilityStatement_Rest_SystemInteraction {
	return &cspb.CapabilityStatement_Rest_SystemInteraction{
		Code:          &cspb.CapabilityStatement_Rest_SystemInteraction_CodeType{Value: code},
		Documentation: markdown(doc),
	}
}

func auditCapability() *cspb.CapabilityStatement_Rest_Resource {
	r := resourceCapability(cpb.ResourceTypeCode_AUDIT_EVENT, auditSearch, vspb.TypeRestfulInteractionValueSet_SEARCH_TYPE)
	r.SearchInclude = []*dpb.String{str(nationalAuditInclude)}
	return r
}

// communicationCapability is the Access to Service Notifications sent to
// LAs and the discrepancy reports sent to a Trust's safeguarding team. The
// ASN profile is a supported profile, not the resource's base profile:
// discrepancy reports are Communications that do not claim it.
func communicationCapability() *cspb.CapabilityStatement_Rest_Resource {
	r := resourceCapability(cpb.ResourceTypeCode_COMMUNICATION, communicationSearch,
		vspb.TypeRestfulInteractionValueSet_READ, vspb.TypeRestfulInteractionValueSet_SEARCH_TYPE)
	r.SupportedProfile = []*dpb.Canonical{canonical(ASNProfileURL)}
	r.Documentation = markdown(communicationDoc)
	return r
}

// communicationDoc says who reads the notifications, and how.
const communicationDoc = "Access to Service Notifications: each tells a local authority that a child on one of its plans " +
	"was seen in unscheduled care (when, where, by whom, in which role). Local authority systems read their own, newest " +
	"first by default. At most one per child, accessing organisation and LA " +
	"in the coalescing window (24 hours by default). " +
	"Discrepancy reports (category cpis-notification-type#discrepancy): a practitioner's report that a child's alert is " +
	"missing or does not reflect its step-down status, addressed to the safeguarding children team of the reporter's " +
	"organisation; that team's safeguarding leads (a safeguarding role and user/Communication.read) read their own " +
	"organisation's, open ones first, with status=in-progress|completed. Any other caller is refused."

// subscriptionCapability is the topic-based subscriptions of issue 10, as
// the Subscriptions R4 Backport IG advertises them: the profile, the
// topics (extension capabilitystatement-subscriptiontopic-canonical), and
// the IG's own $status and $events operations.
func subscriptionCapability() *cspb.CapabilityStatement_Rest_Resource {
	r := resourceCapability(cpb.ResourceTypeCode_SUBSCRIPTION, nil,
		vspb.TypeRestfulInteractionValueSet_READ, vspb.TypeRestfulInteractionValueSet_SEARCH_TYPE,
		vspb.TypeRestfulInteractionValueSet_CREATE, vspb.TypeRestfulInteractionValueSet_UPDATE,
		vspb.TypeRestfulInteractionValueSet_DELETE)
	for _, t := range cpis.Topics() {
		r.Extension = append(r.Extension, &dpb.Extension{
			Url:   uri(TopicCanonicalURL),
			Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Canonical{Canonical: canonical(string(t))}},
		})
	}
	r.SupportedProfile = []*dpb.Canonical{canonical(BackportSubscriptionProfile)}
	r.UpdateCreate = boolean(false)
	r.Documentation = markdown(subscriptionDoc)
	r.Operation = []*cspb.CapabilityStatement_Rest_Resource_Operation{
		{Name: str("status"), Definition: canonical(StatusOperationURL), Documentation: markdown(statusDoc)},
		{Name: str("events"), Definition: canonical(EventsOperationURL), Documentation: markdown(eventsDoc)},
	}
	return r
}

// Documentation of the subscriptions of issue 10.
const (
	subscriptionDoc = "Topic-based subscriptions (Subscriptions R4 Backport IG): a system subscribes to one of the topics " +
		"this entry's capabilitystatement-subscriptiontopic-canonical extensions list, each readable as a Basic (GET /Basic/{id}). Channel rest-hook only (https), payload " +
		"application/fhir+json, content empty, id-only or full-resource. A plan-change subscription watches one child: " +
		"filter Flag?patient:identifier=" + NHSNumberSystem + "|<nhs>; an ASN subscription receives its own local " +
		"authority's notifications. GET /Subscription lists the caller's own subscriptions; channel headers are never " +
		"returned (each shows as \"Name: ***\", and sending it back so keeps the stored value). Every event is delivered " +
		"at least once, in order; a failed delivery is retried with backoff (for 24 hours by default) before the " +
		"subscription is set to error, and the events stay available to $events."
	statusDoc = "GET /Subscription/{id}/$status: the subscription's status, its events since it started, and why it is in " +
		"error, as a searchset Bundle of one Parameters (type query-status)."
	eventsDoc = "GET /Subscription/{id}/$events?eventsSinceNumber=&eventsUntilNumber=&content=: past events of the " +
		"subscription by number, as a notification Bundle (type query-event), while the event log keeps them."
)

// topicCapability is the subscription topics, which R4 has no resource
// for: each is a Basic (the IG's R4 form), read-only.
func topicCapability() *cspb.CapabilityStatement_Rest_Resource {
	r := resourceCapability(cpb.ResourceTypeCode_BASIC, nil, vspb.TypeRestfulInteractionValueSet_READ)
	var reads []string
	for _, t := range cpis.Topics() {
		reads = append(reads, "GET /Basic/"+TopicID(t))
	}
	r.Documentation = markdown("The subscription topics, each an R5 SubscriptionTopic carried by a Basic as cross-version " +
		"extensions: " + strings.Join(reads, ", ") + ".")
	return r
}

func careTeamCapability() *cspb.CapabilityStatement_Rest_Resource {
	return resourceCapability(cpb.ResourceTypeCode_CARE_TEAM, careTeamSearch,
		vspb.TypeRestfulInteractionValueSet_READ, vspb.TypeRestfulInteractionValueSet_SEARCH_TYPE)
}

var conformanceTypes = map[string]cpb.ResourceTypeCode_Value{
	"StructureDefinition": cpb.ResourceTypeCode_STRUCTURE_DEFINITION,
	"CodeSystem":          cpb.ResourceTypeCode_CODE_SYSTEM,
	"ValueSet":            cpb.ResourceTypeCode_VALUE_SET,
	"SearchParameter":     cpb.ResourceTypeCode_SEARCH_PARAMETER,
	"OperationDefinition": cpb.ResourceTypeCode_OPERATION_DEFINITION,
}

// readOnly is a conformance resource type served from profiles/ by id.
func readOnly(typ string) *cspb.CapabilityStatement_Rest_Resource {
	return resourceCapability(conformanceTypes[typ], nil, vspb.TypeRestfulInteractionValueSet_READ)
}

func resourceCapability(t cpb.ResourceTypeCode_Value, params []searchParam, interactions ...vspb.TypeRestfulInteractionValueSet_Value) *cspb.CapabilityStatement_Rest_Resource {
	r := &cspb.CapabilityStatement_Rest_Resource{Type: &cspb.CapabilityStatement_Rest_Resource_TypeCode{Value: t}}
	for _, i := range interactions {
		r.Interaction = append(r.Interaction, &cspb.CapabilityStatement_Rest_Resource_ResourceInteraction{
			Code: &cspb.CapabilityStatement_Rest_Resource_ResourceInteraction_CodeType{Value: i},
		})
	}
	for _, p := range params {
		sp := &cspb.CapabilityStatement_Rest_Resource_SearchParam{
			Name:          str(p.name),
			Type:          &cspb.CapabilityStatement_Rest_Resource_SearchParam_TypeCode{Value: p.typ},
			Documentation: markdown(p.doc),
		}
		if p.definition != "" {
			sp.Definition = canonical(p.definition)
		}
		r.SearchParam = append(r.SearchParam, sp)
	}
	return r
}
