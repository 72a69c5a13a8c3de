package fhir

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	oopb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/operation_outcome_go_proto"
	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestSpineError(t *testing.T) {
	type row struct {
		Code   string
		Status int
		Issue  string
	}
	tests := []struct {
		kind cpis.Kind
		want row
	}{
		{cpis.Other, row{"INTERNAL_SERVER_ERROR", 500, "exception"}},
		{cpis.Invalid, row{"VALIDATION_ERROR", 400, "invalid"}},
		{cpis.InvalidNHSNumber, row{"INVALID_RESOURCE_ID", 400, "value"}},
		{cpis.InvalidSearch, row{"INVALID_SEARCH_DATA", 400, "invalid"}},
		{cpis.InvalidValue, row{"INVALID_VALUE", 400, "value"}},
		{cpis.MissingValue, row{"MISSING_VALUE", 400, "required"}},
		{cpis.NotFound, row{"RESOURCE_NOT_FOUND", 404, "not-found"}},
		{cpis.Unauthenticated, row{"ACCESS_DENIED", 401, "login"}},
		{cpis.AccessDenied, row{"ACCESS_DENIED", 403, "forbidden"}},
		{cpis.ForbiddenUpdate, row{"FORBIDDEN_UPDATE", 403, "forbidden"}},
		{cpis.PreconditionRequired, row{"PRECONDITION_FAILED", 428, "required"}},
		{cpis.PreconditionFailed, row{"PRECONDITION_FAILED", 412, "conflict"}},
		{cpis.Conflict, row{"RESOURCE_VERSION_MISMATCH", 409, "conflict"}},
		{cpis.TooLarge, row{"VALIDATION_ERROR", 413, "too-long"}},
		{cpis.Unavailable, row{"SERVICE_UNAVAILABLE", 503, "transient"}},
		{cpis.NotSupported, row{"INVALID_VALUE", 405, "not-supported"}},
		{cpis.Kind(200), row{"INTERNAL_SERVER_ERROR", 500, "exception"}}, // a kind this table does not know yet
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			var got row
			got.Code, got.Status, got.Issue = SpineError(tt.kind)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SpineError (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSpineTableComplete makes sure every kind cpis defines has its own row,
// so that a kind added there fails here until the table is extended.
func TestSpineTableComplete(t *testing.T) {
	for k := cpis.Other; ; k++ {
		if strings.HasPrefix(k.String(), "kind(") {
			break
		}
		if int(k) >= len(spineErrors) || spineErrors[k].code == "" {
			t.Errorf("kind %q has no row in spineErrors", k)
		}
		if _, _, issue := SpineError(k); issue == "" {
			t.Errorf("kind %q has no issue type code", k)
		}
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		name     string
		problems []*cpis.Error
		want     int
	}{
		{"none", nil, http.StatusInternalServerError},
		{"first wins", []*cpis.Error{{Kind: cpis.InvalidNHSNumber}, {Kind: cpis.NotFound}}, http.StatusBadRequest},
		{"not found", []*cpis.Error{{Kind: cpis.NotFound}}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTTPStatus(tt.problems); got != tt.want {
				t.Errorf("HTTPStatus = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestOperationOutcomeHidesCause: the wrapped error may carry driver
// details; only Msg reaches the client.
func TestOperationOutcomeHidesCause(t *testing.T) {
	cause := errors.New(`pq: duplicate key value violates unique constraint "plans_pkey" (nhs=9990276579)`)
	tests := []struct {
		name string
		err  *cpis.Error
		want string
	}{
		{"with message", &cpis.Error{Kind: cpis.Unavailable, Msg: "the store is unavailable", Err: cause}, "the store is unavailable"},
		{"other without message", &cpis.Error{Kind: cpis.Other, Err: cause}, "an unexpected error occurred"},
		{"kind without message", &cpis.Error{Kind: cpis.NotFound, Err: cause}, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			oo := OperationOutcome([]*cpis.Error{tt.err})
			b, err := MarshalResource(oo)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "pq:") || strings.Contains(string(b), "9990276579") {
				t.Errorf("the cause leaked: %s", b)
			}
			if got := oo.GetIssue()[0].GetDiagnostics().GetValue(); got != tt.want {
				t.Errorf("diagnostics = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOperationOutcomeShape(t *testing.T) {
	tests := []struct {
		name     string
		build    func([]*cpis.Error) *oopb.OperationOutcome
		problems []*cpis.Error
		wantSev  string
		wantN    int
	}{
		{"errors", OperationOutcome, sampleProblems(), "error", 2},
		{"warnings", WarningOutcome, sampleProblems()[:1], "warning", 1},
		{"empty still valid", OperationOutcome, nil, "error", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := MarshalResource(tt.build(tt.problems))
			if err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(string(b), `"severity":"`+tt.wantSev+`"`); n != tt.wantN {
				t.Errorf("%d issues of severity %s, want %d: %s", n, tt.wantSev, tt.wantN, b)
			}
			if n := strings.Count(string(b), `"system":"`+SpineErrorSystem+`","version":"1"`); n != tt.wantN {
				t.Errorf("%d Spine codings with version 1, want %d: %s", n, tt.wantN, b)
			}
		})
	}
}
