package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	flagpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/flag_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// ParseFlag reads a CP-IS Flag sent by an LA (see the shape in flag.go) and
// returns the plan it describes: ID (from the body's id, if any; the caller
// decides what to do with it), NHSNumber, Type, Start, End, LA, the phones,
// BirthDate and Reference (the LA's plan reference, from Flag.identifier).
// Version, LastUpdated and EnteredInError are never taken from the body.
//
// It checks structure and the cpis-flag profile only: JSON syntax, FHIR R4
// conformance as jsonformat reads it, the allow-list of elements, the fixed
// codes and systems, full dates, and the cardinality of required elements. It
// does not apply the SOP's rules (date order, the 18th birthday, telephone
// formats): run cpis.Plan.Validate on the result. Every problem found is
// returned, joined, each an *cpis.Error of kind Invalid (InvalidNHSNumber for
// the NHS number) with the FHIRPath of the element at fault. Messages never
// repeat a value from the body. On error the Plan is the zero value.
func ParseFlag(body []byte) (cpis.Plan, error) {
	const op = "fhir.ParseFlag"
	if err := checkEnvelope(op, body, "Flag"); err != nil {
		return cpis.Plan{}, err
	}
	m, err := unmarshaller.Unmarshal(body)
	if err != nil {
		return cpis.Plan{}, flagParserProblems(op, err)
	}
	f := m.(*bcrpb.ContainedResource).GetFlag()
	if f == nil { // decodeEnvelope saw resourceType Flag, so this is not expected
		return cpis.Plan{}, cpis.E(op, cpis.Invalid, cpis.Expr("Flag.resourceType"), "the body is not a Flag")
	}
	pr := &problems{op: op}
	p := pr.flag(f, "Flag")
	if len(pr.errs) > 0 {
		return cpis.Plan{}, errors.Join(pr.errs...)
	}
	return p, nil
}

// FlagReference returns the LA's plan reference a Flag body names, for a
// body ParseFlag refused: an import must know which plan a line it refused
// was about, so as never to end that plan. Only Flag.identifier is read (by
// encoding/json: jsonformat gives nothing back from a body with a problem
// anywhere), and leniently, since the answer only ever protects a plan: the
// first identifier of system LAReferenceSystem with a valid reference,
// whatever else the body holds. ok is false when there is none, or the body
// is not a JSON object with an identifier array.
func FlagReference(body []byte) (reference string, ok bool) {
	var f struct {
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
	}
	if json.Unmarshal(body, &f) != nil {
		return "", false
	}
	for _, id := range f.Identifier {
		if id.System == LAReferenceSystem && cpis.ValidReference(id.Value) {
			return id.Value, true
		}
	}
	return "", false
}

// decodeEnvelope makes sure the body is one JSON object of resourceType rt
// before jsonformat reads it, so that these commonest mistakes get clear
// messages, and so that a wrong resourceType, which jsonformat would quote in
// its error path, is never echoed. It returns the object's members, undecoded.
func decodeEnvelope(op string, body []byte, rt string) (map[string]json.RawMessage, error) {
	bad := func(expr, msg string) error { return cpis.E(op, cpis.Invalid, cpis.Expr(expr), msg) }
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, bad(rt, "the request body is empty: send a FHIR "+rt+" resource as JSON")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, bad(rt, fmt.Sprintf("the request body is not well-formed JSON: %s at byte offset %d", syntaxReason(se), se.Offset))
		}
		return nil, bad(rt, "the request body must be a JSON object: a FHIR "+rt+" resource")
	}
	if top == nil {
		return nil, bad(rt, "the request body must be a JSON object: a FHIR "+rt+" resource")
	}
	raw, ok := top["resourceType"]
	if !ok {
		return nil, bad(rt+".resourceType", "resourceType is missing: this endpoint takes a "+rt)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || s != rt {
		return nil, bad(rt+".resourceType", "resourceType must be "+rt)
	}
	return top, nil
}

// checkEnvelope is decodeEnvelope for a caller that needs only the check:
// it reads resourceType without building a map of every element, which an
// import pays for on every line.
func checkEnvelope(op string, body []byte, rt string) error {
	var env struct {
		ResourceType *json.RawMessage `json:"resourceType"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.ResourceType == nil {
		_, err := decodeEnvelope(op, body, rt) // the exact problem, with its message
		if err == nil {
			err = cpis.E(op, cpis.Invalid, cpis.Expr(rt), "the request body is not a FHIR "+rt+" resource")
		}
		return err
	}
	var s string
	if err := json.Unmarshal(*env.ResourceType, &s); err != nil || s != rt {
		return cpis.E(op, cpis.Invalid, cpis.Expr(rt+".resourceType"), "resourceType must be "+rt)
	}
	return nil
}

// quotedChar is how encoding/json quotes the offending character in a
// syntax error; the character is input, so it is not repeated.
var quotedChar = regexp.MustCompile(`'(?:\\.|[^'\\])*'`)

// syntaxReason is the JSON parser's reason for a syntax error, without the
// character it quotes: "invalid character looking for beginning of value".
func syntaxReason(se *json.SyntaxError) string {
	r := quotedChar.ReplaceAllString(se.Error(), "")
	r = strings.Join(strings.Fields(r), " ")
	if strings.ContainsAny(r, `'"`) {
		return "syntax error"
	}
	return r
}

// safeParserPath matches the paths jsonformat reports ("Flag.period.start",
// "Flag.extension[0].valueDate"); anything else is not shown.
var safeParserPath = regexp.MustCompile(`^Flag(\.[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])?)*$`)

// elementName matches a JSON key that can be named in a message: it is a
// key, not a value, but only letters are repeated back, so that not even a
// key can carry an NHS number into a log.
var elementName = regexp.MustCompile(`^_?[A-Za-z]{1,64}$`)

// parserError is what is used of one of jsonformat's errors: Path, Details
// (the library's fixed wording) and Diagnostics, which may hold input
// values and is used only to name an unknown element. ok is false for an
// error of another shape.
type parserError struct {
	path, details, diagnostics string
	ok                         bool
}

// parserErrors reads jsonformat's errors. The library's error types live in
// an internal package, so their exported fields are read by reflection.
func parserErrors(err error) []parserError {
	v := reflect.ValueOf(err)
	if v.Kind() != reflect.Slice {
		return []parserError{parserErrorOf(v)}
	}
	out := make([]parserError, 0, v.Len())
	for i := 0; i < v.Len(); i++ {
		out = append(out, parserErrorOf(v.Index(i)))
	}
	if len(out) == 0 {
		return []parserError{{}}
	}
	return out
}

func parserErrorOf(v reflect.Value) parserError {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && !v.IsNil() {
		v = v.Elem()
	}
	field := func(name string) string {
		if v.Kind() != reflect.Struct {
			return ""
		}
		f := v.FieldByName(name)
		if !f.IsValid() || f.Kind() != reflect.String {
			return ""
		}
		return f.String()
	}
	e := parserError{path: field("Path"), details: field("Details"), diagnostics: field("Diagnostics")}
	e.ok = e.details != ""
	return e
}

// unknownElement is the name of the unknown element an "unknown field" error
// is about, when it can be shown.
func (e parserError) unknownElement() (string, bool) {
	if e.details != "unknown field" {
		return "", false
	}
	name, err := strconv.Unquote(e.diagnostics)
	return name, err == nil && elementName.MatchString(name)
}

// joinProblems joins problems, each reported once (problems inside one
// contained resource come out of jsonformat once per element), in the order
// of their expressions: jsonformat reads an object's members in no fixed
// order, and the same body must always get the same answer.
func joinProblems(errs []*cpis.Error) error {
	slices.SortStableFunc(errs, func(a, b *cpis.Error) int { return strings.Compare(a.Expression, b.Expression) })
	seen := map[string]bool{}
	var out []error
	for _, e := range errs {
		if !seen[e.Error()] {
			seen[e.Error()] = true
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

// flagParserProblems turns jsonformat's errors about a Flag into
// *cpis.Error values. Only the path (checked against safeParserPath) and the
// library's fixed wording are shown; an error of another shape gets a
// generic message.
func flagParserProblems(op string, err error) error {
	var errs []*cpis.Error
	for _, e := range parserErrors(err) {
		errs = append(errs, flagParserProblem(op, e))
	}
	return joinProblems(errs)
}

// flagParserProblem is one of jsonformat's errors about a Flag whose path
// starts "Flag".
func flagParserProblem(op string, e parserError) *cpis.Error {
	bad := func(expr, msg string) *cpis.Error {
		return &cpis.Error{Op: op, Kind: cpis.Invalid, Expression: expr, Msg: msg}
	}
	if !e.ok {
		return bad("Flag", "the request body is not a valid FHIR R4 Flag")
	}
	expr := e.path
	if !safeParserPath.MatchString(expr) {
		expr = "Flag"
	}
	if expr == "Flag.contained" || strings.HasPrefix(expr, "Flag.contained[") {
		// Paths inside a contained resource start with its resourceType, an
		// input value; the element is refused whatever it holds.
		return bad("Flag.contained", refusals["Flag.contained"])
	}
	if name, ok := e.unknownElement(); ok {
		return bad(expr+"."+name, "unknown element: it is not part of a FHIR R4 Flag")
	}
	if e.details == "unknown field" {
		return bad(expr, "an unknown element is present: it is not part of a FHIR R4 Flag")
	}
	return bad(expr, "not valid FHIR R4: "+e.details)
}

// problems collects what is wrong with one Flag, or one Bundle entry.
type problems struct {
	op   string
	root string // where the Flag is: "" or "Flag" for a body, "Bundle.entry[3].resource" in a Bundle
	errs []error
}

// add records a problem. The checks name elements from "Flag", as
// cpis.Plan.Validate does; an expression rooted there is moved under root.
func (pr *problems) add(kind cpis.Kind, expr, msg string) {
	if pr.root != "" {
		expr = relocate(expr, pr.root)
	}
	pr.errs = append(pr.errs, cpis.E(pr.op, kind, cpis.Expr(expr), msg))
}

func (pr *problems) invalid(expr, msg string) { pr.add(cpis.Invalid, expr, msg) }

// sorted joins the problems in the order of their expressions
// (joinProblems): a walk of a message's fields (protoreflect's Range) has
// no fixed order, and the same request must get the same answer.
func (pr *problems) sorted() error {
	errs := make([]*cpis.Error, 0, len(pr.errs))
	for _, err := range pr.errs {
		if e, ok := err.(*cpis.Error); ok {
			errs = append(errs, e)
		}
	}
	return joinProblems(errs)
}

// relocate moves an expression rooted at the Flag ("Flag", "Flag.period.end",
// "Flag.extension('child-birth-date')") under root; any other is returned
// as it is.
func relocate(expr, root string) string {
	rest, ok := strings.CutPrefix(expr, "Flag")
	if !ok || (rest != "" && !strings.ContainsRune(".([", rune(rest[0]))) {
		return expr
	}
	return root + rest
}

// flag applies every check of a client's Flag that needs nothing but the
// parsed proto (the allow-list and the cpis-flag profile) and reads its
// plan. root is the FHIRPath of the Flag: "Flag" for a request body,
// "Bundle.entry[3].resource" for an entry of a Bundle. ParseFlag and
// ParseWriteBundle both read Flags through it.
func (pr *problems) flag(f *flagpb.Flag, root string) cpis.Plan {
	pr.root = root
	pr.allowed(f.ProtoReflect(), root, "Flag")
	return pr.plan(f)
}

// plan reads the plan out of f, recording every problem of profile conformance.
func (pr *problems) plan(f *flagpb.Flag) cpis.Plan {
	p := cpis.Plan{ID: f.GetId().GetValue()}
	pr.meta(f.GetMeta())
	pr.status(f.GetStatus())
	pr.category(f.GetCategory())
	p.Type = pr.planType(f.GetCode())
	p.NHSNumber = pr.subject(f.GetSubject())
	p.Start, p.End = pr.period(f.GetPeriod())
	p.LA = pr.author(f.GetAuthor())
	pr.extensions(f.GetExtension(), &p)
	p.Reference = pr.reference(f.GetIdentifier())
	return p
}

// reference reads the LA's plan reference from Flag.identifier: at most one
// identifier, of system LAReferenceSystem, with a valid value. Problems are
// all reported at Flag.identifier, as cpis.Plan.Validate names it, and never
// repeat the value.
func (pr *problems) reference(ids []*dpb.Identifier) string {
	const expr = "Flag.identifier"
	switch {
	case len(ids) == 0:
		return ""
	case len(ids) > 1:
		pr.invalid(expr, "a CP-IS Flag carries at most one identifier: the LA's own plan reference, system "+LAReferenceSystem)
		return ""
	}
	if ids[0].GetSystem().GetValue() != LAReferenceSystem {
		pr.invalid(expr, "the identifier's system must be "+LAReferenceSystem+": the only identifier a CP-IS Flag carries is the LA's own plan reference")
		return ""
	}
	ref := ids[0].GetValue().GetValue()
	if !cpis.ValidReference(ref) {
		pr.invalid(expr, "the LA's plan reference must be 1 to 64 of A-Z a-z 0-9 . _ -")
		return ""
	}
	return ref
}

func (pr *problems) meta(m *dpb.Meta) {
	for _, prof := range m.GetProfile() {
		if prof.GetValue() != FlagProfileURL {
			pr.invalid("Flag.meta.profile", "the only profile a CP-IS Flag may claim is "+FlagProfileURL)
			return
		}
	}
}

func (pr *problems) status(s *flagpb.Flag_StatusCode) {
	switch s.GetValue() {
	case cpb.FlagStatusCode_ACTIVE, cpb.FlagStatusCode_INACTIVE:
	case cpb.FlagStatusCode_ENTERED_IN_ERROR:
		pr.invalid("Flag.status", "a plan cannot be written as entered-in-error: withdraw it with DELETE")
	default:
		pr.invalid("Flag.status", "status is required: send active or inactive (the server computes the status from the dates)")
	}
}

func (pr *problems) category(cats []*dpb.CodeableConcept) {
	const msg = "exactly one category is required, with exactly the coding " + FlagCategorySystem + "#" + FlagCategoryCode +
		": CP-IS does not hold any other category of a plan"
	if len(cats) != 1 || len(cats[0].GetCoding()) != 1 || !isCoding(cats[0].GetCoding()[0], FlagCategorySystem, FlagCategoryCode, FlagCategoryDisplay) {
		pr.invalid("Flag.category", msg)
	}
}

// isCoding reports whether c is system#code, with either no display or the given one.
func isCoding(c *dpb.Coding, system, code, display string) bool {
	return c.GetSystem().GetValue() == system && c.GetCode().GetValue() == code &&
		(c.GetDisplay() == nil || c.GetDisplay().GetValue() == display)
}

// planType reads the plan type from Flag.code: exactly one cpis-plan-type
// coding, optionally the matching SNOMED CT coding, nothing else.
func (pr *problems) planType(cc *dpb.CodeableConcept) cpis.PlanType {
	const expr = "Flag.code"
	var types, snomed []*dpb.Coding
	for _, c := range cc.GetCoding() {
		switch c.GetSystem().GetValue() {
		case PlanTypeSystem:
			types = append(types, c)
		case SNOMEDSystem:
			snomed = append(snomed, c)
		default:
			pr.invalid(expr, "Flag.code accepts only a "+PlanTypeSystem+" coding and its SNOMED CT equivalent")
		}
	}
	if len(types) != 1 {
		pr.invalid(expr, "Flag.code needs exactly one coding from "+PlanTypeSystem+": CPP, CLA or UCPP")
		return ""
	}
	t := cpis.PlanType(types[0].GetCode().GetValue())
	if !t.Valid() {
		pr.invalid(expr, "the plan type must be CPP, CLA or UCPP")
		return ""
	}
	if !isCoding(types[0], PlanTypeSystem, string(t), t.Display()) {
		pr.invalid(expr, "the display of the plan type coding, if sent, must be \""+t.Display()+"\"")
	}
	pr.snomed(snomed, t)
	if txt := cc.GetText(); txt != nil && txt.GetValue() != t.Display() {
		pr.invalid("Flag.code.text", "code.text, if sent, must be the plan type's display, \""+t.Display()+"\"")
	}
	return t
}

func (pr *problems) snomed(codings []*dpb.Coding, t cpis.PlanType) {
	want, display, ok := snomedFor(t)
	switch {
	case len(codings) == 0:
	case !ok:
		pr.invalid("Flag.code", "an unborn child protection plan has no SNOMED CT coding")
	case len(codings) > 1 || !isCoding(codings[0], SNOMEDSystem, want, display):
		pr.invalid("Flag.code", "the SNOMED CT coding contradicts the plan type: for "+string(t)+" it can only be "+want+" \""+display+"\"")
	}
}

func (pr *problems) subject(r *dpb.Reference) cpis.NHSNumber {
	if r == nil {
		pr.invalid("Flag.subject", "subject is required: the NHS number as an identifier with system "+NHSNumberSystem)
		return ""
	}
	if r.GetType() != nil && r.GetType().GetValue() != "Patient" {
		pr.invalid("Flag.subject.type", "subject.type, if sent, must be Patient")
	}
	idf := r.GetIdentifier()
	if idf == nil {
		pr.invalid("Flag.subject.identifier", "the subject must be identified by NHS number: identifier with system "+NHSNumberSystem)
		return ""
	}
	if idf.GetSystem().GetValue() != NHSNumberSystem {
		pr.invalid("Flag.subject.identifier.system", "the subject identifier's system must be "+NHSNumberSystem)
	}
	n, err := cpis.ParseNHSNumber(idf.GetValue().GetValue())
	if err != nil {
		pr.add(cpis.InvalidNHSNumber, "Flag.subject.identifier.value", "the subject's NHS number is not valid: 10 digits passing the Modulus 11 check")
	}
	return n
}

func (pr *problems) period(per *dpb.Period) (start, end cpis.Date) {
	if per == nil {
		pr.invalid("Flag.period", "period is required, with start and end dates")
		return
	}
	return pr.day("Flag.period.start", per.GetStart()), pr.day("Flag.period.end", per.GetEnd())
}

// day reads a dateTime that must be a full date and nothing more.
func (pr *problems) day(expr string, dt *dpb.DateTime) cpis.Date {
	if dt == nil {
		pr.invalid(expr, "the date is required, as YYYY-MM-DD")
		return cpis.Date{}
	}
	if dt.GetPrecision() != dpb.DateTime_DAY {
		pr.invalid(expr, "the date must be a full date, YYYY-MM-DD, with no time of day")
		return cpis.Date{}
	}
	return dateFrom(dt.GetValueUs(), dt.GetTimezone())
}

// dateFrom recovers the calendar day jsonformat stored as the microsecond
// of its midnight in time zone tz.
func dateFrom(us int64, tz string) cpis.Date {
	loc := time.UTC
	if tz != "" && tz != "Z" && tz != "UTC" {
		if l, err := time.LoadLocation(tz); err == nil {
			loc = l
		}
	}
	return cpis.DateOf(time.UnixMicro(us).In(loc))
}

func (pr *problems) author(r *dpb.Reference) cpis.LocalAuthority {
	if r == nil {
		pr.invalid("Flag.author", "author is required: the responsible local authority, by ODS code and name")
		return cpis.LocalAuthority{}
	}
	if r.GetType() != nil && r.GetType().GetValue() != "Organization" {
		pr.invalid("Flag.author.type", "author.type, if sent, must be Organization")
	}
	la := cpis.LocalAuthority{Code: r.GetIdentifier().GetValue().GetValue(), Name: r.GetDisplay().GetValue()}
	switch {
	case r.GetIdentifier() == nil:
		pr.invalid("Flag.author.identifier", "the author must be identified by ODS code: identifier with system "+ODSSystem)
	case r.GetIdentifier().GetSystem().GetValue() != ODSSystem:
		pr.invalid("Flag.author.identifier.system", "the author identifier's system must be "+ODSSystem)
	case la.Code == "":
		pr.invalid("Flag.author.identifier.value", "the responsible local authority's code is required")
	}
	if d := r.GetDisplay(); d != nil && !cpis.SafeText(la.Name, cpis.MaxLANameLength) {
		pr.invalid("Flag.author.display", "author.display, if sent, must be the local authority's name as the register holds it")
	}
	return la
}

// Expressions of the three extensions, as cpis.Plan.Validate names them.
const (
	emergencyExpr = "Flag.extension('emergency-duty-telephone')"
	officeExpr    = "Flag.extension('office-hours-telephone')"
	birthExpr     = "Flag.extension('child-birth-date')"
)

func (pr *problems) extensions(exts []*dpb.Extension, p *cpis.Plan) {
	seen := map[string]bool{}
	for i, e := range exts {
		var expr string
		switch e.GetUrl().GetValue() {
		case EmergencyPhoneURL:
			expr = emergencyExpr
			p.EmergencyPhone = pr.phone(expr, e)
		case OfficePhoneURL:
			expr = officeExpr
			p.OfficePhone = pr.phone(expr, e)
		case ChildBirthDateURL:
			expr = birthExpr
			p.BirthDate = pr.birthDate(e)
		default:
			pr.invalid("Flag.extension", fmt.Sprintf("extension %d is not allowed: a CP-IS Flag takes only the emergency-duty-telephone, office-hours-telephone and child-birth-date extensions", i+1))
			continue
		}
		if seen[expr] {
			pr.invalid(expr, "this extension may appear only once")
		}
		seen[expr] = true
	}
	if !seen[emergencyExpr] {
		pr.invalid(emergencyExpr, "the LA emergency duty telephone number is mandatory: extension "+EmergencyPhoneURL)
	}
}

// phone reads a telephone extension: valueContactPoint, system phone, use work if sent.
func (pr *problems) phone(expr string, e *dpb.Extension) string {
	cp := e.GetValue().GetContactPoint()
	if cp == nil {
		pr.invalid(expr, "this extension takes a valueContactPoint with system phone")
		return ""
	}
	if cp.GetSystem().GetValue() != cpb.ContactPointSystemCode_PHONE {
		pr.invalid(expr, "the ContactPoint's system must be phone")
	}
	if cp.GetUse() != nil && cp.GetUse().GetValue() != cpb.ContactPointUseCode_WORK {
		pr.invalid(expr, "the ContactPoint's use, if sent, must be work")
	}
	n := cp.GetValue().GetValue()
	if n == "" {
		pr.invalid(expr, "the telephone number is missing")
	}
	return n
}

func (pr *problems) birthDate(e *dpb.Extension) cpis.Date {
	d := e.GetValue().GetDate()
	if d == nil {
		pr.invalid(birthExpr, "this extension takes a valueDate")
		return cpis.Date{}
	}
	if d.GetPrecision() != dpb.Date_DAY {
		pr.invalid(birthExpr, "the date of birth must be a full date, YYYY-MM-DD")
		return cpis.Date{}
	}
	return dateFrom(d.GetValueUs(), d.GetTimezone())
}
