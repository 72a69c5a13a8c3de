package search

import (
	"regexp"
	"strconv"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// timeBounds is a half-open interval [from, before) of instants; a zero end
// does not constrain. It is how store queries express time ranges.
type timeBounds struct {
	from, before time.Time
}

// narrow intersects b with [from, before), keeping the tightest of each end.
func (b *timeBounds) narrow(from, before time.Time) {
	if !from.IsZero() && (b.from.IsZero() || from.After(b.from)) {
		b.from = from
	}
	if !before.IsZero() && (b.before.IsZero() || before.Before(b.before)) {
		b.before = before
	}
}

// Value forms FHIR allows for a date search, at the precisions we support.
var (
	yearRE     = regexp.MustCompile(`^[0-9]{4}$`)
	monthRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}$`)
	dayRE      = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
	dateTimeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$`)
)

// maxInstant is the last instant a link can spell in RFC 3339's four-digit
// years. A range must end by then and start after the zero time, which the
// store reads as "no bound".
var maxInstant = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// dates reads every value of a date parameter (_lastUpdated, date) into b.
// Repeated values are ANDed, as FHIR says, so each one narrows the range.
func (p *parser) dates(b *timeBounds, name string, values []string) {
	for _, s := range values {
		from, before, ok := p.date(name, s)
		if ok {
			b.narrow(from, before)
		}
	}
}

// date turns one prefixed value into the bounds it sets. A FHIR date value is
// the range of its precision (a year, a month, a day in UK time, a second or
// fraction of one), and each prefix compares the stored instant with that range.
func (p *parser) date(name, s string) (from, before time.Time, ok bool) {
	prefix, v := "eq", s
	if len(s) >= 2 && isLower(s[0]) && isLower(s[1]) {
		prefix, v = s[:2], s[2:]
	}
	switch prefix {
	case "eq", "gt", "ge", "lt", "le":
	case "ne", "sa", "eb", "ap":
		p.fail(cpis.InvalidSearch, name, "the "+prefix+" prefix is not supported on "+name+": use eq, gt, ge, lt or le")
		return time.Time{}, time.Time{}, false
	default:
		p.fail(cpis.InvalidSearch, name, name+" has an unknown prefix: use eq, gt, ge, lt or le")
		return time.Time{}, time.Time{}, false
	}
	start, end, ok := dateRange(v)
	if !ok {
		p.fail(cpis.InvalidSearch, name, name+" must be a date (YYYY, YYYY-MM, YYYY-MM-DD) or a dateTime with seconds and a time zone")
		return time.Time{}, time.Time{}, false
	}
	if !start.After(time.Time{}) || end.After(maxInstant) {
		p.fail(cpis.InvalidSearch, name, name+" is outside the years 0001 to 9999")
		return time.Time{}, time.Time{}, false
	}
	return prefixBounds(prefix, start, end)
}

// prefixBounds is where each prefix puts the range [start, end): eq inside
// it, gt after its end, ge from its start, lt before its start, le up to its end.
func prefixBounds(prefix string, start, end time.Time) (from, before time.Time, ok bool) {
	switch prefix {
	case "gt":
		return end, time.Time{}, true
	case "ge":
		return start, time.Time{}, true
	case "lt":
		return time.Time{}, start, true
	case "le":
		return time.Time{}, end, true
	}
	return start, end, true
}

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }

// dateRange returns the range [start, end) a date or dateTime value stands
// for, in UTC. Dates without a time are UK calendar days (cpis.Date.Start).
func dateRange(v string) (start, end time.Time, ok bool) {
	switch {
	case yearRE.MatchString(v):
		y, _ := strconv.Atoi(v)
		return days(cpis.Date{Year: y, Month: time.January, Day: 1}, cpis.Date{Year: y + 1, Month: time.January, Day: 1})
	case monthRE.MatchString(v):
		t, err := time.Parse("2006-01", v)
		if err != nil {
			return time.Time{}, time.Time{}, false
		}
		return days(cpis.DateOf(t), cpis.DateOf(t.AddDate(0, 1, 0)))
	case dayRE.MatchString(v):
		d, err := cpis.ParseDate(v)
		if err != nil {
			return time.Time{}, time.Time{}, false
		}
		return days(d, d.AddDays(1))
	case dateTimeRE.MatchString(v):
		return instantRange(v)
	}
	return time.Time{}, time.Time{}, false
}

func days(first, next cpis.Date) (start, end time.Time, ok bool) {
	return first.Start().UTC(), next.Start().UTC(), true
}

// instantRange gives a dateTime the precision it was written with: a value to
// the second covers that second, one to the millisecond that millisecond.
func instantRange(v string) (start, end time.Time, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	width := time.Second
	if m := dateTimeRE.FindStringSubmatch(v); len(m[1]) > 1 {
		for range len(m[1]) - 1 {
			width /= 10
		}
	}
	return t.UTC(), t.UTC().Add(width), true
}

// formatBound writes a bound as the links carry it: RFC 3339 in UTC, with as
// many fractional digits as the instant needs (none on a whole second,
// microseconds for what the stores keep, nanoseconds only if a client sent
// them), so that parsing the link gives back the same instant.
func formatBound(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
