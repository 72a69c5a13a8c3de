package cpis_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// weekdays is Monday to Friday, as most offices open.
var weekdays = []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}

// TestDevDirectory: the dev directory keeps the codes, names and numbers the
// demo data, personas and store tests rely on, and gives every LA a referral
// route and office hours.
func TestDevDirectory(t *testing.T) {
	want := []struct{ code, name, emergency, office string }{
		{"ZLA01", "London Borough of Hackney and City of London", "020 7946 0101", "020 7946 0102"},
		{"ZLA02", "London Borough of Newham", "020 7946 0201", "020 7946 0202"},
		{"ZLA03", "London Borough of Tower Hamlets", "020 7946 0301", "020 7946 0302"},
		{"ZLA04", "Bedford Borough Council", "020 7946 0401", "020 7946 0402"},
		{"ZLA05", "Central Bedfordshire Council", "020 7946 0501", "020 7946 0502"},
		{"ZLA06", "Luton Borough Council", "020 7946 0601", "020 7946 0602"},
	}
	got := cpis.DevDirectory().Entries()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	hours := map[string]bool{}
	for i, w := range want {
		e := got[i]
		if e.Code != w.code || e.Name != w.name || e.EmergencyPhone != w.emergency || e.OfficePhone != w.office {
			t.Errorf("entry %d = %+v, want %+v", i+1, e, w)
		}
		if e.Referral == "" || e.ReferralContact == "" || len(e.OfficeHours.Days) == 0 {
			t.Errorf("%s has no referral route or office hours: %+v", e.Code, e)
		}
		hours[e.OfficeHours.String()] = true
	}
	if len(hours) < 2 {
		t.Errorf("every LA keeps the same hours %v; the dev directory should show that they differ", hours)
	}
	if diff := cmp.Diff(got, cpis.TrustDirectory()); diff != "" {
		t.Errorf("TrustDirectory differs from DevDirectory (-dev +trust):\n%s", diff)
	}
}

// TestExampleDirectory: the file an operator copies is the dev directory.
func TestExampleDirectory(t *testing.T) {
	f, err := os.Open("../../examples/la-directory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := cpis.ReadDirectory(f)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(cpis.DevDirectory().Entries(), d.Entries()); diff != "" {
		t.Errorf("examples/la-directory.yaml differs from DevDirectory (-dev +file):\n%s", diff)
	}
}

// TestReadDirectoryJSON: JSON is read as YAML, tabs and all.
func TestReadDirectoryJSON(t *testing.T) {
	const in = "{\n\t\"authorities\": [\n\t\t{\"code\": \"ZLA01\", \"name\": \"Hackney\", \"emergencyPhone\": \"020 7946 0101\",\n" +
		"\t\t \"officeHours\": {\"days\": [\"fri\", \"mon\"], \"open\": \"09:00\", \"close\": \"17:00\"}}\n\t]\n}\n"
	d, err := cpis.ReadDirectory(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []cpis.DirectoryEntry{{
		LocalAuthority: cpis.LocalAuthority{Code: "ZLA01", Name: "Hackney"}, EmergencyPhone: "020 7946 0101",
		OfficeHours: cpis.OfficeHours{Days: []time.Weekday{time.Monday, time.Friday}, Open: "09:00", Close: "17:00"},
	}}
	if diff := cmp.Diff(want, d.Entries()); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

// TestReadDirectoryAnchors: an operator may share one officeHours between
// entries with a YAML anchor.
func TestReadDirectoryAnchors(t *testing.T) {
	const in = `authorities:
  - {code: ZLA01, name: Hackney, emergencyPhone: 020 7946 0101, officeHours: &std {days: [mon], open: "09:00", close: "17:00"}}
  - {code: ZLA02, name: Newham, emergencyPhone: 020 7946 0201, officeHours: *std}
`
	d, err := cpis.ReadDirectory(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := d.Lookup("ZLA02"); !ok || e.OfficeHours.String() != "Monday, 09:00 to 17:00" {
		t.Errorf("Lookup(ZLA02) = %+v, %v", e, ok)
	}
}

// directoryFile is a valid directory of two entries; the refusal cases each
// break one thing in it, in the second entry where they can.
const directoryFile = `authorities:
  - code: ZLA01
    name: London Borough of Hackney and City of London
    emergencyPhone: 020 7946 0101
    officePhone: 020 7946 0102
    referral: "Multi-Agency Safeguarding Hub (MASH): telephone first"
    referralContact: 020 7946 0103
    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
  - code: ZLA02
    name: London Borough of Newham
    emergencyPhone: 020 7946 0201
    officePhone: 020 7946 0202
    referral: "Children's Front Door: secure e-mail"
    referralContact: frontdoor@zla02.example.org
    officeHours:
      days: [mon, tue, wed, thu]
      open: "08:30"
      close: "16:30"
`

func TestReadDirectoryRefuses(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(directoryFile, old) {
			panic("no " + old + " in the directory file")
		}
		return strings.Replace(directoryFile, old, new, 1)
	}
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"comments only", "# nothing\n", "empty"},
		{"not YAML", "authorities: [\n", "not valid YAML or JSON"},
		{"two documents", directoryFile + "---\nauthorities: []\n", "single YAML document"},
		{"top level a list", "- code: ZLA01\n", "top level"},
		{"unknown top-level field", "version: 2\n" + directoryFile, `the top level: unknown field "version"`},
		{"no authorities", "authorities:\n", "authorities: list"},
		{"no entries", "authorities: []\n", "no local authorities"},
		{"entry not a mapping", "authorities: [ZLA01]\n", "entry 1: must be a mapping"},
		{"unknown field", edit("    officePhone: 020 7946 0202\n", "    officePhone: 020 7946 0202\n    fax: 020 7946 0204\n"), `entry 2 (ZLA02): unknown field "fax"`},
		{"misspelt field", edit("emergencyPhone: 020 7946 0201", "emergencyphone: 020 7946 0201"), `entry 2 (ZLA02): unknown field "emergencyphone"`},
		{"unknown hours field", edit(`close: "16:30"`, "close: \"16:30\"\n      lunch: \"13:00\""), `entry 2 (ZLA02), officeHours: unknown field "lunch"`},
		{"field twice", edit("    officePhone: 020 7946 0202\n", "    officePhone: 020 7946 0202\n    officePhone: 020 7946 0203\n"), "entry 2 (ZLA02): field officePhone is given twice"},
		{"name a list", edit("name: London Borough of Newham", "name: [Newham]"), "entry 2 (ZLA02), name: must be text"},
		{"duplicate code", edit("code: ZLA02", "code: ZLA01"), "entry 2 (ZLA01), code: appears twice"},
		{"bad code", edit("code: ZLA02", "code: zla02"), "entry 2, code:"},
		{"missing name", edit("    name: London Borough of Newham\n", ""), "entry 2 (ZLA02), name:"},
		{"bidi in name", edit("name: London Borough of Newham", "name: \"Newham\u202e\""), "entry 2 (ZLA02), name:"},
		{"missing emergency number", edit("    emergencyPhone: 020 7946 0201\n", ""), "entry 2 (ZLA02), emergencyPhone: is missing"},
		{"bad emergency number", edit("emergencyPhone: 020 7946 0201", "emergencyPhone: 020-7946-0201"), "entry 2 (ZLA02), emergencyPhone: must be a UK telephone number"},
		{"bad office number", edit("officePhone: 020 7946 0202", "officePhone: 020 7946 0202 ext 4"), "entry 2 (ZLA02), officePhone:"},
		{"bad referral contact", edit("referralContact: frontdoor@zla02.example.org", "referralContact: Front Door <frontdoor@zla02.example.org>"), "entry 2 (ZLA02), referralContact:"},
		{"referral too long", edit(`referral: "Children's Front Door: secure e-mail"`, "referral: "+strings.Repeat("x", cpis.MaxReferralLength+1)), "entry 2 (ZLA02), referral:"},
		{"missing office hours", edit("    officeHours:\n      days: [mon, tue, wed, thu]\n      open: \"08:30\"\n      close: \"16:30\"\n", ""), "entry 2 (ZLA02), officeHours: is missing"},
		{"office hours a list", edit("    officeHours:\n      days: [mon, tue, wed, thu]\n      open: \"08:30\"\n      close: \"16:30\"\n", "    officeHours: [mon]\n"), "entry 2 (ZLA02), officeHours: must be a mapping"},
		{"bad day", edit("days: [mon, tue, wed, thu]", "days: [mon, tue, wed, thursday]"), "entry 2 (ZLA02), officeHours.days: must name days"},
		{"day twice", edit("days: [mon, tue, wed, thu]", "days: [mon, tue, mon]"), "entry 2 (ZLA02), officeHours.days: must list each day once"},
		{"no days", edit("days: [mon, tue, wed, thu]", "days: []"), "entry 2 (ZLA02), officeHours.days: must list at least one day"},
		{"days not a list", edit("days: [mon, tue, wed, thu]", "days: mon-thu"), "entry 2 (ZLA02), officeHours.days: must be a list"},
		{"one-digit hour", edit(`open: "08:30"`, `open: "8:30"`), "entry 2 (ZLA02), officeHours.open: must be a time of day as HH:MM"},
		{"hour 24", edit(`close: "16:30"`, `close: "24:00"`), "entry 2 (ZLA02), officeHours.close: must be a time"},
		{"minute 60", edit(`close: "16:30"`, `close: "16:60"`), "entry 2 (ZLA02), officeHours.close: must be a time"},
		{"missing close", edit("      close: \"16:30\"\n", ""), "entry 2 (ZLA02), officeHours.close: must be a time"},
		{"close before open", edit(`close: "16:30"`, `close: "08:00"`), "entry 2 (ZLA02), officeHours.close: must be later than open"},
		{"close at open", edit(`close: "16:30"`, `close: "08:30"`), "entry 2 (ZLA02), officeHours.close: must be later than open"},
		{"too large", directoryFile + "# " + strings.Repeat("x", cpis.MaxDirectorySize) + "\n", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := cpis.ReadDirectory(strings.NewReader(tt.in))
			var e *cpis.Error
			if !errors.As(err, &e) || e.Kind != cpis.Invalid {
				t.Fatalf("ReadDirectory = %v, %v; want an *Error of kind Invalid", d, err)
			}
			if !strings.Contains(e.Msg, tt.want) {
				t.Errorf("message %q does not contain %q", e.Msg, tt.want)
			}
		})
	}
}

// TestReadDirectoryAccepts is the base of TestReadDirectoryRefuses, to show
// that each refusal is the one thing its case breaks.
func TestReadDirectoryAccepts(t *testing.T) {
	d, err := cpis.ReadDirectory(strings.NewReader(directoryFile))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := d.Lookup("ZLA02")
	want := cpis.OfficeHours{Days: weekdays[:4], Open: "08:30", Close: "16:30"}
	if !ok || e.ReferralContact != "frontdoor@zla02.example.org" || e.ReferralByPhone() || !cmp.Equal(e.OfficeHours, want) {
		t.Errorf("Lookup(ZLA02) = %+v, %v", e, ok)
	}
	if e, _ := d.Lookup("ZLA01"); !e.ReferralByPhone() {
		t.Errorf("ZLA01's referral contact %q is a telephone number", e.ReferralContact)
	}
}

// adviceDirectory has, beside the dev directory's hours, an LA with no office
// number and one open only just after midnight on Mondays, which tells
// whether the weekday is London's or UTC's.
func adviceDirectory(t testing.TB) *cpis.Directory {
	t.Helper()
	entries := append(cpis.DevDirectory().Entries(),
		cpis.DirectoryEntry{LocalAuthority: cpis.LocalAuthority{Code: "ZLA07", Name: "No office number"},
			EmergencyPhone: "020 7946 0701", OfficeHours: cpis.OfficeHours{Days: weekdays, Open: "09:00", Close: "17:00"}},
		cpis.DirectoryEntry{LocalAuthority: cpis.LocalAuthority{Code: "ZLA08", Name: "Monday small hours"},
			EmergencyPhone: "020 7946 0801", OfficePhone: "020 7946 0802",
			OfficeHours: cpis.OfficeHours{Days: []time.Weekday{time.Monday}, Open: "00:00", Close: "01:00"}},
	)
	d, err := cpis.NewDirectory(entries)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestAdvise(t *testing.T) {
	utc := func(s string) time.Time {
		at, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	const office, emergency = cpis.CallOfficeHours, cpis.CallEmergencyDuty
	tests := []struct {
		name, la, at string // at in UTC; London is UTC+1 in summer (BST), UTC in winter (GMT)
		open         bool
		number       string
		label        string
	}{
		{"summer weekday morning", "ZLA01", "2026-07-15 09:00", true, "020 7946 0102", office},
		{"08:30 UTC in July is 09:30 BST", "ZLA01", "2026-07-15 08:30", true, "020 7946 0102", office},
		{"08:30 UTC in January is 08:30 GMT", "ZLA01", "2026-01-14 08:30", false, "020 7946 0101", emergency},
		{"07:59 UTC in July is 08:59 BST", "ZLA01", "2026-07-15 07:59", false, "020 7946 0101", emergency},
		{"opening time exactly (GMT)", "ZLA01", "2026-01-14 09:00", true, "020 7946 0102", office},
		{"a minute before closing (GMT)", "ZLA01", "2026-01-14 16:59", true, "020 7946 0102", office},
		{"closing time exactly (GMT)", "ZLA01", "2026-01-14 17:00", false, "020 7946 0101", emergency},
		{"closing time exactly (BST)", "ZLA01", "2026-07-15 16:00", false, "020 7946 0101", emergency},
		{"Saturday", "ZLA01", "2026-07-18 11:00", false, "020 7946 0101", emergency},
		{"Sunday", "ZLA01", "2026-07-19 11:00", false, "020 7946 0101", emergency},
		{"weekday night", "ZLA03", "2026-01-14 23:00", false, "020 7946 0301", emergency},
		{"early opener at its opening (BST)", "ZLA05", "2026-07-17 07:30", true, "020 7946 0502", office},
		{"early closer after 16:30 BST", "ZLA06", "2026-07-17 15:45", false, "020 7946 0601", emergency},
		{"the same instant elsewhere", "ZLA01", "2026-07-17 15:45", true, "020 7946 0102", office},
		{"open, but no office number", "ZLA07", "2026-07-15 10:00", true, "020 7946 0701", emergency},
		{"Sunday 23:30 UTC is Monday 00:30 BST", "ZLA08", "2026-07-19 23:30", true, "020 7946 0802", office},
		{"Monday 00:30 UTC is Monday 01:30 BST", "ZLA08", "2026-07-20 00:30", false, "020 7946 0801", emergency},
		{"Monday 00:30 GMT", "ZLA08", "2026-01-12 00:30", true, "020 7946 0802", office},
	}
	d := adviceDirectory(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := d.Advise(tt.la, utc(tt.at))
			if !a.InArea || a.Entry.Code != tt.la || a.OfficeOpen != tt.open || a.CallNumber != tt.number || a.CallLabel != tt.label {
				t.Errorf("Advise(%s, %s UTC) = in area %v, %s, open %v, call %s (%s); want open %v, call %s (%s)",
					tt.la, tt.at, a.InArea, a.Entry.Code, a.OfficeOpen, a.CallNumber, a.CallLabel, tt.open, tt.number, tt.label)
			}
		})
	}
}

// TestAdviseOutOfArea: an LA outside the directory gets no advice, so the
// page sends the reader to the numbers on the plan.
func TestAdviseOutOfArea(t *testing.T) {
	at := time.Date(2026, time.July, 15, 10, 0, 0, 0, time.UTC)
	for _, code := range []string{"ZLA99", "", "zla01"} {
		if a := cpis.DevDirectory().Advise(code, at); !cmp.Equal(a, cpis.Advice{}) {
			t.Errorf("Advise(%q) = %+v, want the zero Advice", code, a)
		}
	}
	var none *cpis.Directory
	if a := none.Advise("ZLA01", at); a.InArea {
		t.Errorf("a nil directory advised %+v", a)
	}
}

// TestDirectoryHandsOutCopies: a caller that edits what it was given cannot
// change the directory other requests read.
func TestDirectoryHandsOutCopies(t *testing.T) {
	d := cpis.DevDirectory()
	entries := d.Entries()
	entries[0].EmergencyPhone = "changed"
	entries[0].OfficeHours.Days[0] = time.Sunday
	e, _ := d.Lookup("ZLA01")
	e.OfficeHours.Days[1] = time.Sunday
	if got, _ := d.Lookup("ZLA01"); got.EmergencyPhone != "020 7946 0101" || !cmp.Equal(got.OfficeHours.Days, weekdays) {
		t.Errorf("the directory changed: %+v", got)
	}
}

func TestOfficeHoursString(t *testing.T) {
	tests := []struct {
		days []time.Weekday
		want string
	}{
		{weekdays, "Monday to Friday, 09:00 to 17:00"},
		{[]time.Weekday{time.Friday, time.Monday, time.Wednesday}, "Monday, Wednesday and Friday, 09:00 to 17:00"},
		{[]time.Weekday{time.Saturday, time.Sunday}, "Saturday and Sunday, 09:00 to 17:00"},
		{[]time.Weekday{time.Sunday, time.Friday, time.Saturday}, "Friday to Sunday, 09:00 to 17:00"},
		{[]time.Weekday{time.Tuesday}, "Tuesday, 09:00 to 17:00"},
	}
	for _, tt := range tests {
		if got := (cpis.OfficeHours{Days: tt.days, Open: "09:00", Close: "17:00"}).String(); got != tt.want {
			t.Errorf("String(%v) = %q, want %q", tt.days, got, tt.want)
		}
	}
}

// FuzzReadDirectory: whatever the file holds, ReadDirectory does not panic,
// and a directory it accepts holds only entries NewDirectory accepts again
// unchanged, whose advice is always one of the LA's own valid numbers.
func FuzzReadDirectory(f *testing.F) {
	example, err := os.ReadFile("../../examples/la-directory.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{string(example), directoryFile, "", "authorities: []\n", "authorities: [&a [*a]]\n",
		`{"authorities": [{"code": "ZLA01", "name": "X", "emergencyPhone": "0207 946 0101", "officeHours": {"days": ["sun"], "open": "00:00", "close": "23:59"}}]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := cpis.ReadDirectory(bytes.NewReader(in))
		if err != nil {
			if cpis.KindOf(err) != cpis.Invalid {
				t.Fatalf("refused with kind %v: %v", cpis.KindOf(err), err)
			}
			return
		}
		again, err := cpis.NewDirectory(d.Entries())
		if err != nil {
			t.Fatalf("an accepted directory does not re-validate: %v", err)
		}
		if diff := cmp.Diff(d.Entries(), again.Entries()); diff != "" {
			t.Fatalf("re-validating changed the directory:\n%s", diff)
		}
		at := time.Date(2026, time.July, 15, 10, 0, 0, 0, time.UTC)
		for _, e := range d.Entries() {
			a := d.Advise(e.Code, at)
			if !a.InArea || !cpis.ValidPhone(a.CallNumber) || (a.CallNumber != e.EmergencyPhone && a.CallNumber != e.OfficePhone) {
				t.Fatalf("Advise(%s) = %+v", e.Code, a)
			}
		}
	})
}
