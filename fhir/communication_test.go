package fhir

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	commpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/communication_go_proto"
	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/profiles"
)

// sampleASN is the ASN the unscheduled search of healthSearchRecord sends
// to the LA of the plan it showed.
func sampleASN() cpis.ASN {
	rec := healthSearchRecord()
	return cpis.ASN{
		ID:        "c4b5a6d7-0000-4000-8000-000000000009",
		AuditID:   rec.ID,
		Sent:      rec.Recorded,
		NHSNumber: rec.Patient,
		LACode:    "ZLA01",
		PlanIDs:   rec.PlanIDs,
		OrgCode:   rec.Actor.OrgCode,
		OrgName:   rec.Actor.OrgName,
		UserName:  rec.Actor.Name,
		RoleName:  rec.Actor.RoleName,
	}
}

// asnStamp is sampleASN's stamp on the feed: it committed a little after the access.
var asnStamp = time.Date(2026, 11, 15, 14, 3, 7, 251234000, time.UTC)

// asnJSON is what the tests read of a rendered Communication.
type asnJSON struct {
	ID   string `json:"id"`
	Meta struct {
		LastUpdated string   `json:"lastUpdated"`
		Profile     []string `json:"profile"`
	} `json:"meta"`
	Status   string `json:"status"`
	Category []struct {
		Coding []struct{ System, Code, Display string } `json:"coding"`
	} `json:"category"`
	Subject   refJSON   `json:"subject"`
	Recipient []refJSON `json:"recipient"`
	Sender    refJSON   `json:"sender"`
	Sent      string    `json:"sent"`
	About     []struct {
		Reference string `json:"reference"`
	} `json:"about"`
	Payload []struct {
		ContentString string `json:"contentString"`
	} `json:"payload"`
}

type refJSON struct {
	Type       string `json:"type"`
	Identifier struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
	Display string `json:"display"`
}

func renderASN(tb testing.TB, a cpis.ASN, lastUpdated time.Time) (asnJSON, []byte) {
	tb.Helper()
	b, err := MarshalResource(CommunicationResource(a, lastUpdated))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := newValidator(tb).Unmarshal(b); err != nil {
		tb.Fatalf("not valid FHIR R4: %v\n%s", err, b)
	}
	var c asnJSON
	if err := json.Unmarshal(b, &c); err != nil {
		tb.Fatal(err)
	}
	return c, b
}

// TestCommunicationResource checks every element of issue 9, item 4.
func TestCommunicationResource(t *testing.T) {
	a := sampleASN()
	c, _ := renderASN(t, a, asnStamp)
	ref := func(typ, system, value, display string) refJSON {
		r := refJSON{Type: typ, Display: display}
		r.Identifier.System, r.Identifier.Value = system, value
		return r
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"id", c.ID, a.ID},
		{"meta.lastUpdated is the feed's stamp, not the access", c.Meta.LastUpdated, "2026-11-15T14:03:07.251234Z"},
		{"meta.profile", c.Meta.Profile, []string{CanonicalBase + "/StructureDefinition/cpis-asn"}},
		{"status", c.Status, "completed"},
		{"category", c.Category[0].Coding, []struct{ System, Code, Display string }{
			{"https://cpis.example.org/fhir/CodeSystem/cpis-notification-type", "access-to-service", "Access to Service Notification"},
		}},
		{"subject", c.Subject, ref("Patient", "https://fhir.nhs.uk/Id/nhs-number", "9990276579", "")},
		{"recipient", c.Recipient, []refJSON{ref("Organization", "https://fhir.nhs.uk/Id/ods-organization-code", "ZLA01", "")}},
		{"sender", c.Sender, ref("Organization", "https://fhir.nhs.uk/Id/ods-organization-code", "ZT001", "Example Hospitals NHS Trust")},
		{"sent is the access", c.Sent, "2026-11-15T14:03:07.250Z"},
		{"about", c.About, []struct {
			Reference string `json:"reference"`
		}{{"Flag/5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01"}, {"AuditEvent/a3e1c2d4-0000-4000-8000-000000000001"}}},
		{"payload", c.Payload, []struct {
			ContentString string `json:"contentString"`
		}{{a.Message()}}},
	}
	for _, ch := range checks {
		if diff := cmp.Diff(ch.want, ch.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", ch.what, diff)
		}
	}
	// The message names when (UK time), where, who and in which role.
	for _, s := range []string{"Sunday 15 November 2026", "14:03", "Example Hospitals NHS Trust (ODS ZT001)", "Dr Alex Example", "Clinical Practitioner Access Role"} {
		if !strings.Contains(c.Payload[0].ContentString, s) {
			t.Errorf("the message %q does not name %q", c.Payload[0].ContentString, s)
		}
	}
}

// TestCommunicationResourceShapes: several plans, and what is left out
// when a value is missing, still validate.
func TestCommunicationResourceShapes(t *testing.T) {
	two := sampleASN()
	two.PlanIDs = []string{"p1", "p2"}
	two.Sent = time.Date(2026, 7, 1, 9, 0, 0, 0, time.FixedZone("BST", 3600))
	unnamed := sampleASN()
	unnamed.OrgName, unnamed.Sent = "", time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	tests := []struct {
		name        string
		a           cpis.ASN
		lastUpdated time.Time
		about       []string
		sent, meta  string
		senderName  string
	}{
		{"two plans, sent on a whole second in BST", two, asnStamp, []string{"Flag/p1", "Flag/p2", "AuditEvent/a3e1c2d4-0000-4000-8000-000000000001"},
			"2026-07-01T08:00:00Z", "2026-11-15T14:03:07.251234Z", "Example Hospitals NHS Trust"},
		{"no organisation name, no stamp", unnamed, time.Time{}, []string{"Flag/5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01", "AuditEvent/a3e1c2d4-0000-4000-8000-000000000001"},
			"2026-01-02T03:04:05.123456Z", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := renderASN(t, tt.a, tt.lastUpdated)
			var about []string
			for _, r := range c.About {
				about = append(about, r.Reference)
			}
			if diff := cmp.Diff(tt.about, about); diff != "" {
				t.Errorf("about (-want +got):\n%s", diff)
			}
			if c.Sent != tt.sent || c.Meta.LastUpdated != tt.meta || c.Sender.Display != tt.senderName {
				t.Errorf("sent %q, meta.lastUpdated %q, sender %q; want %q, %q, %q", c.Sent, c.Meta.LastUpdated, c.Sender.Display, tt.sent, tt.meta, tt.senderName)
			}
		})
	}
}

// TestCommunicationSentRoundTrip: sent keeps the access time to the
// microsecond, the precision the stores keep.
func TestCommunicationSentRoundTrip(t *testing.T) {
	u := newValidator(t)
	for _, at := range []time.Time{
		time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC),
		time.Date(2026, 3, 29, 1, 0, 0, 7000000, time.UTC),
		time.Date(2026, 3, 29, 1, 0, 0, 7, time.UTC).Truncate(time.Microsecond).Add(time.Microsecond),
	} {
		a := sampleASN()
		a.Sent = at
		b, err := MarshalResource(CommunicationResource(a, at))
		if err != nil {
			t.Fatal(err)
		}
		r, err := u.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		c := r.(*bcrpb.ContainedResource).GetCommunication()
		if got := time.UnixMicro(c.GetSent().GetValueUs()); !got.Equal(at) {
			t.Errorf("sent %v read back as %v", at, got)
		}
		if got := time.UnixMicro(c.GetMeta().GetLastUpdated().GetValueUs()); !got.Equal(at) {
			t.Errorf("meta.lastUpdated %v read back as %v", at, got)
		}
	}
}

// TestASNProfile checks that the profile's fixed values are the ones this
// package writes, and that it prohibits what CommunicationResource never
// writes.
func TestASNProfile(t *testing.T) {
	b, ok := profiles.Lookup("StructureDefinition", "cpis-asn")
	if !ok {
		t.Fatal("cpis-asn not in profiles/")
	}
	var sd struct {
		Type         string
		Differential struct {
			Element []struct {
				ID  string
				Max string
			}
		}
	}
	if err := json.Unmarshal(b, &sd); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{NHSNumberSystem, ODSSystem, NotificationTypeSystem, `"` + asnCategoryCode + `"`, `"fixedCode": "completed"`,
		"http://hl7.org/fhir/StructureDefinition/Flag", "http://hl7.org/fhir/StructureDefinition/AuditEvent"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("the profile does not mention %s", s)
		}
	}
	if sd.Type != "Communication" {
		t.Errorf("the profile constrains %s", sd.Type)
	}
	// Every top-level element of Communication is either written by
	// CommunicationResource or prohibited.
	written := map[string]bool{"id": true, "meta": true, "status": true, "category": true, "subject": true, "about": true,
		"sent": true, "recipient": true, "sender": true, "payload": true}
	prohibited := map[string]bool{}
	for _, e := range sd.Differential.Element {
		if e.Max == "0" {
			prohibited[strings.TrimPrefix(e.ID, "Communication.")] = true
		}
	}
	fields := (&commpb.Communication{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		name := fields.Get(i).JSONName()
		if written[name] == prohibited[name] {
			t.Errorf("Communication.%s: written %v, prohibited %v", name, written[name], prohibited[name])
		}
	}
}
