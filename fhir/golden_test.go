package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/profiles"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const testBase = "https://cpis.test/fhir"

// goldenSearchset is the searchset Bundle whose JSON is pinned in
// testdata/searchset.json: two matches, a next page, a warning and a total.
func goldenSearchset() Searchset {
	p := storedPlan()
	cla := examplePlans["flag-cla.json"]
	cla.ID, cla.Version, cla.LastUpdated = "0d6f1b7e-8a1c-4d4e-b1a3-6c2f9d0e7b12", 1, time.Date(2026, 4, 20, 8, 0, 0, 0, time.UTC)
	total := 2
	return Searchset{
		BaseURL: testBase,
		Self:    testBase + "/Flag?patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990276579&_count=2",
		// The cursor of a next link is opaque to this package: this is the one
		// fhir/search writes after the CLA, as of 2026-11-15T09:00:00Z.
		Next: testBase + "/Flag?patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9990276579&_count=2" +
			"&_cursor=AUYABmBM4tpEAAAGT9-vcUAAMGQ2ZjFiN2UtOGExYy00ZDRlLWIxYTMtNmMyZjlkMGU3YjEy",
		Entries: []proto.Message{FlagResource(p, today, cpis.HealthView), FlagResource(cla, today, cpis.HealthView)},
		Warnings: []*cpis.Error{{Kind: cpis.InvalidSearch, Expression: "_elements",
			Msg: "_elements is not supported and was ignored"}},
		Total: &total,
	}
}

// goldenJSON renders each resource whose JSON is pinned in testdata/.
func goldenJSON() map[string]func() ([]byte, error) {
	m := map[string]func() ([]byte, error){
		"searchset.json": func() ([]byte, error) { return MarshalSearchset(goldenSearchset()) },
	}
	for name, r := range goldenResources() {
		m[name] = func() ([]byte, error) { return MarshalResource(r) }
	}
	return m
}

// goldenResources are the resources, built as protos, whose JSON is pinned
// in testdata/.
func goldenResources() map[string]proto.Message {
	p := storedPlan()
	return map[string]proto.Message{
		"flag.json":                FlagResource(p, today, cpis.OwnerView),
		"careteam.json":            CareTeamResource(p, today),
		"history.json":             HistoryBundle(testBase, history(p), today, cpis.OwnerView),
		"history-feed.json":        FeedBundle(goldenFeed()),
		"communication.json":       CommunicationResource(sampleASN(), asnStamp),
		"auditevent.json":          AuditEventResource(healthSearchRecord(), testBase),
		"auditevent-la.json":       AuditEventResource(laCreateRecord(), testBase),
		"practitionerrole.json":    PractitionerRoleResource(healthSearchRecord().Actor),
		"operationoutcome.json":    OperationOutcome(sampleProblems()),
		"capabilitystatement.json": CapabilityStatement(testBase, "1.2.3", Security{CORS: true, AuthorizeURL: "https://issuer.test/authorize", TokenURL: "https://issuer.test/token"}),
		"batch-response.json":      BatchResponse(false, batchResults()),
		"transaction-response.json": BatchResponse(true, []EntryResult{
			{Status: http.StatusCreated, ID: "0d6f1b7e-8a1c-4d4e-b1a3-6c2f9d0e7b12", Version: 1, LastModified: p.LastUpdated},
			{Status: http.StatusOK, ID: p.ID, Version: 3, LastModified: p.LastUpdated},
		}),
		"operationoutcome-transaction.json": RecordOutcome(InEntry(2, []*cpis.Error{
			{Op: "cpis.Plan.Validate", Kind: cpis.Invalid, Expression: "Flag.period.end", Msg: "the end date is before the start date"},
		})),
		"parameters-import.json": ImportParameters(importReport()),
	}
}

// batchResults are the results of a batch of six entries: a create, a
// conditional update, a withdrawal, and three failures (a plan not found,
// an entry the parser refused, a plan the rules refused).
func batchResults() []EntryResult {
	p := storedPlan()
	return []EntryResult{
		{Status: http.StatusCreated, ID: "0d6f1b7e-8a1c-4d4e-b1a3-6c2f9d0e7b12", Version: 1, LastModified: p.LastUpdated},
		{Status: http.StatusOK, ID: p.ID, Version: 3, LastModified: p.LastUpdated.Add(time.Second)},
		{Status: http.StatusNoContent, ID: p.ID, Version: 4, LastModified: p.LastUpdated.Add(2 * time.Second)},
		{Problems: []*cpis.Error{{Op: "register.DeletePlan", Kind: cpis.NotFound, Msg: "no plan of yours has this reference"}}},
		{Problems: []*cpis.Error{
			{Op: "fhir.ParseWriteBundle", Kind: cpis.InvalidNHSNumber, Expression: "Bundle.entry[4].resource.subject.identifier.value", Msg: "the subject's NHS number is not valid: 10 digits passing the Modulus 11 check"},
			{Op: "fhir.ParseWriteBundle", Kind: cpis.Invalid, Expression: "Bundle.entry[4].resource.note", Msg: "unknown element: it is not part of a FHIR R4 Flag"},
		}},
		{Problems: []*cpis.Error{{Op: "cpis.Plan.Validate", Kind: cpis.Invalid, Expression: "Flag.extension('child-birth-date')", Msg: "a CPP or CLA plan needs the child's date of birth to check the 18th-birthday rule"}}},
	}
}

// importReport is a full import that loaded some lines and refused two.
func importReport() ImportReport {
	return ImportReport{
		Mode: "full", Created: 12, Updated: 3, Unchanged: 140, Ended: 2, Rejected: 2, NotReconciled: 5,
		Rejections: []Rejection{
			{Line: 7, Problem: &cpis.Error{Op: "fhir.ParseFlag", Kind: cpis.InvalidNHSNumber, Expression: "Flag.subject.identifier.value", Msg: "the subject's NHS number is not valid: 10 digits passing the Modulus 11 check"}},
			{Line: 31, Problem: &cpis.Error{Op: "register.Import", Kind: cpis.Conflict, Msg: "the file names this plan reference twice"}},
		},
	}
}

// history is p's versions, newest first: created, updated, deleted.
func history(p cpis.Plan) []cpis.Plan {
	v1, v2, v3 := p, p, p
	v1.Version, v1.LastUpdated, v1.OfficePhone = 1, p.LastUpdated.Add(-48*time.Hour), ""
	v2.Version = 2
	v3.Version, v3.LastUpdated, v3.EnteredInError = 3, p.LastUpdated.Add(time.Hour), true
	return []cpis.Plan{v3, v2, v1}
}

func healthSearchRecord() cpis.AuditRecord {
	return cpis.AuditRecord{
		ID:          "a3e1c2d4-0000-4000-8000-000000000001",
		Recorded:    time.Date(2026, 11, 15, 14, 3, 7, 250000000, time.UTC),
		Action:      cpis.ActionExecute,
		Interaction: "search-type",
		Outcome:     cpis.OutcomeSuccess,
		Actor: cpis.Actor{
			Kind: cpis.HealthUser, UserID: "555000000001", Name: "Dr Alex Example",
			RoleProfileID: "555000000011", RoleCode: "S8000:G8000:R8000", RoleName: "Clinical Practitioner Access Role",
			OrgCode: "ZT001", OrgName: "Example Hospitals NHS Trust",
		},
		Patient:     "9990276579",
		PlanIDs:     []string{"5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01"},
		Query:       "/Flag?patient=9990276579",
		RequestID:   "7c9e6679-7425-40de-944b-e07fc1f90ae7",
		TraceID:     "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
		Access:      true,
		Unscheduled: true,
	}
}

func laCreateRecord() cpis.AuditRecord {
	return cpis.AuditRecord{
		ID:          "a3e1c2d4-0000-4000-8000-000000000002",
		Recorded:    time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC),
		Action:      cpis.ActionCreate,
		Interaction: "create",
		Actor: cpis.Actor{
			Kind: cpis.LASystem, UserID: "la-zla01-casework", Name: "Hackney case management",
			OrgCode: "ZLA01", OrgName: "London Borough of Hackney and City of London",
		},
		Patient:   "9990276579",
		PlanIDs:   []string{"5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01"},
		RequestID: "0b6f3c1e-5a2d-4f7e-9c8b-1d2e3f4a5b6c",
	}
}

func sampleProblems() []*cpis.Error {
	return []*cpis.Error{
		{Op: "fhir.ParseFlag", Kind: cpis.InvalidNHSNumber, Expression: "Flag.subject.identifier.value", Msg: "the subject's NHS number is not valid: 10 digits passing the Modulus 11 check"},
		{Op: "cpis.Plan.Validate", Kind: cpis.Invalid, Expression: "Flag.period.end", Msg: "a CPP or CLA plan cannot end after the child's 18th birthday"},
	}
}

// TestGolden pins the JSON of each resource, checks that jsonformat's
// validating R4 reader accepts it, and that every canonical URL of ours in
// it is defined in profiles/.
func TestGolden(t *testing.T) {
	validator, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	defined := definedURLs()
	for name, render := range goldenJSON() {
		t.Run(name, func(t *testing.T) {
			b, err := render()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := validator.Unmarshal(b); err != nil {
				t.Errorf("our output is not valid FHIR R4: %v", err)
			}
			for _, u := range ourURLs(b) {
				if !defined[u] {
					t.Errorf("%s is used but not defined in profiles/", u)
				}
			}
			compareGolden(t, filepath.Join("testdata", name), indent(t, b))
		})
	}
}

func indent(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		tb.Fatal(err)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

func compareGolden(tb testing.TB, path string, got []byte) {
	tb.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		tb.Fatalf("%s is missing: run go test ./fhir -update", path)
	}
	if err != nil {
		tb.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		tb.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// definedURLs are the canonical URLs of the resources in profiles/.
func definedURLs() map[string]bool {
	m := map[string]bool{}
	for _, e := range profiles.All() {
		m[e.URL] = true
	}
	return m
}

// ourURL matches a canonical URL under CanonicalBase. Identifier systems
// (/Id/...) name namespaces of business identifiers, not conformance
// resources, so they are left out.
var ourURL = regexp.MustCompile(regexp.QuoteMeta(CanonicalBase) + `/(StructureDefinition|CodeSystem|ValueSet|SearchParameter|OperationDefinition)/[A-Za-z0-9.\-]+`)

func ourURLs(b []byte) []string { return ourURL.FindAllString(string(b), -1) }

// TestURLsDefined checks the exported canonical URLs, used or not.
func TestURLsDefined(t *testing.T) {
	defined := definedURLs()
	for _, u := range []string{
		FlagProfileURL, EmergencyPhoneURL, OfficePhoneURL, ChildBirthDateURL,
		PlanTypeSystem, PlanTypeValueSet, AccessTypeSystem, AccessTypeValueSet, AuditEntityTypeSystem,
		FlagCodeSearchURL, FlagStatusSearchURL, UploadRecordSystem, UploadFileSystem, ImportOperationURL,
		ASNProfileURL, NotificationTypeSystem, DiscrepancyReasonSystem,
	} {
		if !defined[u] {
			t.Errorf("%s is not defined in profiles/", u)
		}
	}
}

// TestCodeSystemsMatch checks that the codes and displays this package writes
// are those of our CodeSystems.
func TestCodeSystemsMatch(t *testing.T) {
	tests := []struct {
		id    string
		codes map[string]string
	}{
		{"cpis-plan-type", map[string]string{"CPP": cpis.CPP.Display(), "CLA": cpis.CLA.Display(), "UCPP": cpis.UCPP.Display()}},
		{"cpis-access-type", map[string]string{accessUnscheduledCode: accessUnscheduledLabel, accessScheduledCode: accessScheduledLabel}},
		{"cpis-audit-entity-type", map[string]string{traceIDCode: traceIDLabel}},
		{"cpis-upload-record-response", recordResponses},
		{"cpis-upload-file-response", fileResponses},
		{"cpis-notification-type", map[string]string{asnCategoryCode: asnCategoryDisplay, discrepancyCategoryCode: discrepancyCategoryDisplay}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			b, ok := profiles.Lookup("CodeSystem", tt.id)
			if !ok {
				t.Fatal("not in profiles/")
			}
			var cs struct {
				Concept []struct{ Code, Display string }
			}
			if err := json.Unmarshal(b, &cs); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, c := range cs.Concept {
				got[c.Code] = c.Display
			}
			if diff := cmp.Diff(tt.codes, got); diff != "" {
				t.Errorf("concepts (-ours +CodeSystem):\n%s", diff)
			}
		})
	}
}

// TestProfileExample checks that the profile's fixed values are the ones this
// package uses, by looking for each in the StructureDefinition.
func TestProfileExample(t *testing.T) {
	b, ok := profiles.Lookup("StructureDefinition", "cpis-flag")
	if !ok {
		t.Fatal("cpis-flag not in profiles/")
	}
	for _, s := range []string{NHSNumberSystem, ODSSystem, FlagCategorySystem, `"CP-IS"`, PlanTypeSystem, SNOMEDSystem,
		EmergencyPhoneURL, OfficePhoneURL, ChildBirthDateURL, PlanTypeValueSet, LAReferenceSystem} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the profile does not mention %s", s)
		}
	}
}
