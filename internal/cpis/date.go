package cpis

import (
	"fmt"
	"time"
)

// Date is a calendar date with no time of day or zone, as FHIR's `date` at
// day precision. The zero value means "no date".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// london is where "today" is decided: the SOP's display windows count UK days.
var london = mustLoadLocation("Europe/London")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // time/tzdata is linked into the binaries, so this cannot happen
	}
	return loc
}

// Today returns the UK calendar date at the instant now.
func Today(now time.Time) Date { return DateOf(now.In(london)) }

// DateOf returns the calendar date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads a full FHIR date, YYYY-MM-DD. Partial dates (YYYY, YYYY-MM)
// are refused: every CP-IS date is a day.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != 10 {
		return Date{}, E("cpis.ParseDate", Invalid, "a date must be a full date, YYYY-MM-DD")
	}
	return DateOf(t), nil
}

// MustDate is ParseDate for literals in tests and fixtures; it panics on error.
func MustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

func (d Date) time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// IsZero reports whether d is "no date".
func (d Date) IsZero() bool { return d == Date{} }

// String formats d as YYYY-MM-DD, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// AddDays returns d moved by n days.
func (d Date) AddDays(n int) Date { return DateOf(d.time().AddDate(0, 0, n)) }

// AddYears returns d moved by n years. 29 February moves to 1 March in a
// common year, which is when a leap-day child legally comes of age in England.
func (d Date) AddYears(n int) Date { return DateOf(d.time().AddDate(n, 0, 0)) }

// Before reports whether d is strictly earlier than o.
func (d Date) Before(o Date) bool { return d.time().Before(o.time()) }

// After reports whether d is strictly later than o.
func (d Date) After(o Date) bool { return d.time().After(o.time()) }

// Start returns the first instant of d in UK time, for time-range queries.
func (d Date) Start() time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, london)
}
