package fhir

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

func TestRecordResponse(t *testing.T) {
	badNHS := cpis.E("x", cpis.InvalidNHSNumber, cpis.Expr("Flag.subject.identifier.value"), "m")
	invalid := cpis.E("x", cpis.Invalid, cpis.Expr("Flag.period.end"), "m")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, "CPR06"},
		{"invalid NHS number", badNHS, "CPR04"},
		{"invalid NHS number among others", errors.Join(invalid, fmt.Errorf("w: %w", badNHS)), "CPR04"},
		{"invalid", invalid, "CPR07"},
		{"not found", cpis.E("x", cpis.NotFound), "CPR07"},
		{"conflict", cpis.E("x", cpis.Conflict), "CPR07"},
		{"unexpected", errors.New("boom"), "CPR07"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, display := RecordResponse(tt.err)
			if code != tt.want || display != recordResponses[tt.want] {
				t.Errorf("RecordResponse = %s %q, want %s %q", code, display, tt.want, recordResponses[tt.want])
			}
		})
	}
}

func TestInEntry(t *testing.T) {
	in := []*cpis.Error{
		{Kind: cpis.NotFound},
		{Kind: cpis.Invalid, Expression: "Flag"},
		{Kind: cpis.Invalid, Expression: "Flag.period.end"},
		{Kind: cpis.Invalid, Expression: "Flag.extension('child-birth-date')"},
		{Kind: cpis.PreconditionFailed, Expression: "http.If-Match"},
		{Kind: cpis.InvalidSearch, Expression: "http.If-None-Exist"},
		{Kind: cpis.Invalid, Expression: "Bundle.entry[3].request.url"},
		{Kind: cpis.InvalidValue, Expression: "http.X-Request-ID"},
		{Kind: cpis.Invalid, Expression: "Flagged"},
		nil,
	}
	want := []string{
		"Bundle.entry[7]",
		"Bundle.entry[7].resource",
		"Bundle.entry[7].resource.period.end",
		"Bundle.entry[7].resource.extension('child-birth-date')",
		"Bundle.entry[7].request.ifMatch",
		"Bundle.entry[7].request.ifNoneExist",
		"Bundle.entry[3].request.url",
		"http.X-Request-ID",
		"Flagged",
		"Bundle.entry[7]",
	}
	out := InEntry(7, in)
	var got []string
	for _, p := range out {
		got = append(got, p.Expression)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("expressions (-want +got):\n%s", diff)
	}
	if in[0].Expression != "" || in[2].Expression != "Flag.period.end" {
		t.Error("InEntry changed its input")
	}
	if out[4].Kind != cpis.PreconditionFailed {
		t.Errorf("kind = %v", out[4].Kind)
	}
}

// TestBatchResponseEntries: statuses, and what each kind of result carries.
func TestBatchResponseEntries(t *testing.T) {
	when := time.Date(2026, 11, 2, 9, 30, 15, 0, time.UTC)
	b := BatchResponse(false, []EntryResult{
		{Status: http.StatusCreated, ID: "a", Version: 1, LastModified: when},
		{Status: http.StatusOK, ID: "a", Version: 2},
		{Status: http.StatusNoContent, ID: "a", Version: 3, LastModified: when},
		{Problems: []*cpis.Error{{Kind: cpis.PreconditionFailed, Expression: "http.If-Match", Msg: "stale"}}, ID: "a", Version: 3},
		{Status: http.StatusConflict, Problems: []*cpis.Error{{Kind: cpis.Conflict}}},
		{Status: http.StatusInternalServerError},
		{Status: 299},
	})
	type row struct {
		Status, Location, Etag, LastModified string
		Codes                                []string
		Expressions                          []string
	}
	var got []row
	for _, e := range b.GetEntry() {
		r := e.GetResponse()
		w := row{Status: r.GetStatus().GetValue(), Location: r.GetLocation().GetValue(), Etag: r.GetEtag().GetValue()}
		if lm := r.GetLastModified(); lm != nil {
			w.LastModified = time.UnixMicro(lm.GetValueUs()).UTC().Format(time.RFC3339)
		}
		for _, is := range r.GetOutcome().GetOperationOutcome().GetIssue() {
			for _, c := range is.GetDetails().GetCoding() {
				w.Codes = append(w.Codes, c.GetCode().GetValue())
			}
			for _, x := range is.GetExpression() {
				w.Expressions = append(w.Expressions, x.GetValue())
			}
		}
		got = append(got, w)
	}
	want := []row{
		{"201 Created", "Flag/a/_history/1", `W/"1"`, "2026-11-02T09:30:15Z", []string{"CPR06"}, nil},
		{"200 OK", "Flag/a/_history/2", `W/"2"`, "", []string{"CPR06"}, nil},
		{"204 No Content", "", `W/"3"`, "2026-11-02T09:30:15Z", []string{"CPR06"}, nil},
		{"412 Precondition Failed", "", "", "", []string{"PRECONDITION_FAILED", "CPR07"}, []string{"Bundle.entry[3].request.ifMatch"}},
		{"409 Conflict", "", "", "", []string{"RESOURCE_VERSION_MISMATCH", "CPR07"}, []string{"Bundle.entry[4]"}},
		{"500 Internal Server Error", "", "", "", []string{"INTERNAL_SERVER_ERROR", "CPR07"}, nil},
		{"299", "", "", "", []string{"CPR06"}, nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if typ := BatchResponse(true, nil).GetType().GetValue().String(); typ != "TRANSACTION_RESPONSE" {
		t.Errorf("transaction type = %s", typ)
	}
}
