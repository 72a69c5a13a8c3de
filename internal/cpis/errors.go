package cpis

import (
	"errors"
	"fmt"
)

// Kind classifies a failure so that every layer can decide what to do with it
// without parsing messages. The list is append-only: a kind's meaning never
// changes once released. The HTTP status and NHS Spine error code for each
// kind are chosen in one table, fhir.SpineError in fhir/outcome.go
// (docs/domain.md, Spine error codes).
type Kind uint8

// Error kinds.
const (
	Other                Kind = iota // an unexpected failure; a bug or an unclassified driver error (INTERNAL_SERVER_ERROR, 500)
	Invalid                          // content breaks a rule of the profile or the SOP (VALIDATION_ERROR, 400)
	InvalidNHSNumber                 // an NHS number that is not 10 digits or fails Modulus 11 (INVALID_RESOURCE_ID, 400)
	InvalidSearch                    // a search parameter that cannot be understood (INVALID_SEARCH_DATA, 400)
	InvalidValue                     // a header or parameter with a value we cannot use (INVALID_VALUE, 400)
	MissingValue                     // a required header or parameter is absent (MISSING_VALUE, 400)
	NotFound                         // no such resource, or not visible to the caller (RESOURCE_NOT_FOUND, 404)
	Unauthenticated                  // no valid bearer token (ACCESS_DENIED, 401)
	AccessDenied                     // authenticated, but the role or scope does not allow it (ACCESS_DENIED, 403)
	ForbiddenUpdate                  // an LA tried to write a plan another LA is responsible for, or to name another LA as author (FORBIDDEN_UPDATE, 403)
	PreconditionRequired             // a versioned update without If-Match (PRECONDITION_FAILED, 428)
	PreconditionFailed               // If-Match is not the current version (a stale client, or a concurrent writer won), or names no version (PRECONDITION_FAILED, 412)
	Conflict                         // a write that clashes with what is stored: a plan overlapping one the LA holds, an X-Request-ID reused for a different write, an id already taken (RESOURCE_VERSION_MISMATCH, 409)
	TooLarge                         // a request body over the limit (VALIDATION_ERROR, 413)
	Unavailable                      // a dependency (store, audit) is down; retry later (SERVICE_UNAVAILABLE, 503)
	NotSupported                     // an HTTP method an endpoint does not offer (INVALID_VALUE, 405)
	UnsupportedMedia                 // a request body in a format the endpoint does not take (INVALID_VALUE, 415)
	Unprocessable                    // understood, but refused for what it would do: a full import ending too much of a caseload (VALIDATION_ERROR, 422)
)

var kindNames = [...]string{
	Other:                "other",
	Invalid:              "invalid",
	InvalidNHSNumber:     "invalid NHS number",
	InvalidSearch:        "invalid search",
	InvalidValue:         "invalid value",
	MissingValue:         "missing value",
	NotFound:             "not found",
	Unauthenticated:      "unauthenticated",
	AccessDenied:         "access denied",
	ForbiddenUpdate:      "forbidden update",
	PreconditionRequired: "precondition required",
	PreconditionFailed:   "precondition failed",
	Conflict:             "conflict",
	TooLarge:             "too large",
	Unavailable:          "unavailable",
	NotSupported:         "not supported",
	UnsupportedMedia:     "unsupported media type",
	Unprocessable:        "unprocessable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is the one error type of the service. Op names the operation that
// failed ("store.UpdatePlan"), Expression the FHIRPath of the offending
// element when there is one ("Flag.period.end"), Msg says what is wrong in
// words a client developer can act on. Msg must never contain an NHS number,
// a name or a token: errors reach logs.
type Error struct {
	Op         string
	Kind       Kind
	Expression string
	Msg        string
	Err        error
}

// E builds an *Error. Arguments are taken by type: a string is the message,
// a Kind the kind, an error the wrapped cause, and Expr the FHIRPath. Without
// a Kind, the error takes the kind of its cause (KindOf), or Other.
func E(op string, args ...any) error {
	e := &Error{Op: op}
	for _, a := range args {
		switch v := a.(type) {
		case Kind:
			e.Kind = v
		case string:
			e.Msg = v
		case Expr:
			e.Expression = string(v)
		case error:
			e.Err = v
		}
	}
	if e.Kind == Other && e.Err != nil {
		e.Kind = KindOf(e.Err)
	}
	return e
}

// Expr marks an argument to E as the FHIRPath expression of the element at fault.
type Expr string

func (e *Error) Error() string {
	s := e.Op
	if e.Kind != Other {
		s += ": " + e.Kind.String()
	}
	if e.Expression != "" {
		s += " at " + e.Expression
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of the first *Error in err's chain that has one, or Other.
func KindOf(err error) Kind {
	var e *Error
	for err != nil {
		if !errors.As(err, &e) {
			return Other
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Other
}

// Problems flattens err (which may be an errors.Join of several) into the
// *Error values it holds, so that one response can list every problem found.
// A join wrapped with fmt.Errorf("op: %w", ...) is flattened too, and so is
// one wrapped in an *Error that adds only an operation name (no message, no
// expression): cpis.E(op, joined) reports the problems it wraps. An *Error
// with a message or an expression of its own speaks for the whole and stays
// one problem. An error that holds no *Error is one problem of kind Other.
func Problems(err error) []*Error {
	if err == nil {
		return nil
	}
	if j, ok := joined(err); ok {
		var out []*Error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	var e *Error
	if !errors.As(err, &e) {
		return []*Error{{Kind: Other, Err: err}}
	}
	// A wrapper that only adds an operation name says nothing a client
	// needs: the problems it wraps are the ones to report.
	if e.Msg == "" && e.Expression == "" && e.Err != nil {
		if inner := Problems(e.Err); inner[0].Kind != Other || inner[0].Msg != "" {
			return inner
		}
	}
	return []*Error{e}
}

// joined finds the errors.Join (or multi-%w error) err is, or that err wraps
// under plain %w wrappers only.
func joined(err error) (interface{ Unwrap() []error }, bool) {
	for err != nil {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			return j, true
		}
		if _, ok := err.(*Error); ok {
			return nil, false
		}
		err = errors.Unwrap(err)
	}
	return nil, false
}
