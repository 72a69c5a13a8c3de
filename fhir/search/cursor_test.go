package search

import (
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// The cursor of the tests: a key, and the instant page 1 ran.
var (
	cursorAsOf = time.Date(2026, 7, 1, 9, 0, 0, 123456000, time.UTC)
	cursorAt   = time.Date(2026, 6, 30, 23, 0, 0, 1000, time.UTC)
	cursorKey  = "6f1c2d3e-0000-4000-8000-00000000002a"
	// Golden texts of form 1: a change of form must be deliberate (a new
	// form number), because next links already given out must still work.
	goldenFlagCursor  = "AUYABlWI6pnGQAAGVYCI03wBNmYxYzJkM2UtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDJh"
	goldenAuditCursor = "AUEABlWAiNN8ATZmMWMyZDNlLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAyYQ"
)

// rawCursor builds a cursor's text from its parts as the form describes
// them, independently of encode.
func rawCursor(form, kind byte, times []int64, id string) string {
	b := []byte{form, kind}
	for _, us := range times {
		b = binary.BigEndian.AppendUint64(b, uint64(us))
	}
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

func TestCursorForm(t *testing.T) {
	flag := cursor{asOf: cursorAsOf, at: cursorAt, id: cursorKey}.encode(flagCursor)
	if want := rawCursor(1, 'F', []int64{cursorAsOf.UnixMicro(), cursorAt.UnixMicro()}, cursorKey); flag != want || flag != goldenFlagCursor {
		t.Errorf("flag cursor %s, want %s (golden %s)", flag, want, goldenFlagCursor)
	}
	audit := cursor{at: cursorAt, id: cursorKey}.encode(auditCursor)
	if want := rawCursor(1, 'A', []int64{cursorAt.UnixMicro()}, cursorKey); audit != want || audit != goldenAuditCursor {
		t.Errorf("audit cursor %s, want %s (golden %s)", audit, want, goldenAuditCursor)
	}
	current := cursor{at: cursorAt, id: cursorKey}.encode(flagCursor)
	if want := rawCursor(1, 'F', []int64{0, cursorAt.UnixMicro()}, cursorKey); current != want {
		t.Errorf("flag cursor without AsOf %s, want %s", current, want)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []cursor{
		{asOf: cursorAsOf, at: cursorAt, id: cursorKey},
		{at: cursorAt, id: cursorKey},
		{asOf: time.UnixMicro(1).UTC(), at: time.Unix(0, 0).UTC(), id: "a"},
		{asOf: time.UnixMicro(lastMicro).UTC(), at: time.UnixMicro(lastMicro).UTC(), id: strings.Repeat("Z.-9", 16)},
	} {
		got, err := decodeCursor(flagCursor, c.encode(flagCursor))
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", c, err)
		}
		if diff := cmp.Diff(c, got, cmp.AllowUnexported(cursor{})); diff != "" {
			t.Errorf("decode(encode(c)) != c (-c +got):\n%s", diff)
		}
		if got.at.Location() != time.UTC {
			t.Errorf("decoded instant in %v, want UTC", got.at.Location())
		}
	}
}

func TestParseCursor(t *testing.T) {
	q, warnings, err := ParseFlagSearch(query(t, "patient="+nhsA+"&_cursor="+goldenFlagCursor), true)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ParseFlagSearch: warnings %v, error %v", warnings, err)
	}
	want := withQ(func(q *store.PlanQuery) {
		q.NHSNumber, q.AsOf, q.After = nhsA, cursorAsOf, &store.PlanKey{LastUpdated: cursorAt, ID: cursorKey}
	})
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("flag query (-want +got):\n%s", diff)
	}
	aq, warnings, err := ParseAuditSearch(query(t, "patient="+nhsA+"&_cursor="+goldenAuditCursor), true)
	if err != nil || len(warnings) > 0 {
		t.Fatalf("ParseAuditSearch: warnings %v, error %v", warnings, err)
	}
	awant := auditQ(func(q *store.AuditQuery) {
		q.Patient, q.Before = nhsA, &store.AuditKey{Recorded: cursorAt, ID: cursorKey}
	})
	if diff := cmp.Diff(awant, aq); diff != "" {
		t.Errorf("audit query (-want +got):\n%s", diff)
	}
}

// badCursors are _cursor values a Flag search must refuse.
func badCursors() map[string]string {
	at := cursorAt.UnixMicro()
	flag := func(times []int64, id string) string { return rawCursor(1, 'F', times, id) }
	return map[string]string{
		"empty":                  "",
		"not base64":             "not a cursor!",
		"padded":                 base64.URLEncoding.EncodeToString([]byte("\x01F0123456789abcdefX")),
		"standard alphabet":      strings.ReplaceAll(goldenFlagCursor, "G", "+"),
		"a newline inside":       goldenFlagCursor[:20] + "\n" + goldenFlagCursor[20:],
		"spare bits set":         goldenAuditCursor[:len(goldenAuditCursor)-1] + "R",
		"too long":               strings.Repeat("A", maxCursorLen+1),
		"form 2":                 rawCursor(2, 'F', []int64{0, at}, cursorKey),
		"form 0":                 rawCursor(0, 'F', []int64{0, at}, cursorKey),
		"an AuditEvent search's": goldenAuditCursor,
		"another kind":           rawCursor(1, 'X', []int64{0, at}, cursorKey),
		"only the header":        base64.RawURLEncoding.EncodeToString([]byte{1, 'F'}),
		"cut inside the instant": base64.RawURLEncoding.EncodeToString(append([]byte{1, 'F', 0, 0, 0, 0, 0, 0, 0, 0}, 1, 2, 3)),
		"no id":                  flag([]int64{0, at}, ""),
		"an id too long":         flag([]int64{0, at}, strings.Repeat("a", 65)),
		"an id with a slash":     flag([]int64{0, at}, "Flag/1"),
		"an id with a NUL":       flag([]int64{0, at}, "a\x00b"),
		"an id with a space":     flag([]int64{0, at}, "a b"),
		"an id not in UTF-8":     flag([]int64{0, at}, "a\xffb"),
		"an instant before 1970": flag([]int64{0, -1}, cursorKey),
		"an instant after 9999":  flag([]int64{0, lastMicro + 1}, cursorKey),
		"an AsOf before 1970":    flag([]int64{-1, at}, cursorKey),
		"an AsOf after 9999":     flag([]int64{lastMicro + 1, at}, cursorKey),
		"the largest AsOf":       flag([]int64{int64(^uint64(0) >> 1), at}, cursorKey),
	}
}

func TestParseFlagSearchBadCursor(t *testing.T) {
	for name, c := range badCursors() {
		t.Run(name, func(t *testing.T) {
			v := url.Values{"patient": {nhsA}, "_cursor": {c}}
			q, warnings, err := ParseFlagSearch(v, false)
			if err == nil {
				t.Fatalf("ParseFlagSearch accepted _cursor %q: %+v", c, q)
			}
			if diff := cmp.Diff([]problem{{cpis.InvalidSearch, "_cursor"}}, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			checkErrorShape(t, err)
			checkNoValues(t, err, warnings)
		})
	}
}

func TestCursorRefusals(t *testing.T) {
	flagTests := []struct {
		name string
		raw  string
		want []problem
	}{
		{"repeated", "_cursor=" + goldenFlagCursor + "&_cursor=" + goldenFlagCursor, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"a modifier", "_cursor:exact=" + goldenFlagCursor, []problem{{cpis.InvalidSearch, "_cursor:exact"}}},
	}
	for _, tt := range flagTests {
		t.Run("Flag "+tt.name, func(t *testing.T) {
			_, _, err := ParseFlagSearch(query(t, tt.raw), false)
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
	auditTests := []struct {
		name string
		raw  string
		want []problem
	}{
		{"a Flag search's", "_cursor=" + goldenFlagCursor, []problem{{cpis.InvalidSearch, "_cursor"}}},
		{"cut short", "_cursor=" + goldenAuditCursor[:12], []problem{{cpis.InvalidSearch, "_cursor"}}},
	}
	for _, tt := range auditTests {
		t.Run("AuditEvent "+tt.name, func(t *testing.T) {
			_, _, err := ParseAuditSearch(query(t, tt.raw), false)
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecodeCursor: the decoder never panics, and whatever it accepts is in
// the form's bounds and encodes back to the very text it read, so that one
// position of a search has one cursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(goldenFlagCursor, true)
	f.Add(goldenAuditCursor, false)
	f.Add(cursor{at: cursorAt, id: "x"}.encode(flagCursor), true)
	for _, c := range badCursors() {
		f.Add(c, true)
	}
	f.Fuzz(func(t *testing.T, s string, flag bool) {
		kind := auditCursor
		if flag {
			kind = flagCursor
		}
		c, err := decodeCursor(kind, s)
		if err != nil {
			if err != errCursor {
				t.Fatalf("decodeCursor(%q): error %v, want errCursor", s, err)
			}
			return
		}
		if !cursorID.MatchString(c.id) || c.at.Location() != time.UTC || (kind == auditCursor && !c.asOf.IsZero()) {
			t.Fatalf("decodeCursor(%q) = %+v: outside the form", s, c)
		}
		if back := c.encode(kind); back != s {
			t.Fatalf("decodeCursor(%q) encodes back as %q", s, back)
		}
	})
}
