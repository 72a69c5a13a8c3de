package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// Discrepancy reports (issue 11, item 10): a practitioner reports through
// the register (the viewer's entry point), and the Trust's safeguarding
// lead reads them over FHIR as Communications, with every step audited.

// register is a second entry point on the test server's store and audit
// recorder, configured as the server's: what the viewer calls.
func (ts *testServer) register() *register.Service {
	return register.New(register.Config{Store: ts.srv.store, Audit: ts.srv.recorder, NewID: uuid.NewString,
		Source: ts.URL, Authorities: cpis.DevAuthorities(), SafeguardingRoles: ts.cfg.SafeguardingRoles})
}

// caller is a dev persona calling the register now, as its token would
// make it (GET /dev/personas lists what each token carries).
func (ts *testServer) caller(persona, query string) register.Caller {
	ts.t.Helper()
	var personas []auth.Persona
	res := ts.do("GET", "/dev/personas", "", nil)
	mustStatus(ts.t, res, http.StatusOK)
	if err := json.Unmarshal(res.Body, &personas); err != nil {
		ts.t.Fatal(err)
	}
	for _, p := range personas {
		if p.Name == persona {
			a := cpis.Actor{Kind: p.Kind, UserID: p.UserID, Name: p.DisplayName, RoleProfileID: p.RoleProfileID,
				RoleCode: p.RoleCode, RoleName: p.RoleName, OrgCode: p.OrgCode, OrgName: p.OrgName, Activities: p.Activities}
			return register.Caller{Principal: &auth.Principal{Actor: a, Scopes: p.Scopes}, RequestID: uuid.NewString(),
				At: ts.clock.Now(), Query: query}
		}
	}
	ts.t.Fatalf("no persona %s", persona)
	return register.Caller{}
}

func TestDiscrepancyReportsReachTheSafeguardingLead(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			ts.create(la, flag)
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), http.StatusOK) // an access, and an ASN
			rg := ts.register()

			ts.setClock(startDay.Add(time.Minute))
			d, err := rg.ReportDiscrepancy(t.Context(), ts.caller("community-nurse", "/app/discrepancy"),
				cpis.Discrepancy{NHSNumber: cpis.NHSNumber(nhs), Reason: cpis.ReasonWrongStepDown, Note: "The plan ended last week"})
			if err != nil {
				t.Fatal(err)
			}
			ts.setClock(startDay.Add(2 * time.Minute))
			list := ts.as("safeguarding-lead", "GET", "/Communication", nil)
			mustStatus(t, list, http.StatusOK)
			comms := entries(t, list, "Communication")
			if len(comms) != 1 {
				t.Fatalf("%d Communications, want the one report: %s", len(comms), list.Body)
			}
			checkDiscrepancy(t, comms[0], d.ID, nhs, "in-progress")

			ts.setClock(startDay.Add(3 * time.Minute))
			if _, err := rg.ResolveDiscrepancy(t.Context(), ts.caller("safeguarding-lead", "/app/safeguarding"), d.ID); err != nil {
				t.Fatal(err)
			}
			read := ts.as("safeguarding-lead", "GET", "/Communication/"+d.ID, nil)
			mustStatus(t, read, http.StatusOK)
			checkDiscrepancy(t, read.JSON(t), d.ID, nhs, "completed")
			if lm := read.Header.Get("Last-Modified"); lm != startDay.Add(3*time.Minute).Format(http.TimeFormat) {
				t.Errorf("Last-Modified %q, want the resolution", lm)
			}
			for query, n := range map[string]int{"status=in-progress": 0, "status=completed": 1} {
				res := ts.as("safeguarding-lead", "GET", "/Communication?"+query, nil)
				mustStatus(t, res, http.StatusOK)
				if got := len(entries(t, res, "Communication")); got != n {
					t.Errorf("%s: %d reports, want %d", query, got, n)
				}
			}
			checkOthersSeeNoReports(t, ts, d.ID)
			checkReportsAreNotAccesses(t, ts, nhs)
		})
	}
}

// checkDiscrepancy checks what the safeguarding lead is shown of a report.
func checkDiscrepancy(t *testing.T, c map[string]any, id, nhs, status string) {
	t.Helper()
	for _, ch := range []struct{ what, got, want string }{
		{"id", str(c, "id"), id},
		{"status", str(c, "status"), status},
		{"category", str(c, "category", 0, "coding", 0, "system") + "#" + str(c, "category", 0, "coding", 0, "code"),
			"https://cpis.example.org/fhir/CodeSystem/cpis-notification-type#discrepancy"},
		{"subject", str(c, "subject", "identifier", "value"), nhs},
		{"recipient", str(c, "recipient", 0, "identifier", "value"), "ZZT01"},
		{"sender", str(c, "sender", "display"), "Nurse Bea Fictional (Nurse Access Role, Fictional Community and Acute NHS Trust)"},
		{"reason", str(c, "reasonCode", 0, "coding", 0, "code"), "wrong-step-down"},
		{"note", str(c, "payload", 0, "contentString"), "The plan ended last week"},
		{"sent", str(c, "sent"), startDay.Add(time.Minute).Format(time.RFC3339)},
	} {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.what, ch.got, ch.want)
		}
	}
}

// checkOthersSeeNoReports: LA systems keep their ASNs and never see a
// report; other health users are refused as before.
func checkOthersSeeNoReports(t *testing.T, ts *testServer, id string) {
	t.Helper()
	res := ts.as(la, "GET", "/Communication?_count=100", nil)
	mustStatus(t, res, http.StatusOK)
	for _, c := range entries(t, res, "Communication") {
		if str(c, "category", 0, "coding", 0, "code") != "access-to-service" {
			t.Errorf("the LA is shown %s", str(c, "category", 0, "coding", 0, "code"))
		}
	}
	mustStatus(t, ts.as(la, "GET", "/Communication/"+id, nil), http.StatusNotFound)
	for _, p := range []string{"ed-clinician", "community-nurse", "auditor", "paediatrician"} {
		mustStatus(t, ts.as(p, "GET", "/Communication", nil), http.StatusForbidden)
		mustStatus(t, ts.as(p, "GET", "/Communication/"+id, nil), http.StatusForbidden)
	}
}

// checkReportsAreNotAccesses: the auditor sees the report, the list, the
// read and the resolution against the child; the child's "previously
// viewed by" shows none of them.
func checkReportsAreNotAccesses(t *testing.T, ts *testServer, nhs string) {
	t.Helper()
	res := ts.as("auditor", "GET", "/AuditEvent?patient="+nhs+"&_count=100", nil)
	mustStatus(t, res, http.StatusOK)
	seen := map[string]bool{}
	for _, e := range entries(t, res, "AuditEvent") {
		b, _ := json.Marshal(e)
		switch {
		case strings.Contains(string(b), "555000000002") && str(e, "action") == "C":
			seen["reported"] = true
		case strings.Contains(string(b), "555000000005"):
			seen[str(e, "action")] = true
		}
	}
	for _, want := range []string{"reported", "E", "R", "U"} {
		if !seen[want] {
			t.Errorf("the auditor sees no %s record against the child: %v", want, seen)
		}
	}
	res = ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil)
	mustStatus(t, res, http.StatusOK)
	viewed := entries(t, res, "AuditEvent")
	if len(viewed) != 1 {
		t.Errorf("previously viewed by has %d entries, want the clinician's one read", len(viewed))
	}
	for _, e := range viewed {
		if b, _ := json.Marshal(e); strings.Contains(string(b), "555000000005") || strings.Contains(string(b), "555000000002") {
			t.Errorf("previously viewed by shows a discrepancy report's step: %s", b)
		}
	}
}
