package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// nationalInclude is the _include the national CP-IS API sends with its
// access-history searches.
const nationalInclude = "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED"

func TestAccessHistoryIncludesThePractitionersAsTheNationalAPIDoes(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	for _, p := range []string{"ed-clinician", "community-nurse", "ed-clinician"} {
		mustStatus(t, ts.as(p, "GET", "/Flag/"+id, nil), http.StatusOK)
	}
	q := url.Values{"patient:identifier": {"https://fhir.nhs.uk/Id/nhs-number|" + nhs}, "_include": {nationalInclude}}
	res := ts.as("community-nurse", "GET", "/AuditEvent?"+q.Encode(), nil)
	mustStatus(t, res, http.StatusOK)
	refs := map[string]bool{} // the roles the AuditEvents name
	included := map[string]map[string]any{}
	for _, e := range res.JSON(t)["entry"].([]any) {
		e := e.(map[string]any)
		r := e["resource"].(map[string]any)
		switch mode := e["search"].(map[string]any)["mode"]; r["resourceType"] {
		case "AuditEvent":
			for _, ent := range r["entity"].([]any) {
				ent := ent.(map[string]any)
				if ent["type"].(map[string]any)["code"] == "ASSIGNED" {
					refs[ent["what"].(map[string]any)["reference"].(string)] = true
				}
			}
		case "PractitionerRole":
			if mode != "include" {
				t.Errorf("a PractitionerRole entry has search mode %v", mode)
			}
			included[e["fullUrl"].(string)] = r
		}
	}
	if len(refs) != 2 || len(included) != 2 {
		t.Fatalf("%d roles named by the AuditEvents, %d PractitionerRoles included; want 2 and 2: %s", len(refs), len(included), res.Body)
	}
	for ref := range refs {
		r, ok := included[ref]
		if !ok {
			t.Errorf("the AuditEvents name %s, which is not included", ref)
			continue
		}
		if r["practitioner"].(map[string]any)["identifier"].(map[string]any)["system"] != "https://fhir.nhs.uk/Id/sds-user-id" {
			t.Errorf("included role without its practitioner: %v", r)
		}
	}
	// Without _include, no PractitionerRole is added.
	plain := ts.as("community-nurse", "GET", "/AuditEvent?patient="+nhs, nil)
	if n := len(entries(t, plain, "PractitionerRole")); n != 0 {
		t.Errorf("%d PractitionerRoles without _include", n)
	}
}

func TestTraceIDIsEchoedAndRecorded(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)
	const trace = "b2acfb2c-c40e-4f9a-8916-950a2e86fc4e"
	res := ts.as("ed-clinician", "GET", "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C"+nhs, nil,
		"TraceID", trace, "IsUnscheduledAccessEvent", "true")
	mustStatus(t, res, http.StatusOK)
	if got := res.Header.Get("TraceID"); got != trace {
		t.Errorf("TraceID echoed as %q", got)
	}
	rid := res.Header.Get("X-Request-ID")
	var found bool
	for _, e := range ts.auditorEvents() {
		b, _ := json.Marshal(e)
		if contains(string(b), rid) {
			found = true
			if !contains(string(b), trace) {
				t.Errorf("the AuditEvent of the read does not record its TraceID: %s", b)
			}
		}
	}
	if !found {
		t.Fatal("no AuditEvent records the read")
	}
	for _, bad := range []string{"not a trace id", strings.Repeat("a", 65), "x\u202ey"} {
		mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil, "TraceID", bad), http.StatusBadRequest)
	}
}

func TestRefusedRequestIDsAreLoggedAndCounted(t *testing.T) {
	ts := newTestServer(t)
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient=9000000009", nil, "X-Request-ID", "not-a-uuid"), http.StatusBadRequest)
	if !contains(ts.logs.String(), `"error_op":"api.requestIDs"`) {
		t.Errorf("the refused X-Request-ID was not logged: %s", ts.logs.String())
	}
}
