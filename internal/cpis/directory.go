package cpis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Directory is the Trust's LA directory (SOP section 7): per local
// authority, its numbers, office hours and referral route. It is immutable
// once built: every accessor hands out copies, so one Directory can serve
// every request of a server.
type Directory struct {
	entries []DirectoryEntry
	byCode  map[string]int
}

// Limits on the directory's free text. MaxReferralLength leaves room for a
// sentence or two of instructions, no more: the detail lives with the LA.
const (
	MaxReferralLength = 300
	maxContactLength  = 100
)

// The two numbers Advise may tell a reader to call, in the words of the plan
// and the SOP, so the viewer can label them as the plan does.
const (
	CallOfficeHours   = "Office hours number"
	CallEmergencyDuty = "Emergency duty number"
)

// hhmm is a time of day as the directory writes it: two-digit hour, 00 to 23.
var hhmm = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)

// email is a plain address: no display name, no comments, no quoting, so a
// reader sees exactly what to type.
var email = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$`)

// NewDirectory builds a directory from entries after checking each one:
// an ODS-like code that appears once, a name a reader may be shown, a valid
// emergency duty number, an office number and referral contact that are
// valid when present, bounded referral text and office hours that make sense.
// The office days are kept in order, Monday first.
func NewDirectory(entries []DirectoryEntry) (*Directory, error) {
	const op = "cpis.NewDirectory"
	d := &Directory{entries: make([]DirectoryEntry, len(entries)), byCode: make(map[string]int, len(entries))}
	for i, e := range entries {
		if field, msg := e.problem(); field != "" {
			return nil, E(op, Invalid, entryProblem(i, e.Code, field, msg))
		}
		if _, dup := d.byCode[e.Code]; dup {
			return nil, E(op, Invalid, entryProblem(i, e.Code, "code", "appears twice in the directory"))
		}
		e.OfficeHours.Days = slices.Clone(e.OfficeHours.Days)
		slices.SortFunc(e.OfficeHours.Days, func(a, b time.Weekday) int { return mondayFirst(a) - mondayFirst(b) })
		d.entries[i], d.byCode[e.Code] = e, i
	}
	if len(d.entries) == 0 {
		return nil, E(op, Invalid, "the directory lists no local authorities")
	}
	return d, nil
}

// entryProblem names an entry by its position (from 1, as an operator counts
// in the file), its code when it looks like one, and the field at fault if
// there is one.
func entryProblem(i int, code, field, msg string) string {
	s := fmt.Sprintf("entry %d", i+1)
	if laCode.MatchString(code) {
		s += " (" + code + ")"
	}
	if field != "" {
		s += ", " + field
	}
	return s + ": " + msg
}

// problem returns the first field of e that breaks a rule, named as in the
// directory file, and what is wrong with it; "" when e is valid.
func (e DirectoryEntry) problem() (field, msg string) {
	const phone = "must be a UK telephone number as dialled: digits and single spaces, starting 0 or +44"
	switch {
	case !laCode.MatchString(e.Code):
		return "code", "must be 3 to 10 capital letters or digits"
	case e.Name == "" || !SafeText(e.Name, MaxLANameLength):
		return "name", fmt.Sprintf("must be 1 to %d characters, with no control or bidirectional characters", MaxLANameLength)
	case e.EmergencyPhone == "":
		return "emergencyPhone", "is missing: every local authority needs an emergency duty number"
	case !ValidPhone(e.EmergencyPhone):
		return "emergencyPhone", phone
	case e.OfficePhone != "" && !ValidPhone(e.OfficePhone):
		return "officePhone", phone
	case !SafeText(e.Referral, MaxReferralLength):
		return "referral", fmt.Sprintf("must be at most %d characters, with no control or bidirectional characters", MaxReferralLength)
	case e.ReferralContact != "" && !ValidPhone(e.ReferralContact) && !validEmail(e.ReferralContact):
		return "referralContact", "must be a UK telephone number or a plain e-mail address"
	}
	return e.OfficeHours.problem()
}

func validEmail(s string) bool { return len(s) <= maxContactLength && email.MatchString(s) }

// ReferralByPhone reports whether ReferralContact is a telephone number
// (else it is an e-mail address, or empty), so a page can link it as tel: or
// mailto:.
func (e DirectoryEntry) ReferralByPhone() bool { return ValidPhone(e.ReferralContact) }

// DevDirectory is the directory of dev mode and the tests: the Trust's six
// LAs with fictional codes, numbers and addresses (see TrustDirectory).
func DevDirectory() *Directory {
	d, err := NewDirectory(devDirectoryEntries())
	if err != nil {
		panic(err) // the dev directory is a literal, checked by its tests
	}
	return d
}

// Entries returns the directory's entries in the order they were given.
// The slice and the entries are copies: changing them changes nothing here.
func (d *Directory) Entries() []DirectoryEntry {
	if d == nil {
		return nil
	}
	out := make([]DirectoryEntry, len(d.entries))
	for i, e := range d.entries {
		out[i] = e.clone()
	}
	return out
}

// Lookup returns the entry of the LA with the given code, if the directory
// holds it.
func (d *Directory) Lookup(code string) (DirectoryEntry, bool) {
	if d == nil {
		return DirectoryEntry{}, false
	}
	i, ok := d.byCode[code]
	if !ok {
		return DirectoryEntry{}, false
	}
	return d.entries[i].clone(), true
}

func (e DirectoryEntry) clone() DirectoryEntry {
	e.OfficeHours.Days = slices.Clone(e.OfficeHours.Days)
	return e
}

// Advice is what the directory says to a reader looking at a plan of one LA:
// whether the LA is one of the Trust's, and if so which number to call now.
// For an LA outside the directory (an out-of-area child) the zero Advice is
// returned: the SOP sends the reader to the numbers on the plan itself.
type Advice struct {
	InArea     bool           // the LA is in the Trust's directory
	Entry      DirectoryEntry // the LA's entry, when InArea
	OfficeOpen bool           // the LA's office is open now
	CallNumber string         // the number to call now
	CallLabel  string         // CallOfficeHours or CallEmergencyDuty: which number CallNumber is
}

// Advise says which of the LA's numbers to call at the instant now (SOP
// section 7): the office-hours number while the office is open, the
// emergency duty number otherwise, and the emergency duty number too when
// the LA gives no office number. Office hours are judged on the clock and
// calendar of Europe/London, whatever the server's zone.
//
// Bank holidays are not modelled: on a bank holiday weekday the advice is
// the office-hours number although the office is likely closed. The emergency
// duty number is on the plan and the page beside it, and a caller who finds
// the office closed uses it.
func (d *Directory) Advise(laCode string, now time.Time) Advice {
	e, ok := d.Lookup(laCode)
	if !ok {
		return Advice{}
	}
	a := Advice{InArea: true, Entry: e, OfficeOpen: e.OfficeHours.IsOpen(now)}
	a.CallNumber, a.CallLabel = e.EmergencyPhone, CallEmergencyDuty
	if a.OfficeOpen && e.OfficePhone != "" {
		a.CallNumber, a.CallLabel = e.OfficePhone, CallOfficeHours
	}
	return a
}

// OfficeHours is when an LA's office answers: the same hours on each of Days,
// from Open (included) to Close (excluded), both "HH:MM" in UK time. Hours
// that differ from day to day (an early close on Fridays) are not expressible:
// give the shorter hours, so that the advice never sends a caller to a closed
// office.
type OfficeHours struct {
	Days        []time.Weekday
	Open, Close string
}

// IsOpen reports whether the office is open at the instant now, on the
// clock and calendar of Europe/London. Bank holidays are not modelled (see
// Directory.Advise).
func (h OfficeHours) IsOpen(now time.Time) bool {
	local := now.In(london)
	at := local.Format("15:04")
	return slices.Contains(h.Days, local.Weekday()) && h.Open <= at && at < h.Close
}

// problem returns the field of h that breaks a rule and what is wrong with
// it, or "" when h is valid.
func (h OfficeHours) problem() (field, msg string) {
	if len(h.Days) == 0 {
		return "officeHours.days", "must list at least one day"
	}
	seen := map[time.Weekday]bool{}
	for _, day := range h.Days {
		if day < time.Sunday || day > time.Saturday || seen[day] {
			return "officeHours.days", "must list each day once, by name: " + strings.Join(dayNames[:], ", ")
		}
		seen[day] = true
	}
	switch {
	case !hhmm.MatchString(h.Open):
		return "officeHours.open", "must be a time of day as HH:MM, e.g. 09:00"
	case !hhmm.MatchString(h.Close):
		return "officeHours.close", "must be a time of day as HH:MM, e.g. 17:00"
	case h.Open >= h.Close: // same-width HH:MM strings order as times do
		return "officeHours.close", "must be later than open"
	}
	return "", ""
}

// String says the hours as a reader would, e.g. "Monday to Friday, 09:00 to
// 17:00" or "Monday, Wednesday and Friday, 09:00 to 12:30".
func (h OfficeHours) String() string {
	days := slices.Clone(h.Days)
	slices.SortFunc(days, func(a, b time.Weekday) int { return mondayFirst(a) - mondayFirst(b) })
	return dayList(days) + ", " + h.Open + " to " + h.Close
}

// dayList names days, sorted Monday first, as a range when they are three or
// more consecutive days.
func dayList(days []time.Weekday) string {
	if len(days) == 0 {
		return "no days"
	}
	names := make([]string, len(days))
	consecutive := true
	for i, day := range days {
		names[i] = day.String()
		consecutive = consecutive && (i == 0 || mondayFirst(day) == mondayFirst(days[i-1])+1)
	}
	switch {
	case len(days) >= 3 && consecutive:
		return names[0] + " to " + names[len(names)-1]
	case len(days) == 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// mondayFirst numbers days as a British week does: Monday 0 to Sunday 6.
func mondayFirst(d time.Weekday) int { return (int(d) + 6) % 7 }

// dayNames are the names the directory file uses for days, Monday first.
var dayNames = [7]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// dayByName reads one of dayNames.
func dayByName(s string) (time.Weekday, bool) {
	i := slices.Index(dayNames[:], s)
	if i < 0 {
		return 0, false
	}
	return time.Weekday((i + 1) % 7), true
}

// MaxDirectorySize bounds a directory file: the national list of LAs with
// generous referral text fits many times over.
const MaxDirectorySize = 1 << 20

// The fields of the directory file, as its entries spell them. decodeEntry
// relies on the order of entryFields: the six text fields, then officeHours.
var (
	entryFields = []string{"code", "name", "emergencyPhone", "officePhone", "referral", "referralContact", "officeHours"}
	hoursFields = []string{"days", "open", "close"}
)

// ReadDirectory reads the Trust's directory from YAML, or from JSON (which is
// YAML): a top-level `authorities:` list with one mapping per LA.
//
//	authorities:
//	  - code: ZLA01
//	    name: London Borough of Hackney and City of London
//	    emergencyPhone: 020 7946 0101
//	    officePhone: 020 7946 0102          # optional
//	    referral: "Multi-Agency Safeguarding Hub (MASH): telephone first"  # optional
//	    referralContact: 020 7946 0103      # optional; a phone number or an e-mail address
//	    officeHours: {days: [mon, tue, wed, thu, fri], open: "09:00", close: "17:00"}
//
// Reading is strict, because a typo in a directory sends staff to the wrong
// number: an unknown or repeated field, a field of the wrong shape, more than
// one document or a file over MaxDirectorySize is refused, and every entry is
// checked as NewDirectory checks it. A file that breaks a rule is refused with
// an *Error of kind Invalid naming the entry (its position from 1 and its
// code) and the field; only a failing reader gives another kind.
func ReadDirectory(r io.Reader) (*Directory, error) {
	const op = "cpis.ReadDirectory"
	data, err := io.ReadAll(io.LimitReader(r, MaxDirectorySize+1))
	if err != nil {
		return nil, E(op, "the directory cannot be read", err)
	}
	if len(data) > MaxDirectorySize {
		return nil, E(op, Invalid, fmt.Sprintf("the directory is larger than %d bytes", MaxDirectorySize))
	}
	list, err := authoritiesList(data)
	if err != nil {
		return nil, E(op, Invalid, err.Error())
	}
	entries := make([]DirectoryEntry, len(list))
	for i, n := range list {
		if entries[i], err = decodeEntry(i, n); err != nil {
			return nil, E(op, Invalid, err.Error())
		}
	}
	return NewDirectory(entries)
}

// authoritiesList returns the entries of the file's one document's
// `authorities:` list.
func authoritiesList(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, errors.New("the directory is empty")
	} else if err != nil {
		return nil, fmt.Errorf("the directory is not valid YAML or JSON: %w", err)
	}
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the directory must be a single YAML document")
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("the directory is empty")
	}
	fields, err := mapping(doc.Content[0], "authorities")
	if err != nil {
		return nil, fmt.Errorf("the top level: %w", err)
	}
	list := fields["authorities"]
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil, errors.New("the top level must hold an authorities: list")
	}
	return list.Content, nil
}

// decodeEntry reads the i-th entry of the authorities list.
func decodeEntry(i int, n *yaml.Node) (DirectoryEntry, error) {
	fields, err := mapping(n, entryFields...)
	if err != nil {
		return DirectoryEntry{}, errors.New(entryProblem(i, codeOf(n), "", err.Error()))
	}
	var e DirectoryEntry
	text := []*string{&e.Code, &e.Name, &e.EmergencyPhone, &e.OfficePhone, &e.Referral, &e.ReferralContact}
	e.Code, _ = scalar(fields["code"])
	for k, dst := range text {
		var ok bool
		if *dst, ok = scalar(fields[entryFields[k]]); !ok {
			return DirectoryEntry{}, errors.New(entryProblem(i, e.Code, entryFields[k], "must be text, not a list or mapping"))
		}
	}
	var field, msg string
	if e.OfficeHours, field, msg = decodeHours(fields["officeHours"]); field != "" {
		return DirectoryEntry{}, errors.New(entryProblem(i, e.Code, field, msg))
	}
	return e, nil
}

// codeOf is the code of an entry that could not be read, to name it in the
// error when it has one.
func codeOf(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		if deref(n.Content[k]).Value == "code" {
			code, _ := scalar(n.Content[k+1])
			return code
		}
	}
	return ""
}

// decodeHours reads an entry's officeHours mapping, or says which field of
// it cannot be read and why.
func decodeHours(n *yaml.Node) (h OfficeHours, field, msg string) {
	if deref(n) == nil {
		return h, "officeHours", "is missing: give days, open and close"
	}
	fields, err := mapping(n, hoursFields...)
	if err != nil {
		return h, "officeHours", err.Error()
	}
	var ok bool
	if h.Open, ok = scalar(fields["open"]); !ok {
		return h, "officeHours.open", "must be a time of day as HH:MM"
	}
	if h.Close, ok = scalar(fields["close"]); !ok {
		return h, "officeHours.close", "must be a time of day as HH:MM"
	}
	days := deref(fields["days"])
	if days == nil || days.Kind != yaml.SequenceNode {
		return h, "officeHours.days", "must be a list of day names: " + strings.Join(dayNames[:], ", ")
	}
	for _, d := range days.Content {
		name, _ := scalar(d)
		day, ok := dayByName(name)
		if !ok {
			return h, "officeHours.days", "must name days as " + strings.Join(dayNames[:], ", ")
		}
		h.Days = append(h.Days, day)
	}
	return h, "", ""
}

// mapping returns the fields of the mapping n by name, refusing a node that
// is not a mapping, a field not in allowed and a field given twice.
func mapping(n *yaml.Node, allowed ...string) (map[string]*yaml.Node, error) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, errors.New("must be a mapping of field names to values")
	}
	fields := make(map[string]*yaml.Node, len(n.Content)/2)
	for k := 0; k+1 < len(n.Content); k += 2 {
		key := deref(n.Content[k])
		name := key.Value
		switch {
		case key.Kind != yaml.ScalarNode || !slices.Contains(allowed, name):
			return nil, fmt.Errorf("unknown field %s; the fields are %s", quoteField(key), strings.Join(allowed, ", "))
		case fields[name] != nil:
			return nil, fmt.Errorf("field %s is given twice", name)
		}
		fields[name] = n.Content[k+1]
	}
	return fields, nil
}

// quoteField shows an unknown field's name in an error, unless it is not
// text fit to show (errors reach logs).
func quoteField(key *yaml.Node) string {
	if key.Kind != yaml.ScalarNode || !SafeText(key.Value, 40) {
		return "(a name that cannot be shown)"
	}
	return strconv.Quote(key.Value)
}

// scalar returns the text of a scalar node, "" for an absent or null one,
// and false for a list or a mapping.
func scalar(n *yaml.Node) (string, bool) {
	n = deref(n)
	switch {
	case n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
		return "", true
	case n.Kind != yaml.ScalarNode:
		return "", false
	}
	return n.Value, true
}

// deref follows an alias to the node it names, so an operator may anchor a
// shared officeHours and refer to it from each entry.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}
