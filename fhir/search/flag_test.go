package search

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

const (
	nhsA = "9000000009"
	nhsB = "9449306753"
	// nhsBad has ten digits but fails the Modulus 11 check.
	nhsBad    = "9000000001"
	nhsSystem = "https://fhir.nhs.uk/Id/nhs-number"
)

// defaults is the query an empty search gives.
func defaults() store.PlanQuery {
	return store.PlanQuery{Limit: DefaultFlagCount, Order: store.NewestFirst}
}

func withQ(f func(q *store.PlanQuery)) store.PlanQuery {
	q := defaults()
	f(&q)
	return q
}

func TestParseFlagSearch(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		strict   bool
		want     store.PlanQuery
		warnings []problem
	}{
		{"empty", "", false, defaults(), nil},
		{"empty strict", "", true, defaults(), nil},
		{"patient bare", "patient=" + nhsA, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsA }), nil},
		{"patient identifier", "patient:identifier=" + nhsSystem + "|" + nhsA, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsA }), nil},
		{"patient identifier escaped", "patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C" + nhsB, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsB }), nil},
		{"patient identifier without system", "patient:identifier=" + nhsA, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsA }), nil},
		{"subject identifier", "subject:identifier=" + nhsSystem + "|" + nhsB, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsB }), nil},
		{"same patient in every form", "patient=" + nhsA + "&patient:identifier=" + nhsSystem + "|" + nhsA + "&subject:identifier=" + nhsSystem + "|" + nhsA, true, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsA }), nil},
		{"same patient twice", "patient=" + nhsA + "&patient=" + nhsA, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsA }), nil},
		{"status one", "status=active", false, withQ(func(q *store.PlanQuery) { q.Statuses = []cpis.Status{cpis.Active} }), nil},
		{"status or in canonical order", "status=entered-in-error,inactive,active", false, withQ(func(q *store.PlanQuery) { q.Statuses = allStatuses }), nil},
		{"status duplicate", "status=inactive,inactive", false, withQ(func(q *store.PlanQuery) { q.Statuses = []cpis.Status{cpis.Inactive} }), nil},
		{"status repeated intersects", "status=active,inactive&status=inactive,entered-in-error", false, withQ(func(q *store.PlanQuery) { q.Statuses = []cpis.Status{cpis.Inactive} }), nil},
		{"code bare", "code=UCPP,CPP", false, withQ(func(q *store.PlanQuery) { q.Types = []cpis.PlanType{cpis.CPP, cpis.UCPP} }), nil},
		{"code with our system", "code=" + planTypeSystem + "|CLA", false, withQ(func(q *store.PlanQuery) { q.Types = []cpis.PlanType{cpis.CLA} }), nil},
		{"code SNOMED CPP", "code=http://snomed.info/sct|1064311000000109", false, withQ(func(q *store.PlanQuery) { q.Types = []cpis.PlanType{cpis.CPP} }), nil},
		{"code SNOMED CLA", "code=http://snomed.info/sct|764841000000100", false, withQ(func(q *store.PlanQuery) { q.Types = []cpis.PlanType{cpis.CLA} }), nil},
		{"code SNOMED bare", "code=764841000000100,UCPP", false, withQ(func(q *store.PlanQuery) { q.Types = []cpis.PlanType{cpis.CLA, cpis.UCPP} }), nil},
		{"code repeated intersects", "code=CPP,CLA&code=CLA,UCPP", false, withQ(func(q *store.PlanQuery) { q.Types = []cpis.PlanType{cpis.CLA} }), nil},
		{"count", "_count=5", false, withQ(func(q *store.PlanQuery) { q.Limit = 5 }), nil},
		{"count one", "_count=1", false, withQ(func(q *store.PlanQuery) { q.Limit = 1 }), nil},
		{"count at cap", "_count=100", false, withQ(func(q *store.PlanQuery) { q.Limit = 100 }), nil},
		{"count capped", "_count=101", false, withQ(func(q *store.PlanQuery) { q.Limit = 100 }), []problem{{cpis.InvalidSearch, "_count"}}},
		{"count capped under strict too", "_count=100000", true, withQ(func(q *store.PlanQuery) { q.Limit = 100 }), []problem{{cpis.InvalidSearch, "_count"}}},
		{"_offset is no longer a parameter", "_offset=40", false, defaults(), []problem{{cpis.InvalidSearch, "_offset"}}},
		{"sort oldest first", "_sort=_lastUpdated", false, withQ(func(q *store.PlanQuery) { q.Order = store.OldestFirst }), nil},
		{"sort newest first", "_sort=-_lastUpdated", false, defaults(), nil},
		{"format json", "_format=json", true, defaults(), nil},
		{"format fhir json escaped", "_format=application%2Ffhir%2Bjson", true, defaults(), nil},
		{"format fhir json unescaped plus", "_format=application/fhir+json", true, defaults(), nil},
		{"format json with parameters", "_format=application/fhir%2Bjson%3B+fhirVersion=4.0", true, defaults(), nil},
		{"format application json", "_format=application/json", true, defaults(), nil},
		{"pretty", "_pretty=true", true, defaults(), nil},
		{"unknown parameter", "foo=bar&patient=" + nhsA, false, withQ(func(q *store.PlanQuery) { q.NHSNumber = nhsA }), []problem{{cpis.InvalidSearch, "foo"}}},
		{"names are case-sensitive", "Patient=" + nhsA, false, defaults(), []problem{{cpis.InvalidSearch, "Patient"}}},
		{"a value sent as a name is not echoed", nhsA, false, defaults(), []problem{{cpis.InvalidSearch, ""}}},
		{"a name with a value in it is not echoed", "patient" + nhsA + "=x", false, defaults(), []problem{{cpis.InvalidSearch, ""}}},
		{"summary ignored", "_summary=count", false, defaults(), []problem{{cpis.InvalidSearch, "_summary"}}},
		{"elements ignored", "_elements=status", false, defaults(), []problem{{cpis.InvalidSearch, "_elements"}}},
		{"warnings in name order", "zz=1&_summary=true&aa=2", false, defaults(), []problem{{cpis.InvalidSearch, "_summary"}, {cpis.InvalidSearch, "aa"}, {cpis.InvalidSearch, "zz"}}},
		{"everything", "patient=" + nhsA + "&status=active&code=CPP&_lastUpdated=2026-11&_count=10&_sort=_lastUpdated", true, store.PlanQuery{
			NHSNumber: nhsA, Statuses: []cpis.Status{cpis.Active}, Types: []cpis.PlanType{cpis.CPP},
			UpdatedFrom: mustTime(t, "2026-11-01T00:00:00Z"), UpdatedBefore: mustTime(t, "2026-12-01T00:00:00Z"),
			Limit: 10, Order: store.OldestFirst,
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, warnings, err := ParseFlagSearch(query(t, tt.raw), tt.strict)
			if err != nil {
				t.Fatalf("ParseFlagSearch(%q): %v", tt.raw, err)
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

func TestParseFlagSearchUnknownParameterWarning(t *testing.T) {
	_, warnings, err := ParseFlagSearch(query(t, "colour=blue"), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []*cpis.Error{{Op: "search.ParseFlagSearch", Kind: cpis.InvalidSearch, Expression: "colour", Msg: "unknown search parameter colour"}}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestParseFlagSearchErrors(t *testing.T) {
	sys := nhsSystem + "|"
	tests := []struct {
		name   string
		raw    string
		strict bool
		want   []problem
	}{
		{"patient check digit", "patient=" + nhsBad, false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient too short", "patient=900000000", false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient letters", "patient=900000000X", false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient empty", "patient=", false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient reference", "patient=Patient/" + nhsA, false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient identifier check digit", "patient:identifier=" + sys + nhsBad, false, []problem{{cpis.InvalidNHSNumber, "patient:identifier"}}},
		{"patient identifier other system", "patient:identifier=https://fhir.nhs.uk/Id/local|" + nhsA, false, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"patient identifier no system", "patient:identifier=|" + nhsA, false, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"subject identifier other system", "subject:identifier=urn:oid:1.2|" + nhsA, false, []problem{{cpis.InvalidSearch, "subject:identifier"}}},
		{"patient or", "patient=" + nhsA + "," + nhsB, false, []problem{{cpis.InvalidSearch, "patient"}}},
		{"patient twice different", "patient=" + nhsA + "&patient=" + nhsB, false, []problem{{cpis.InvalidSearch, "patient"}}},
		{"patient forms differ", "patient=" + nhsA + "&subject:identifier=" + sys + nhsB, false, []problem{{cpis.InvalidSearch, "subject:identifier"}}},
		{"patient unsupported modifier", "patient:missing=true", false, []problem{{cpis.InvalidSearch, "patient:missing"}}},
		{"subject reference unsupported", "subject=Patient/" + nhsA, false, []problem{{cpis.InvalidSearch, "subject"}}},
		{"modifier that looks like a value", "patient:" + nhsA + "=x", false, []problem{{cpis.InvalidSearch, ""}}},
		{"strict value sent as a name", nhsA, true, []problem{{cpis.InvalidSearch, ""}}},
		{"status unknown", "status=closed", false, []problem{{cpis.InvalidSearch, "status"}}},
		{"status wrong case", "status=Active", false, []problem{{cpis.InvalidSearch, "status"}}},
		{"status empty item", "status=active,,inactive", false, []problem{{cpis.InvalidSearch, "status"}}},
		{"status empty", "status=", false, []problem{{cpis.InvalidSearch, "status"}}},
		{"status repeated disjoint", "status=active&status=inactive", false, []problem{{cpis.InvalidSearch, "status"}}},
		{"status modifier", "status:not=active", false, []problem{{cpis.InvalidSearch, "status:not"}}},
		{"code unknown", "code=XYZ", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code wrong case", "code=cpp", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code SNOMED UCPP does not exist", "code=http://snomed.info/sct|UCPP", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code our system with SNOMED code", "code=" + planTypeSystem + "|1064311000000109", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code other system", "code=http://example.org|CPP", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code no system", "code=|CPP", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code repeated disjoint", "code=CPP&code=CLA", false, []problem{{cpis.InvalidSearch, "code"}}},
		{"code text modifier", "code:text=protection", false, []problem{{cpis.InvalidSearch, "code:text"}}},
		{"lastUpdated ne", "_lastUpdated=ne2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated sa", "_lastUpdated=sa2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated eb", "_lastUpdated=eb2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated ap", "_lastUpdated=ap2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated unknown prefix", "_lastUpdated=xx2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated upper-case prefix", "_lastUpdated=GE2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated bad month", "_lastUpdated=2026-13", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated bad day", "_lastUpdated=2026-02-29", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated short year", "_lastUpdated=26-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated minutes only", "_lastUpdated=2026-01-01T10:00Z", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated no zone", "_lastUpdated=2026-01-01T10:00:00", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated bad hour", "_lastUpdated=2026-01-01T24:00:00Z", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated ten fraction digits", "_lastUpdated=2026-01-01T10:00:00.0123456789Z", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated empty", "_lastUpdated=", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated prefix only", "_lastUpdated=ge", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated year 9999 ends too late", "_lastUpdated=9999", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated year 0000", "_lastUpdated=ge0000", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated or", "_lastUpdated=2026-01-01,2026-01-02", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"count zero", "_count=0", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"count negative", "_count=-1", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"count fraction", "_count=1.5", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"count word", "_count=ten", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"count empty", "_count=", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"count repeated", "_count=5&_count=6", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"sort other field", "_sort=status", false, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"sort two keys", "_sort=-_lastUpdated,status", false, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"sort repeated", "_sort=_lastUpdated&_sort=_lastUpdated", false, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"format xml", "_format=xml", false, []problem{{cpis.InvalidValue, "_format"}}},
		{"format fhir xml", "_format=application/fhir%2Bxml", false, []problem{{cpis.InvalidValue, "_format"}}},
		{"pretty not boolean", "_pretty=yes", false, []problem{{cpis.InvalidValue, "_pretty"}}},
		{"strict unknown", "foo=bar", true, []problem{{cpis.InvalidSearch, "foo"}}},
		{"strict _offset, no longer a parameter", "_offset=20", true, []problem{{cpis.InvalidSearch, "_offset"}}},
		{"strict summary", "_summary=count", true, []problem{{cpis.InvalidSearch, "_summary"}}},
		{"strict elements", "_elements=status", true, []problem{{cpis.InvalidSearch, "_elements"}}},
		{"every problem reported", "patient=" + nhsBad + "&status=open&_count=0", false, []problem{{cpis.InvalidSearch, "_count"}, {cpis.InvalidNHSNumber, "patient"}, {cpis.InvalidSearch, "status"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, warnings, err := ParseFlagSearch(query(t, tt.raw), tt.strict)
			if err == nil {
				t.Fatalf("ParseFlagSearch(%q) = %+v, want an error", tt.raw, q)
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if got := cpis.KindOf(err); got != tt.want[0].Kind {
				t.Errorf("KindOf = %v, want %v", got, tt.want[0].Kind)
			}
			if diff := cmp.Diff(store.PlanQuery{}, q); diff != "" {
				t.Errorf("a failed parse returned a query:\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

func TestParseFlagSearchLastUpdated(t *testing.T) {
	tests := []struct {
		name         string
		values       []string
		from, before string // RFC 3339, "" for no bound
	}{
		{"day in GMT", []string{"2026-11-01"}, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"},
		{"day in BST is a UK day", []string{"eq2026-07-01"}, "2026-06-30T23:00:00Z", "2026-07-01T23:00:00Z"},
		{"clocks go forward: 23 hours", []string{"2026-03-29"}, "2026-03-29T00:00:00Z", "2026-03-29T23:00:00Z"},
		{"clocks go back: 25 hours", []string{"2026-10-25"}, "2026-10-24T23:00:00Z", "2026-10-26T00:00:00Z"},
		{"gt day is after its end", []string{"gt2026-11-01"}, "2026-11-02T00:00:00Z", ""},
		{"ge day is from its start", []string{"ge2026-11-01"}, "2026-11-01T00:00:00Z", ""},
		{"lt day is before its start", []string{"lt2026-11-01"}, "", "2026-11-01T00:00:00Z"},
		{"le day is up to its end", []string{"le2026-11-01"}, "", "2026-11-02T00:00:00Z"},
		{"month in BST", []string{"2026-07"}, "2026-06-30T23:00:00Z", "2026-07-31T23:00:00Z"},
		{"December runs into the next year", []string{"2026-12"}, "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"le month", []string{"le2026-02"}, "", "2026-03-01T00:00:00Z"},
		{"year", []string{"2026"}, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"gt year", []string{"gt2026"}, "2027-01-01T00:00:00Z", ""},
		{"dateTime is its second", []string{"2026-11-01T10:00:00Z"}, "2026-11-01T10:00:00Z", "2026-11-01T10:00:01Z"},
		{"dateTime milliseconds", []string{"2026-11-01T10:00:00.123Z"}, "2026-11-01T10:00:00.123Z", "2026-11-01T10:00:00.124Z"},
		{"dateTime microseconds with offset", []string{"2026-11-01T10:00:00.123456+01:00"}, "2026-11-01T09:00:00.123456Z", "2026-11-01T09:00:00.123457Z"},
		{"dateTime nanoseconds", []string{"ge2026-11-01T10:00:00.000000001Z"}, "2026-11-01T10:00:00.000000001Z", ""},
		{"gt dateTime", []string{"gt2026-11-01T10:00:00Z"}, "2026-11-01T10:00:01Z", ""},
		{"le dateTime tenths, negative offset", []string{"le2026-11-01T10:00:00.5-05:00"}, "", "2026-11-01T15:00:00.6Z"},
		{"range from two bounds", []string{"ge2026-01-01", "lt2026-02-01"}, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
		{"tightest lower bound", []string{"ge2026-01-15", "ge2026-01-01", "gt2026-01-10"}, "2026-01-15T00:00:00Z", ""},
		{"tightest upper bound", []string{"lt2026-03", "le2026-02-10"}, "", "2026-02-11T00:00:00Z"},
		{"eq within a wider eq", []string{"2026", "2026-05"}, "2026-04-30T23:00:00Z", "2026-05-31T23:00:00Z"},
		{"disjoint ranges are kept as an empty range", []string{"ge2026-02", "lt2026-01"}, "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"first instant a link can carry", []string{"ge0001-01-01T00:00:00.000000001Z"}, "0001-01-01T00:00:00.000000001Z", ""},
		{"last full year", []string{"9998"}, "9998-01-01T00:00:00Z", "9999-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _, err := ParseFlagSearch(map[string][]string{"_lastUpdated": tt.values}, true)
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			if tt.from != "" {
				want.UpdatedFrom = mustTime(t, tt.from)
			}
			if tt.before != "" {
				want.UpdatedBefore = mustTime(t, tt.before)
			}
			if diff := cmp.Diff(want, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			for _, b := range []time.Time{q.UpdatedFrom, q.UpdatedBefore} {
				if b.Location() != time.UTC {
					t.Errorf("bound %v is not in UTC", b)
				}
			}
		})
	}
}
