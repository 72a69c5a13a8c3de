package search

import (
	"math"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Golden cursors of the event log (form 1): the key (cursorAt, position 42)
// of a Communication search and of the plan feed.
const (
	cursorPos                 = 42
	goldenCommunicationCursor = "AUMABlWAiNN8ATQy"
	goldenHistoryCursor       = "AUgABlWAiNN8ATQy"
	laCode                    = "ZLA01"
	odsSystem                 = "https://fhir.nhs.uk/Id/ods-organization-code"
)

// TestODSSystemOfPackageFHIR keeps the recipient's identifier system equal
// to the one package fhir writes into Communication.recipient, which search
// duplicates so as not to depend on the wire model.
func TestODSSystemOfPackageFHIR(t *testing.T) {
	if ODSSystem != fhir.ODSSystem || odsSystem != fhir.ODSSystem {
		t.Errorf("ODSSystem = %q, fhir.ODSSystem = %q", ODSSystem, fhir.ODSSystem)
	}
}

func commQ(f func(q *store.EventQuery)) store.EventQuery {
	q := store.EventQuery{Kind: store.ASNSent, Limit: DefaultFlagCount, Order: store.NewestFirst}
	f(&q)
	return q
}

func TestParseCommunicationSearch(t *testing.T) {
	none := func(*store.EventQuery) {}
	tests := []struct {
		name      string
		raw       string
		strict    bool
		want      store.EventQuery
		recipient string
		warnings  []problem
	}{
		{"empty", "", true, commQ(none), "", nil},
		{"patient bare", "patient=" + nhsA, true, commQ(func(q *store.EventQuery) { q.NHSNumber = nhsA }), "", nil},
		{"patient identifier", "patient:identifier=" + nhsSystem + "|" + nhsB, true, commQ(func(q *store.EventQuery) { q.NHSNumber = nhsB }), "", nil},
		{"patient both forms agree", "patient=" + nhsA + "&patient:identifier=" + nhsSystem + "|" + nhsA, true, commQ(func(q *store.EventQuery) { q.NHSNumber = nhsA }), "", nil},
		{"recipient bare", "recipient=" + laCode, true, commQ(none), laCode, nil},
		{"recipient identifier", "recipient:identifier=" + odsSystem + "|" + laCode, true, commQ(none), laCode, nil},
		{"recipient identifier escaped", "recipient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fods-organization-code%7CZLA01", true, commQ(none), laCode, nil},
		{"recipient identifier without system", "recipient:identifier=" + laCode, true, commQ(none), laCode, nil},
		{"recipient both forms agree", "recipient=" + laCode + "&recipient:identifier=" + odsSystem + "|" + laCode, true, commQ(none), laCode, nil},
		{"another LA is the caller's to refuse", "recipient=ZLA02", true, commQ(none), "ZLA02", nil},
		{"lastUpdated day", "_lastUpdated=2026-07-01", true, commQ(func(q *store.EventQuery) {
			q.From, q.Before = mustTime(t, "2026-06-30T23:00:00Z"), mustTime(t, "2026-07-01T23:00:00Z")
		}), "", nil},
		{"lastUpdated every prefix", "_lastUpdated=gt2026-01-01T09:00:00Z&_lastUpdated=ge2026-01&_lastUpdated=le2026-02&_lastUpdated=lt2026-03", true, commQ(func(q *store.EventQuery) {
			q.From, q.Before = mustTime(t, "2026-01-01T09:00:01Z"), mustTime(t, "2026-03-01T00:00:00Z")
		}), "", nil},
		{"lastUpdated eq instant", "_lastUpdated=eq2026-01-01T09:00:00.123456Z", true, commQ(func(q *store.EventQuery) {
			q.From, q.Before = mustTime(t, "2026-01-01T09:00:00.123456Z"), mustTime(t, "2026-01-01T09:00:00.123457Z")
		}), "", nil},
		{"count", "_count=7", true, commQ(func(q *store.EventQuery) { q.Limit = 7 }), "", nil},
		{"count capped", "_count=500", false, commQ(func(q *store.EventQuery) { q.Limit = MaxCount }), "", []problem{{cpis.InvalidSearch, "_count"}}},
		{"sort newest first", "_sort=-_lastUpdated", true, commQ(none), "", nil},
		{"sort oldest first", "_sort=_lastUpdated", true, commQ(func(q *store.EventQuery) { q.Order = store.OldestFirst }), "", nil},
		{"cursor", "_cursor=" + goldenCommunicationCursor, true, commQ(func(q *store.EventQuery) {
			q.After = &store.EventKey{Stamp: cursorAt, Position: cursorPos}
		}), "", nil},
		{"format and pretty", "_format=json&_pretty=true", true, commQ(none), "", nil},
		{"unknown parameter", "category=access-to-service", false, commQ(none), "", []problem{{cpis.InvalidSearch, "category"}}},
		{"subject is not a parameter here", "subject:identifier=" + nhsSystem + "|" + nhsA, false, commQ(none), "", []problem{{cpis.InvalidSearch, "subject:identifier"}}},
		{"a value sent as a name is not echoed", nhsA, false, commQ(none), "", []problem{{cpis.InvalidSearch, ""}}},
		{"summary ignored", "_summary=count", false, commQ(none), "", []problem{{cpis.InvalidSearch, "_summary"}}},
		{"everything", "patient=" + nhsA + "&recipient=" + laCode + "&_lastUpdated=2026&_count=3&_sort=_lastUpdated&_cursor=" + goldenCommunicationCursor, true,
			store.EventQuery{
				Kind: store.ASNSent, NHSNumber: nhsA, From: mustTime(t, "2026-01-01T00:00:00Z"), Before: mustTime(t, "2027-01-01T00:00:00Z"),
				Order: store.OldestFirst, After: &store.EventKey{Stamp: cursorAt, Position: cursorPos}, Limit: 3,
			}, laCode, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, recipient, warnings, err := ParseCommunicationSearch(query(t, tt.raw), tt.strict)
			if err != nil {
				t.Fatalf("ParseCommunicationSearch(%q): %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if recipient != tt.recipient {
				t.Errorf("recipient = %q, want %q", recipient, tt.recipient)
			}
			if diff := cmp.Diff(tt.warnings, warningsOf(warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			checkNoValues(t, err, warnings)
		})
	}
}

func TestParseCommunicationSearchErrors(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		strict bool
		want   []problem
	}{
		{"patient check digit", "patient=" + nhsBad, false, []problem{{cpis.InvalidNHSNumber, "patient"}}},
		{"patient identifier other system", "patient:identifier=" + odsSystem + "|" + nhsA, false, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"patient twice different", "patient=" + nhsA + "&patient:identifier=" + nhsB, false, []problem{{cpis.InvalidSearch, "patient:identifier"}}},
		{"patient modifier", "patient:missing=true", false, []problem{{cpis.InvalidSearch, "patient:missing"}}},
		{"recipient other system", "recipient:identifier=" + nhsSystem + "|" + laCode, false, []problem{{cpis.InvalidSearch, "recipient:identifier"}}},
		{"recipient no system", "recipient:identifier=|" + laCode, false, []problem{{cpis.InvalidSearch, "recipient:identifier"}}},
		{"recipient reference", "recipient=Organization/" + laCode, false, []problem{{cpis.InvalidSearch, "recipient"}}},
		{"recipient lower case", "recipient=zla01", false, []problem{{cpis.InvalidSearch, "recipient"}}},
		{"recipient too short", "recipient=ZL", false, []problem{{cpis.InvalidSearch, "recipient"}}},
		{"recipient too long", "recipient=ZLA01234567", false, []problem{{cpis.InvalidSearch, "recipient"}}},
		{"recipient empty", "recipient=", false, []problem{{cpis.InvalidSearch, "recipient"}}},
		{"recipient or", "recipient=ZLA01,ZLA02", false, []problem{{cpis.InvalidSearch, "recipient"}}},
		{"recipient twice different", "recipient=ZLA01&recipient:identifier=" + odsSystem + "|ZLA02", false, []problem{{cpis.InvalidSearch, "recipient:identifier"}}},
		{"recipient modifier", "recipient:Organization=" + laCode, false, []problem{{cpis.InvalidSearch, "recipient:Organization"}}},
		{"lastUpdated ne", "_lastUpdated=ne2026-01-01", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"lastUpdated malformed", "_lastUpdated=01/02/2026", false, []problem{{cpis.InvalidSearch, "_lastUpdated"}}},
		{"count zero", "_count=0", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"count repeated", "_count=5&_count=5", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"sort other field", "_sort=sent", false, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"a Flag search's cursor", "_cursor=" + goldenFlagCursor, false, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"the plan feed's cursor", "_cursor=" + goldenHistoryCursor, false, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"cursor repeated", "_cursor=" + goldenCommunicationCursor + "&_cursor=" + goldenCommunicationCursor, false, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"strict unknown", "category=access-to-service", true, []problem{{cpis.InvalidSearch, "category"}}},
		{"strict summary", "_summary=count", true, []problem{{cpis.InvalidSearch, "_summary"}}},
		{"format xml", "_format=xml", false, []problem{{cpis.InvalidValue, "_format"}}},
		{"every problem reported", "patient=" + nhsBad + "&recipient=x&_count=0", false, []problem{
			{cpis.InvalidSearch, "_count"}, {cpis.InvalidNHSNumber, "patient"}, {cpis.InvalidSearch, "recipient"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, recipient, warnings, err := ParseCommunicationSearch(query(t, tt.raw), tt.strict)
			if err == nil {
				t.Fatalf("ParseCommunicationSearch(%q) = %+v, %q, want an error", tt.raw, q, recipient)
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(store.EventQuery{}, q); diff != "" || recipient != "" {
				t.Errorf("a failed parse returned a query (recipient %q):\n%s", recipient, diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

// TestEventCursorForm: the cursors of the event log follow form 1, with the
// position in decimal as the key's id, and each kind refuses the other's.
func TestEventCursorForm(t *testing.T) {
	k := store.EventKey{Stamp: cursorAt, Position: cursorPos}
	for _, tt := range []struct {
		kind   byte
		golden string
	}{{communicationCursor, goldenCommunicationCursor}, {historyCursor, goldenHistoryCursor}} {
		got := eventCursorOf(tt.kind, k)
		if want := rawCursor(1, tt.kind, []int64{cursorAt.UnixMicro()}, "42"); got != want || got != tt.golden {
			t.Errorf("cursor %c = %s, want %s (golden %s)", tt.kind, got, want, tt.golden)
		}
	}
	last := store.EventKey{Stamp: time.UnixMicro(lastMicro).UTC(), Position: math.MaxInt64}
	for _, kind := range []byte{communicationCursor, historyCursor} {
		c, err := decodeCursor(kind, eventCursorOf(kind, last))
		if err != nil || c.id != strconv.FormatInt(math.MaxInt64, 10) || !c.at.Equal(last.Stamp) {
			t.Errorf("the largest key of kind %c decodes as %+v, %v", kind, c, err)
		}
	}
}

// badEventCursors are _cursor values every search of the event log refuses,
// whatever its kind.
func badEventCursors(kind byte) map[string]string {
	at := []int64{cursorAt.UnixMicro()}
	event := func(id string) string { return rawCursor(1, kind, at, id) }
	return map[string]string{
		"empty":                    "",
		"no position":              event(""),
		"position zero":            event("0"),
		"a leading zero":           event("042"),
		"a negative position":      event("-42"),
		"a position with a sign":   event("+42"),
		"beyond int64":             event("9223372036854775808"),
		"twenty digits":            event("10000000000000000000"),
		"a UUID for a position":    event(cursorKey),
		"a fraction":               event("4.2"),
		"an instant before 1970":   rawCursor(1, kind, []int64{-1}, "42"),
		"an instant after 9999":    rawCursor(1, kind, []int64{lastMicro + 1}, "42"),
		"cut inside the instant":   rawCursor(1, kind, nil, "42"),
		"a Flag search's":          goldenFlagCursor,
		"an AuditEvent search's":   goldenAuditCursor,
		"form 2":                   rawCursor(2, kind, at, "42"),
		"not base64":               "not a cursor!",
		"with an AsOf like Flag's": rawCursor(1, kind, []int64{0, cursorAt.UnixMicro()}, "42"),
	}
}

func TestParseCommunicationSearchBadCursor(t *testing.T) {
	bad := badEventCursors(communicationCursor)
	bad["the plan feed's"] = goldenHistoryCursor
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			q, _, warnings, err := ParseCommunicationSearch(url.Values{"_cursor": {c}}, false)
			if err == nil {
				t.Fatalf("ParseCommunicationSearch accepted _cursor %q: %+v", c, q)
			}
			if diff := cmp.Diff([]problem{{cpis.InvalidSearch, "_cursor"}}, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

func TestEncodeCommunication(t *testing.T) {
	tests := []struct {
		name      string
		q         store.EventQuery
		recipient string
		want      string
	}{
		{"defaults", commQ(func(*store.EventQuery) {}), "", "_count=20&_sort=-_lastUpdated"},
		{"everything", store.EventQuery{
			Kind: store.ASNSent, NHSNumber: nhsA, From: mustTime(t, "2026-06-30T23:00:00Z"), Before: mustTime(t, "2026-07-01T10:00:00.123456+01:00"),
			Limit: 50, Order: store.OldestFirst, After: &store.EventKey{Stamp: cursorAt, Position: cursorPos},
			LACode: laCode, ASNID: "x", // not part of a link
		}, laCode, "_count=50&_cursor=" + goldenCommunicationCursor + "&_lastUpdated=ge2026-06-30T23%3A00%3A00Z&_lastUpdated=lt2026-07-01T09%3A00%3A00.123456Z" +
			"&_sort=_lastUpdated&patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9000000009" +
			"&recipient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fods-organization-code%7CZLA01"},
		{"a next page in another time zone", store.EventQuery{
			Limit: 20, After: &store.EventKey{Stamp: cursorAt.In(time.FixedZone("", -3600)), Position: cursorPos},
		}, "", "_count=20&_cursor=" + goldenCommunicationCursor + "&_sort=-_lastUpdated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeCommunication(tt.q, tt.recipient).Encode(); got != tt.want {
				t.Errorf("EncodeCommunication = %s\nwant                  %s", got, tt.want)
			}
		})
	}
}

// communicationRoundTrips are searches whose parse must survive
// EncodeCommunication and a strict parse unchanged.
var communicationRoundTrips = []string{
	"",
	"patient=9000000009&recipient=ZLA01&_sort=_lastUpdated&_count=1000",
	"patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9449306753&recipient:identifier=ZLA01",
	"_lastUpdated=2026-07&_lastUpdated=gt2026-07-15T12:00:00.1234567%2B01:00&foo=bar&_summary=true",
	"_lastUpdated=le2026-03-29&_lastUpdated=ge0001-01-01T00:00:00.000000001Z&_format=json&_pretty=false",
	"recipient=ZLA01&_cursor=" + goldenCommunicationCursor + "&_count=2",
	"_cursor=" + cursor{at: time.Unix(0, 0), id: "1"}.encode(communicationCursor),
}

func TestEncodeCommunicationRoundTrip(t *testing.T) {
	for _, raw := range communicationRoundTrips {
		t.Run(raw, func(t *testing.T) {
			checkCommunicationRoundTrip(t, query(t, raw), false)
		})
	}
}

// checkCommunicationRoundTrip parses v and, when it parses, checks that its
// encoding parses strictly, with no warning, back to the same query and
// recipient.
func checkCommunicationRoundTrip(tb testing.TB, v url.Values, strict bool) {
	tb.Helper()
	q, recipient, warnings, err := ParseCommunicationSearch(v, strict)
	checkNoValues(tb, err, warnings)
	checkErrorShape(tb, err)
	if err != nil {
		return
	}
	if q.Kind != store.ASNSent || q.Limit < 1 || q.Limit > MaxCount {
		tb.Fatalf("ParseCommunicationSearch = %+v: outside what a store accepts", q)
	}
	enc := EncodeCommunication(q, recipient)
	back, backRecipient, warnings, err := ParseCommunicationSearch(enc, true)
	if err != nil || len(warnings) > 0 {
		tb.Fatalf("ParseCommunicationSearch(EncodeCommunication = %q): warnings %v, error %v", enc.Encode(), warnings, err)
	}
	if diff := cmp.Diff(q, back); diff != "" || backRecipient != recipient {
		tb.Errorf("ParseCommunicationSearch(EncodeCommunication(q)) != q (-q +back), recipient %q then %q:\n%s", recipient, backRecipient, diff)
	}
}

func FuzzParseCommunicationSearch(f *testing.F) {
	for _, raw := range communicationRoundTrips {
		f.Add(raw, false)
	}
	f.Add("patient=9000000001&recipient=zla01&_count=0&_lastUpdated=ne2026", true)
	f.Add("recipient:identifier=|ZLA01&_sort=sent&_cursor="+goldenHistoryCursor, false)
	f.Add("_cursor="+rawCursor(1, communicationCursor, []int64{1}, "007"), false)
	f.Fuzz(func(t *testing.T, raw string, strict bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		checkCommunicationRoundTrip(t, v, strict)
	})
}
