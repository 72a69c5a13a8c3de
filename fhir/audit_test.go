package fhir

import (
	"encoding/base64"
	"strings"
	"testing"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestAuditEventResource(t *testing.T) {
	scheduledRead := healthSearchRecord()
	scheduledRead.Action, scheduledRead.Interaction, scheduledRead.Query, scheduledRead.Unscheduled = cpis.ActionRead, "read", "", false
	laRead := laCreateRecord()
	laRead.Action, laRead.Interaction = cpis.ActionRead, "read"
	bare := cpis.AuditRecord{ID: "x", Action: cpis.ActionRead, Outcome: 99, Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000002"}}

	type shape struct {
		Purpose    string   // purposeOfEvent code, "" if none
		AgentType  string   // the user agent's participation type
		WhoSystem  string   // the user agent's identifier system
		Agents     int      // user, plus organisation when known
		EntityRole []string // entity roles in order, or the type code of one without a role
		Outcome    cpb.AuditEventOutcomeCode_Value
	}
	tests := []struct {
		name string
		rec  cpis.AuditRecord
		want shape
	}{
		{"unscheduled search", healthSearchRecord(), shape{"unscheduled", "IRCP", SDSUserIDSystem, 2, []string{"1", "4", "24", "ASSIGNED", "XrequestId", "trace-id"}, cpb.AuditEventOutcomeCode_SUCCESS}},
		{"scheduled read", scheduledRead, shape{"scheduled", "IRCP", SDSUserIDSystem, 2, []string{"1", "4", "ASSIGNED", "XrequestId", "trace-id"}, cpb.AuditEventOutcomeCode_SUCCESS}},
		{"LA create", laCreateRecord(), shape{"", "AUT", ClientIDSystem, 2, []string{"1", "4", "XrequestId"}, cpb.AuditEventOutcomeCode_SUCCESS}},
		{"LA read", laRead, shape{"", "IRCP", ClientIDSystem, 2, []string{"1", "4", "XrequestId"}, cpb.AuditEventOutcomeCode_SUCCESS}},
		{"bare, unknown outcome", bare, shape{"", "IRCP", SDSUserIDSystem, 1, []string{"ASSIGNED"}, cpb.AuditEventOutcomeCode_INVALID_UNINITIALIZED}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ae := AuditEventResource(tt.rec, testBase)
			got := shape{
				AgentType: ae.GetAgent()[0].GetType().GetCoding()[0].GetCode().GetValue(),
				WhoSystem: ae.GetAgent()[0].GetWho().GetIdentifier().GetSystem().GetValue(),
				Agents:    len(ae.GetAgent()),
				Outcome:   ae.GetOutcome().GetValue(),
			}
			if p := ae.GetPurposeOfEvent(); len(p) > 0 {
				got.Purpose = p[0].GetCoding()[0].GetCode().GetValue()
			}
			for _, e := range ae.GetEntity() {
				role := e.GetRole().GetCode().GetValue()
				if role == "" {
					role = e.GetType().GetCode().GetValue()
				}
				got.EntityRole = append(got.EntityRole, role)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("shape (-want +got):\n%s", diff)
			}
			if !ae.GetAgent()[0].GetRequestor().GetValue() {
				t.Error("the user agent is not the requestor")
			}
		})
	}
}

// TestAuditQueryEncoding: the query is carried base64-encoded, byte for byte.
func TestAuditQueryEncoding(t *testing.T) {
	rec := healthSearchRecord()
	rec.Query = "/Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9990276579&_count=10"
	b, err := MarshalResource(AuditEventResource(rec, testBase))
	if err != nil {
		t.Fatal(err)
	}
	want := `"query":"` + base64.StdEncoding.EncodeToString([]byte(rec.Query)) + `"`
	if !strings.Contains(string(b), want) {
		t.Errorf("want %s in\n%s", want, b)
	}
}

// TestAuditTraceID: the national API's TraceID is an entity beside the
// X-Request-ID, identified as the request id is, typed by our own code
// system (BALP has no code for it).
func TestAuditTraceID(t *testing.T) {
	rec := healthSearchRecord()
	ae := AuditEventResource(rec, testBase)
	type entity struct{ System, Value, TypeSystem, TypeCode string }
	var got []entity
	for _, e := range ae.GetEntity() {
		sys := e.GetType().GetSystem().GetValue()
		if id := e.GetWhat().GetIdentifier(); id != nil && (sys == balpEntityTypeSystem || sys == AuditEntityTypeSystem) {
			got = append(got, entity{id.GetSystem().GetValue(), id.GetValue().GetValue(),
				e.GetType().GetSystem().GetValue(), e.GetType().GetCode().GetValue()})
		}
	}
	want := []entity{
		{RequestIDSystem, rec.RequestID, balpEntityTypeSystem, "XrequestId"},
		{TraceIDSystem, rec.TraceID, AuditEntityTypeSystem, traceIDCode},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("identified entities (-want +got):\n%s", diff)
	}
}
