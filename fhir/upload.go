package fhir

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The CP-IS upload record response codes (UploadRecordSystem), the national
// HL7 V3 service's outcome of each record of an upload (docs/domain.md,
// Codes). This server checks no NHS number against PDS, so it never gives
// CPR01, CPR02, CPR03 or CPR05; profiles/ defines all seven.
const (
	recordBadNHSNumber = "CPR04"
	recordSuccess      = "CPR06"
	recordUnsuccessful = "CPR07"
)

var recordResponses = map[string]string{
	"CPR01":            "No PDS match",
	"CPR02":            "Sensitive record",
	"CPR03":            "Not verified",
	recordBadNHSNumber: "NHS number format incorrect",
	"CPR05":            "Superseded",
	recordSuccess:      "Success",
	recordUnsuccessful: "Unsuccessful",
}

// recordCode is the record response of one problem of kind k.
func recordCode(k cpis.Kind) string {
	if k == cpis.InvalidNHSNumber {
		return recordBadNHSNumber
	}
	return recordUnsuccessful
}

// RecordResponse is the CP-IS upload record response code (system
// UploadRecordSystem) and its display for the outcome of one record (a
// Bundle entry, a line of an $import): CPR06 "Success" when err is nil;
// CPR04 "NHS number format incorrect" when any of err's problems
// (cpis.Problems) is of kind InvalidNHSNumber, since the record cannot be
// about anyone; CPR07 "Unsuccessful" for every other refusal.
func RecordResponse(err error) (code, display string) {
	if err == nil {
		return recordSuccess, recordResponses[recordSuccess]
	}
	code = recordUnsuccessful
	for _, p := range cpis.Problems(err) {
		if p != nil && p.Kind == cpis.InvalidNHSNumber {
			code = recordBadNHSNumber
		}
	}
	return code, recordResponses[code]
}

// RecordOutcome is OperationOutcome for the problems of one record of an
// upload: each issue's details.coding holds the Spine code, then the CP-IS
// upload record response of that problem (CPR04 for an invalid NHS
// number, CPR07 otherwise). It answers a failed entry of a batch, and a
// failed transaction as a whole (with expressions made by InEntry).
func RecordOutcome(problems []*cpis.Error) *oopb.OperationOutcome {
	if len(problems) == 0 {
		problems = []*cpis.Error{{Kind: cpis.Other}}
	}
	oo := &oopb.OperationOutcome{Issue: make([]*oopb.OperationOutcome_Issue, 0, len(problems))}
	for _, p := range problems {
		if p == nil {
			p = &cpis.Error{Kind: cpis.Other}
		}
		is := issue(p, cpb.IssueSeverityCode_ERROR)
		is.Details.Coding = append(is.Details.Coding, recordCoding(recordCode(p.Kind)))
		oo.Issue = append(oo.Issue, is)
	}
	return oo
}

func recordCoding(code string) *dpb.Coding {
	return coding(UploadRecordSystem, code, recordResponses[code])
}

// successOutcome is the outcome of an entry that succeeded: one
// informational issue carrying CPR06.
func successOutcome() *oopb.OperationOutcome {
	return &oopb.OperationOutcome{Issue: []*oopb.OperationOutcome_Issue{{
		Severity: &oopb.OperationOutcome_Issue_SeverityCode{Value: cpb.IssueSeverityCode_INFORMATION},
		Code:     &oopb.OperationOutcome_Issue_CodeType{Value: cpb.IssueTypeCode_INFORMATIONAL},
		Details:  concept(recordCoding(recordSuccess)),
	}}}
}

// InEntry returns copies of problems of entry i of a Bundle with their
// expressions inside that entry: one rooted at the Flag ("Flag.period.end",
// as cpis.Plan.Validate and the register name them) moves under
// Bundle.entry[i].resource; the If-Match and If-None-Exist headers
// ("http.If-Match") become the entry's request.ifMatch and
// request.ifNoneExist; a problem with no expression names Bundle.entry[i].
// Expressions already in a Bundle ("Bundle.entry[3].request.url"), and any
// other, are kept.
func InEntry(i int, problems []*cpis.Error) []*cpis.Error {
	root := "Bundle.entry[" + strconv.Itoa(i) + "]"
	out := make([]*cpis.Error, 0, len(problems))
	for _, p := range problems {
		if p == nil {
			p = &cpis.Error{Kind: cpis.Other}
		}
		c := *p
		switch {
		case c.Expression == "":
			c.Expression = root
		case c.Expression == "http.If-Match":
			c.Expression = root + ".request.ifMatch"
		case c.Expression == "http.If-None-Exist":
			c.Expression = root + ".request.ifNoneExist"
		default:
			c.Expression = relocate(c.Expression, root+".resource")
		}
		out = append(out, &c)
	}
	return out
}

// EntryResult is what one entry of a batch or transaction did, for
// BatchResponse.
type EntryResult struct {
	// Status is the HTTP status of the entry, as the same request alone would
	// have been answered (201, 200, 204 ...). 0 takes it from Problems
	// (HTTPStatus).
	Status int
	// ID and Version are the plan version the entry wrote (or, for a
	// replayed or unchanged write, found); LastModified when it was stored.
	// Zero values are left out.
	ID           string
	Version      int
	LastModified time.Time
	// Problems say why the entry failed; none for a success. Their
	// expressions are placed inside the entry by InEntry.
	Problems []*cpis.Error
}

// BatchResponse answers a batch (or, with transaction set, a transaction)
// Bundle: a batch-response or transaction-response Bundle with one entry per
// result, in order. Each entry's response has the status line ("201
// Created", "404 Not Found"), and for a success the etag W/"n", lastModified
// and, unless the status is 204 No Content, the location
// Flag/<id>/_history/<n>. Every entry has an outcome: for a success one
// informational issue with the record response CPR06, for a failure
// RecordOutcome of its problems, with expressions inside the entry. A
// transaction that failed is answered by RecordOutcome alone, not by this
// Bundle. The Bundle has no id and no timestamp: it is not stored.
func BatchResponse(transaction bool, results []EntryResult) *bcrpb.Bundle {
	typ := cpb.BundleTypeCode_BATCH_RESPONSE
	if transaction {
		typ = cpb.BundleTypeCode_TRANSACTION_RESPONSE
	}
	b := &bcrpb.Bundle{
		Type:  &bcrpb.Bundle_TypeCode{Value: typ},
		Entry: make([]*bcrpb.Bundle_Entry, 0, len(results)),
	}
	for i, r := range results {
		b.Entry = append(b.Entry, &bcrpb.Bundle_Entry{Response: entryResponse(i, r)})
	}
	return b
}

func entryResponse(i int, r EntryResult) *bcrpb.Bundle_Entry_Response {
	problems := InEntry(i, r.Problems)
	status := r.Status
	if status == 0 {
		status = HTTPStatus(problems)
	}
	resp := &bcrpb.Bundle_Entry_Response{Status: str(statusLine(status))}
	if len(problems) > 0 || status >= http.StatusBadRequest {
		resp.Outcome = contain(RecordOutcome(problems))
		return resp
	}
	if r.ID != "" && r.Version > 0 && status != http.StatusNoContent {
		resp.Location = uri("Flag/" + r.ID + "/_history/" + strconv.Itoa(r.Version))
	}
	if r.Version > 0 {
		resp.Etag = str(ETag(r.Version))
	}
	if !r.LastModified.IsZero() {
		resp.LastModified = instant(r.LastModified)
	}
	resp.Outcome = contain(successOutcome())
	return resp
}

// statusLine is an HTTP status as a Bundle entry's response.status: the
// code and its reason phrase.
func statusLine(status int) string {
	return strings.TrimSpace(strconv.Itoa(status) + " " + http.StatusText(status))
}
