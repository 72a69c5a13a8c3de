package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The regression tests of the holes found when the service was attacked:
// each sends the request that showed the hole.

// setAuthor changes the Flag's author.
func setAuthor(code, display string) func(m map[string]any) {
	return func(m map[string]any) {
		a := m["author"].(map[string]any)
		a["identifier"].(map[string]any)["value"] = code
		if display == "" {
			delete(a, "display")
		} else {
			a["display"] = display
		}
	}
}

// setPhone changes the emergency duty number.
func setPhone(number string) func(m map[string]any) {
	return func(m map[string]any) {
		m["extension"].([]any)[0].(map[string]any)["valueContactPoint"].(map[string]any)["value"] = number
	}
}

func TestTheServerOwnsLANames(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	refused := map[string][]byte{
		"60 KB name":             edit(t, flag, setAuthor("ZLA01", strings.Repeat("Hackney ", 7500))),
		"control characters":     edit(t, flag, setAuthor("ZLA01", "London Borough of Hackney\x07\x1b[2J")),
		"right-to-left override": edit(t, flag, setAuthor("ZLA01", "London Borough of \u202eyenkcaH")),
		"another LA's name":      edit(t, flag, setAuthor("ZLA01", "London Borough of Newham")),
		"a sentence":             edit(t, flag, setAuthor("ZLA01", "Father John Smith, 07700 900123, injuries to face")),
		"a code not registered":  edit(t, flag, setAuthor("ZLA99", "")),
	}
	for name, body := range refused {
		t.Run(name, func(t *testing.T) {
			res := ts.as(la, "POST", "/Flag", body)
			if res.Status != http.StatusBadRequest && res.Status != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 400: %s", res.Status, res.Body)
			}
		})
	}
	if n := len(entries(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), "Flag")); n != 0 {
		t.Fatalf("%d plans stored from refused writes", n)
	}
	// Without a display, the register's name is stored and shown.
	ts.create(la, edit(t, flag, setAuthor("ZLA01", "")))
	got := entries(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), "Flag")
	if len(got) != 1 || got[0]["author"].(map[string]any)["display"] != "London Borough of Hackney and City of London" {
		t.Fatalf("the clinician sees %v, want the register's name", got)
	}
}

func TestReaderVisibleStringsAreBounded(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	for name, body := range map[string][]byte{
		"phone with a bidi override": edit(t, flag, setPhone("020 7946 0101\u202e")),
		"phone with words":           edit(t, flag, setPhone("020 7946 0101 ask for Dad")),
		"phone with a newline":       edit(t, flag, setPhone("020 7946\n0101")),
		"NHS number 0000000000":      edit(t, flag, setSubject("0000000000")),
		"NHS number 1111111111":      edit(t, flag, setSubject("1111111111")),
		"UCPP over 300 days": edit(t, example(t, "flag-ucpp.json"), func(m map[string]any) {
			m["period"] = map[string]any{"start": "2026-09-01", "end": "2027-06-29"}
		}),
	} {
		t.Run(name, func(t *testing.T) {
			mustStatus(t, ts.as(la, "POST", "/Flag", body), http.StatusBadRequest)
		})
	}
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient=1111111111", nil), http.StatusBadRequest)
}

func setSubject(nhs string) func(m map[string]any) {
	return func(m map[string]any) {
		m["subject"].(map[string]any)["identifier"].(map[string]any)["value"] = nhs
	}
}

func TestMalformedRequestsAreRefusedBeforeAnyRead(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			id := ts.create(la, example(t, "flag-cpp.json"))
			// A malformed escape must not be dropped: the LA's search would
			// widen to its whole list.
			res := ts.as(la, "GET", "/Flag?patient=%zz", nil)
			mustStatus(t, res, http.StatusBadRequest)
			if contains(string(res.Body), id) {
				t.Errorf("a malformed search returned a plan: %s", res.Body)
			}
			for _, m := range []string{"GET", "PUT", "DELETE"} {
				res := ts.as(la, m, "/Flag/%00", example(t, "flag-cpp.json"), "If-Match", `W/"1"`)
				mustStatus(t, res, http.StatusNotFound)
			}
			res = ts.as(la, "POST", "/Flag", example(t, "flag-cpp.json"), "Content-Type", "text/plain")
			mustStatus(t, res, http.StatusUnsupportedMediaType)
			// A raw byte that is not UTF-8, as a client that does not escape sends it.
			if status := rawGet(t, ts, "/Flag?patient=999\xff0276579", ts.token("ed-clinician")); status != http.StatusBadRequest {
				t.Errorf("a query that is not UTF-8: status %d, want 400", status)
			}
			// The legitimate reads around them still work, audited.
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)
		})
	}
}

// rawGet sends a request line exactly as given, bypassing net/http's
// escaping, and returns the status.
func rawGet(t testing.TB, ts *testServer, target, token string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", target, token)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestARequestIDIsOneWrite(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	rid := "0d8b3c52-7a0e-4a5e-9c43-2f6d5f1e0a11"
	first := ts.as(la, "POST", "/Flag", flag, "X-Request-ID", rid)
	mustStatus(t, first, http.StatusCreated)
	// The same request id for a different plan: refused, never answered
	// with the first plan.
	other := edit(t, flag, setSubject("9449306753"))
	res := ts.as(la, "POST", "/Flag", other, "X-Request-ID", rid)
	mustStatus(t, res, http.StatusConflict)
	if contains(string(res.Body), first.JSON(t)["id"].(string)) {
		t.Errorf("the reused request id returned the first plan: %s", res.Body)
	}
	// The same id and the same plan is a retry: the first plan, once.
	again := ts.as(la, "POST", "/Flag", flag, "X-Request-ID", rid)
	mustStatus(t, again, http.StatusOK)
	if again.JSON(t)["id"] != first.JSON(t)["id"] {
		t.Errorf("a retry answered another plan")
	}
	// Used for an update of another plan: refused too.
	id2 := ts.create(la, other)
	body := edit(t, other, func(m map[string]any) { m["id"] = id2 })
	mustStatus(t, ts.as(la, "PUT", "/Flag/"+id2, body, "If-Match", `W/"1"`, "X-Request-ID", rid), http.StatusConflict)
}

func TestRefusedHealthReadsAreAuditedAsFailures(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)
	mustStatus(t, ts.as("receptionist", "GET", "/Flag?patient="+nhs, nil), http.StatusForbidden)
	var found bool
	for _, e := range ts.auditorEvents() {
		if e["outcome"] != "4" || !contains(fmt.Sprint(e["agent"]), "Cal Placeholder") {
			continue
		}
		found = true
		if _, ok := e["purposeOfEvent"]; ok {
			t.Errorf("a refused read is recorded as an access: %v", e)
		}
		for _, ent := range e["entity"].([]any) {
			if q, ok := ent.(map[string]any)["query"].(string); ok {
				if b, _ := base64.StdEncoding.DecodeString(q); !contains(string(b), nhs) {
					t.Errorf("the refusal's query entity is %q", b)
				}
			}
		}
	}
	if !found {
		t.Fatal("no AuditEvent with a failure outcome records the receptionist's refused search")
	}
	hist := ts.as("ed-clinician", "GET", "/AuditEvent?patient="+nhs, nil)
	if contains(string(hist.Body), "Cal Placeholder") {
		t.Error("a refused read appears in the child's access history")
	}
}

func TestPatientDataIsNeverCached(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	for _, path := range []string{"/Flag/" + id, "/Flag?patient=" + nhs, "/AuditEvent?patient=" + nhs, "/CareTeam?patient=" + nhs, "/Flag/nope"} {
		if cc := ts.as("ed-clinician", "GET", path, nil).Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, cc)
		}
	}
	if cc := ts.do("POST", "/dev/token", "", []byte(`{"persona":"ed-clinician"}`), "Content-Type", "application/json").Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token response: Cache-Control %q, want no-store", cc)
	}
}

func TestEveryCareTeamFullURLResolves(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	ts.create(la, flag)
	res := ts.as("ed-clinician", "GET", "/CareTeam?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C"+nhs, nil)
	mustStatus(t, res, http.StatusOK)
	es := res.JSON(t)["entry"].([]any)
	if len(es) != 1 {
		t.Fatalf("%d entries", len(es))
	}
	full := es[0].(map[string]any)["fullUrl"].(string)
	got := ts.as("ed-clinician", "GET", strings.TrimPrefix(full, ts.URL), nil)
	mustStatus(t, got, http.StatusOK)
	if got.JSON(t)["resourceType"] != "CareTeam" || got.JSON(t)["id"] != es[0].(map[string]any)["resource"].(map[string]any)["id"] {
		t.Errorf("%s resolves to %s", full, got.Body)
	}
	mustStatus(t, ts.as("receptionist", "GET", strings.TrimPrefix(full, ts.URL), nil), http.StatusForbidden)
}

func TestTheAuditScopeAloneDoesNotOpenTheAuditTrail(t *testing.T) {
	ts := newTestServer(t)
	flag := example(t, "flag-cpp.json")
	nhs := subjectNHS(t, flag)
	id := ts.create(la, flag)
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+id, nil), http.StatusOK)
	// The receptionist's client was granted user/AuditEvent.read, but the
	// role is not an auditing one.
	scopes := fmt.Sprint(jwtClaims(t, ts.token("receptionist"))["scope"])
	if !contains(scopes, "user/AuditEvent.read") {
		t.Fatalf("the receptionist persona lacks the audit scope this test needs: %s", scopes)
	}
	for _, path := range []string{"/AuditEvent?_count=50", "/AuditEvent?patient=" + nhs, "/AuditEvent?agent=555000000001"} {
		res := ts.as("receptionist", "GET", path, nil)
		mustStatus(t, res, http.StatusForbidden)
		if contains(string(res.Body), "Ada Testwell") {
			t.Errorf("%s: the refusal shows the trail: %s", path, res.Body)
		}
	}
	mustStatus(t, ts.as("auditor", "GET", "/AuditEvent?_count=50", nil), http.StatusOK)
}

func TestAnLASeesOnlyAccessesToItsOwnLivePlans(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			ts.create(la, flag) // Hackney's plan
			ts.setClock(startDay.Add(time.Minute))
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), http.StatusOK)
			// Newham creates a plan on the same child to see who looked at Hackney's.
			newham := edit(t, flag, setAuthor("ZLA02", ""))
			newham = edit(t, newham, setPhone("020 7946 0201"))
			nid := ts.create("la:ZLA02", newham)
			history := func(persona string) string {
				res := ts.as(persona, "GET", "/AuditEvent?patient="+nhs, nil)
				mustStatus(t, res, http.StatusOK)
				return string(res.Body)
			}
			if h := history("la:ZLA02"); contains(h, "Ada Testwell") {
				t.Errorf("Newham sees an access to Hackney's plan: %s", h)
			}
			ts.setClock(startDay.Add(2 * time.Minute))
			mustStatus(t, ts.as("community-nurse", "GET", "/Flag?patient="+nhs, nil), http.StatusOK) // sees both plans
			if h := history("la:ZLA02"); !contains(h, "Bea Fictional") {
				t.Errorf("Newham does not see the access to its own plan: %s", h)
			}
			// Newham withdraws its plan: the access to it leaves its list, and
			// the health users' list keeps only accesses to live plans.
			mustStatus(t, ts.as("la:ZLA02", "DELETE", "/Flag/"+nid, nil), http.StatusNoContent)
			if h := history("la:ZLA02"); contains(h, "Bea Fictional") || contains(h, "Ada Testwell") {
				t.Errorf("after withdrawing, Newham still sees accesses: %s", h)
			}
			if h := history("la:ZLA01"); !contains(h, "Ada Testwell") || !contains(h, "Bea Fictional") {
				t.Errorf("Hackney no longer sees the accesses to its own plan: %s", h)
			}
			// A plan withdrawn with all the plans an access returned: the access
			// leaves the health users' "previously viewed by".
			ucpp := example(t, "flag-ucpp.json")
			mother := subjectNHS(t, ucpp)
			uid := ts.create(la, ucpp)
			mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+uid, nil), http.StatusOK)
			before := ts.as("community-nurse", "GET", "/AuditEvent?patient="+mother, nil)
			if n := len(entries(t, before, "AuditEvent")); n != 1 {
				t.Fatalf("%d accesses to the mother's plan, want 1", n)
			}
			mustStatus(t, ts.as(la, "DELETE", "/Flag/"+uid, nil), http.StatusNoContent)
			after := ts.as("community-nurse", "GET", "/AuditEvent?patient="+mother, nil)
			if n := len(entries(t, after, "AuditEvent")); n != 0 {
				t.Errorf("%d accesses to a withdrawn plan still shown to health users", n)
			}
		})
	}
}

func TestPagingNeitherSkipsNorRepeatsWhenPlansChange(t *testing.T) {
	numbers := []string{"9990276579", "9449306753", "9000000009", "9990000018", "9990000026", "9990000034", "9990000042"}
	for _, b := range backends {
		for _, sort := range []string{"_lastUpdated", "-_lastUpdated"} {
			t.Run(b.name+" "+sort, func(t *testing.T) {
				ts := newTestServer(t, b.db(t))
				ids := map[string]string{} // id -> NHS number
				for i, nhs := range numbers {
					ts.setClock(startDay.Add(time.Duration(i) * time.Minute))
					ids[ts.create(la, edit(t, example(t, "flag-cpp.json"), setSubject(nhs)))] = nhs
				}
				seen := map[string]int{}
				path := "/Flag?_count=2&_sort=" + sort
				for page := 0; path != ""; page++ {
					ts.setClock(startDay.Add(time.Hour + time.Duration(page)*time.Minute))
					res := ts.as(la, "GET", path, nil)
					mustStatus(t, res, http.StatusOK)
					for _, f := range entries(t, res, "Flag") {
						seen[f["id"].(string)]++
					}
					// Between pages, change one plan already seen and one not yet seen.
					ts.setClock(startDay.Add(time.Hour + time.Duration(page)*time.Minute + 30*time.Second))
					for id := range ids {
						if (seen[id] > 0) == (page%2 == 0) {
							body := edit(t, example(t, "flag-cpp.json"), func(m map[string]any) {
								setSubject(ids[id])(m)
								m["id"] = id
							})
							v := ts.as(la, "GET", "/Flag/"+id, nil).Header.Get("ETag")
							mustStatus(t, ts.as(la, "PUT", "/Flag/"+id, body, "If-Match", v), http.StatusOK)
							break
						}
					}
					path = strings.TrimPrefix(link(t, res, "next"), ts.URL)
				}
				for id := range ids {
					if seen[id] != 1 {
						t.Errorf("plan seen %d times over the pages, want once", seen[id])
					}
				}
				if len(seen) != len(ids) {
					t.Errorf("%d plans seen, want %d", len(seen), len(ids))
				}
			})
		}
	}
}

func TestTheSamePlanPostedTwiceIsRefusedWithTheExistingID(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ts := newTestServer(t, b.db(t))
			flag := example(t, "flag-cpp.json")
			nhs := subjectNHS(t, flag)
			id := ts.create(la, flag)
			res := ts.as(la, "POST", "/Flag", flag) // a new request id: not a retry
			mustStatus(t, res, http.StatusConflict)
			if code, _ := outcome(t, res); code != "RESOURCE_VERSION_MISMATCH" || !contains(string(res.Body), "Flag/"+id) {
				t.Errorf("%s: %s, want the existing plan's id", code, res.Body)
			}
			if contains(string(res.Body), nhs) {
				t.Errorf("the refusal repeats the NHS number: %s", res.Body)
			}
			// Another LA's plan on the child, or a later plan of this LA, is fine.
			ts.create("la:ZLA02", edit(t, edit(t, flag, setAuthor("ZLA02", "")), setPhone("020 7946 0201")))
			ts.create(la, edit(t, flag, func(m map[string]any) {
				m["period"] = map[string]any{"start": "2027-06-02", "end": "2028-01-01"}
			}))
			if n := len(entries(t, ts.as("ed-clinician", "GET", "/Flag?patient="+nhs, nil), "Flag")); n != 3 {
				t.Errorf("%d plans, want 3", n)
			}
		})
	}
}
