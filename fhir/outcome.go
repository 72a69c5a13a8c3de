package fhir

import (
	"net/http"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// spineErrorVersion is the version of the Spine-ErrorOrWarningCode system
// the codes come from (docs/domain.md, Spine error codes).
const spineErrorVersion = "1"

// spineError is one row of the error table.
type spineError struct {
	code, display string
	status        int
	issue         cpb.IssueTypeCode_Value
}

// spineErrors is the single table from error kind to NHS Spine error code,
// HTTP status and FHIR issue type. Choices where the national table
// (docs/domain.md, Spine error codes) is silent:
//   - Invalid is 400 VALIDATION_ERROR for malformed and rule-breaking content
//     alike: the kind does not tell them apart, and NHS APIs use 400 for both.
//   - NotSupported is 405 INVALID_VALUE (issue not-supported), for a method
//     an endpoint does not offer, and UnsupportedMedia 415 INVALID_VALUE for
//     a body that is not FHIR JSON: the Spine table has no code for either.
//   - Unprocessable (a full import that would end more of a caseload than
//     the guard allows) is 422 VALIDATION_ERROR, issue business-rule.
//   - PreconditionRequired (an update without If-Match) is 428 and TooLarge
//     413: statuses the national table has no row for, with the nearest code.
//   - Other is 500 INTERNAL_SERVER_ERROR (issue exception): the national
//     table has no 500 row; this code is used by other NHS England FHIR APIs
//     for the same case.
//   - Unauthenticated is issue login (the client must authenticate), the
//     403s are issue forbidden, TooLarge is too-long, Unavailable transient.
var spineErrors = [...]spineError{
	cpis.Other:                {"INTERNAL_SERVER_ERROR", "Unexpected internal server error", http.StatusInternalServerError, cpb.IssueTypeCode_EXCEPTION},
	cpis.Invalid:              {"VALIDATION_ERROR", "A parameter or value has resulted in a validation error", http.StatusBadRequest, cpb.IssueTypeCode_INVALID},
	cpis.InvalidNHSNumber:     {"INVALID_RESOURCE_ID", "Invalid resource ID", http.StatusBadRequest, cpb.IssueTypeCode_VALUE},
	cpis.InvalidSearch:        {"INVALID_SEARCH_DATA", "Invalid search data", http.StatusBadRequest, cpb.IssueTypeCode_INVALID},
	cpis.InvalidValue:         {"INVALID_VALUE", "Invalid value", http.StatusBadRequest, cpb.IssueTypeCode_VALUE},
	cpis.MissingValue:         {"MISSING_VALUE", "Missing value", http.StatusBadRequest, cpb.IssueTypeCode_REQUIRED},
	cpis.NotFound:             {"RESOURCE_NOT_FOUND", "Resource not found", http.StatusNotFound, cpb.IssueTypeCode_NOT_FOUND},
	cpis.Unauthenticated:      {"ACCESS_DENIED", "Access has been denied to process this request", http.StatusUnauthorized, cpb.IssueTypeCode_LOGIN},
	cpis.AccessDenied:         {"ACCESS_DENIED", "Access has been denied to process this request", http.StatusForbidden, cpb.IssueTypeCode_FORBIDDEN},
	cpis.ForbiddenUpdate:      {"FORBIDDEN_UPDATE", "Forbidden update", http.StatusForbidden, cpb.IssueTypeCode_FORBIDDEN},
	cpis.PreconditionRequired: {"PRECONDITION_FAILED", "Precondition failed", http.StatusPreconditionRequired, cpb.IssueTypeCode_REQUIRED},
	cpis.PreconditionFailed:   {"PRECONDITION_FAILED", "Precondition failed", http.StatusPreconditionFailed, cpb.IssueTypeCode_CONFLICT},
	cpis.Conflict:             {"RESOURCE_VERSION_MISMATCH", "Resource version mismatch", http.StatusConflict, cpb.IssueTypeCode_CONFLICT},
	cpis.TooLarge:             {"VALIDATION_ERROR", "A parameter or value has resulted in a validation error", http.StatusRequestEntityTooLarge, cpb.IssueTypeCode_TOO_LONG},
	cpis.Unavailable:          {"SERVICE_UNAVAILABLE", "Service unavailable", http.StatusServiceUnavailable, cpb.IssueTypeCode_TRANSIENT},
	cpis.NotSupported:         {"INVALID_VALUE", "Invalid value", http.StatusMethodNotAllowed, cpb.IssueTypeCode_NOT_SUPPORTED},
	cpis.UnsupportedMedia:     {"INVALID_VALUE", "Invalid value", http.StatusUnsupportedMediaType, cpb.IssueTypeCode_NOT_SUPPORTED},
	cpis.Unprocessable:        {"VALIDATION_ERROR", "A parameter or value has resulted in a validation error", http.StatusUnprocessableEntity, cpb.IssueTypeCode_BUSINESS_RULE},
}

// issueTypeCodes are the FHIR codes of the issue types the table uses.
var issueTypeCodes = map[cpb.IssueTypeCode_Value]string{
	cpb.IssueTypeCode_EXCEPTION:     "exception",
	cpb.IssueTypeCode_INVALID:       "invalid",
	cpb.IssueTypeCode_VALUE:         "value",
	cpb.IssueTypeCode_REQUIRED:      "required",
	cpb.IssueTypeCode_NOT_FOUND:     "not-found",
	cpb.IssueTypeCode_LOGIN:         "login",
	cpb.IssueTypeCode_FORBIDDEN:     "forbidden",
	cpb.IssueTypeCode_CONFLICT:      "conflict",
	cpb.IssueTypeCode_TOO_LONG:      "too-long",
	cpb.IssueTypeCode_TRANSIENT:     "transient",
	cpb.IssueTypeCode_NOT_SUPPORTED: "not-supported",
	cpb.IssueTypeCode_BUSINESS_RULE: "business-rule",
}

func spineRow(k cpis.Kind) spineError {
	if int(k) < len(spineErrors) && spineErrors[k].code != "" {
		return spineErrors[k]
	}
	return spineErrors[cpis.Other] // a kind added to cpis but not yet to this table
}

// SpineError returns, for an error kind, the NHS Spine error code (system
// https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode, version 1),
// the HTTP status and the FHIR issue type code. It is the one table the
// error handler uses; a kind it does not know is treated as Other.
func SpineError(k cpis.Kind) (code string, status int, issueType string) {
	r := spineRow(k)
	return r.code, r.status, issueTypeCodes[r.issue]
}

// HTTPStatus is the status of a response reporting problems: the first
// problem's, or 500 if there are none.
func HTTPStatus(problems []*cpis.Error) int {
	if len(problems) == 0 {
		return http.StatusInternalServerError
	}
	return spineRow(problems[0].Kind).status
}

// OperationOutcome reports problems as issues of severity error, in order.
// Each issue has the Spine code as details.coding, the error's FHIRPath as
// expression and its Msg as diagnostics. The wrapped Err is never shown:
// it may hold driver details. With no problems it reports an unexpected
// error, so that the resource is still valid (issue is 1..*).
func OperationOutcome(problems []*cpis.Error) *oopb.OperationOutcome {
	return outcome(problems, cpb.IssueSeverityCode_ERROR)
}

// WarningOutcome reports problems that did not stop the request (such as
// ignored search parameters) as issues of severity warning.
func WarningOutcome(problems []*cpis.Error) *oopb.OperationOutcome {
	return outcome(problems, cpb.IssueSeverityCode_WARNING)
}

func outcome(problems []*cpis.Error, sev cpb.IssueSeverityCode_Value) *oopb.OperationOutcome {
	if len(problems) == 0 {
		problems = []*cpis.Error{{Kind: cpis.Other}}
	}
	oo := &oopb.OperationOutcome{Issue: make([]*oopb.OperationOutcome_Issue, 0, len(problems))}
	for _, p := range problems {
		oo.Issue = append(oo.Issue, issue(p, sev))
	}
	return oo
}

func issue(p *cpis.Error, sev cpb.IssueSeverityCode_Value) *oopb.OperationOutcome_Issue {
	r := spineRow(p.Kind)
	c := coding(SpineErrorSystem, r.code, r.display)
	c.Version = str(spineErrorVersion)
	is := &oopb.OperationOutcome_Issue{
		Severity:    &oopb.OperationOutcome_Issue_SeverityCode{Value: sev},
		Code:        &oopb.OperationOutcome_Issue_CodeType{Value: r.issue},
		Details:     concept(c),
		Diagnostics: str(diagnostics(p)),
	}
	if p.Expression != "" {
		is.Expression = []*dpb.String{str(p.Expression)}
	}
	return is
}

// diagnostics is the message shown to the client: the error's own Msg, or
// for an error without one, the kind's name (never the wrapped error).
func diagnostics(p *cpis.Error) string {
	if p.Msg != "" {
		return p.Msg
	}
	if p.Kind == cpis.Other {
		return "an unexpected error occurred"
	}
	return p.Kind.String()
}
