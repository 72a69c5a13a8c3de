package fhir

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/profiles"
)

// sampleDiscrepancy is an open report from a community nurse, with a note.
func sampleDiscrepancy() cpis.Discrepancy {
	return cpis.Discrepancy{
		ID:        "d1c2b3a4-0000-4000-8000-00000000000d",
		NHSNumber: "9990276579",
		Reason:    cpis.ReasonWrongStepDown,
		Note:      "Mother says the plan ended last month",
		OrgCode:   "ZZT01",
		ReportedBy: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000002", Name: "Nurse Bea Fictional",
			RoleProfileID: "555000000102", RoleCode: "S8000:G8000:R8001", RoleName: "Nurse Access Role",
			OrgCode: "ZZT01", OrgName: "Fictional Community and Acute NHS Trust", Activities: []string{"B0170"}},
		ReportedAt: time.Date(2026, 11, 22, 10, 15, 30, 120000000, time.UTC),
	}
}

// discrepancyJSON is what the tests read of a rendered report.
type discrepancyJSON struct {
	ID   string `json:"id"`
	Meta struct {
		LastUpdated string   `json:"lastUpdated"`
		Profile     []string `json:"profile"`
	} `json:"meta"`
	Status   string `json:"status"`
	Category []struct {
		Coding []struct{ System, Code, Display string } `json:"coding"`
	} `json:"category"`
	Subject    refJSON   `json:"subject"`
	Recipient  []refJSON `json:"recipient"`
	Sender     refJSON   `json:"sender"`
	Sent       string    `json:"sent"`
	ReasonCode []struct {
		Coding []struct{ System, Code, Display string } `json:"coding"`
	} `json:"reasonCode"`
	Payload []struct {
		ContentString string `json:"contentString"`
	} `json:"payload"`
	Note []struct {
		AuthorReference refJSON `json:"authorReference"`
		Time            string  `json:"time"`
		Text            string  `json:"text"`
	} `json:"note"`
}

// renderDiscrepancy marshals d, checks it with the validating R4 reader,
// and reads it back.
func renderDiscrepancy(tb testing.TB, d cpis.Discrepancy) discrepancyJSON {
	tb.Helper()
	b, err := MarshalResource(DiscrepancyResource(d))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := newValidator(tb).Unmarshal(b); err != nil {
		tb.Fatalf("not valid FHIR R4: %v\n%s", err, b)
	}
	var c discrepancyJSON
	if err := json.Unmarshal(b, &c); err != nil {
		tb.Fatal(err)
	}
	return c
}

func ref(typ, system, value, display string) refJSON {
	r := refJSON{Type: typ, Display: display}
	r.Identifier.System, r.Identifier.Value = system, value
	return r
}

func TestDiscrepancyResourceOpen(t *testing.T) {
	d := sampleDiscrepancy()
	c := renderDiscrepancy(t, d)
	type codingJSON = struct{ System, Code, Display string }
	checks := []struct {
		what      string
		got, want any
	}{
		{"id", c.ID, d.ID},
		{"meta.lastUpdated is the report while open", c.Meta.LastUpdated, "2026-11-22T10:15:30.120Z"},
		{"no profile", c.Meta.Profile, []string(nil)},
		{"status", c.Status, "in-progress"},
		{"category", c.Category[0].Coding, []codingJSON{{NotificationTypeSystem, "discrepancy", "Discrepancy report"}}},
		{"subject", c.Subject, ref("Patient", "https://fhir.nhs.uk/Id/nhs-number", "9990276579", "")},
		{"sent", c.Sent, "2026-11-22T10:15:30.120Z"},
		{"recipient", c.Recipient, []refJSON{ref("Organization", "https://fhir.nhs.uk/Id/ods-organization-code", "ZZT01",
			"Safeguarding children team, Fictional Community and Acute NHS Trust")}},
		{"sender", c.Sender, ref("PractitionerRole", "https://fhir.nhs.uk/Id/sds-role-profile-id", "555000000102",
			"Nurse Bea Fictional (Nurse Access Role, Fictional Community and Acute NHS Trust)")},
		{"reasonCode", c.ReasonCode[0].Coding, []codingJSON{{"https://cpis.example.org/fhir/CodeSystem/cpis-discrepancy-reason",
			"wrong-step-down", "Wrong step-down status"}}},
		{"payload", c.Payload, []struct {
			ContentString string `json:"contentString"`
		}{{d.Note}}},
		{"no note while open", len(c.Note), 0},
	}
	for _, ch := range checks {
		if diff := cmp.Diff(ch.want, ch.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", ch.what, diff)
		}
	}
}

func TestDiscrepancyResourceResolved(t *testing.T) {
	d := sampleDiscrepancy()
	d.Note = ""
	d.ReportedBy.RoleProfileID = "" // the sender falls back to the practitioner
	d.ResolvedBy = &cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000005", Name: "Nurse Eve Invented",
		RoleName: "Safeguarding Children Lead", OrgCode: "ZZT01", OrgName: "Fictional Community and Acute NHS Trust"}
	d.ResolvedAt = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	c := renderDiscrepancy(t, d)
	if c.Status != "completed" || c.Meta.LastUpdated != "2026-11-23T09:00:00Z" || len(c.Payload) != 0 {
		t.Errorf("status %q, meta.lastUpdated %q, payload %v; want completed, the resolution, no payload", c.Status, c.Meta.LastUpdated, c.Payload)
	}
	wantSender := ref("Practitioner", SDSUserIDSystem, "555000000002", "Nurse Bea Fictional (Nurse Access Role, Fictional Community and Acute NHS Trust)")
	if diff := cmp.Diff(wantSender, c.Sender); diff != "" {
		t.Errorf("sender (-want +got):\n%s", diff)
	}
	if len(c.Note) != 1 {
		t.Fatalf("note %+v, want the resolution", c.Note)
	}
	n := c.Note[0]
	wantAuthor := ref("Practitioner", SDSUserIDSystem, "555000000005", "Nurse Eve Invented (Safeguarding Children Lead, Fictional Community and Acute NHS Trust)")
	if diff := cmp.Diff(wantAuthor, n.AuthorReference); diff != "" {
		t.Errorf("note.authorReference (-want +got):\n%s", diff)
	}
	if n.Time != "2026-11-23T09:00:00Z" || n.Text != "Marked resolved" {
		t.Errorf("note time %q text %q", n.Time, n.Text)
	}
}

func TestActorDisplay(t *testing.T) {
	for _, tt := range []struct {
		a    cpis.Actor
		want string
	}{
		{cpis.Actor{Name: "Dr A", RoleName: "R", OrgName: "O"}, "Dr A (R, O)"},
		{cpis.Actor{Name: "Dr A", OrgName: "O"}, "Dr A (O)"},
		{cpis.Actor{Name: "Dr A"}, "Dr A"},
		{cpis.Actor{}, "A practitioner"},
	} {
		if got := actorDisplay(tt.a); got != tt.want {
			t.Errorf("actorDisplay(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// TestDiscrepancyCodes checks that every reason and the category are
// codes of our CodeSystems, with the displays written.
func TestDiscrepancyCodes(t *testing.T) {
	concepts := func(id string) map[string]string {
		b, ok := profiles.Lookup("CodeSystem", id)
		if !ok {
			t.Fatalf("CodeSystem %s not in profiles/", id)
		}
		var cs struct {
			URL     string
			Concept []struct{ Code, Display string }
		}
		if err := json.Unmarshal(b, &cs); err != nil {
			t.Fatal(err)
		}
		m := map[string]string{"": cs.URL}
		for _, c := range cs.Concept {
			m[c.Code] = c.Display
		}
		return m
	}
	reasons := concepts("cpis-discrepancy-reason")
	want := map[string]string{"": DiscrepancyReasonSystem}
	for _, r := range cpis.DiscrepancyReasons() {
		want[string(r)] = r.Display()
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("cpis-discrepancy-reason (-ours +CodeSystem):\n%s", diff)
	}
	if got := concepts("cpis-notification-type")[discrepancyCategoryCode]; got != discrepancyCategoryDisplay {
		t.Errorf("cpis-notification-type#%s display %q, want %q", discrepancyCategoryCode, got, discrepancyCategoryDisplay)
	}
}
