package main

import (
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Access to Service Notifications (issue 9): what an unscheduled-care read
// sends the responsible LA, read back by the LA's system as it would.

// communications returns the ASNs an LA persona reads, newest first.
func (ts *testServer) communications(persona string) []map[string]any {
	ts.t.Helper()
	res := ts.as(persona, "GET", "/Communication?_count=100", nil)
	mustStatus(ts.t, res, http.StatusOK)
	return entries(ts.t, res, "Communication")
}

// str follows a path of keys and indexes into decoded JSON and returns
// the string there, or "".
func str(v any, path ...any) string {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return ""
			}
			v = l[k]
		}
	}
	s, _ := v.(string)
	return s
}

// abouts returns the references of a Communication's about.
func abouts(c map[string]any) []string {
	var out []string
	l, _ := c["about"].([]any)
	for i := range l {
		out = append(out, str(l, i, "reference"))
	}
	return out
}

// accessEventID returns the id of the clinician's AuditEvent of the
// access to plan id, as the auditor sees it.
func (ts *testServer) accessEventIDs(planID string) []string {
	ts.t.Helper()
	var ids []string
	for _, e := range ts.auditorEvents() {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "Flag/"+planID) && strings.Contains(string(b), "unscheduled") {
			ids = append(ids, e["id"].(string))
		}
	}
	return ids
}

func TestUnscheduledReadSendsTheLAOneASN(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			id := ts.create(la, flag)
			if n := len(ts.communications(la)); n != 0 {
				t.Fatalf("%d ASNs before any read", n)
			}
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), http.StatusOK)

			asns := ts.communications(la)
			if len(asns) != 1 {
				t.Fatalf("%d ASNs after one unscheduled read, want 1", len(asns))
			}
			c := asns[0]
			events := ts.accessEventIDs(id)
			if len(events) != 1 {
				t.Fatalf("%d unscheduled AuditEvents of the read, want 1", len(events))
			}
			checks := []struct{ name, got, want string }{
				{"status", str(c, "status"), "completed"},
				{"profile", str(c, "meta", "profile", 0), "https://cpis.example.org/fhir/StructureDefinition/cpis-asn"},
				{"category system", str(c, "category", 0, "coding", 0, "system"), "https://cpis.example.org/fhir/CodeSystem/cpis-notification-type"},
				{"category code", str(c, "category", 0, "coding", 0, "code"), "access-to-service"},
				{"subject type", str(c, "subject", "type"), "Patient"},
				{"subject system", str(c, "subject", "identifier", "system"), "https://fhir.nhs.uk/Id/nhs-number"},
				{"subject", str(c, "subject", "identifier", "value"), nhs},
				{"recipient type", str(c, "recipient", 0, "type"), "Organization"},
				{"recipient system", str(c, "recipient", 0, "identifier", "system"), "https://fhir.nhs.uk/Id/ods-organization-code"},
				{"recipient", str(c, "recipient", 0, "identifier", "value"), "ZLA01"},
				{"sender type", str(c, "sender", "type"), "Organization"},
				{"sender", str(c, "sender", "identifier", "value"), "ZZT01"},
				{"sender name", str(c, "sender", "display"), "Fictional Community and Acute NHS Trust"},
				{"sent", str(c, "sent"), "2026-11-22T10:00:00Z"},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s = %q, want %q", ck.name, ck.got, ck.want)
				}
			}
			if got, want := abouts(c), []string{"Flag/" + id, "AuditEvent/" + events[0]}; !slices.Equal(got, want) {
				t.Errorf("about = %v, want %v", got, want)
			}
			text := str(c, "payload", 0, "contentString")
			for _, want := range []string{"Sunday 22 November 2026", "10:00", "Fictional Community and Acute NHS Trust", "Dr Ada Testwell", "Clinical Practitioner Access Role"} {
				if !strings.Contains(text, want) {
					t.Errorf("the message %q does not name %q", text, want)
				}
			}
			for _, never := range []string{nhs, "020 7946", "Child Protection Plan", "2014-03-15"} {
				if strings.Contains(text, never) {
					t.Errorf("the message %q carries %q", text, never)
				}
			}

			// The one ASN, by id; nobody else reads it.
			cid := c["id"].(string)
			res := ts.as(la, "GET", "/Communication/"+cid, nil)
			mustStatus(t, res, http.StatusOK)
			if got := res.JSON(t)["id"]; got != cid {
				t.Errorf("read back id %v", got)
			}
			mustStatus(t, ts.as("la:ZLA02", "GET", "/Communication/"+cid, nil), http.StatusNotFound)
			for _, p := range []string{"ed-clinician", "community-nurse", "auditor"} {
				mustStatus(t, ts.as(p, "GET", "/Communication/"+cid, nil), http.StatusForbidden)
				mustStatus(t, ts.as(p, "GET", "/Communication", nil), http.StatusForbidden)
			}
			if n := len(ts.communications("la:ZLA02")); n != 0 {
				t.Errorf("another LA sees %d ASNs", n)
			}
			for _, q := range []string{"recipient=ZLA02", "recipient:identifier=https://fhir.nhs.uk/Id/ods-organization-code%7CZLA02"} {
				mustStatus(t, ts.as(la, "GET", "/Communication?"+q, nil), http.StatusForbidden)
			}
			mustStatus(t, ts.as(la, "GET", "/Communication?recipient=ZLA01", nil), http.StatusOK)
			res = ts.as(la, "GET", "/Communication?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C9990276579&_count=5", nil)
			mustStatus(t, res, http.StatusOK)
			if nhs != "9990276579" {
				t.Fatalf("the example child changed: %s", nhs)
			}
			if n := len(entries(t, res, "Communication")); n != 1 {
				t.Errorf("patient:identifier finds %d ASNs, want 1", n)
			}
			res = ts.as(la, "GET", "/Communication?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C9992345675", nil)
			if n := len(entries(t, res, "Communication")); n != 0 {
				t.Errorf("another child's search finds %d ASNs", n)
			}

			stamp := str(c, "meta", "lastUpdated")
			newest := ts.as(la, "GET", "/Communication", nil).JSON(t)
			oldest := ts.as(la, "GET", "/Communication?_sort=_lastUpdated", nil).JSON(t)
			if str(newest, "meta", "lastUpdated") != "" || str(oldest, "meta", "lastUpdated") <= stamp {
				t.Errorf("poll start %q newest first (want none), %q oldest first (want after %s)",
					str(newest, "meta", "lastUpdated"), str(oldest, "meta", "lastUpdated"), stamp)
			}
			for q, want := range map[string]int{
				"_lastUpdated=ge2026-11-22": 1, "_lastUpdated=lt2026-11-22": 0,
				"_lastUpdated=ge" + url.QueryEscape(stamp): 1, "_lastUpdated=gt" + url.QueryEscape(stamp): 0,
			} {
				res := ts.as(la, "GET", "/Communication?"+q, nil)
				mustStatus(t, res, http.StatusOK)
				if n := len(entries(t, res, "Communication")); n != want {
					t.Errorf("%s finds %d ASNs, want %d", q, n, want)
				}
			}

			// The LA's reading of its ASNs is audited, but it is not an
			// access: the child's access history still shows the one read.
			hist := ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil)
			mustStatus(t, hist, http.StatusOK)
			if n := len(entries(t, hist, "AuditEvent")); n != 1 {
				t.Errorf("the access history has %d entries, want 1", n)
			}
			if n := len(ts.communications(la)); n != 1 {
				t.Errorf("reading the access history sent an ASN: %d", n)
			}
		})
	}
}

func TestTwoLAsPlansOnOneChildSendOneASNEach(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			cpp := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, cpp)
			id1 := ts.create(la, cpp)
			id2 := ts.create("la:ZLA02", edit(t, example(t, "flag-cla.json"), func(m map[string]any) {
				setSubject(nhs)(m)
				setAuthor("ZLA02", "")(m)
			}))
			res := ts.as("ed-clinician", "GET", "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C"+nhs, nil)
			mustStatus(t, res, http.StatusOK)
			if n := len(entries(t, res, "CareTeam")); n != 2 {
				t.Fatalf("%d CareTeams, want 2", n)
			}
			for _, c := range []struct{ la, own, other string }{{la, id1, id2}, {"la:ZLA02", id2, id1}} {
				asns := ts.communications(c.la)
				if len(asns) != 1 {
					t.Fatalf("%s has %d ASNs, want 1", c.la, len(asns))
				}
				refs := abouts(asns[0])
				if !slices.Contains(refs, "Flag/"+c.own) || slices.Contains(refs, "Flag/"+c.other) {
					t.Errorf("%s's ASN is about %v: want its own plan %s only", c.la, refs, c.own)
				}
				if got := str(asns[0], "recipient", 0, "identifier", "value"); "la:"+got != c.la {
					t.Errorf("%s's ASN is addressed to %s", c.la, got)
				}
			}
		})
	}
}

func TestReadsThatSendNoASN(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			id := ts.create(la, flag)
			for range 3 { // however often
				mustStatus(t, ts.as("community-nurse", "GET", "/Flag?patient="+nhs, nil), http.StatusOK)
				mustStatus(t, ts.as("community-nurse", "GET", "/Flag/"+id, nil, "IsUnscheduledAccessEvent", "false"), http.StatusOK)
			}
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient=9992345675", nil), http.StatusOK) // no plan
			mustStatus(t, ts.as(la, "GET", "/Flag/"+id, nil), http.StatusOK)
			mustStatus(t, ts.as(la, "GET", "/Flag?patient="+nhs, nil), http.StatusOK)
			mustStatus(t, ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil), http.StatusOK)
			mustStatus(t, ts.as("auditor", "GET", "/AuditEvent?patient="+nhs, nil), http.StatusOK)
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil, "IsUnscheduledAccessEvent", "false"), http.StatusForbidden)
			if n := len(ts.communications(la)); n != 0 {
				t.Errorf("%d ASNs from reads that send none", n)
			}
		})
	}
}

func TestASNCoalescingWindow(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name+"/24h default", func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			id := ts.create(la, flag)
			read := func() { mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK) }
			read()
			ts.setClock(startDay.Add(23 * time.Hour))
			read()
			read()
			if n := len(ts.communications(la)); n != 1 {
				t.Errorf("%d ASNs within 24 hours of the first, want 1", n)
			}
			hist := ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil)
			if n := len(entries(t, hist, "AuditEvent")); n != 3 {
				t.Errorf("the access history shows %d accesses, want all 3", n)
			}
			ts.setClock(startDay.Add(24*time.Hour + time.Minute))
			read()
			asns := ts.communications(la)
			if len(asns) != 2 {
				t.Fatalf("%d ASNs after the window passed, want 2", len(asns))
			}
			if got := str(asns[0], "sent"); got != "2026-11-23T10:01:00Z" {
				t.Errorf("the newest ASN was sent %s", got)
			}
		})
		t.Run(b.name+"/0 sends one per access", func(t *testing.T) {
			ts := newTestServer(t, b.db(t), func(c *Config) { c.ASNCoalesceWindow = 0 })
			id := ts.create(la, example(t, "flag-cpp.json"))
			for range 3 {
				mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)
			}
			if n := len(ts.communications(la)); n != 3 {
				t.Errorf("%d ASNs for 3 accesses with no window, want 3", n)
			}
		})
	}
}

// TestNoASNWithoutItsAuditEvent breaks each half of the commit under a
// running server: the read answers 503, and neither the AuditEvent nor
// the ASN is there afterwards.
func TestNoASNWithoutItsAuditEvent(t *testing.T) {
	for _, table := range []string{"event_log", "audit_events"} {
		t.Run(table, func(t *testing.T) {
			ts := newTestServer(t, func(c *Config) { c.ASNCoalesceWindow = 0 })
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			id := ts.create(la, flag)
			db, err := sql.Open("sqlite", filepath.Join(ts.cfg.DataDir, "cpis.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`ALTER TABLE ` + table + ` RENAME TO away`); err != nil {
				t.Fatal(err)
			}
			res := ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil)
			if res.Status != http.StatusServiceUnavailable || strings.Contains(string(res.Body), "020 7946") {
				t.Errorf("read while %s is broken: %d %s", table, res.Status, res.Body)
			}
			if _, err := db.Exec(`ALTER TABLE away RENAME TO ` + table); err != nil {
				t.Fatal(err)
			}
			if n := len(ts.communications(la)); n != 0 {
				t.Errorf("%d ASNs of a read whose commit failed", n)
			}
			if n := len(ts.accessEventIDs(id)); n != 0 {
				t.Errorf("%d AuditEvents of a read whose commit failed", n)
			}
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), http.StatusOK)
			if a, n := len(ts.accessEventIDs(id)), len(ts.communications(la)); a != 1 || n != 1 {
				t.Errorf("after repair one read made %d AuditEvents and %d ASNs, want 1 and 1", a, n)
			}
		})
	}
}
