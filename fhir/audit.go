package fhir

import (
	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	aepb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/audit_event_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Code systems of the audit shape (IHE BALP on R4).
const (
	auditEventTypeSystem   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	restfulInteractionSys  = "http://hl7.org/fhir/restful-interaction"
	participationTypeSys   = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
	securitySourceTypeSys  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	auditEntityTypeSystem  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	objectRoleSystem       = "http://terminology.hl7.org/CodeSystem/object-role"
	balpEntityTypeSystem   = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
	serverObserverDisplay  = "CP-IS FHIR server"
	accessUnscheduledCode  = "unscheduled"
	accessScheduledCode    = "scheduled"
	accessUnscheduledLabel = "Unscheduled care access (B0107): the responsible local authority is notified"
	accessScheduledLabel   = "Scheduled care access (B0170): no notification is sent"
	traceIDCode            = "trace-id"
	traceIDLabel           = "transport specific unique identifier where the TraceID header is used"
)

// The audit shape (docs/domain.md, Audit shape: IHE BALP on R4), with these
// choices:
//
//	id, recorded       the record's UUID and time (UTC).
//	type, subtype      audit-event-type#rest; restful-interaction#<Interaction>.
//	action, outcome    from the record (C R U D E; 0 4 8 12).
//	purposeOfEvent     for a health user's view of plan data (Access) only:
//	                   cpis-access-type#unscheduled (B0107, the LA is to be notified)
//	                   or #scheduled (B0170). A coded purpose rather than an
//	                   extension, so generic AuditEvent tools can show it.
//	agent[0]           the user: type v3-ParticipationType#IRCP (a health
//	                   user, or an LA system reading) or #AUT (an LA system
//	                   writing); requestor true; who = a Practitioner by
//	                   sds-user-id (a health user) or a Device by our
//	                   client-id system (an LA system), with the name as
//	                   display; role = the selected
//	                   role: {code RoleCode, display RoleName} plus, when
//	                   known, {system sds-role-profile-id, code URID}.
//	agent[1]           the organisation on whose behalf the user acted:
//	                   requestor false, who = Organization by ODS code (the LA
//	                   code for an LA system) with its name. R4's agent has no
//	                   onBehalfOf (that arrives in R5), so a second agent it is.
//	source             observer = the server (Device, identified by its base
//	                   URL), type security-source-type#4 "Application Server".
//	entity             the patient (NHS number; object-role#1 Patient); each
//	                   plan (Flag/<id>; object-role#4 Domain Resource); for a
//	                   search the query as received (entity.query, which
//	                   jsonformat base64-encodes; object-role#24 Query);
//	                   a health user's role (v3-RoleClass#ASSIGNED, a
//	                   PractitionerRole: see practitionerrole.go); the
//	                   X-Request-ID (BALP BasicAuditEntityType#XrequestId,
//	                   what.identifier {system RequestIDSystem, value}); the
//	                   national API's TraceID header when sent (our
//	                   cpis-audit-entity-type#trace-id, what.identifier
//	                   {system TraceIDSystem, value}): BALP's code system
//	                   has XrequestId only, and a TraceID is neither an
//	                   X-Request-ID nor a W3C traceparent.

// AuditEventResource renders one audit record as an R4 AuditEvent. The
// observer is the server instance that recorded it (rec.Source), or, for a
// record that does not say, baseURL: this server.
func AuditEventResource(rec cpis.AuditRecord, baseURL string) *aepb.AuditEvent {
	observer := rec.Source
	if observer == "" {
		observer = baseURL
	}
	ae := &aepb.AuditEvent{
		Type:   coding(auditEventTypeSystem, "rest", "Restful Operation"),
		Agent:  auditAgents(rec),
		Source: auditSource(observer),
		Entity: auditEntities(rec),
	}
	if rec.ID != "" {
		ae.Id = id(rec.ID)
	}
	if rec.Interaction != "" {
		ae.Subtype = []*dpb.Coding{coding(restfulInteractionSys, rec.Interaction, rec.Interaction)}
	}
	if a, ok := auditActions[rec.Action]; ok {
		ae.Action = &aepb.AuditEvent_ActionCode{Value: a}
	}
	if !rec.Recorded.IsZero() {
		ae.Recorded = instant(rec.Recorded)
	}
	if o, ok := auditOutcomes[rec.Outcome]; ok {
		ae.Outcome = &aepb.AuditEvent_OutcomeCode{Value: o}
	}
	if rec.Access {
		ae.PurposeOfEvent = []*dpb.CodeableConcept{accessPurpose(rec.Unscheduled)}
	}
	return ae
}

var auditActions = map[cpis.AuditAction]cpb.AuditEventActionCode_Value{
	cpis.ActionCreate:  cpb.AuditEventActionCode_C,
	cpis.ActionRead:    cpb.AuditEventActionCode_R,
	cpis.ActionUpdate:  cpb.AuditEventActionCode_U,
	cpis.ActionDelete:  cpb.AuditEventActionCode_D,
	cpis.ActionExecute: cpb.AuditEventActionCode_E,
}

// outcomeMajorFailure completes FHIR's outcome codes; cpis names the other three.
const outcomeMajorFailure = 12

var auditOutcomes = map[int]cpb.AuditEventOutcomeCode_Value{
	cpis.OutcomeSuccess:      cpb.AuditEventOutcomeCode_SUCCESS,
	cpis.OutcomeMinorFailure: cpb.AuditEventOutcomeCode_MINOR_FAILURE,
	cpis.OutcomeSeriousFail:  cpb.AuditEventOutcomeCode_SERIOUS_FAILURE,
	outcomeMajorFailure:      cpb.AuditEventOutcomeCode_MAJOR_FAILURE,
}

func accessPurpose(unscheduled bool) *dpb.CodeableConcept {
	if unscheduled {
		return concept(coding(AccessTypeSystem, accessUnscheduledCode, accessUnscheduledLabel))
	}
	return concept(coding(AccessTypeSystem, accessScheduledCode, accessScheduledLabel))
}

// auditAgents are the user (the requestor) and its organisation.
func auditAgents(rec cpis.AuditRecord) []*aepb.AuditEvent_Agent {
	a := rec.Actor
	typ, system, whoType := "IRCP", SDSUserIDSystem, "Practitioner"
	typDisplay := "information recipient"
	if a.Kind == cpis.LASystem || a.Kind == cpis.HealthSystem {
		system, whoType = ClientIDSystem, "Device"
		if rec.Action == cpis.ActionCreate || rec.Action == cpis.ActionUpdate || rec.Action == cpis.ActionDelete {
			typ, typDisplay = "AUT", "author (originator)"
		}
	}
	user := &aepb.AuditEvent_Agent{
		Type:      concept(coding(participationTypeSys, typ, typDisplay)),
		Who:       logicalRef(whoType, system, a.UserID, a.Name),
		Requestor: boolean(true),
	}
	if role := actorRole(a); role != nil {
		user.Role = []*dpb.CodeableConcept{role}
	}
	agents := []*aepb.AuditEvent_Agent{user}
	if a.OrgCode != "" {
		agents = append(agents, &aepb.AuditEvent_Agent{
			Who:       logicalRef("Organization", ODSSystem, a.OrgCode, a.OrgName),
			Requestor: boolean(false),
		})
	}
	return agents
}

// actorRole is the role selected at login: its code and name, with the role
// profile id (URID) when known. The national role codes have no FHIR code
// system, so that coding has none.
func actorRole(a cpis.Actor) *dpb.CodeableConcept {
	cc := &dpb.CodeableConcept{}
	if a.RoleCode != "" {
		c := &dpb.Coding{Code: code(a.RoleCode)}
		if a.RoleName != "" {
			c.Display = str(a.RoleName)
		}
		cc.Coding = append(cc.Coding, c)
	}
	if a.RoleProfileID != "" {
		cc.Coding = append(cc.Coding, coding(SDSRoleProfileSystem, a.RoleProfileID, ""))
	}
	if len(cc.Coding) == 0 {
		return nil
	}
	return cc
}

func auditSource(baseURL string) *aepb.AuditEvent_Source {
	return &aepb.AuditEvent_Source{
		Observer: logicalRef("Device", serverObserverSystem, baseURL, serverObserverDisplay),
		Type:     []*dpb.Coding{coding(securitySourceTypeSys, "4", "Application Server")},
	}
}

// aeEntity is an AuditEvent entity.
type aeEntity = aepb.AuditEvent_Entity

// auditEntities are the patient, the plans, the query, the practitioner's
// role (see practitionerrole.go), the request id and the trace id.
func auditEntities(rec cpis.AuditRecord) []*aepb.AuditEvent_Entity {
	var es []*aepb.AuditEvent_Entity
	if rec.Patient != "" {
		es = append(es, &aepb.AuditEvent_Entity{
			What: logicalRef("Patient", NHSNumberSystem, rec.Patient.String(), ""),
			Type: coding(auditEntityTypeSystem, "1", "Person"),
			Role: coding(objectRoleSystem, "1", "Patient"),
		})
	}
	for _, pid := range rec.PlanIDs {
		es = append(es, &aepb.AuditEvent_Entity{
			What: &dpb.Reference{Reference: &dpb.Reference_FlagId{FlagId: &dpb.ReferenceId{Value: pid}}},
			Type: coding(auditEntityTypeSystem, "2", "System Object"),
			Role: coding(objectRoleSystem, "4", "Domain Resource"),
		})
	}
	if rec.Query != "" {
		es = append(es, &aepb.AuditEvent_Entity{
			Type:  coding(auditEntityTypeSystem, "2", "System Object"),
			Role:  coding(objectRoleSystem, "24", "Query"),
			Query: &dpb.Base64Binary{Value: []byte(rec.Query)},
		})
	}
	if HasPractitionerRole(rec.Actor) {
		es = append(es, roleEntity(rec.Actor))
	}
	if rec.RequestID != "" {
		es = append(es, &aepb.AuditEvent_Entity{
			What: &dpb.Reference{Identifier: identifier(RequestIDSystem, rec.RequestID)},
			Type: coding(balpEntityTypeSystem, "XrequestId", "XrequestId"),
		})
	}
	if rec.TraceID != "" {
		es = append(es, &aepb.AuditEvent_Entity{
			What: &dpb.Reference{Identifier: identifier(TraceIDSystem, rec.TraceID)},
			Type: coding(AuditEntityTypeSystem, traceIDCode, traceIDLabel),
		})
	}
	return es
}
