package fhir

import (
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	ppb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/parameters_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The CP-IS upload file response codes (UploadFileSystem) this server gives
// for a whole $import file.
const (
	fileAllLoaded  = "CPF02"
	filePartLoaded = "CPF03"
	fileNoneLoaded = "CPF04"
)

var fileResponses = map[string]string{
	fileAllLoaded:  "All records loaded",
	filePartLoaded: "Some records loaded",
	fileNoneLoaded: "No records loaded",
}

// ImportReport is what POST /Flag/$import did (or, in a dry run, would do),
// as ImportParameters reports it. Counts are of lines of the file, except
// Ended and NotReconciled, which count plans the file did not name.
type ImportReport struct {
	Mode   string // "delta" or "full", as the request said; "" is reported as delta, the default
	DryRun bool   // nothing was stored: the counts say what the import would do
	// Created, Updated and Unchanged count the lines stored as new plans,
	// stored as new versions, and found as they are already stored.
	Created, Updated, Unchanged int
	// Ended counts the plans a full import ended because the file did not
	// name them.
	Ended int
	// Rejected counts the lines refused; Rejections says why.
	Rejected int
	// NotReconciled counts the LA's current plans that an import can never
	// end or match: those without a plan reference.
	NotReconciled int
	// ReconciliationSkipped is true when a full import ended nothing
	// because a line it refused could not be read far enough to know which
	// plan it was about. Reported in full mode only.
	ReconciliationSkipped bool
	// Rejections are the refused lines, in the order of the file.
	Rejections []Rejection
}

// Rejection is one refused line of an $import file: its number (1 for the
// first line) and one problem, normally the first of the line's (its
// Problem's Msg says what is wrong, and the line itself is never
// repeated). A caller that wants every problem of a line reported may give
// that line once per problem: Rejected counts lines, not Rejections.
type Rejection struct {
	Line    int
	Problem *cpis.Error
}

// FileResponse is the CP-IS upload file response (system
// UploadFileSystem) of an import, and its display. "Loaded" counts what
// the file took effect on, Created+Updated+Unchanged+Ended (an unchanged
// line was accepted, and ending a plan is loading the file's absence of
// it); "rejected" is Rejected, or any Rejections:
//
//	CPF02 All records loaded   nothing was rejected, whatever was loaded
//	                           (an empty file, or one that changed nothing,
//	                           is loaded in full)
//	CPF03 Some records loaded  some lines were rejected and something loaded
//	CPF04 No records loaded    some lines were rejected and nothing loaded
//
// A dry run reports the same codes for what the import would do.
func FileResponse(r ImportReport) (code, display string) {
	loaded := r.Created + r.Updated + r.Unchanged + r.Ended
	switch {
	case r.Rejected == 0 && len(r.Rejections) == 0:
		code = fileAllLoaded
	case loaded > 0:
		code = filePartLoaded
	default:
		code = fileNoneLoaded
	}
	return code, fileResponses[code]
}

// ImportParameters is the answer to POST /Flag/$import, as the
// OperationDefinition flag-import (profiles/) declares it: the Parameters
// outcome (FileResponse, valueCoding), mode (valueCode), dryRun
// (valueBoolean), the counts created, updated, unchanged, ended, rejected
// and notReconciled (valueInteger), in full mode reconciliationSkipped
// (valueBoolean), then one rejection per Rejection with the parts line
// (valueInteger), code (the Spine code, valueCoding), recordResponse (the
// CP-IS upload record response, valueCoding), diagnostics (valueString) and,
// when the problem names an element, expression (valueString).
func ImportParameters(r ImportReport) *ppb.Parameters {
	mode := r.Mode
	if mode == "" {
		mode = "delta"
	}
	code, display := FileResponse(r)
	ps := []*ppb.Parameters_Parameter{
		param("outcome", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Coding{Coding: coding(UploadFileSystem, code, display)}}),
		param("mode", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Code{Code: &dpb.Code{Value: mode}}}),
		boolParam("dryRun", r.DryRun),
	}
	for _, c := range []struct {
		name string
		n    int
	}{
		{"created", r.Created}, {"updated", r.Updated}, {"unchanged", r.Unchanged}, {"ended", r.Ended},
		{"rejected", r.Rejected}, {"notReconciled", r.NotReconciled},
	} {
		ps = append(ps, intParam(c.name, c.n))
	}
	if mode == "full" {
		ps = append(ps, boolParam("reconciliationSkipped", r.ReconciliationSkipped))
	}
	for _, rej := range r.Rejections {
		ps = append(ps, rejectionParam(rej))
	}
	return &ppb.Parameters{Parameter: ps}
}

func rejectionParam(r Rejection) *ppb.Parameters_Parameter {
	p := r.Problem
	if p == nil {
		p = &cpis.Error{Kind: cpis.Other}
	}
	row := spineRow(p.Kind)
	spine := coding(SpineErrorSystem, row.code, row.display)
	spine.Version = str(spineErrorVersion)
	parts := []*ppb.Parameters_Parameter{
		intParam("line", r.Line),
		param("code", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Coding{Coding: spine}}),
		param("recordResponse", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Coding{Coding: recordCoding(recordCode(p.Kind))}}),
		stringParam("diagnostics", diagnostics(p)),
	}
	if p.Expression != "" {
		parts = append(parts, stringParam("expression", p.Expression))
	}
	return &ppb.Parameters_Parameter{Name: str("rejection"), Part: parts}
}

func param(name string, v *ppb.Parameters_Parameter_ValueX) *ppb.Parameters_Parameter {
	return &ppb.Parameters_Parameter{Name: str(name), Value: v}
}

func boolParam(name string, b bool) *ppb.Parameters_Parameter {
	return param(name, &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Boolean{Boolean: boolean(b)}})
}

func intParam(name string, n int) *ppb.Parameters_Parameter {
	return param(name, &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Integer{Integer: &dpb.Integer{Value: int32(n)}}})
}

func stringParam(name, s string) *ppb.Parameters_Parameter {
	return param(name, &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_StringValue{StringValue: str(s)}})
}
