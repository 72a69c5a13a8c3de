package fhir

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestExamples parses each file in examples/ and applies the SOP's rules: the
// examples are what client developers copy, so they must pass both.
func TestExamples(t *testing.T) {
	for name, want := range examplePlans {
		t.Run(name, func(t *testing.T) {
			got, err := ParseFlag(readExample(t, name))
			if err != nil {
				t.Fatalf("ParseFlag: %v", err)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// Edits of the CPP example, each breaking or bending one rule.
func set(key string, v any) func(map[string]any) {
	return func(m map[string]any) { m[key] = v }
}

func del(key string) func(map[string]any) {
	return func(m map[string]any) { delete(m, key) }
}

func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

func setIn(v any, path ...string) func(map[string]any) {
	return func(m map[string]any) { obj(m, path[:len(path)-1]...)[path[len(path)-1]] = v }
}

func delIn(path ...string) func(map[string]any) {
	return func(m map[string]any) { delete(obj(m, path[:len(path)-1]...), path[len(path)-1]) }
}

func extensions(m map[string]any) []any { return m["extension"].([]any) }

func setExtension(i int, v any) func(map[string]any) {
	return func(m map[string]any) { extensions(m)[i] = v }
}

func addExtension(v any) func(map[string]any) {
	return func(m map[string]any) { m["extension"] = append(extensions(m), v) }
}

func codings(m map[string]any) []any { return obj(m, "code")["coding"].([]any) }

func setCoding(i int, v any) func(map[string]any) {
	return func(m map[string]any) { codings(m)[i] = v }
}

func coded(system, code string) map[string]any { return map[string]any{"system": system, "code": code} }

func planRef(ref string) map[string]any {
	return map[string]any{"system": LAReferenceSystem, "value": ref}
}

func phoneExt(url, system string) map[string]any {
	return map[string]any{"url": url, "valueContactPoint": map[string]any{"system": system, "value": "020 7946 0101"}}
}

func TestParseFlagRefuses(t *testing.T) {
	inv := func(expr string) problem { return problem{cpis.Invalid, expr} }
	tests := []struct {
		name  string
		edits []func(map[string]any)
		want  []problem
	}{
		{"note (not a Flag element)", []func(map[string]any){set("note", []any{map[string]any{"text": "concerns"}})}, []problem{inv("Flag.note")}},
		{"unknown top-level element", []func(map[string]any){set("foo", 1)}, []problem{inv("Flag.foo")}},
		{"text", []func(map[string]any){set("text", map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">known to social care</div>`})}, []problem{inv("Flag.text")}},
		{"contained", []func(map[string]any){set("contained", []any{map[string]any{"resourceType": "RelatedPerson", "id": "mum", "patient": map[string]any{"reference": "Patient/1"}}})}, []problem{inv("Flag.contained")}},
		{"contained with unknown content", []func(map[string]any){set("contained", []any{map[string]any{"resourceType": "Patient", "x": 1, "name": []any{map[string]any{"family": 7}}}, map[string]any{"resourceType": "Nope"}})}, []problem{inv("Flag.contained")}},
		{"identifier of another system", []func(map[string]any){set("identifier", []any{map[string]any{"system": "urn:x", "value": "1"}})}, []problem{inv("Flag.identifier")}},
		{"identifier without a system", []func(map[string]any){set("identifier", []any{map[string]any{"value": "HK-1"}})}, []problem{inv("Flag.identifier")}},
		{"two identifiers", []func(map[string]any){set("identifier", []any{planRef("HK-1"), planRef("HK-2")})}, []problem{inv("Flag.identifier")}},
		{"reference without a value", []func(map[string]any){set("identifier", []any{map[string]any{"system": LAReferenceSystem}})}, []problem{inv("Flag.identifier")}},
		{"reference too long", []func(map[string]any){set("identifier", []any{planRef(strings.Repeat("x", 65))})}, []problem{inv("Flag.identifier")}},
		{"reference with a space", []func(map[string]any){set("identifier", []any{planRef("HK 1")})}, []problem{inv("Flag.identifier")}},
		{"reference with a bar", []func(map[string]any){set("identifier", []any{planRef("HK|1")})}, []problem{inv("Flag.identifier")}},
		{"identifier use", []func(map[string]any){set("identifier", []any{map[string]any{"use": "official", "system": LAReferenceSystem, "value": "HK-1"}})}, []problem{inv("Flag.identifier[0].use")}},
		{"identifier assigner", []func(map[string]any){set("identifier", []any{map[string]any{"system": LAReferenceSystem, "value": "HK-1", "assigner": map[string]any{"display": "Hackney"}}})}, []problem{inv("Flag.identifier[0].assigner")}},
		{"encounter", []func(map[string]any){set("encounter", map[string]any{"reference": "Encounter/1"})}, []problem{inv("Flag.encounter")}},
		{"implicitRules", []func(map[string]any){set("implicitRules", "http://example.org/rules")}, []problem{inv("Flag.implicitRules")}},
		{"language", []func(map[string]any){set("language", "en-GB")}, []problem{inv("Flag.language")}},
		{"meta.security", []func(map[string]any){set("meta", map[string]any{"security": []any{coded("urn:x", "R")}})}, []problem{inv("Flag.meta.security")}},
		{"meta.profile other", []func(map[string]any){set("meta", map[string]any{"profile": []any{"http://example.org/StructureDefinition/other"}})}, []problem{inv("Flag.meta.profile")}},
		{"unknown extension", []func(map[string]any){addExtension(map[string]any{"url": "http://example.org/cpp-category", "valueString": "neglect"})}, []problem{inv("Flag.extension[3].valueString"), inv("Flag.extension")}},
		{"modifierExtension", []func(map[string]any){set("modifierExtension", []any{map[string]any{"url": "http://example.org/x", "valueBoolean": true}})}, []problem{inv("Flag.modifierExtension")}},
		{"extension on an element", []func(map[string]any){set("_status", map[string]any{"extension": []any{map[string]any{"url": "http://example.org/x", "valueString": "neglect"}}})}, []problem{inv("Flag.status.extension")}},
		{"element id", []func(map[string]any){setIn("p1", "period", "id")}, []problem{inv("Flag.period.id")}},
		{"extension inside an extension", []func(map[string]any){func(m map[string]any) {
			extensions(m)[0].(map[string]any)["extension"] = []any{map[string]any{"url": "http://example.org/x", "valueString": "x"}}
		}}, []problem{inv("Flag.extension[0].extension")}},
		{"contact point rank", []func(map[string]any){func(m map[string]any) {
			extensions(m)[1].(map[string]any)["valueContactPoint"].(map[string]any)["rank"] = 1
		}}, []problem{inv("Flag.extension[1].valueContactPoint.rank")}},
		{"status missing", []func(map[string]any){del("status")}, []problem{inv("Flag.status")}},
		{"status entered-in-error", []func(map[string]any){set("status", "entered-in-error")}, []problem{inv("Flag.status")}},
		{"category neglect added", []func(map[string]any){func(m map[string]any) {
			m["category"] = append(m["category"].([]any), map[string]any{"coding": []any{coded("http://example.org/cpp-category", "neglect")}})
		}}, []problem{inv("Flag.category")}},
		{"category neglect instead", []func(map[string]any){set("category", []any{map[string]any{"coding": []any{coded("http://example.org/cpp-category", "neglect")}}})}, []problem{inv("Flag.category")}},
		{"category second coding", []func(map[string]any){func(m map[string]any) {
			c := m["category"].([]any)[0].(map[string]any)
			c["coding"] = append(c["coding"].([]any), coded("http://example.org/cpp-category", "neglect"))
		}}, []problem{inv("Flag.category")}},
		{"category wrong display", []func(map[string]any){func(m map[string]any) {
			m["category"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["display"] = "Neglect"
		}}, []problem{inv("Flag.category")}},
		{"category missing", []func(map[string]any){del("category")}, []problem{inv("Flag.category")}},
		{"category text", []func(map[string]any){func(m map[string]any) { m["category"].([]any)[0].(map[string]any)["text"] = "neglect" }}, []problem{inv("Flag.category[0].text")}},
		{"code missing", []func(map[string]any){del("code")}, []problem{inv("Flag.code")}},
		{"code contradicting SNOMED", []func(map[string]any){setCoding(1, coded(SNOMEDSystem, snomedCLA))}, []problem{inv("Flag.code")}},
		{"code other SNOMED concept", []func(map[string]any){setCoding(1, coded(SNOMEDSystem, "224353004"))}, []problem{inv("Flag.code")}},
		{"code other system", []func(map[string]any){setCoding(1, coded("http://example.org/cpp-category", "neglect"))}, []problem{inv("Flag.code")}},
		{"code SNOMED only", []func(map[string]any){func(m map[string]any) { obj(m, "code")["coding"] = codings(m)[1:] }, delIn("code", "text")}, []problem{inv("Flag.code")}},
		{"code unknown plan type", []func(map[string]any){setCoding(0, coded(PlanTypeSystem, "XYZ")), delIn("code", "text")}, []problem{inv("Flag.code")}},
		{"code two plan types", []func(map[string]any){setCoding(1, coded(PlanTypeSystem, "CLA"))}, []problem{inv("Flag.code")}},
		{"code UCPP with SNOMED", []func(map[string]any){setCoding(0, coded(PlanTypeSystem, "UCPP")), delIn("code", "text")}, []problem{inv("Flag.code")}},
		{"code free text", []func(map[string]any){setIn("physical abuse", "code", "text")}, []problem{inv("Flag.code.text")}},
		{"code coding version", []func(map[string]any){func(m map[string]any) { codings(m)[0].(map[string]any)["version"] = "1" }}, []problem{inv("Flag.code.coding[0].version")}},
		{"subject missing", []func(map[string]any){del("subject")}, []problem{inv("Flag.subject")}},
		{"subject reference", []func(map[string]any){setIn("Patient/9990276579", "subject", "reference")}, []problem{inv("Flag.subject.reference")}},
		{"subject display", []func(map[string]any){setIn("Jane Doe", "subject", "display")}, []problem{inv("Flag.subject.display")}},
		{"subject type", []func(map[string]any){setIn("Group", "subject", "type")}, []problem{inv("Flag.subject.type")}},
		{"NHS number check digit", []func(map[string]any){setIn("9990276578", "subject", "identifier", "value")}, []problem{{cpis.InvalidNHSNumber, "Flag.subject.identifier.value"}}},
		{"NHS number 9 digits", []func(map[string]any){setIn("999027657", "subject", "identifier", "value")}, []problem{{cpis.InvalidNHSNumber, "Flag.subject.identifier.value"}}},
		{"NHS number missing", []func(map[string]any){delIn("subject", "identifier", "value")}, []problem{{cpis.InvalidNHSNumber, "Flag.subject.identifier.value"}}},
		{"NHS number system", []func(map[string]any){setIn("https://fhir.nhs.uk/Id/local", "subject", "identifier", "system")}, []problem{inv("Flag.subject.identifier.system")}},
		{"NHS number no system", []func(map[string]any){delIn("subject", "identifier", "system")}, []problem{inv("Flag.subject.identifier.system")}},
		{"subject identifier use", []func(map[string]any){setIn("official", "subject", "identifier", "use")}, []problem{inv("Flag.subject.identifier.use")}},
		{"period missing", []func(map[string]any){del("period")}, []problem{inv("Flag.period")}},
		{"start with a time", []func(map[string]any){setIn("2026-06-01T10:00:00Z", "period", "start")}, []problem{inv("Flag.period.start")}},
		{"end partial", []func(map[string]any){setIn("2027-06", "period", "end")}, []problem{inv("Flag.period.end")}},
		{"end missing", []func(map[string]any){delIn("period", "end")}, []problem{inv("Flag.period.end")}},
		{"start not a date", []func(map[string]any){setIn("2026-13-01", "period", "start")}, []problem{inv("Flag.period.start")}},
		{"author missing", []func(map[string]any){del("author")}, []problem{inv("Flag.author")}},
		{"author reference", []func(map[string]any){setIn("Organization/ZLA01", "author", "reference")}, []problem{inv("Flag.author.reference")}},
		{"author system", []func(map[string]any){setIn("https://example.org/la", "author", "identifier", "system")}, []problem{inv("Flag.author.identifier.system")}},
		{"author code missing", []func(map[string]any){delIn("author", "identifier", "value")}, []problem{inv("Flag.author.identifier.value")}},
		{"author name with a bidi override", []func(map[string]any){setIn("London Borough of Hackney\u202e", "author", "display")}, []problem{inv("Flag.author.display")}},
		{"author name as a sentence", []func(map[string]any){setIn(strings.Repeat("Father is violent, call 07700 900123. ", 5), "author", "display")}, []problem{inv("Flag.author.display")}},
		{"author type", []func(map[string]any){setIn("Practitioner", "author", "type")}, []problem{inv("Flag.author.type")}},
		{"emergency phone missing", []func(map[string]any){func(m map[string]any) { m["extension"] = extensions(m)[1:] }}, []problem{inv(emergencyExpr)}},
		{"emergency phone email", []func(map[string]any){setExtension(0, phoneExt(EmergencyPhoneURL, "email"))}, []problem{inv(emergencyExpr)}},
		{"emergency phone use home", []func(map[string]any){func(m map[string]any) {
			extensions(m)[0].(map[string]any)["valueContactPoint"].(map[string]any)["use"] = "home"
		}}, []problem{inv(emergencyExpr)}},
		{"emergency phone as string", []func(map[string]any){setExtension(0, map[string]any{"url": EmergencyPhoneURL, "valueString": "020 7946 0101"})}, []problem{inv("Flag.extension[0].valueString"), inv(emergencyExpr)}},
		{"office phone twice", []func(map[string]any){addExtension(phoneExt(OfficePhoneURL, "phone"))}, []problem{inv(officeExpr)}},
		{"birth date with time", []func(map[string]any){setExtension(2, map[string]any{"url": ChildBirthDateURL, "valueDateTime": "2014-03-15T00:00:00Z"})}, []problem{inv("Flag.extension[2].valueDateTime"), inv(birthExpr)}},
		{"birth date partial", []func(map[string]any){setExtension(2, map[string]any{"url": ChildBirthDateURL, "valueDate": "2014-03"})}, []problem{inv(birthExpr)}},
		{"several problems at once", []func(map[string]any){set("text", map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">x</div>`}), setIn("9990276578", "subject", "identifier", "value"), del("author")},
			[]problem{inv("Flag.text"), {cpis.InvalidNHSNumber, "Flag.subject.identifier.value"}, inv("Flag.author")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := exampleObject(t)
			for _, edit := range tt.edits {
				edit(m)
			}
			p, err := ParseFlag(mustJSON(t, m))
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(cpis.Plan{}, p); diff != "" {
				t.Errorf("a refused Flag must give the zero plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseFlagEnvelope covers bodies that are not a Flag object at all.
func TestParseFlagEnvelope(t *testing.T) {
	tests := []struct {
		name, body string
		want       problem
	}{
		{"empty", "", problem{cpis.Invalid, "Flag"}},
		{"blank", " \n", problem{cpis.Invalid, "Flag"}},
		{"malformed", `{"resourceType": "Flag",`, problem{cpis.Invalid, "Flag"}},
		{"trailing data", `{"resourceType": "Flag"} {}`, problem{cpis.Invalid, "Flag"}},
		{"array", `[{"resourceType": "Flag"}]`, problem{cpis.Invalid, "Flag"}},
		{"null", `null`, problem{cpis.Invalid, "Flag"}},
		{"string", `"Flag"`, problem{cpis.Invalid, "Flag"}},
		{"no resourceType", `{"status": "active"}`, problem{cpis.Invalid, "Flag.resourceType"}},
		{"wrong resourceType", `{"resourceType": "Patient"}`, problem{cpis.Invalid, "Flag.resourceType"}},
		{"resourceType not a string", `{"resourceType": 7}`, problem{cpis.Invalid, "Flag.resourceType"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseFlag([]byte(tt.body))
			if diff := cmp.Diff([]problem{tt.want}, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseFlagAccepts covers optional elements a client may leave out or send.
func TestParseFlagAccepts(t *testing.T) {
	tests := []struct {
		name  string
		edits []func(map[string]any)
		want  func(*cpis.Plan)
	}{
		{"as is", nil, func(*cpis.Plan) {}},
		{"status inactive", []func(map[string]any){set("status", "inactive")}, func(*cpis.Plan) {}},
		{"id and meta of a read", []func(map[string]any){set("id", "abc-123"), set("meta", map[string]any{"versionId": "4", "lastUpdated": "2026-11-02T09:30:15.123Z", "profile": []any{FlagProfileURL}})},
			func(p *cpis.Plan) { p.ID = "abc-123" }},
		{"no office phone", []func(map[string]any){func(m map[string]any) { m["extension"] = []any{extensions(m)[0], extensions(m)[2]} }},
			func(p *cpis.Plan) { p.OfficePhone = "" }},
		{"no SNOMED, no displays, no text, no types, no use", []func(map[string]any){
			func(m map[string]any) { obj(m, "code")["coding"] = []any{coded(PlanTypeSystem, "CPP")} },
			delIn("code", "text"), delIn("subject", "type"), delIn("author", "type"),
			set("category", []any{map[string]any{"coding": []any{coded(FlagCategorySystem, FlagCategoryCode)}}}),
			func(m map[string]any) {
				delete(extensions(m)[0].(map[string]any)["valueContactPoint"].(map[string]any), "use")
			},
		}, func(*cpis.Plan) {}},
		{"no author name: the register supplies it", []func(map[string]any){delIn("author", "display")},
			func(p *cpis.Plan) { p.LA.Name = "" }},
		{"the LA's reference", []func(map[string]any){set("identifier", []any{planRef("HK-CP-2026.0042_a")})},
			func(p *cpis.Plan) { p.Reference = "HK-CP-2026.0042_a" }},
		{"the LA's reference, 64 characters", []func(map[string]any){set("identifier", []any{planRef(strings.Repeat("A-9.", 16))})},
			func(p *cpis.Plan) { p.Reference = strings.Repeat("A-9.", 16) }},
		{"extensions in another order", []func(map[string]any){func(m map[string]any) {
			e := extensions(m)
			m["extension"] = []any{e[2], e[1], e[0]}
		}}, func(*cpis.Plan) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := exampleObject(t)
			for _, edit := range tt.edits {
				edit(m)
			}
			want := examplePlans["flag-cpp.json"]
			tt.want(&want)
			got, err := ParseFlag(mustJSON(t, m))
			if err != nil {
				t.Fatalf("ParseFlag: %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseFlagNeverEchoes makes sure no message repeats a value the client
// sent: NHS numbers, names and free text must not reach logs.
func TestParseFlagNeverEchoes(t *testing.T) {
	const secret = "Zebedee9990276578"
	tests := map[string][]func(map[string]any){
		"NHS number":        {setIn("9990276578", "subject", "identifier", "value")},
		"subject display":   {setIn(secret, "subject", "display")},
		"resourceType":      {set("resourceType", secret)},
		"code text":         {setIn(secret, "code", "text")},
		"unknown extension": {addExtension(map[string]any{"url": "http://example.org/" + secret, "valueString": secret})},
		"bad date":          {setIn(secret, "period", "start")},
		"bad id":            {set("id", secret+" !")},
		"unknown key value": {set("unknown", secret)},
		"unknown key":       {set(secret, 1)},
		"bad code value":    {set("status", secret)},
		"contained type":    {set("contained", []any{map[string]any{"resourceType": secret}})},
		"reference value":   {set("identifier", []any{planRef(secret + " !")})},
		"identifier system": {set("identifier", []any{map[string]any{"system": "urn:" + secret, "value": "1"}})},
		"contained element": {set("contained", []any{map[string]any{"resourceType": "Patient", secret: 1, "name": []any{map[string]any{"family": 7}}}})},
	}
	for name, edits := range tests {
		t.Run(name, func(t *testing.T) {
			m := exampleObject(t)
			for _, edit := range edits {
				edit(m)
			}
			_, err := ParseFlag(mustJSON(t, m))
			if err == nil {
				t.Fatal("ParseFlag accepted the body")
			}
			for _, e := range unjoin(err) {
				if s := e.Error(); strings.Contains(s, "9990276578") || strings.Contains(s, "Zebedee") {
					t.Errorf("message repeats input: %s", s)
				}
			}
		})
	}
}

// TestParseFlagMalformedNeverEchoes: the JSON parser's reason is given
// without the character it quotes.
func TestParseFlagMalformedNeverEchoes(t *testing.T) {
	for _, body := range []string{`{"resourceType":"Flag", Zebedee}`, `{"resourceType":"Flag"} Zebedee`, `Zebedee`} {
		t.Run(body, func(t *testing.T) {
			_, err := ParseFlag([]byte(body))
			if err == nil {
				t.Fatal("ParseFlag accepted the body")
			}
			if s := err.Error(); strings.Contains(s, "Z") || !strings.Contains(s, "invalid character") {
				t.Errorf("message = %q; want the parser's reason without the character", s)
			}
		})
	}
}

// TestParseFlagDepth makes sure a deeply nested body is refused, not recursed into.
func TestParseFlagDepth(t *testing.T) {
	body := `{"resourceType":"Flag","extension":[` + strings.Repeat(`{"url":"http://x","extension":[`, 200) + strings.Repeat(`]}`, 200) + `]}`
	if _, err := ParseFlag([]byte(body)); err == nil {
		t.Fatal("ParseFlag accepted a 200-level body")
	}
}

// TestFlagReference: the reference of a Flag that ParseFlag refused is
// still found, leniently: it only ever protects a plan.
func TestFlagReference(t *testing.T) {
	tests := []struct {
		name  string
		edits []func(map[string]any)
		want  string
	}{
		{"accepted Flag", []func(map[string]any){set("identifier", []any{planRef("HK-1")})}, "HK-1"},
		{"refused Flag", []func(map[string]any){set("identifier", []any{planRef("HK-1")}), set("note", "x"), setIn("x", "period", "start")}, "HK-1"},
		{"no identifier", nil, ""},
		{"two references: the first", []func(map[string]any){set("identifier", []any{planRef("HK-1"), planRef("HK-2")})}, "HK-1"},
		{"after another system", []func(map[string]any){set("identifier", []any{map[string]any{"system": "urn:x", "value": "X"}, planRef("HK-1")})}, "HK-1"},
		{"after an invalid reference", []func(map[string]any){set("identifier", []any{planRef("HK 1"), planRef("HK-1")})}, "HK-1"},
		{"not a Flag", []func(map[string]any){set("resourceType", "Patient"), set("identifier", []any{planRef("HK-1")})}, "HK-1"},
		{"another system", []func(map[string]any){set("identifier", []any{map[string]any{"system": "urn:x", "value": "HK-1"}})}, ""},
		{"invalid reference", []func(map[string]any){set("identifier", []any{planRef("HK 1")})}, ""},
		{"identifier not an array", []func(map[string]any){set("identifier", planRef("HK-1"))}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := exampleObject(t)
			for _, edit := range tt.edits {
				edit(m)
			}
			got, ok := FlagReference(mustJSON(t, m))
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("FlagReference = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
	for _, body := range []string{"", "{", "null", "[]", `{"resourceType":"Flag","identifier":[{"system":1}]}`} {
		if got, ok := FlagReference([]byte(body)); ok || got != "" {
			t.Errorf("FlagReference(%q) = %q, %v", body, got, ok)
		}
	}
}
