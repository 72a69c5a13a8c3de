package viewer

import (
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// london is where dates and times are shown: the Trust's users are in
// England, and the SOP counts UK days.
var london = mustLoadLocation("Europe/London")

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // time/tzdata is linked into the binaries
	}
	return loc
}

// formatDate writes a date as NCRS does: DD-Mon-YYYY, e.g. 03-Dec-2025.
func formatDate(d cpis.Date) string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%02d-%s-%04d", d.Day, d.Month.String()[:3], d.Year)
}

// formatTime writes an instant in UK time, as the date is written, with
// hours and minutes: 22-Nov-2026 10:00.
func formatTime(t time.Time) string {
	l := t.In(london)
	return formatDate(cpis.DateOf(l)) + " " + l.Format("15:04")
}

// formatNHS writes an NHS number in groups of 3, 3 and 4 digits, as NHS
// screens do: 943 476 5919.
func formatNHS(n cpis.NHSNumber) string {
	s := string(n)
	if len(s) != 10 {
		return s
	}
	return s[:3] + " " + s[3:6] + " " + s[6:]
}

// phone is a telephone number as written and as a tel: link.
type phone struct {
	Text string // as the LA wrote it
	// Href is tel:+44..., "" when it cannot be dialled. Typed as a URL
	// because html/template lets through only http, https and mailto
	// links: this one is made of digits by phoneOf.
	Href template.URL
}

// phoneOf makes a dialable link of a UK number: the digits only, the
// leading 0 written +44 (RFC 3966 global number), so that a phone dials it
// from anywhere.
func phoneOf(s string) phone {
	s = strings.TrimSpace(s)
	if s == "" {
		return phone{}
	}
	var digits strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			digits.WriteRune(c)
		}
	}
	d := digits.String()
	switch {
	case strings.HasPrefix(s, "+44"):
		return phone{Text: s, Href: template.URL("tel:+" + d)}
	case strings.HasPrefix(d, "0") && len(d) >= 10:
		return phone{Text: s, Href: template.URL("tel:+44" + d[1:])}
	case len(d) >= 3:
		return phone{Text: s, Href: template.URL("tel:" + d)}
	}
	return phone{Text: s}
}

// contact is a referral contact: a telephone number, an e-mail address,
// or words.
type contact struct {
	Text string
	Href template.URL // tel: or mailto:, "" for words
}

// contactOf links a referral contact when it is a number or an address.
func contactOf(s string) contact {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return contact{}
	case cpis.ValidPhone(s):
		return contact(phoneOf(s))
	case strings.Count(s, "@") == 1 && !strings.ContainsAny(s, " \t<>\"'"):
		return contact{Text: s, Href: template.URL("mailto:" + url.PathEscape(s))}
	}
	return contact{Text: s}
}

// careSetting names the care setting of a read as the form does.
func careSetting(unscheduled bool) string {
	if unscheduled {
		return "Unscheduled care (notifies the local authority)"
	}
	return "Scheduled care"
}

// plural writes "1 plan", "2 plans".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
