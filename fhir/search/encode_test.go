package search

import (
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		q    store.PlanQuery
		want string
	}{
		{"defaults", defaults(), "_count=20&_sort=-_lastUpdated"},
		{"everything", store.PlanQuery{
			NHSNumber: nhsA, Types: []cpis.PlanType{cpis.CPP, cpis.CLA}, Statuses: []cpis.Status{cpis.Active, cpis.Inactive},
			UpdatedFrom: mustTime(t, "2026-06-30T23:00:00Z"), UpdatedBefore: mustTime(t, "2026-07-01T10:00:00.123456+01:00"),
			Limit: 50, Order: store.OldestFirst,
			LACode: "ZLA01", Today: cpis.MustDate("2026-07-01"), VisibleOn: cpis.MustDate("2026-07-01"), // not part of a link
		}, "_count=50&_lastUpdated=ge2026-06-30T23%3A00%3A00Z&_lastUpdated=lt2026-07-01T09%3A00%3A00.123456Z&_sort=_lastUpdated" +
			"&code=CPP%2CCLA&patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9000000009&status=active%2Cinactive"},
		{"a next page", store.PlanQuery{
			NHSNumber: nhsA, Limit: 20, AsOf: cursorAsOf, After: &store.PlanKey{LastUpdated: cursorAt, ID: cursorKey},
		}, "_count=20&_cursor=" + goldenFlagCursor + "&_sort=-_lastUpdated&patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9000000009"},
		{"a next page in another time zone", store.PlanQuery{
			Limit: 20, AsOf: cursorAsOf.In(time.FixedZone("", 3600)), After: &store.PlanKey{LastUpdated: cursorAt.In(time.FixedZone("", -3600)), ID: cursorKey},
		}, "_count=20&_cursor=" + goldenFlagCursor + "&_sort=-_lastUpdated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Encode(tt.q).Encode(); got != tt.want {
				t.Errorf("Encode = %s\nwant     %s", got, tt.want)
			}
		})
	}
}

func TestEncodeAudit(t *testing.T) {
	q := store.AuditQuery{
		Patient: nhsB, ActorUserID: sdsID, RecordedFrom: mustTime(t, "2026-01-01T00:00:00.5Z"),
		Limit: 25, OrgCode: "RX1", AccessOnly: true, // the last two are not part of a link
	}
	want := "_count=25&_sort=-date&agent%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fsds-user-id%7C555021935107" +
		"&date=ge2026-01-01T00%3A00%3A00.5Z&patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9449306753"
	if got := EncodeAudit(q).Encode(); got != want {
		t.Errorf("EncodeAudit = %s\nwant          %s", got, want)
	}
	next := store.AuditQuery{Patient: nhsB, Limit: 25, Before: &store.AuditKey{Recorded: cursorAt, ID: cursorKey}}
	want = "_count=25&_cursor=" + goldenAuditCursor + "&_sort=-date&patient%3Aidentifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9449306753"
	if got := EncodeAudit(next).Encode(); got != want {
		t.Errorf("EncodeAudit of a next page = %s\nwant                       %s", got, want)
	}
}

// roundTripQueries are searches whose parse must survive Encode and a strict
// parse unchanged: the links the api builds from them mean the same search.
var roundTripQueries = []string{
	"",
	"patient=9000000009&status=inactive,active&code=764841000000100,UCPP",
	"subject:identifier=https://fhir.nhs.uk/Id/nhs-number|9990276579&_sort=_lastUpdated&_count=1000",
	"_lastUpdated=2026-07&_lastUpdated=gt2026-07-15T12:00:00.1234567%2B01:00",
	"_lastUpdated=le2026-03-29&_lastUpdated=ge0001-01-01T00:00:00.000000001Z&foo=bar&_summary=true",
	"_lastUpdated=9998&status=entered-in-error&_format=json&_pretty=false",
	"patient=9000000009&_cursor=" + goldenFlagCursor + "&_sort=_lastUpdated&_count=2",
	"_cursor=" + cursor{at: time.Unix(0, 0), id: "a"}.encode(flagCursor),
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, raw := range roundTripQueries {
		t.Run(raw, func(t *testing.T) {
			checkFlagRoundTrip(t, query(t, raw), false)
		})
	}
}

func TestEncodeAuditRoundTrip(t *testing.T) {
	for _, raw := range []string{
		"",
		"patient=9000000009&agent=555021935107&date=2026-10-25&_count=3&_sort=-date",
		"date=gt2026-01-01T00:00:00.999999999-12:00&date=le9998-12&_include=" + url.QueryEscape(NationalAuditInclude),
		"patient=9000000009&_cursor=" + goldenAuditCursor,
	} {
		t.Run(raw, func(t *testing.T) {
			checkAuditRoundTrip(t, query(t, raw), false)
		})
	}
}

// checkFlagRoundTrip parses v and, when it parses, checks that its encoding
// parses strictly, with no warning, back to the same query.
func checkFlagRoundTrip(tb testing.TB, v url.Values, strict bool) {
	tb.Helper()
	q, warnings, err := ParseFlagSearch(v, strict)
	checkNoValues(tb, err, warnings)
	checkErrorShape(tb, err)
	if err != nil {
		return
	}
	enc := Encode(q)
	back, warnings, err := ParseFlagSearch(enc, true)
	if err != nil || len(warnings) > 0 {
		tb.Fatalf("ParseFlagSearch(Encode(q) = %q): warnings %v, error %v", enc.Encode(), warnings, err)
	}
	if diff := cmp.Diff(q, back); diff != "" {
		tb.Errorf("ParseFlagSearch(Encode(q)) != q (-q +back):\n%s", diff)
	}
}

// checkAuditRoundTrip is checkFlagRoundTrip for audit searches.
func checkAuditRoundTrip(tb testing.TB, v url.Values, strict bool) {
	tb.Helper()
	q, warnings, err := ParseAuditSearch(v, strict)
	checkNoValues(tb, err, warnings)
	checkErrorShape(tb, err)
	if err != nil {
		return
	}
	enc := EncodeAudit(q)
	back, warnings, err := ParseAuditSearch(enc, true)
	if err != nil || len(warnings) > 0 {
		tb.Fatalf("ParseAuditSearch(EncodeAudit(q) = %q): warnings %v, error %v", enc.Encode(), warnings, err)
	}
	if diff := cmp.Diff(q, back); diff != "" {
		tb.Errorf("ParseAuditSearch(EncodeAudit(q)) != q (-q +back):\n%s", diff)
	}
}

func FuzzParseFlagSearch(f *testing.F) {
	for _, raw := range roundTripQueries {
		f.Add(raw, false)
	}
	f.Add("patient=9000000001&status=open&_count=0&_lastUpdated=ne2026", true)
	f.Add("patient:identifier=|9000000009&code=http://snomed.info/sct|1064311000000109&_lastUpdated=2026-01-01T00:00:00.5-00:30", false)
	f.Fuzz(func(t *testing.T, raw string, strict bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		checkFlagRoundTrip(t, v, strict)
	})
}

func FuzzParseAuditSearch(f *testing.F) {
	f.Add("patient:identifier=https://fhir.nhs.uk/Id/nhs-number|9000000009&_include="+url.QueryEscape(NationalAuditInclude), true)
	f.Add("agent:identifier=https://fhir.nhs.uk/Id/sds-user-id|555021935107&date=ge2026-01&date=lt2026-02-01T00:00:00Z&_sort=-date", false)
	f.Add("date=sa2026&_count=-1&_revinclude=x", false)
	f.Add("_cursor="+goldenAuditCursor+"&_count=2", true)
	f.Add("_cursor="+goldenFlagCursor, false)
	f.Fuzz(func(t *testing.T, raw string, strict bool) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		checkAuditRoundTrip(t, v, strict)
	})
}
