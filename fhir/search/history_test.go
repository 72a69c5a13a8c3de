package search

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

func feedQ(f func(q *store.EventQuery)) store.EventQuery {
	q := store.EventQuery{Kind: store.PlanChanged, Order: store.OldestFirst, Limit: DefaultFlagCount}
	f(&q)
	return q
}

func TestParseFlagHistory(t *testing.T) {
	none := func(*store.EventQuery) {}
	tests := []struct {
		name     string
		raw      string
		strict   bool
		want     store.EventQuery
		warnings []problem
	}{
		{"empty", "", true, feedQ(none), nil},
		{"since in UTC", "_since=2026-11-02T10:30:15Z", true, feedQ(func(q *store.EventQuery) { q.From = mustTime(t, "2026-11-02T10:30:15Z") }), nil},
		{"since is a point, not its second", "_since=2026-11-02T10:30:15.123456Z", true, feedQ(func(q *store.EventQuery) { q.From = mustTime(t, "2026-11-02T10:30:15.123456Z") }), nil},
		{"since with an offset is read in UTC", "_since=2026-07-01T10:00:00%2B01:00", true, feedQ(func(q *store.EventQuery) { q.From = mustTime(t, "2026-07-01T09:00:00Z") }), nil},
		{"since with a negative offset and nanoseconds", "_since=2026-07-01T10:00:00.000000001-05:00", true, feedQ(func(q *store.EventQuery) { q.From = mustTime(t, "2026-07-01T15:00:00.000000001Z") }), nil},
		{"the first instant", "_since=0001-01-01T00:00:00.000000001Z", true, feedQ(func(q *store.EventQuery) { q.From = mustTime(t, "0001-01-01T00:00:00.000000001Z") }), nil},
		{"the last instant", "_since=9999-12-31T23:59:59.999999999Z", true, feedQ(func(q *store.EventQuery) { q.From = maxInstant }), nil},
		{"count", "_count=5", true, feedQ(func(q *store.EventQuery) { q.Limit = 5 }), nil},
		{"count capped", "_count=101", false, feedQ(func(q *store.EventQuery) { q.Limit = MaxCount }), []problem{{cpis.InvalidSearch, "_count"}}},
		{"cursor", "_cursor=" + goldenHistoryCursor, true, feedQ(func(q *store.EventQuery) {
			q.After = &store.EventKey{Stamp: cursorAt, Position: cursorPos}
		}), nil},
		{"format", "_format=application/fhir%2Bjson", true, feedQ(none), nil},
		{"sort is not a history parameter", "_sort=-_lastUpdated", false, feedQ(none), []problem{{cpis.InvalidSearch, "_sort"}}},
		{"_at is not supported", "_at=2026", false, feedQ(none), []problem{{cpis.InvalidSearch, "_at"}}},
		{"search parameters are not history parameters", "patient=" + nhsA, false, feedQ(none), []problem{{cpis.InvalidSearch, "patient"}}},
		{"everything", "_since=2026-11-02T10:30:15Z&_count=3&_cursor=" + goldenHistoryCursor, true, store.EventQuery{
			Kind: store.PlanChanged, From: mustTime(t, "2026-11-02T10:30:15Z"), Order: store.OldestFirst,
			After: &store.EventKey{Stamp: cursorAt, Position: cursorPos}, Limit: 3,
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, warnings, err := ParseFlagHistory(query(t, tt.raw), tt.strict)
			if err != nil {
				t.Fatalf("ParseFlagHistory(%q): %v", tt.raw, err)
			}
			if diff := cmp.Diff(tt.want, q); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warningsOf(warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if !q.From.IsZero() && q.From.Location() != time.UTC {
				t.Errorf("From %v is not in UTC", q.From)
			}
			checkNoValues(t, err, warnings)
		})
	}
}

func TestParseFlagHistoryErrors(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		strict bool
		want   []problem
	}{
		{"since a day", "_since=2026-11-02", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since a month", "_since=2026-11", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since a year", "_since=2026", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since without seconds", "_since=2026-11-02T10:30Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since without a zone", "_since=2026-11-02T10:30:15", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since with a prefix", "_since=ge2026-11-02T10:30:15Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since lower-case t", "_since=2026-11-02t10:30:15Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since bad hour", "_since=2026-11-02T24:00:00Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since bad day", "_since=2026-02-29T00:00:00Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since ten fraction digits", "_since=2026-11-02T10:30:15.0123456789Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since Unix time", "_since=1793615415", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since empty", "_since=", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since year 0000", "_since=0000-12-31T23:59:59Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since the zero time", "_since=0001-01-01T00:00:00Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since after 9999 in UTC", "_since=9999-12-31T23:59:59-01:00", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since repeated", "_since=2026-11-02T10:30:15Z&_since=2026-11-02T10:30:15Z", false, []problem{{cpis.InvalidSearch, "_since"}}},
		{"since with a modifier", "_since:exact=2026-11-02T10:30:15Z", false, []problem{{cpis.InvalidSearch, "_since:exact"}}},
		{"count zero", "_count=0", false, []problem{{cpis.InvalidSearch, "_count"}}},
		{"a Communication search's cursor", "_cursor=" + goldenCommunicationCursor, false, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"cursor cut short", "_cursor=" + goldenHistoryCursor[:8], false, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"strict unknown", "_sort=_lastUpdated", true, []problem{{cpis.InvalidSearch, "_sort"}}},
		{"strict elements", "_elements=id", true, []problem{{cpis.InvalidSearch, "_elements"}}},
		{"pretty not boolean", "_pretty=1", false, []problem{{cpis.InvalidValue, "_pretty"}}},
		{"every problem reported", "_since=2026&_count=x&foo=bar", true, []problem{
			{cpis.InvalidSearch, "_count"}, {cpis.InvalidSearch, "_since"}, {cpis.InvalidSearch, "foo"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, warnings, err := ParseFlagHistory(query(t, tt.raw), tt.strict)
			if err == nil {
				t.Fatalf("ParseFlagHistory(%q) = %+v, want an error", tt.raw, q)
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(store.EventQuery{}, q); diff != "" {
				t.Errorf("a failed parse returned a query:\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

func TestParseFlagHistoryBadCursor(t *testing.T) {
	bad := badEventCursors(historyCursor)
	bad["a Communication search's"] = goldenCommunicationCursor
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			q, warnings, err := ParseFlagHistory(url.Values{"_cursor": {c}}, false)
			if err == nil {
				t.Fatalf("ParseFlagHistory accepted _cursor %q: %+v", c, q)
			}
			if diff := cmp.Diff([]problem{{cpis.InvalidSearch, "_cursor"}}, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

func TestEncodeFlagHistory(t *testing.T) {
	tests := []struct {
		name string
		q    store.EventQuery
		want string
	}{
		{"defaults", feedQ(func(*store.EventQuery) {}), "_count=20"},
		{"since with microseconds, in UTC", store.EventQuery{
			Kind: store.PlanChanged, From: mustTime(t, "2026-07-01T10:00:00.123456+01:00"), Limit: 10,
			LACode: laCode, // not part of a link
		}, "_count=10&_since=2026-07-01T09%3A00%3A00.123456Z"},
		{"a next page", store.EventQuery{
			From: mustTime(t, "2026-11-02T10:30:15Z"), Limit: 20, After: &store.EventKey{Stamp: cursorAt, Position: cursorPos},
		}, "_count=20&_cursor=" + goldenHistoryCursor + "&_since=2026-11-02T10%3A30%3A15Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeFlagHistory(tt.q).Encode(); got != tt.want {
				t.Errorf("EncodeFlagHistory = %s\nwant                %s", got, tt.want)
			}
		})
	}
}

// historyRoundTrips are pages of the feed whose parse must survive
// EncodeFlagHistory and a strict parse unchanged.
var historyRoundTrips = []string{
	"",
	"_since=2026-11-02T10:30:15Z&_count=1000",
	"_since=2026-07-01T10:00:00.1234567%2B01:00&foo=bar&_summary=true",
	"_since=0001-01-01T00:00:00.000000001Z&_format=json&_pretty=false",
	"_cursor=" + goldenHistoryCursor + "&_count=2",
	"_since=9999-12-31T23:59:59.999999999Z&_cursor=" + cursor{at: time.Unix(0, 0), id: "1"}.encode(historyCursor),
}

func TestEncodeFlagHistoryRoundTrip(t *testing.T) {
	for _, raw := range historyRoundTrips {
		t.Run(raw, func(t *testing.T) {
			checkHistoryRoundTrip(t, query(t, raw), false)
		})
	}
}

// checkHistoryRoundTrip parses v and, when it parses, checks that its
// encoding parses strictly, with no warning, back to the same query.
func checkHistoryRoundTrip(tb testing.TB, v url.Values, strict bool) {
	tb.Helper()
	q, warnings, err := ParseFlagHistory(v, strict)
	checkNoValues(tb, err, warnings)
	checkErrorShape(tb, err)
	if err != nil {
		return
	}
	if q.Kind != store.PlanChanged || q.Order != store.OldestFirst || q.Limit < 1 || q.Limit > MaxCount {
		tb.Fatalf("ParseFlagHistory = %+v: not a page of the feed a store accepts", q)
	}
	enc := EncodeFlagHistory(q)
	back, warnings, err := ParseFlagHistory(enc, true)
	if err != nil || len(warnings) > 0 {
		tb.Fatalf("ParseFlagHistory(EncodeFlagHistory(q) = %q): warnings %v, error %v", enc.Encode(), warnings, err)
	}
	if diff := cmp.Diff(q, back); diff != "" {
		tb.Errorf("ParseFlagHistory(EncodeFlagHistory(q)) != q (-q +back):\n%s", diff)
	}
}

func FuzzParseFlagHistory(f *testing.F) {
	for _, raw := range historyRoundTrips {
		f.Add(raw, false)
	}
	f.Add("_since=2026-11-02&_count=0&_sort=_lastUpdated", true)
	f.Add("_since=2026-11-02T10:30:15-00:30&_cursor="+goldenCommunicationCursor, false)
	f.Fuzz(func(t *testing.T, raw string, strict bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		checkHistoryRoundTrip(t, v, strict)
	})
}

// FuzzDecodeEventCursor: what the decoder accepts for a search of the event
// log is a key a store accepts (a position of at least 1, in UTC), and it
// encodes back to the very text it read.
func FuzzDecodeEventCursor(f *testing.F) {
	f.Add(goldenCommunicationCursor, true)
	f.Add(goldenHistoryCursor, false)
	for _, c := range badEventCursors(historyCursor) {
		f.Add(c, false)
	}
	f.Fuzz(func(t *testing.T, s string, communication bool) {
		kind := historyCursor
		if communication {
			kind = communicationCursor
		}
		p := &parser{op: "test"}
		k, ok := p.eventCursor("_cursor", []string{s}, kind)
		if !ok {
			if len(p.errs) != 1 {
				t.Fatalf("eventCursor(%q) refused with %d errors", s, len(p.errs))
			}
			return
		}
		if k.Position < 1 || k.Stamp.Location() != time.UTC {
			t.Fatalf("eventCursor(%q) = %+v: not a key a store accepts", s, k)
		}
		if err := store.CheckEventQuery("test", store.EventQuery{Kind: store.ASNSent, After: k, Limit: 1}); err != nil {
			t.Fatalf("eventCursor(%q) = %+v: %v", s, k, err)
		}
		if back := eventCursorOf(kind, *k); back != s {
			t.Fatalf("eventCursor(%q) encodes back as %q", s, back)
		}
	})
}
