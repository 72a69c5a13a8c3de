package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// DefaultMaxBundleEntries is how many entries a batch or transaction Bundle
// may hold when the caller of ParseWriteBundle sets no limit of its own.
const DefaultMaxBundleEntries = 1000

// WriteBundle is an LA's batch or transaction Bundle of Flag writes
// (POST /), as ParseWriteBundle reads it.
type WriteBundle struct {
	// Transaction is true for type transaction: every entry succeeds or
	// none is stored. Otherwise the type is batch: each entry succeeds or
	// fails alone.
	Transaction bool
	Entries     []WriteEntry // in the order of the Bundle
}

// WriteEntry is one entry of a WriteBundle: one write of a Flag.
//
//	POST    url Flag: a create; ifNoneExist makes it conditional.
//	PUT     url Flag/{id} with ifMatch (required, as If-Match is on PUT
//	        /Flag/{id}), or url Flag?identifier=...: a conditional update,
//	        ifMatch optional.
//	DELETE  url Flag/{id} or Flag?identifier=...: a withdrawal, ifMatch
//	        optional; no resource.
//
// Err says why the entry cannot be understood: in a batch that entry fails
// alone, in a transaction the whole transaction fails. When Err is set, Plan
// is the zero value; the other fields hold what could be read.
type WriteEntry struct {
	Method      string    // POST, PUT or DELETE; "" when the entry names none that can be read
	ID          string    // PUT and DELETE by id: the id from request.url Flag/{id}
	Reference   string    // conditional PUT and DELETE: the LA's plan reference from request.url Flag?identifier=...
	IfMatch     int       // the version request.ifMatch names; 0 when none
	IfNoneExist string    // conditional create: the LA's plan reference request.ifNoneExist names; "" when none
	Plan        cpis.Plan // POST and PUT: the entry's Flag, as ParseFlag reads it (not yet validated)
	Err         error     // *cpis.Error values, joined, with expressions inside this entry (Bundle.entry[i]...)
}

// ParseWriteBundle reads an LA's batch or transaction Bundle of Flag
// writes. It checks structure only, as ParseFlag does: JSON, FHIR R4 as
// jsonformat reads it, the allow-list of elements (Bundle.type; each entry's
// fullUrl, resource and request.method, url, ifMatch and ifNoneExist;
// nothing else), the shape of each request (see WriteEntry) and each
// entry's Flag, through the same checks as ParseFlag. fullUrl is accepted
// and ignored: no entry refers to another.
//
// A problem of the Bundle itself is the error of the whole parse: a body that
// is not one JSON object of resourceType Bundle, a type other than batch or
// transaction, an element of the Bundle outside the allow-list (Invalid), or
// more than maxEntries entries (TooLarge, 413; maxEntries below 1 means
// DefaultMaxBundleEntries). A problem inside an entry is that entry's Err,
// with expressions such as "Bundle.entry[3].resource.period.end" or
// "Bundle.entry[3].request.url"; the other entries are still read. Messages
// never repeat a value from the body.
func ParseWriteBundle(body []byte, maxEntries int) (WriteBundle, error) {
	const op = "fhir.ParseWriteBundle"
	if maxEntries < 1 {
		maxEntries = DefaultMaxBundleEntries
	}
	top, err := decodeEnvelope(op, body, "Bundle")
	if err != nil {
		return WriteBundle{}, err
	}
	raws, err := splitEntries(op, top, maxEntries)
	if err != nil {
		return WriteBundle{}, err
	}
	tx, err := bundleType(op, top)
	if err != nil {
		return WriteBundle{}, err
	}
	b := WriteBundle{Transaction: tx, Entries: make([]WriteEntry, len(raws))}
	for i, raw := range raws {
		b.Entries[i] = parseEntry(op, i, raw)
	}
	return b, nil
}

// splitEntries takes the entry array out of the Bundle's members, each
// entry undecoded.
func splitEntries(op string, top map[string]json.RawMessage, maxEntries int) ([]json.RawMessage, error) {
	raw, ok := top["entry"]
	if !ok {
		return nil, nil
	}
	delete(top, "entry")
	var raws []json.RawMessage
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, &raws) != nil {
		return nil, cpis.E(op, cpis.Invalid, cpis.Expr("Bundle.entry"), "entry must be an array of entries")
	}
	if len(raws) > maxEntries {
		return nil, cpis.E(op, cpis.TooLarge, cpis.Expr("Bundle.entry"),
			"a batch or transaction Bundle may hold at most "+strconv.Itoa(maxEntries)+" entries: send the rest in another Bundle")
	}
	return raws, nil
}

// bundleType reads the Bundle without its entries through jsonformat and
// the allow-list, and reports whether it is a transaction.
func bundleType(op string, top map[string]json.RawMessage) (transaction bool, err error) {
	body, err := json.Marshal(top)
	if err != nil { // the members were decoded from JSON a moment ago
		return false, cpis.E(op, cpis.Invalid, cpis.Expr("Bundle"), "the Bundle could not be read")
	}
	m, err := unmarshaller.Unmarshal(body)
	if err != nil {
		var errs []*cpis.Error
		for _, e := range parserErrors(err) {
			errs = append(errs, bundleParserProblem(op, e, "Bundle", "Bundle"))
		}
		return false, joinProblems(errs)
	}
	b := m.(*bcrpb.ContainedResource).GetBundle()
	pr := &problems{op: op}
	pr.allowed(b.ProtoReflect(), "Bundle", "Bundle")
	switch b.GetType().GetValue() {
	case cpb.BundleTypeCode_BATCH:
	case cpb.BundleTypeCode_TRANSACTION:
		transaction = true
	default:
		pr.invalid("Bundle.type", typeMessage)
	}
	return transaction, pr.sorted()
}

const typeMessage = "type must be batch or transaction: this endpoint takes Flag writes only"

// wrappedEntry is where jsonformat reports an entry read on its own.
const wrappedEntry = "Bundle.entry[0]"

// parseEntry reads entry i, wrapped in a Bundle of one so that jsonformat
// reads it alone: a problem in it fails this entry, never another.
func parseEntry(op string, i int, raw json.RawMessage) WriteEntry {
	root := "Bundle.entry[" + strconv.Itoa(i) + "]"
	wrapped := make([]byte, 0, len(raw)+40)
	wrapped = append(append(append(wrapped, `{"resourceType":"Bundle","entry":[`...), raw...), "]}"...)
	m, err := unmarshaller.Unmarshal(wrapped)
	if err != nil {
		var errs []*cpis.Error
		for _, e := range parserErrors(err) {
			errs = append(errs, entryParserProblem(op, root, e))
		}
		return WriteEntry{Err: joinProblems(errs)}
	}
	entries := m.(*bcrpb.ContainedResource).GetBundle().GetEntry()
	if len(entries) != 1 {
		return WriteEntry{Err: cpis.E(op, cpis.Invalid, cpis.Expr(root), "an entry must be a JSON object")}
	}
	e := entries[0]
	pr := &problems{op: op}
	res := e.Resource
	e.Resource = nil // checked as a Flag below, from "Flag"
	pr.allowed(e.ProtoReflect(), root, "Bundle.entry")
	var w WriteEntry
	pr.request(&w, e.GetRequest(), root+".request")
	pr.entryResource(&w, res, root+".resource")
	if len(pr.errs) > 0 {
		w.Plan, w.Err = cpis.Plan{}, errors.Join(pr.errs...)
	}
	return w
}

// request reads an entry's request (at expression at) into w.
func (pr *problems) request(w *WriteEntry, r *bcrpb.Bundle_Entry_Request, at string) {
	if r == nil {
		pr.invalid(at, "every entry needs a request: method POST, PUT or DELETE, and url")
		return
	}
	switch r.GetMethod().GetValue() {
	case cpb.HTTPVerbCode_POST:
		w.Method = "POST"
	case cpb.HTTPVerbCode_PUT:
		w.Method = "PUT"
	case cpb.HTTPVerbCode_DELETE:
		w.Method = "DELETE"
	case cpb.HTTPVerbCode_INVALID_UNINITIALIZED:
		pr.invalid(at+".method", "request.method is required: POST, PUT or DELETE")
	default:
		pr.add(cpis.NotSupported, at+".method", "only POST, PUT and DELETE of a Flag are accepted in a batch or transaction")
	}
	if r.GetUrl() == nil {
		pr.invalid(at+".url", "request.url is required: Flag to create; Flag/<id> or Flag?"+conditionForm+" to update or withdraw")
	}
	if w.Method == "" {
		return // the rest depends on the method
	}
	if r.GetUrl() != nil {
		pr.target(w, r.GetUrl().GetValue(), at+".url")
	}
	pr.ifMatch(w, r.GetIfMatch(), at+".ifMatch")
	pr.ifNoneExist(w, r.GetIfNoneExist(), at+".ifNoneExist")
}

// fhirID is what a resource id may be (FHIR R4 id).
var fhirID = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

// target reads request.url: Flag for a create, Flag/{id} or Flag?condition
// for an update or a withdrawal. Only relative URLs are taken.
func (pr *problems) target(w *WriteEntry, u, expr string) {
	if w.Method == "POST" {
		if u != "Flag" {
			pr.invalid(expr, "a create's url is Flag (relative, no id, no query): make it conditional with ifNoneExist")
		}
		return
	}
	if id, ok := strings.CutPrefix(u, "Flag/"); ok && fhirID.MatchString(id) {
		w.ID = id
		return
	}
	if q, ok := strings.CutPrefix(u, "Flag?"); ok {
		ref, err := ParseCondition(q, expr)
		if err != nil {
			pr.errs = append(pr.errs, err)
			return
		}
		w.Reference = ref
		return
	}
	pr.invalid(expr, "an update's or a withdrawal's url is Flag/<id>, or Flag?"+conditionForm+" to match the plan by the LA's reference (relative, nothing after the id)")
}

func (pr *problems) ifMatch(w *WriteEntry, s *dpb.String, expr string) {
	if s == nil {
		if w.Method == "PUT" && w.ID != "" {
			pr.add(cpis.PreconditionRequired, expr, `an update of Flag/<id> needs ifMatch with the version being changed, e.g. W/"1"`)
		}
		return
	}
	if w.Method == "POST" {
		pr.invalid(expr, "ifMatch applies to an update or a withdrawal, not to a create")
		return
	}
	v, ok := ParseETag(s.GetValue())
	if !ok {
		pr.add(cpis.PreconditionFailed, expr, `ifMatch must name a version, e.g. W/"1"`)
		return
	}
	w.IfMatch = v
}

func (pr *problems) ifNoneExist(w *WriteEntry, s *dpb.String, expr string) {
	if s == nil {
		return
	}
	if w.Method != "POST" {
		pr.invalid(expr, "ifNoneExist applies to a create (POST) only")
		return
	}
	ref, err := ParseCondition(s.GetValue(), expr)
	if err != nil {
		pr.errs = append(pr.errs, err)
		return
	}
	w.IfNoneExist = ref
}

// entryResource checks an entry's resource against its method and reads its
// Flag through the checks ParseFlag applies.
func (pr *problems) entryResource(w *WriteEntry, res *bcrpb.ContainedResource, at string) {
	f := res.GetFlag()
	switch {
	case res != nil && w.Method == "DELETE":
		pr.invalid(at, "a withdrawal (DELETE) carries no resource")
	case res == nil && (w.Method == "POST" || w.Method == "PUT"):
		pr.invalid(at, "a create or an update carries the Flag as the entry's resource")
	case res != nil && f == nil:
		pr.invalid(at, "an entry's resource must be a Flag")
	case f != nil:
		w.Plan = pr.flag(f, at)
	}
}

// ParseETag reads the version an If-Match header or an entry's ifMatch
// names: W/"3" as ETag writes it, "3" or 3. ok is false for anything else,
// and for a version below 1.
func ParseETag(s string) (version int, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.Atoi(s)
	return v, err == nil && v > 0
}

// safeBundlePath matches the paths jsonformat reports in a Bundle
// ("Bundle.entry[0].request.method"); anything else is not shown.
var safeBundlePath = regexp.MustCompile(`^Bundle(\.[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])?)*$`)

// entryParserProblem is one of jsonformat's errors about the entry at root,
// read alone (its paths start wrappedEntry). Inside the entry's Flag, it is
// ParseFlag's problem moved under the entry; a resource of another type is
// refused without naming the type, which is input.
func entryParserProblem(op, root string, e parserError) *cpis.Error {
	rest, ok := strings.CutPrefix(e.path, wrappedEntry)
	switch {
	case !e.ok || !ok:
		return &cpis.Error{Op: op, Kind: cpis.Invalid, Expression: root, Msg: "the entry is not a valid FHIR R4 Bundle entry"}
	case rest == "" && e.details == "invalid JSON":
		return &cpis.Error{Op: op, Kind: cpis.Invalid, Expression: root, Msg: "an entry must be a JSON object: fullUrl, resource and request"}
	}
	res, ok := strings.CutPrefix(rest, ".resource")
	if !ok || (res != "" && res[0] != '.') {
		return bundleParserProblem(op, e, wrappedEntry, root)
	}
	if inFlag, ok := strings.CutPrefix(res, ".Flag"); ok && (inFlag == "" || inFlag[0] == '.') {
		e.path = "Flag" + inFlag
		p := flagParserProblem(op, e)
		p.Expression = relocate(p.Expression, root+".resource")
		return p
	}
	msg := "an entry's resource must be a Flag"
	if res == "" && strings.Contains(e.details, "resourceType") {
		msg = "the entry's resource has no resourceType: it must be a Flag"
	}
	return &cpis.Error{Op: op, Kind: cpis.Invalid, Expression: root + ".resource", Msg: msg}
}

// bundleParserProblem is one of jsonformat's errors about a Bundle outside
// any Flag; its path, which starts from, is shown from to.
func bundleParserProblem(op string, e parserError, from, to string) *cpis.Error {
	bad := func(expr, msg string) *cpis.Error {
		return &cpis.Error{Op: op, Kind: cpis.Invalid, Expression: expr, Msg: msg}
	}
	rest, ok := strings.CutPrefix(e.path, from)
	if !e.ok || !ok || !safeBundlePath.MatchString("Bundle"+rest) {
		return bad(to, "not a valid FHIR R4 Bundle")
	}
	expr := to + rest
	switch {
	case e.details == "unknown field":
		if name, ok := e.unknownElement(); ok {
			return bad(expr+"."+name, "unknown element: it is not part of a FHIR R4 Bundle")
		}
		return bad(expr, "an unknown element is present: it is not part of a FHIR R4 Bundle")
	case e.details == "code type mismatch" && strings.HasSuffix(expr, ".request.method"):
		return bad(expr, "request.method must be POST, PUT or DELETE")
	case e.details == "code type mismatch" && expr == "Bundle.type":
		return bad(expr, typeMessage)
	}
	return bad(expr, "not valid FHIR R4: "+e.details)
}
