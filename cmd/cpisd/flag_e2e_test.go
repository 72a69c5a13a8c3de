package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const la = "la:ZLA01" // the LA that authored the examples

// subjectNHS reads the NHS number out of a Flag JSON.
func subjectNHS(t testing.TB, flag []byte) string {
	t.Helper()
	var m struct {
		Subject struct {
			Identifier struct{ Value string } `json:"identifier"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(flag, &m); err != nil {
		t.Fatal(err)
	}
	return m.Subject.Identifier.Value
}

// create posts a Flag as the LA and returns its id.
func (ts *testServer) create(persona string, flag []byte) string {
	ts.t.Helper()
	res := ts.as(persona, "POST", "/Flag", flag)
	mustStatus(ts.t, res, http.StatusCreated)
	return res.JSON(ts.t)["id"].(string)
}

func TestCreateThenReadAsClinician(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)

	res := ts.as(la, "POST", "/Flag", flag)
	mustStatus(t, res, http.StatusCreated)
	created := res.JSON(t)
	id := created["id"].(string)
	if got, want := res.Header.Get("ETag"), `W/"1"`; got != want {
		t.Errorf("ETag %q, want %q", got, want)
	}
	if loc := res.Header.Get("Location"); loc != ts.URL+"/Flag/"+id+"/_history/1" {
		t.Errorf("Location %q", loc)
	}
	if _, err := http.ParseTime(res.Header.Get("Last-Modified")); err != nil {
		t.Errorf("Last-Modified: %v", err)
	}
	if !contains(string(res.Body), "child-birth-date") {
		t.Errorf("the responsible LA should see the birth date it sent: %s", res.Body)
	}

	read := ts.as("ed-clinician", "GET", "/Flag/"+id, nil)
	mustStatus(t, read, http.StatusOK)
	if contains(string(read.Body), "child-birth-date") || contains(string(read.Body), "2014-03-15") {
		t.Errorf("a health user must never see the child's date of birth: %s", read.Body)
	}
	if got := read.JSON(t)["status"]; got != "active" {
		t.Errorf("status %v, want active", got)
	}

	found := ts.as("community-nurse", "GET", "/Flag?patient="+nhs, nil)
	mustStatus(t, found, http.StatusOK)
	if n := len(entries(t, found, "Flag")); n != 1 {
		t.Fatalf("%d flags, want 1", n)
	}

	hist := ts.as("community-nurse", "GET", "/AuditEvent?patient="+nhs, nil)
	mustStatus(t, hist, http.StatusOK)
	events := entries(t, hist, "AuditEvent")
	if len(events) != 2 {
		t.Fatalf("access history has %d events, want 2 (the ED read and the nurse's search): %s", len(events), hist.Body)
	}
}

func TestEveryExampleIsAccepted(t *testing.T) {
	ts := newTestServer(t)
	for _, name := range []string{"flag-cpp.json", "flag-cla.json", "flag-ucpp.json"} {
		t.Run(name, func(t *testing.T) {
			res := ts.as(la, "POST", "/Flag", example(t, name))
			mustStatus(t, res, http.StatusCreated)
		})
	}
}

// TestWriteRules sends one failing input per write rule and checks the
// status, Spine code and expression, and that nothing was stored.
func TestWriteRules(t *testing.T) {
	ts := newTestServer(t)
	cpp := example(t, "flag-cpp.json")
	ucpp := example(t, "flag-ucpp.json")
	ext := func(m map[string]any, suffix string) map[string]any {
		for _, e := range m["extension"].([]any) {
			if strings.HasSuffix(e.(map[string]any)["url"].(string), suffix) {
				return e.(map[string]any)
			}
		}
		t.Fatalf("example has no %s extension", suffix)
		return nil
	}
	dropExt := func(m map[string]any, suffix string) {
		var keep []any
		for _, e := range m["extension"].([]any) {
			if !strings.HasSuffix(e.(map[string]any)["url"].(string), suffix) {
				keep = append(keep, e)
			}
		}
		m["extension"] = keep
	}
	period := func(m map[string]any) map[string]any { return m["period"].(map[string]any) }
	tests := []struct {
		name    string
		body    []byte
		persona string
		status  int
		code    string
		exprHas string
		headers []string
	}{
		{"NHS number fails Modulus 11", edit(t, cpp, func(m map[string]any) {
			m["subject"].(map[string]any)["identifier"].(map[string]any)["value"] = "9990276578"
		}), la, 400, "INVALID_RESOURCE_ID", "Flag.subject", nil},
		{"NHS number too short", edit(t, cpp, func(m map[string]any) {
			m["subject"].(map[string]any)["identifier"].(map[string]any)["value"] = "999027657"
		}), la, 400, "INVALID_RESOURCE_ID", "Flag.subject", nil},
		{"unknown plan type", edit(t, cpp, func(m map[string]any) {
			m["code"] = map[string]any{"coding": []any{map[string]any{"system": "https://cpis.example.org/fhir/CodeSystem/cpis-plan-type", "code": "CIN"}}}
		}), la, 400, "VALIDATION_ERROR", "Flag.code", nil},
		{"missing start date", edit(t, cpp, func(m map[string]any) { delete(period(m), "start") }), la, 400, "VALIDATION_ERROR", "Flag.period.start", nil},
		{"missing end date", edit(t, cpp, func(m map[string]any) { delete(period(m), "end") }), la, 400, "VALIDATION_ERROR", "Flag.period.end", nil},
		{"end before start", edit(t, cpp, func(m map[string]any) { period(m)["end"] = "2026-01-01" }), la, 400, "VALIDATION_ERROR", "Flag.period.end", nil},
		{"CPP ends after the 18th birthday", edit(t, cpp, func(m map[string]any) { period(m)["end"] = "2032-03-16" }), la, 400, "VALIDATION_ERROR", "Flag.period.end", nil},
		{"CPP without a date of birth", edit(t, cpp, func(m map[string]any) { dropExt(m, "child-birth-date") }), la, 400, "VALIDATION_ERROR", "child-birth-date", nil},
		{"UCPP with a date of birth", edit(t, ucpp, func(m map[string]any) {
			m["extension"] = append(m["extension"].([]any), map[string]any{"url": "https://cpis.example.org/fhir/StructureDefinition/child-birth-date", "valueDate": "2020-01-01"})
		}), la, 400, "VALIDATION_ERROR", "child-birth-date", nil},
		{"missing emergency number", edit(t, cpp, func(m map[string]any) { dropExt(m, "emergency-duty-telephone") }), la, 400, "VALIDATION_ERROR", "emergency-duty-telephone", nil},
		{"malformed emergency number", edit(t, cpp, func(m map[string]any) {
			ext(m, "emergency-duty-telephone")["valueContactPoint"].(map[string]any)["value"] = "call the office"
		}), la, 400, "VALIDATION_ERROR", "emergency-duty-telephone", nil},
		{"a note", edit(t, cpp, func(m map[string]any) {
			m["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">father has a history of violence</div>`}
		}), la, 400, "VALIDATION_ERROR", "Flag.text", nil},
		{"a CPP category such as neglect", edit(t, cpp, func(m map[string]any) {
			m["category"] = append(m["category"].([]any), map[string]any{"text": "neglect"})
		}), la, 400, "VALIDATION_ERROR", "Flag.category", nil},
		{"a contained resource", edit(t, cpp, func(m map[string]any) {
			m["contained"] = []any{map[string]any{"resourceType": "RelatedPerson", "id": "mum", "patient": map[string]any{"reference": "Patient/x"}}}
		}), la, 400, "VALIDATION_ERROR", "Flag.contained", nil},
		{"an unknown extension", edit(t, cpp, func(m map[string]any) {
			m["extension"] = append(m["extension"].([]any), map[string]any{"url": "https://example.org/parent-name", "valueString": "Jane"})
		}), la, 400, "VALIDATION_ERROR", "Flag.extension", nil},
		{"malformed JSON", []byte(`{"resourceType": "Flag", `), la, 400, "VALIDATION_ERROR", "", nil},
		{"wrong resourceType", edit(t, cpp, func(m map[string]any) { m["resourceType"] = "Patient" }), la, 400, "VALIDATION_ERROR", "", nil},
		{"body over 64 KiB", []byte(`{"resourceType":"Flag","id":"` + strings.Repeat("a", 70<<10) + `"}`), la, 413, "VALIDATION_ERROR", "", nil},
		{"author is another LA", cpp, "la:ZLA02", 403, "FORBIDDEN_UPDATE", "Flag.author", nil},
		{"a clinician may not write", cpp, "ed-clinician", 403, "ACCESS_DENIED", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.as(tt.persona, "POST", "/Flag", tt.body, tt.headers...)
			if res.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", res.Status, tt.status, res.Body)
			}
			code, expr := outcome(t, res)
			if code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
			if !strings.Contains(expr, tt.exprHas) {
				t.Errorf("expression %q, want it to contain %q", expr, tt.exprHas)
			}
		})
	}
	for _, owner := range []string{"la:ZLA01", "la:ZLA02"} {
		if n := len(entries(t, ts.as(owner, "GET", "/Flag", nil), "Flag")); n != 0 {
			t.Errorf("%s has %d plans stored after only rejected writes", owner, n)
		}
	}
}

func TestUpdateNeedsIfMatchAndKeepsHistory(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	id := ts.create(la, flag)
	changed := edit(t, flag, func(m map[string]any) {
		m["id"] = id
		m["period"].(map[string]any)["end"] = "2027-09-01"
	})

	res := ts.as(la, "PUT", "/Flag/"+id, changed)
	mustStatus(t, res, http.StatusPreconditionRequired)
	if code, _ := outcome(t, res); code != "PRECONDITION_FAILED" {
		t.Errorf("missing If-Match: code %q", code)
	}
	res = ts.as(la, "PUT", "/Flag/"+id, changed, "If-Match", `W/"7"`)
	mustStatus(t, res, http.StatusPreconditionFailed)

	res = ts.as(la, "PUT", "/Flag/"+id, changed, "If-Match", `W/"1"`)
	mustStatus(t, res, http.StatusOK)
	if got := res.Header.Get("ETag"); got != `W/"2"` {
		t.Errorf("ETag %q, want W/\"2\"", got)
	}
	res = ts.as(la, "PUT", "/Flag/"+id, changed, "If-Match", `W/"1"`)
	mustStatus(t, res, http.StatusPreconditionFailed)

	hist := ts.as("ed-clinician", "GET", "/Flag/"+id+"/_history", nil)
	mustStatus(t, hist, http.StatusOK)
	if n := len(entries(t, hist, "Flag")); n != 2 {
		t.Errorf("history has %d versions, want 2", n)
	}
	v1 := ts.as("ed-clinician", "GET", "/Flag/"+id+"/_history/1", nil)
	mustStatus(t, v1, http.StatusOK)
	if end := v1.JSON(t)["period"].(map[string]any)["end"]; end != "2027-06-01" {
		t.Errorf("version 1 end %v, want the original 2027-06-01", end)
	}
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id+"/_history/9", nil), http.StatusNotFound)
}

func TestOnlyTheResponsibleLAChangesAPlan(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	id := ts.create(la, flag)
	mine := edit(t, flag, func(m map[string]any) { m["id"] = id })
	theirs := edit(t, mine, func(m map[string]any) {
		m["author"].(map[string]any)["identifier"].(map[string]any)["value"] = "ZLA02"
		m["author"].(map[string]any)["display"] = "London Borough of Newham"
	})
	// A body naming another LA as author is refused for what it says.
	res := ts.as("la:ZLA02", "PUT", "/Flag/"+id, mine, "If-Match", `W/"1"`)
	mustStatus(t, res, http.StatusForbidden)
	if code, _ := outcome(t, res); code != "FORBIDDEN_UPDATE" {
		t.Errorf("update naming another LA as author: code %q, want FORBIDDEN_UPDATE", code)
	}
	// Another LA's plan is answered exactly as a plan that does not exist,
	// so that an LA cannot probe which ids are taken.
	unknown := "5b1f8e0e-0000-4000-8000-000000000000"
	theirsUnknown := edit(t, theirs, func(m map[string]any) { m["id"] = unknown })
	for name, pair := range map[string][2]response{
		"update": {ts.as("la:ZLA02", "PUT", "/Flag/"+id, theirs, "If-Match", `W/"1"`),
			ts.as("la:ZLA02", "PUT", "/Flag/"+unknown, theirsUnknown, "If-Match", `W/"1"`)},
		"delete": {ts.as("la:ZLA02", "DELETE", "/Flag/"+id, nil), ts.as("la:ZLA02", "DELETE", "/Flag/"+unknown, nil)},
	} {
		other, none := pair[0], pair[1]
		mustStatus(t, other, http.StatusNotFound)
		if string(other.Body) != string(none.Body) || other.Status != none.Status {
			t.Errorf("%s: another LA's plan answers %d %s, an unknown id %d %s", name, other.Status, other.Body, none.Status, none.Body)
		}
	}
	got := ts.as(la, "GET", "/Flag/"+id, nil)
	mustStatus(t, got, http.StatusOK)
	if v := got.Header.Get("ETag"); v != `W/"1"` {
		t.Errorf("the plan changed: ETag %s", v)
	}
	mustStatus(t, ts.as("la:ZLA02", "GET", "/Flag/"+id, nil), http.StatusNotFound)
}

func TestDeleteMarksEnteredInError(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	res := ts.as(la, "DELETE", "/Flag/"+id, nil)
	mustStatus(t, res, http.StatusNoContent)
	if got := res.Header.Get("ETag"); got != `W/"2"` {
		t.Errorf("ETag %q, want W/\"2\"", got)
	}
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusNotFound)
	if n := len(entries(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), "Flag")); n != 0 {
		t.Errorf("a withdrawn plan is still shown to health users")
	}
	own := ts.as(la, "GET", "/Flag/"+id, nil)
	mustStatus(t, own, http.StatusOK)
	if s := own.JSON(t)["status"]; s != "entered-in-error" {
		t.Errorf("status %v, want entered-in-error", s)
	}
}

func TestRetriedCreateWithSameRequestIDStoresOnce(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cla.json")
	rid := "0b9e8a39-2f6c-4c3e-9d4e-0a4f1f0e7d11"
	first := ts.as(la, "POST", "/Flag", flag, "X-Request-ID", rid)
	mustStatus(t, first, http.StatusCreated)
	if got := first.Header.Get("X-Request-ID"); got != rid {
		t.Errorf("X-Request-ID echoed %q", got)
	}
	again := ts.as(la, "POST", "/Flag", flag, "X-Request-ID", rid)
	mustStatus(t, again, http.StatusOK)
	if a, b := first.JSON(t)["id"], again.JSON(t)["id"]; a != b {
		t.Errorf("the retry created a second plan: %v and %v", a, b)
	}
	if n := len(entries(t, ts.as(la, "GET", "/Flag", nil), "Flag")); n != 1 {
		t.Errorf("%d plans stored, want 1", n)
	}
	bad := ts.as(la, "POST", "/Flag", flag, "X-Request-ID", "not-a-uuid")
	mustStatus(t, bad, http.StatusBadRequest)
	if code, _ := outcome(t, bad); code != "INVALID_VALUE" {
		t.Errorf("bad X-Request-ID: code %q", code)
	}
}

// TestDisplayWindows moves the clock over the SOP's boundaries.
func TestDisplayWindows(t *testing.T) {
	ts := newTestServer(t)
	cpp := example(t, "flag-cpp.json")
	ucpp := example(t, "flag-ucpp.json")
	cppEnd := endOf(t, cpp)
	ucppEnd := endOf(t, ucpp)
	cppID, ucppID := ts.create(la, cpp), ts.create(la, ucpp)

	tests := []struct {
		id, name string
		day      time.Time
		want     string // "" means not shown
	}{
		{cppID, "CPP on its end date", cppEnd, "active"},
		{cppID, "CPP the day after its end", cppEnd.AddDate(0, 0, 1), "inactive"},
		{cppID, "CPP 364 days after its end", cppEnd.AddDate(0, 0, 364), "inactive"},
		{cppID, "CPP 365 days after its end", cppEnd.AddDate(0, 0, 365), ""},
		{ucppID, "UCPP 28 days after its end", ucppEnd.AddDate(0, 0, 28), "inactive"},
		{ucppID, "UCPP 29 days after its end", ucppEnd.AddDate(0, 0, 29), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.setClock(tt.day.Add(12 * time.Hour))
			res := ts.as("ed-clinician", "GET", "/Flag/"+tt.id, nil)
			if tt.want == "" {
				mustStatus(t, res, http.StatusNotFound)
				own := ts.as(la, "GET", "/Flag/"+tt.id, nil)
				mustStatus(t, own, http.StatusOK) // the responsible LA sees its plans whatever their dates
				return
			}
			mustStatus(t, res, http.StatusOK)
			if got := res.JSON(t)["status"]; got != tt.want {
				t.Errorf("status %v, want %s", got, tt.want)
			}
		})
	}
}

func endOf(t testing.TB, flag []byte) time.Time {
	t.Helper()
	var m struct{ Period struct{ End string } }
	if err := json.Unmarshal(flag, &m); err != nil {
		t.Fatal(err)
	}
	d, err := time.Parse(time.DateOnly, m.Period.End)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRolesAndTokens(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)

	res := ts.do("GET", "/Flag?patient="+nhs, "", nil)
	mustStatus(t, res, http.StatusUnauthorized)
	if !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
	}
	if code, _ := outcome(t, res); code != "ACCESS_DENIED" {
		t.Errorf("code %q", code)
	}
	tok := ts.token("ed-clinician")
	tampered := tok[:len(tok)-4] + "AAAA"
	mustStatus(t, ts.do("GET", "/Flag?patient="+nhs, tampered, nil), http.StatusUnauthorized)
	mustStatus(t, ts.do("GET", "/Flag?patient="+nhs, "not-a-jwt", nil), http.StatusUnauthorized)

	recep := ts.as("receptionist", "GET", "/Flag?patient="+nhs, nil)
	mustStatus(t, recep, http.StatusForbidden)
	if code, _ := outcome(t, recep); code != "ACCESS_DENIED" {
		t.Errorf("receptionist: code %q", code)
	}
	mustStatus(t, ts.as("receptionist", "GET", "/AuditEvent?patient="+nhs, nil), http.StatusForbidden)
	mustStatus(t, ts.as("community-nurse", "GET", "/Flag?patient="+nhs, nil, "IsUnscheduledAccessEvent", "true"), http.StatusForbidden)
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil, "IsUnscheduledAccessEvent", "maybe"), http.StatusBadRequest)

	for _, path := range []string{"/metadata", "/.well-known/smart-configuration", "/healthz", "/readyz", "/metrics", "/StructureDefinition/cpis-flag"} {
		mustStatus(t, ts.do("GET", path, "", nil), http.StatusOK)
	}
}

func TestSearchParameters(t *testing.T) {
	ts := newTestServer(t)
	cpp := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, cpp)
	claSameChild := edit(t, example(t, "flag-cla.json"), func(m map[string]any) {
		m["subject"] = map[string]any{"identifier": map[string]any{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}}
		for _, e := range m["extension"].([]any) {
			if strings.HasSuffix(e.(map[string]any)["url"].(string), "child-birth-date") {
				e.(map[string]any)["valueDate"] = "2014-03-15"
			}
		}
	})
	ts.create(la, cpp)
	ts.setClock(startDay.Add(time.Hour))
	ts.create(la, claSameChild)

	count := func(t *testing.T, query string, headers ...string) int {
		t.Helper()
		res := ts.as("ed-clinician", "GET", "/Flag?"+query, nil, headers...)
		mustStatus(t, res, http.StatusOK)
		return len(entries(t, res, "Flag"))
	}
	ident := "https://fhir.nhs.uk/Id/nhs-number|" + nhs
	cases := []struct {
		query string
		want  int
	}{
		{"patient=" + nhs, 2},
		{"patient:identifier=" + ident, 2},
		{"subject:identifier=" + ident, 2},
		{"patient=" + nhs + "&code=CPP", 1},
		{"patient=" + nhs + "&code=http://snomed.info/sct|764841000000100", 1},
		{"patient=" + nhs + "&status=active", 2},
		{"patient=" + nhs + "&status=inactive", 0},
		{"patient=" + nhs + "&_lastUpdated=gt" + startDay.Add(30*time.Minute).Format(time.RFC3339), 1},
		{"patient=" + nhs + "&_lastUpdated=le" + startDay.Add(30*time.Minute).Format(time.RFC3339), 1},
		{"patient=" + nhs + "&_lastUpdated=eq2026-11-22", 2},
		{"patient=9000000009", 0},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			if got := count(t, strings.ReplaceAll(c.query, "|", "%7C")); got != c.want {
				t.Errorf("%d flags, want %d", got, c.want)
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		res := ts.as("ed-clinician", "GET", "/Flag?patient="+nhs+"&_count=1&_sort=_lastUpdated", nil)
		mustStatus(t, res, http.StatusOK)
		first := entries(t, res, "Flag")
		next := link(t, res, "next")
		if len(first) != 1 || next == "" {
			t.Fatalf("page 1: %d entries, next %q", len(first), next)
		}
		res2 := ts.as("ed-clinician", "GET", strings.TrimPrefix(next, ts.URL), nil)
		mustStatus(t, res2, http.StatusOK)
		second := entries(t, res2, "Flag")
		if len(second) != 1 || second[0]["id"] == first[0]["id"] {
			t.Fatalf("page 2 should hold the other plan")
		}
		if link(t, res2, "next") != "" {
			t.Errorf("the last page has a next link")
		}
	})
	t.Run("unknown parameter", func(t *testing.T) {
		res := ts.as("ed-clinician", "GET", "/Flag?patient="+nhs+"&colour=red", nil)
		mustStatus(t, res, http.StatusOK)
		if len(entries(t, res, "OperationOutcome")) != 1 {
			t.Errorf("no OperationOutcome entry reports the unknown parameter: %s", res.Body)
		}
		strict := ts.as("ed-clinician", "GET", "/Flag?patient="+nhs+"&colour=red", nil, "Prefer", "handling=strict")
		mustStatus(t, strict, http.StatusBadRequest)
	})
	t.Run("bad NHS number", func(t *testing.T) {
		res := ts.as("ed-clinician", "GET", "/Flag?patient=1234567890", nil)
		mustStatus(t, res, http.StatusBadRequest)
		if code, _ := outcome(t, res); code != "INVALID_RESOURCE_ID" {
			t.Errorf("code %q", code)
		}
	})
	t.Run("patient is required for health users", func(t *testing.T) {
		mustStatus(t, ts.as("ed-clinician", "GET", "/Flag", nil), http.StatusBadRequest)
	})
}

// link returns the URL of a Bundle link by relation, or "".
func link(t testing.TB, r response, rel string) string {
	t.Helper()
	links, _ := r.JSON(t)["link"].([]any)
	for _, l := range links {
		if m := l.(map[string]any); m["relation"] == rel {
			return m["url"].(string)
		}
	}
	return ""
}

func TestCareTeamNationalShape(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)
	res := ts.as("ed-clinician", "GET", "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C"+nhs, nil)
	mustStatus(t, res, http.StatusOK)
	teams := entries(t, res, "CareTeam")
	if len(teams) != 1 {
		t.Fatalf("%d CareTeams, want 1: %s", len(teams), res.Body)
	}
	if !contains(string(res.Body), "020 7946 0101") {
		t.Errorf("the CareTeam does not carry the LA emergency number: %s", res.Body)
	}
	none := ts.as("ed-clinician", "GET", "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C9000000009", nil)
	mustStatus(t, none, http.StatusOK)
	if n := len(entries(t, none, "CareTeam")); n != 0 {
		t.Errorf("%d CareTeams for a child with no plan", n)
	}
}

// TestDemoPlansLoadOnce starts with --demo twice on one data directory: the
// demo plans are there, once.
func TestDemoPlansLoadOnce(t *testing.T) {
	dir := t.TempDir()
	demo := func(c *Config) { c.Demo, c.DataDir = true, dir }
	for round := 1; round <= 2; round++ {
		ts := newTestServer(t, demo)
		res := ts.as("ed-clinician", "GET", "/Flag?patient=9990000018", nil)
		mustStatus(t, res, http.StatusOK)
		if n := len(entries(t, res, "Flag")); n != 2 {
			t.Fatalf("start %d: %d demo plans for 9990000018, want 2", round, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ts.srv.shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}
