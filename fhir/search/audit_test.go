package search

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

const sdsID = "555021935107"

func auditQ(f func(q *store.AuditQuery)) store.AuditQuery {
	q := store.AuditQuery{Limit: DefaultAuditCount}
	f(&q)
	return q
}

func TestParseAuditSearch(t *testing.T) {
	national := "patient:identifier=" + nhsSystem + "|" + nhsA + "&_include=" + NationalAuditInclude
	tests := []struct {
		name     string
		raw      string
		strict   bool
		want     store.AuditQuery
		warnings []problem
	}{
		{"empty", "", true, auditQ(func(*store.AuditQuery) {}), nil},
		{"national API request", national, true, auditQ(func(q *store.AuditQuery) { q.Patient = nhsA }), nil},
		{"national include escaped", "_include=AuditEvent%3Aentity-type%3Dhttp%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv3-RoleClass%7CASSIGNED", true, auditQ(func(*store.AuditQuery) {}), nil},
		{"patient bare", "patient=" + nhsB, false, auditQ(func(q *store.AuditQuery) { q.Patient = nhsB }), nil},
		{"agent bare", "agent=" + sdsID, false, auditQ(func(q *store.AuditQuery) { q.ActorUserID = sdsID }), nil},
		{"agent identifier", "agent:identifier=" + SDSUserIDSystem + "|" + sdsID, false, auditQ(func(q *store.AuditQuery) { q.ActorUserID = sdsID }), nil},
		{"agent both forms agree", "agent=" + sdsID + "&agent:identifier=" + SDSUserIDSystem + "|" + sdsID, true, auditQ(func(q *store.AuditQuery) { q.ActorUserID = sdsID }), nil},
		{"date day", "date=2026-07-01", false, auditQ(func(q *store.AuditQuery) {
			q.RecordedFrom, q.RecordedBefore = mustTime(t, "2026-06-30T23:00:00Z"), mustTime(t, "2026-07-01T23:00:00Z")
		}), nil},
		{"date range", "date=gt2026-01-01T09:00:00Z&date=le2026-01", false, auditQ(func(q *store.AuditQuery) {
			q.RecordedFrom, q.RecordedBefore = mustTime(t, "2026-01-01T09:00:01Z"), mustTime(t, "2026-02-01T00:00:00Z")
		}), nil},
		{"_offset is no longer a parameter", "_offset=25", false, auditQ(func(*store.AuditQuery) {}), []problem{{cpis.InvalidSearch, "_offset"}}},
		{"count", "_count=7", false, auditQ(func(q *store.AuditQuery) { q.Limit = 7 }), nil},
		{"count capped", "_count=500", false, auditQ(func(q *store.AuditQuery) { q.Limit = MaxCount }), []problem{{cpis.InvalidSearch, "_count"}}},
		{"sort newest first", "_sort=-date", true, auditQ(func(*store.AuditQuery) {}), nil},
		{"other include ignored", "_include=AuditEvent:agent", false, auditQ(func(*store.AuditQuery) {}), []problem{{cpis.InvalidSearch, "_include"}}},
		{"iterate include ignored", "_include:iterate=" + NationalAuditInclude, false, auditQ(func(*store.AuditQuery) {}), []problem{{cpis.InvalidSearch, "_include:iterate"}}},
		{"revinclude ignored", "_revinclude=Provenance:target", false, auditQ(func(*store.AuditQuery) {}), []problem{{cpis.InvalidSearch, "_revinclude"}}},
		{"national and other include", "_include=" + NationalAuditInclude + "&_include=AuditEvent:patient", false, auditQ(func(*store.AuditQuery) {}), []problem{{cpis.InvalidSearch, "_include"}}},
		{"unknown parameter", "type=rest", false, auditQ(func(*store.AuditQuery) {}), []problem{{cpis.InvalidSearch, "type"}}},
		{"format", "_format=json", true, auditQ(func(*store.AuditQuery) {}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, warnings, err := ParseAuditSearch(query(t, tt.raw), tt.strict)
			if err != nil {
				t.Fatalf("ParseAuditSearch(%q): %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warningsOf(warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			checkNoValues(t, err, warnings)
		})
	}
}

func TestParseAuditSearchErrors(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		strict bool
		want   []problem
	}{
		{"patient check digit", "patient=" + nhsBad, false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient identifier other system", "patient:identifier=" + SDSUserIDSystem + "|" + nhsA, false, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"patient identifier bad number", "patient:identifier=" + nhsSystem + "|123", false, []problem{{cpis.InvalidNHSNumber, "patient:identifier"}}},
		{"patient twice different", "patient=" + nhsA + "&patient:identifier=" + nhsB, false, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"patient modifier", "patient:Patient=" + nhsA, false, []problem{{cpis.InvalidSearch, "patient:Patient"}}},
		{"agent other system", "agent:identifier=" + nhsSystem + "|" + sdsID, false, []problem{{cpis.InvalidSearch, "agent:identifier"}}},
		{"agent empty", "agent=", false, []problem{{cpis.InvalidSearch, "agent"}}},
		{"agent reference", "agent=Practitioner/" + sdsID, false, []problem{{cpis.InvalidSearch, "agent"}}},
		{"agent or", "agent=" + sdsID + ",555021935108", false, []problem{{cpis.InvalidSearch, "agent"}}},
		{"agent twice different", "agent=" + sdsID + "&agent=555021935108", false, []problem{{cpis.InvalidSearch, "agent"}}},
		{"agent name modifier", "agent:name=Smith", false, []problem{{cpis.InvalidSearch, "agent:name"}}},
		{"date ne", "date=ne2026-01-01", false, []problem{{cpis.InvalidSearch, "date"}}},
		{"date ap", "date=ap2026-01-01", false, []problem{{cpis.InvalidSearch, "date"}}},
		{"date malformed", "date=01/02/2026", false, []problem{{cpis.InvalidSearch, "date"}}},
		{"count zero", "_count=0", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"sort oldest first", "_sort=date", false, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"sort lastUpdated", "_sort=-_lastUpdated", false, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"strict other include", "_include=AuditEvent:agent", true, []problem{{cpis.InvalidSearch, "_include"}}},
		{"strict revinclude", "_revinclude=Provenance:target", true, []problem{{cpis.InvalidSearch, "_revinclude"}}},
		{"strict unknown", "type=rest", true, []problem{{cpis.InvalidSearch, "type"}}},
		{"strict _offset, no longer a parameter", "_offset=25", true, []problem{{cpis.InvalidSearch, "_offset"}}},
		{"format xml", "_format=xml", false, []problem{{cpis.InvalidValue, "_format"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, warnings, err := ParseAuditSearch(query(t, tt.raw), tt.strict)
			if err == nil {
				t.Fatalf("ParseAuditSearch(%q) = %+v, want an error", tt.raw, q)
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(store.AuditQuery{}, q); diff != "" {
				t.Errorf("a failed parse returned a query:\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

func TestParsePatientOnly(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		strict   bool
		want     cpis.NHSNumber
		warnings []problem
		errs     []problem
	}{
		{"national API request", "patient:identifier=" + nhsSystem + "|" + nhsA, true, nhsA, nil, nil},
		{"bare patient", "patient=" + nhsB, false, nhsB, nil, nil},
		{"no patient is for the api to judge", "", true, "", nil, nil},
		{"include accepted with a warning", "patient=" + nhsA + "&_include=CareTeam:participant", false, nhsA, []problem{{cpis.InvalidSearch, "_include"}}, nil},
		{"include accepted even under strict", "patient=" + nhsA + "&_include=CareTeam:participant&_revinclude=Provenance:target", true, nhsA, []problem{{cpis.InvalidSearch, "_include"}, {cpis.InvalidSearch, "_revinclude"}}, nil},
		{"unknown parameter warns", "patient=" + nhsA + "&status=active", false, nhsA, []problem{{cpis.InvalidSearch, "status"}}, nil},
		{"unknown parameter under strict", "patient=" + nhsA + "&status=active", true, "", nil, []problem{{cpis.InvalidSearch, "status"}}},
		{"bad NHS number", "patient=" + nhsBad, false, "", nil, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"other identifier system", "patient:identifier=https://example.org/mrn|" + nhsA, false, "", nil, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"two patients", "patient=" + nhsA + "&patient:identifier=" + nhsSystem + "|" + nhsB, false, "", nil, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"unsupported modifier", "patient:missing=false", false, "", nil, []problem{{cpis.InvalidSearch, "patient:missing"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nhs, warnings, err := ParsePatientOnly(query(t, tt.raw), tt.strict)
			if nhs != tt.want {
				t.Errorf("NHS number = %q, want %q", nhs, tt.want)
			}
			if diff := cmp.Diff(tt.warnings, warningsOf(warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.errs, problemsOf(t, err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}
