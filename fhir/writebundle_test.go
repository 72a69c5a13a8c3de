package fhir

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// condition is the query of a conditional interaction on reference ref.
func condition(ref string) string { return "identifier=" + LAReferenceSystem + "|" + ref }

// writeEntry is a Bundle entry as a JSON object: request method and url,
// and the resource when not nil.
func writeEntry(method, url string, resource map[string]any) map[string]any {
	e := map[string]any{"request": map[string]any{"method": method, "url": url}}
	if resource != nil {
		e["resource"] = resource
	}
	return e
}

// withRequest sets a member of an entry's request.
func withRequest(e map[string]any, key string, v any) map[string]any {
	e["request"].(map[string]any)[key] = v
	return e
}

func writeBundle(tb testing.TB, typ string, entries ...map[string]any) []byte {
	tb.Helper()
	es := make([]any, len(entries))
	for i, e := range entries {
		es[i] = e
	}
	return mustJSON(tb, map[string]any{"resourceType": "Bundle", "type": typ, "entry": es})
}

// referencedFlag is the CPP example carrying the LA's reference ref.
func referencedFlag(tb testing.TB, ref string) map[string]any {
	m := exampleObject(tb)
	m["identifier"] = []any{planRef(ref)}
	return m
}

func TestParseWriteBundleAccepts(t *testing.T) {
	plan := examplePlans["flag-cpp.json"]
	plan.Reference = "HK-1"
	body := writeBundle(t, "transaction",
		withRequest(writeEntry("POST", "Flag", referencedFlag(t, "HK-1")), "ifNoneExist", condition("HK-1")),
		withRequest(writeEntry("PUT", "Flag/5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01", referencedFlag(t, "HK-1")), "ifMatch", `W/"2"`),
		writeEntry("PUT", "Flag?"+condition("HK-1"), referencedFlag(t, "HK-1")),
		withRequest(writeEntry("DELETE", "Flag/abc.1", nil), "ifMatch", "3"),
		writeEntry("DELETE", "Flag?identifier=https%3A%2F%2Fcpis.example.org%2Ffhir%2FId%2Fla-plan-reference%7CHK-2", nil),
		func() map[string]any {
			e := writeEntry("POST", "Flag", referencedFlag(t, "HK-1"))
			e["fullUrl"] = "urn:uuid:3f2504e0-4f89-41d3-9a0c-0305e82c3301"
			return e
		}(),
	)
	got, err := ParseWriteBundle(body, 0)
	if err != nil {
		t.Fatalf("ParseWriteBundle: %v", err)
	}
	want := WriteBundle{Transaction: true, Entries: []WriteEntry{
		{Method: "POST", IfNoneExist: "HK-1", Plan: plan},
		{Method: "PUT", ID: "5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01", IfMatch: 2, Plan: plan},
		{Method: "PUT", Reference: "HK-1", Plan: plan},
		{Method: "DELETE", ID: "abc.1", IfMatch: 3},
		{Method: "DELETE", Reference: "HK-2"},
		{Method: "POST", Plan: plan},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bundle (-want +got):\n%s", diff)
	}
	for _, b := range []string{`{"resourceType":"Bundle","type":"batch"}`, `{"resourceType":"Bundle","type":"batch","entry":[]}`} {
		got, err := ParseWriteBundle([]byte(b), 0)
		if err != nil || got.Transaction || len(got.Entries) != 0 {
			t.Errorf("ParseWriteBundle(%s) = %+v, %v; want an empty batch", b, got, err)
		}
	}
}

// TestParseWriteBundleEntries: each entry that cannot be understood fails
// alone, with expressions inside it; the good entry before it is read.
func TestParseWriteBundleEntries(t *testing.T) {
	const at = "Bundle.entry[1]"
	inv := func(expr string) problem { return problem{cpis.Invalid, at + expr} }
	flag := func(edits ...func(map[string]any)) map[string]any {
		m := referencedFlag(t, "HK-1")
		for _, e := range edits {
			e(m)
		}
		return m
	}
	tests := []struct {
		name  string
		entry any
		want  []problem
	}{
		{"not an object", 7, []problem{inv("")}},
		{"null", nil, []problem{inv("")}},
		{"no request", map[string]any{"resource": flag()}, []problem{inv(".request")}},
		{"no method", map[string]any{"request": map[string]any{"url": "Flag"}, "resource": flag()}, []problem{inv(".request.method")}},
		{"no url", map[string]any{"request": map[string]any{"method": "POST"}, "resource": flag()}, []problem{inv(".request.url")}},
		{"GET", writeEntry("GET", "Flag/abc", nil), []problem{{cpis.NotSupported, at + ".request.method"}}},
		{"PATCH", writeEntry("PATCH", "Flag/abc", flag()), []problem{{cpis.NotSupported, at + ".request.method"}}},
		{"unknown method", writeEntry("FETCH", "Flag", flag()), []problem{inv(".request.method")}},
		{"POST with an id", writeEntry("POST", "Flag/abc", flag()), []problem{inv(".request.url")}},
		{"POST to another type", writeEntry("POST", "Patient", flag()), []problem{inv(".request.url")}},
		{"POST absolute", writeEntry("POST", "https://cpis.test/fhir/Flag", flag()), []problem{inv(".request.url")}},
		{"POST with a query", writeEntry("POST", "Flag?"+condition("HK-1"), flag()), []problem{inv(".request.url")}},
		{"POST with ifMatch", withRequest(writeEntry("POST", "Flag", flag()), "ifMatch", `W/"1"`), []problem{inv(".request.ifMatch")}},
		{"POST without a resource", writeEntry("POST", "Flag", nil), []problem{inv(".resource")}},
		{"POST of another resource", writeEntry("POST", "Flag", map[string]any{"resourceType": "Basic", "code": map[string]any{"text": "x"}}), []problem{inv(".resource")}},
		{"POST of an unknown resource type", writeEntry("POST", "Flag", map[string]any{"resourceType": "Zebedee"}), []problem{inv(".resource")}},
		{"POST of a resource without a type", writeEntry("POST", "Flag", map[string]any{"status": "active"}), []problem{inv(".resource")}},
		{"ifNoneExist of another system", withRequest(writeEntry("POST", "Flag", flag()), "ifNoneExist", "identifier=urn:x|1"), []problem{{cpis.InvalidSearch, at + ".request.ifNoneExist"}}},
		{"ifNoneExist bad reference", withRequest(writeEntry("POST", "Flag", flag()), "ifNoneExist", condition("a b")), []problem{{cpis.InvalidValue, at + ".request.ifNoneExist"}}},
		{"ifNoneExist on PUT", withRequest(writeEntry("PUT", "Flag?"+condition("HK-1"), flag()), "ifNoneExist", condition("HK-1")), []problem{inv(".request.ifNoneExist")}},
		{"PUT by id without ifMatch", writeEntry("PUT", "Flag/abc", flag()), []problem{{cpis.PreconditionRequired, at + ".request.ifMatch"}}},
		{"PUT with a bad ifMatch", withRequest(writeEntry("PUT", "Flag/abc", flag()), "ifMatch", "W/\"x\""), []problem{{cpis.PreconditionFailed, at + ".request.ifMatch"}}},
		{"PUT with version 0", withRequest(writeEntry("PUT", "Flag/abc", flag()), "ifMatch", "0"), []problem{{cpis.PreconditionFailed, at + ".request.ifMatch"}}},
		{"PUT of a version", withRequest(writeEntry("PUT", "Flag/abc/_history/2", flag()), "ifMatch", "2"), []problem{inv(".request.url")}},
		{"PUT without an id", writeEntry("PUT", "Flag", flag()), []problem{inv(".request.url")}},
		{"PUT by another condition", writeEntry("PUT", "Flag?patient=9990276579", flag()), []problem{{cpis.InvalidSearch, at + ".request.url"}}},
		{"PUT without a resource", withRequest(writeEntry("PUT", "Flag/abc", nil), "ifMatch", "1"), []problem{inv(".resource")}},
		{"DELETE with a resource", writeEntry("DELETE", "Flag/abc", flag()), []problem{inv(".resource")}},
		{"DELETE by a bad condition", writeEntry("DELETE", "Flag?"+condition(""), nil), []problem{{cpis.InvalidValue, at + ".request.url"}}},
		{"DELETE of everything", writeEntry("DELETE", "Flag", nil), []problem{inv(".request.url")}},
		{"entry search", func() map[string]any {
			e := writeEntry("POST", "Flag", flag())
			e["search"] = map[string]any{"mode": "match"}
			return e
		}(), []problem{inv(".search")}},
		{"entry response", func() map[string]any {
			e := writeEntry("POST", "Flag", flag())
			e["response"] = map[string]any{"status": "201"}
			return e
		}(), []problem{inv(".response")}},
		{"entry link", func() map[string]any {
			e := writeEntry("POST", "Flag", flag())
			e["link"] = []any{map[string]any{"relation": "self", "url": "x"}}
			return e
		}(), []problem{inv(".link")}},
		{"request ifNoneMatch", withRequest(writeEntry("PUT", "Flag?"+condition("HK-1"), flag()), "ifNoneMatch", `W/"1"`), []problem{inv(".request.ifNoneMatch")}},
		{"request extension", withRequest(writeEntry("POST", "Flag", flag()), "extension", []any{map[string]any{"url": "urn:x", "valueString": "x"}}), []problem{inv(".request.extension")}},
		{"unknown request element", withRequest(writeEntry("POST", "Flag", flag()), "foo", 1), []problem{inv(".request.foo")}},
		{"unknown entry element", func() map[string]any {
			e := writeEntry("POST", "Flag", flag())
			e["foo"] = 1
			return e
		}(), []problem{inv(".foo")}},
		{"Flag refused by the allow-list and the profile", writeEntry("POST", "Flag", flag(set("text", map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">x</div>`}),
			setIn("9990276578", "subject", "identifier", "value"), del("author"))),
			[]problem{inv(".resource.text"), {cpis.InvalidNHSNumber, at + ".resource.subject.identifier.value"}, inv(".resource.author")}},
		{"Flag with an extension refused", writeEntry("POST", "Flag", flag(addExtension(map[string]any{"url": "http://example.org/x", "valueCode": "neglect"}))),
			[]problem{inv(".resource.extension[3].valueCode"), inv(".resource.extension")}},
		{"Flag jsonformat refuses", writeEntry("POST", "Flag", flag(set("note", "x"), setIn("2026-13-01", "period", "start"))),
			[]problem{inv(".resource.note"), inv(".resource.period.start")}},
		{"Flag contained", writeEntry("POST", "Flag", flag(set("contained", []any{map[string]any{"resourceType": "Zebedee"}}))), []problem{inv(".resource.contained")}},
		{"Flag reference refused", writeEntry("POST", "Flag", flag(set("identifier", []any{planRef("HK 1")}))), []problem{inv(".resource.identifier")}},
		{"Flag of a bad method", writeEntry("GET", "Flag", flag(del("period"))), []problem{{cpis.NotSupported, at + ".request.method"}, inv(".resource.period")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := writeEntry("POST", "Flag", referencedFlag(t, "HK-0"))
			body := mustJSON(t, map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{good, tt.entry}})
			got, err := ParseWriteBundle(body, 10)
			if err != nil {
				t.Fatalf("ParseWriteBundle: %v", err)
			}
			if len(got.Entries) != 2 || got.Entries[0].Err != nil || got.Entries[0].Plan.Reference != "HK-0" {
				t.Fatalf("the good entry: %+v", got.Entries[0])
			}
			e := got.Entries[1]
			if diff := cmp.Diff(tt.want, problemsOf(t, e.Err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(cpis.Plan{}, e.Plan); diff != "" {
				t.Errorf("a refused entry must give the zero plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseWriteBundleDepth: a deeply nested entry is refused, not recursed
// into, and only that entry fails.
func TestParseWriteBundleDepth(t *testing.T) {
	flag := referencedFlag(t, "HK-1")
	flag["extension"] = deep(200)
	got, err := ParseWriteBundle(writeBundle(t, "batch", writeEntry("POST", "Flag", flag), writeEntry("DELETE", "Flag/abc", nil)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Entries[0].Err == nil || got.Entries[1].Err != nil {
		t.Fatalf("entries: %+v", got.Entries)
	}
	for _, p := range problemsOf(t, got.Entries[0].Err) {
		if !strings.HasPrefix(p.Expr, "Bundle.entry[0].resource") {
			t.Errorf("problem at %s", p.Expr)
		}
	}
}

// deep is an extension list nested n levels.
func deep(n int) []any {
	e := []any{map[string]any{"url": "urn:x", "valueString": "x"}}
	for range n {
		e = []any{map[string]any{"url": "urn:x", "extension": e}}
	}
	return e
}

// TestParseWriteBundleRefuses: problems of the Bundle itself fail the whole
// parse.
func TestParseWriteBundleRefuses(t *testing.T) {
	entry := writeEntry("DELETE", "Flag/abc", nil)
	tests := []struct {
		name string
		body string
		max  int
		want []problem
	}{
		{"empty", "", 0, []problem{{cpis.Invalid, "Bundle"}}},
		{"malformed", `{"resourceType":"Bundle",`, 0, []problem{{cpis.Invalid, "Bundle"}}},
		{"array", `[]`, 0, []problem{{cpis.Invalid, "Bundle"}}},
		{"a Flag", string(readExample(t, "flag-cpp.json")), 0, []problem{{cpis.Invalid, "Bundle.resourceType"}}},
		{"no type", `{"resourceType":"Bundle"}`, 0, []problem{{cpis.Invalid, "Bundle.type"}}},
		{"searchset", `{"resourceType":"Bundle","type":"searchset"}`, 0, []problem{{cpis.Invalid, "Bundle.type"}}},
		{"history", `{"resourceType":"Bundle","type":"history"}`, 0, []problem{{cpis.Invalid, "Bundle.type"}}},
		{"not a type", `{"resourceType":"Bundle","type":"batchy"}`, 0, []problem{{cpis.Invalid, "Bundle.type"}}},
		{"id and meta", `{"resourceType":"Bundle","type":"batch","id":"b1","meta":{"lastUpdated":"2026-11-02T09:30:15Z"}}`, 0,
			[]problem{{cpis.Invalid, "Bundle.id"}, {cpis.Invalid, "Bundle.meta"}}},
		{"total and link", `{"resourceType":"Bundle","type":"transaction","total":1,"link":[{"relation":"self","url":"x"}]}`, 0,
			[]problem{{cpis.Invalid, "Bundle.link"}, {cpis.Invalid, "Bundle.total"}}},
		{"unknown element", `{"resourceType":"Bundle","type":"batch","foo":1}`, 0, []problem{{cpis.Invalid, "Bundle.foo"}}},
		{"entry an object", `{"resourceType":"Bundle","type":"batch","entry":{}}`, 0, []problem{{cpis.Invalid, "Bundle.entry"}}},
		{"entry null", `{"resourceType":"Bundle","type":"batch","entry":null}`, 0, []problem{{cpis.Invalid, "Bundle.entry"}}},
		{"too many", string(writeBundle(t, "batch", entry, entry, entry)), 2, []problem{{cpis.TooLarge, "Bundle.entry"}}},
		{"too many and a bad type", string(writeBundle(t, "searchset", entry, entry, entry)), 2, []problem{{cpis.TooLarge, "Bundle.entry"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWriteBundle([]byte(tt.body), tt.max)
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if got.Entries != nil || got.Transaction {
				t.Errorf("a refused Bundle gave %+v", got)
			}
		})
	}
}

// TestParseWriteBundleMaxEntries: below 1, the limit is the default.
func TestParseWriteBundleMaxEntries(t *testing.T) {
	entries := make([]map[string]any, DefaultMaxBundleEntries+1)
	for i := range entries {
		entries[i] = writeEntry("DELETE", "Flag/p"+strconv.Itoa(i), nil)
	}
	if _, err := ParseWriteBundle(writeBundle(t, "batch", entries...), 0); cpis.KindOf(err) != cpis.TooLarge {
		t.Errorf("%d entries: %v, want TooLarge", len(entries), err)
	}
	got, err := ParseWriteBundle(writeBundle(t, "batch", entries[1:]...), -1)
	if err != nil || len(got.Entries) != DefaultMaxBundleEntries || got.Entries[999].ID != "p1000" {
		t.Errorf("%d entries: %d read, %v", DefaultMaxBundleEntries, len(got.Entries), err)
	}
}

// TestParseWriteBundleNeverEchoes: no message repeats a value the client sent.
func TestParseWriteBundleNeverEchoes(t *testing.T) {
	const secret = "Zebedee9990276578"
	flag := referencedFlag(t, "HK-1")
	flag["subject"].(map[string]any)["identifier"].(map[string]any)["value"] = "9990276578"
	for name, e := range map[string]map[string]any{
		"url":           writeEntry("PUT", "Flag/"+secret+"/x", flag),
		"condition":     writeEntry("PUT", "Flag?identifier="+secret, flag),
		"ifNoneExist":   withRequest(writeEntry("POST", "Flag", flag), "ifNoneExist", condition(secret+"!")),
		"ifMatch":       withRequest(writeEntry("PUT", "Flag/abc", flag), "ifMatch", secret),
		"method":        writeEntry(secret, "Flag", flag),
		"resource type": writeEntry("POST", "Flag", map[string]any{"resourceType": secret}),
		"unknown key":   withRequest(writeEntry("POST", "Flag", flag), secret, 1),
		"fullUrl":       func() map[string]any { e := writeEntry("POST", "Flag", flag); e["fullUrl"] = 7; return e }(),
	} {
		t.Run(name, func(t *testing.T) {
			b, err := ParseWriteBundle(writeBundle(t, "batch", e), 0)
			if err == nil {
				err = b.Entries[0].Err
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, e := range unjoin(err) {
				if s := e.Error(); strings.Contains(s, "Zebedee") || strings.Contains(s, "9990276578") {
					t.Errorf("message repeats input: %s", s)
				}
			}
		})
	}
	_, err := ParseWriteBundle([]byte(`{"resourceType":"`+secret+`"}`), 0)
	if err == nil || strings.Contains(err.Error(), "Zebedee") {
		t.Errorf("resourceType: %v", err)
	}
}

func TestParseETag(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{`W/"3"`, 3, true}, {`"3"`, 3, true}, {"3", 3, true}, {` W/"12" `, 12, true},
		{"", 0, false}, {`W/"0"`, 0, false}, {"-1", -1, false}, {`W/"x"`, 0, false}, {"*", 0, false},
	}
	for _, tt := range tests {
		if got, ok := ParseETag(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("ParseETag(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if v, ok := ParseETag(ETag(42)); v != 42 || !ok {
		t.Errorf("ParseETag(ETag(42)) = %d, %v", v, ok)
	}
}
