package cpis_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want cpis.Date
		ok   bool
	}{
		{"2026-02-28", cpis.Date{Year: 2026, Month: time.February, Day: 28}, true},
		{"2024-02-29", cpis.Date{Year: 2024, Month: time.February, Day: 29}, true},
		{"2000-02-29", cpis.Date{Year: 2000, Month: time.February, Day: 29}, true},
		{"0001-01-01", cpis.Date{Year: 1, Month: time.January, Day: 1}, true},
		{"2026-02-29", cpis.Date{}, false},
		{"1900-02-29", cpis.Date{}, false},
		{"2026-04-31", cpis.Date{}, false},
		{"2026-13-01", cpis.Date{}, false},
		{"2026-00-10", cpis.Date{}, false},
		{"2026-2-28", cpis.Date{}, false},
		{"2026-02-8", cpis.Date{}, false},
		{"2026", cpis.Date{}, false},
		{"2026-02", cpis.Date{}, false},
		{"20260228", cpis.Date{}, false},
		{"2026-02-28T00:00:00Z", cpis.Date{}, false},
		{" 2026-02-28", cpis.Date{}, false},
		{"+026-02-28", cpis.Date{}, false},
		{"28/02/2026", cpis.Date{}, false},
		{"", cpis.Date{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cpis.ParseDate(tt.in)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseDate(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if err != nil && cpis.KindOf(err) != cpis.Invalid {
				t.Errorf("kind = %v, want Invalid", cpis.KindOf(err))
			}
			if got != tt.want {
				t.Errorf("ParseDate(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if tt.ok && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestMustDatePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustDate accepted an impossible date")
		}
	}()
	cpis.MustDate("2026-02-30")
}

func TestDateZero(t *testing.T) {
	var d cpis.Date
	if !d.IsZero() || d.String() != "" {
		t.Errorf("zero Date: IsZero %v, String %q", d.IsZero(), d.String())
	}
	if cpis.MustDate("2026-01-01").IsZero() {
		t.Error("a real date reports IsZero")
	}
}

func TestDateArithmetic(t *testing.T) {
	tests := []struct {
		name string
		got  cpis.Date
		want string
	}{
		{"leap day plus 18 years is 1 March in a common year", cpis.MustDate("2008-02-29").AddYears(18), "2026-03-01"},
		{"leap day plus 4 years is a leap day", cpis.MustDate("2024-02-29").AddYears(4), "2028-02-29"},
		{"leap day minus a year", cpis.MustDate("2024-02-29").AddYears(-1), "2023-03-01"},
		{"ordinary day plus 18 years", cpis.MustDate("2010-06-15").AddYears(18), "2028-06-15"},
		{"28 February plus a year", cpis.MustDate("2023-02-28").AddYears(1), "2024-02-28"},
		{"into a leap day", cpis.MustDate("2024-02-28").AddDays(1), "2024-02-29"},
		{"over a common February's end", cpis.MustDate("2026-02-28").AddDays(1), "2026-03-01"},
		{"over the year's end", cpis.MustDate("2026-12-31").AddDays(1), "2027-01-01"},
		{"backwards over the year's end", cpis.MustDate("2027-01-01").AddDays(-1), "2026-12-31"},
		{"a display window of 364 days", cpis.MustDate("2026-06-30").AddDays(364), "2027-06-29"},
		{"a display window over a leap day", cpis.MustDate("2027-03-01").AddDays(364), "2028-02-28"},
		{"no move", cpis.MustDate("2026-05-05").AddDays(0), "2026-05-05"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDateOrder(t *testing.T) {
	a, b := cpis.MustDate("2026-12-31"), cpis.MustDate("2027-01-01")
	if !a.Before(b) || a.After(b) || b.Before(a) || !b.After(a) {
		t.Error("2026-12-31 and 2027-01-01 compare wrongly")
	}
	if a.Before(a) || a.After(a) {
		t.Error("a date is strictly before or after itself")
	}
}

func TestToday(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		now  time.Time
		want string
	}{
		{"winter, last second of the day", time.Date(2026, 1, 15, 23, 59, 59, 999999999, time.UTC), "2026-01-15"},
		{"winter, midnight", time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC), "2026-01-16"},
		{"summer, 23:59 UTC is already tomorrow", time.Date(2026, 6, 30, 23, 0, 0, 0, time.UTC), "2026-07-01"},
		{"summer, just before BST midnight", time.Date(2026, 6, 30, 22, 59, 59, 0, time.UTC), "2026-06-30"},
		{"night the clocks go forward, before the change", time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC), "2026-03-29"},
		{"eve of the clocks going forward", time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC), "2026-03-28"},
		{"night the clocks go back, still BST", time.Date(2026, 10, 24, 23, 30, 0, 0, time.UTC), "2026-10-25"},
		{"night the clocks go back, after the change", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), "2026-10-25"},
		{"New Year in UTC", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), "2026-12-31"},
		{"the instant's own zone does not matter", time.Date(2026, 7, 1, 20, 0, 0, 0, newYork), "2026-07-02"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpis.Today(tt.now).String(); got != tt.want {
				t.Errorf("Today(%v) = %s, want %s", tt.now, got, tt.want)
			}
		})
	}
}

func TestDateOfUsesTheInstantsZone(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	now := time.Date(2026, 7, 1, 7, 0, 0, 0, tokyo) // 23:00 BST on 2026-06-30
	if got := cpis.DateOf(now).String(); got != "2026-07-01" {
		t.Errorf("DateOf = %s, want 2026-07-01", got)
	}
	if got := cpis.Today(now).String(); got != "2026-06-30" {
		t.Errorf("Today = %s, want 2026-06-30", got)
	}
}

func TestDateStart(t *testing.T) {
	tests := []struct {
		day, want string
	}{
		{"2026-01-01", "2026-01-01T00:00:00Z"},
		{"2026-07-01", "2026-06-30T23:00:00Z"},
		{"2026-03-29", "2026-03-29T00:00:00Z"}, // the clocks change at 01:00
		{"2026-03-30", "2026-03-29T23:00:00Z"},
		{"2026-10-25", "2026-10-24T23:00:00Z"},
		{"2026-10-26", "2026-10-26T00:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.day, func(t *testing.T) {
			start := cpis.MustDate(tt.day).Start()
			want, _ := time.Parse(time.RFC3339, tt.want)
			if diff := cmp.Diff(want, start); diff != "" {
				t.Errorf("Start (-want +got):\n%s", diff)
			}
			if got := cpis.Today(start).String(); got != tt.day {
				t.Errorf("Today(Start) = %s: the start is not in the day", got)
			}
			if got := cpis.Today(start.Add(-time.Nanosecond)).String(); got != cpis.MustDate(tt.day).AddDays(-1).String() {
				t.Errorf("the instant before Start is on %s, not the day before", got)
			}
		})
	}
}
