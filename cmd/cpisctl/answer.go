package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	ppb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/parameters_go_proto"

	"github.com/cpis-fhir/cpis/fhir"
)

// uploadResponseSystem is the code system of an import's outcome (CPF02
// to CPF04), after the HL7 V3 bulk upload's file response codes.
const uploadResponseSystem = fhir.CanonicalBase + "/CodeSystem/cpis-upload-file-response"

// The outcomes of an import.
const (
	allLoaded  = "CPF02"
	someLoaded = "CPF03"
	noneLoaded = "CPF04"
)

var outcomeText = map[string]string{
	allLoaded:  "every line loaded",
	someLoaded: "some lines loaded, some rejected",
	noneLoaded: "nothing loaded",
}

// counts are the count parameters of the answer, in the order the summary
// shows them, with their labels.
var counts = []struct{ param, label string }{
	{"created", "created"},
	{"updated", "updated"},
	{"unchanged", "unchanged"},
	{"ended", "ended"},
	{"rejected", "rejected"},
	{"notReconciled", "not reconciled"},
}

// importResult is the server's Parameters answer to an import
// (profiles/OperationDefinition-flag-import.json).
type importResult struct {
	outcome        string // the code, whatever it is; "" if the answer has none in uploadResponseSystem
	outcomeDisplay string
	mode           string
	dryRun         *bool
	// reconciliationSkipped: a full import ended nothing, because a line
	// it refused could not be read far enough to know its plan.
	reconciliationSkipped bool
	counts                map[string]int64
	rejections            []rejection // one per line and reason: a line may have several
}

// rejection is one line the server did not load.
type rejection struct {
	line                  int64
	code, cpr, diagnostic string
	expression            string
}

// parseResult reads the Parameters of a successful import.
func parseResult(body []byte) (*importResult, error) {
	cr, err := unmarshalAnswer(body)
	if err != nil {
		return nil, err
	}
	p := cr.GetParameters()
	if p == nil {
		return nil, errors.New("the server's answer is not a FHIR Parameters resource")
	}
	r := &importResult{counts: map[string]int64{}}
	for _, param := range p.GetParameter() {
		v := param.GetValue()
		switch name := param.GetName().GetValue(); name {
		case "outcome":
			if c := v.GetCoding(); c.GetSystem().GetValue() == uploadResponseSystem {
				r.outcome, r.outcomeDisplay = c.GetCode().GetValue(), c.GetDisplay().GetValue()
			}
		case "mode":
			r.mode = v.GetCode().GetValue()
		case "dryRun":
			if b := v.GetBoolean(); b != nil {
				r.dryRun = &b.Value
			}
		case "reconciliationSkipped":
			r.reconciliationSkipped = v.GetBoolean().GetValue()
		case "rejection":
			r.rejections = append(r.rejections, parseRejection(param.GetPart()))
		default:
			if n, ok := integer(v); ok {
				r.counts[name] = n
			}
		}
	}
	return r, nil
}

func parseRejection(parts []*ppb.Parameters_Parameter) rejection {
	var rj rejection
	for _, part := range parts {
		v := part.GetValue()
		switch part.GetName().GetValue() {
		case "line":
			rj.line, _ = integer(v)
		case "code":
			rj.code = v.GetCoding().GetCode().GetValue()
		case "recordResponse", "cpr": // the OperationDefinition's name, and the one first planned
			rj.cpr = v.GetCoding().GetCode().GetValue()
		case "diagnostics":
			rj.diagnostic = v.GetStringValue().GetValue()
		case "expression":
			rj.expression = v.GetStringValue().GetValue()
		}
	}
	return rj
}

// integer reads a count given as an integer, unsignedInt or positiveInt.
func integer(v *ppb.Parameters_Parameter_ValueX) (int64, bool) {
	switch {
	case v.GetInteger() != nil:
		return int64(v.GetInteger().GetValue()), true
	case v.GetUnsignedInt() != nil:
		return int64(v.GetUnsignedInt().GetValue()), true
	case v.GetPositiveInt() != nil:
		return int64(v.GetPositiveInt().GetValue()), true
	}
	return 0, false
}

// unmarshalAnswer reads a FHIR resource the server answered. Its errors
// never quote the body.
func unmarshalAnswer(body []byte) (*bcrpb.ContainedResource, error) {
	u, err := jsonformat.NewUnmarshallerWithoutValidation("UTC", fhirversion.R4)
	if err != nil {
		return nil, err
	}
	cr, err := u.UnmarshalR4(body)
	if err != nil {
		return nil, errors.New("the server's answer is not a FHIR resource")
	}
	return cr, nil
}

// outcomeIssues renders an OperationOutcome's issues as "CODE: diagnostics"
// (the Spine code of each), or reports that body is none.
func outcomeIssues(body []byte) (string, bool) {
	cr, err := unmarshalAnswer(body)
	oo := cr.GetOperationOutcome()
	if err != nil || oo == nil {
		return "", false
	}
	var issues []string
	for _, is := range oo.GetIssue() {
		var s []string
		if c := spineCode(is.GetDetails()); c != "" {
			s = append(s, c)
		}
		if d := is.GetDiagnostics().GetValue(); d != "" {
			s = append(s, d)
		}
		if len(s) > 0 {
			issues = append(issues, strings.Join(s, ": "))
		}
	}
	return strings.Join(issues, "; "), true
}

// spineCode is the issue's code in the Spine error system, or else its
// first code.
func spineCode(details *dpb.CodeableConcept) string {
	first := ""
	for _, c := range details.GetCoding() {
		if c.GetSystem().GetValue() == fhir.SpineErrorSystem {
			return c.GetCode().GetValue()
		}
		if first == "" {
			first = c.GetCode().GetValue()
		}
	}
	return first
}

// verdict is upload's result for an answer: nil when every line was
// loaded, a rejectedError when some were rejected, else an error.
func (r *importResult) verdict() error {
	rejected := max(r.counts["rejected"], r.rejectedLines())
	known := r.outcome == allLoaded || r.outcome == someLoaded || r.outcome == noneLoaded
	switch {
	case r.outcome == allLoaded && rejected == 0:
		return nil
	case r.outcome == someLoaded, known && rejected > 0:
		return &rejectedError{rejected: rejected, outcome: r.outcome}
	case r.outcome == noneLoaded:
		return fmt.Errorf("the server loaded nothing (%s) and rejected no line", r.outcome)
	case r.outcome == "":
		return errors.New("the server's answer has no outcome coding in " + uploadResponseSystem)
	}
	return fmt.Errorf("the server's answer has an unknown outcome %q", r.outcome)
}

// rejectedLines counts the lines of the rejections: a line refused for
// several reasons may have one rejection per reason.
func (r *importResult) rejectedLines() int64 {
	lines := map[int64]bool{}
	for _, rj := range r.rejections {
		lines[rj.line] = true
	}
	return int64(len(lines))
}

// rejectedError is an upload that the server answered with some lines
// rejected; main exits 2 for it.
type rejectedError struct {
	rejected int64
	outcome  string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("the server rejected %d line(s) of the file (%s: %s)", e.rejected, e.outcome, outcomeText[e.outcome])
}

func (e *rejectedError) exitStatus() int { return 2 }

// printResult writes the summary: outcome, mode and counts, then a table
// of the rejected lines. secret (the token) is blanked out of whatever the
// server wrote, and so are control characters.
func printResult(w io.Writer, r *importResult, p *payload, secret string) {
	fmt.Fprintf(w, "outcome   %s", clean(r.outcome, secret))
	if r.outcomeDisplay != "" {
		fmt.Fprintf(w, " (%s)", clean(r.outcomeDisplay, secret))
	} else if text, ok := outcomeText[r.outcome]; ok {
		fmt.Fprintf(w, " (%s)", text)
	}
	fmt.Fprintf(w, "\nmode      %s\n", clean(r.mode, secret))
	switch {
	case r.dryRun != nil && *r.dryRun:
		fmt.Fprintln(w, "dry run   yes: the server checked the file and changed nothing")
	case r.dryRun != nil:
		fmt.Fprintln(w, "dry run   no")
	}
	if r.reconciliationSkipped {
		fmt.Fprintln(w, "ended     nothing: a rejected line could not be read far enough to know which plan it was, so no plan was ended")
	}
	fmt.Fprintln(w)
	values, width := make([]string, len(counts)), 1
	for i, c := range counts {
		values[i] = "-"
		if n, ok := r.counts[c.param]; ok {
			values[i] = strconv.FormatInt(n, 10)
		}
		width = max(width, len(values[i]))
	}
	for i, c := range counts {
		fmt.Fprintf(w, "%-14s  %*s\n", c.label, width, values[i])
	}
	if len(r.rejections) > 0 {
		printRejections(w, r, p, secret)
	}
}

func printRejections(w io.Writer, r *importResult, p *payload, secret string) {
	fmt.Fprintf(w, "\nrejected lines (%d):\n", r.rejectedLines())
	out := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(out, "LINE\tCODE\tCPR\tDIAGNOSTICS")
	for _, rj := range r.rejections {
		d := rj.diagnostic
		if rj.expression != "" {
			d += " (" + rj.expression + ")"
		}
		fmt.Fprintf(out, "%d\t%s\t%s\t%s\n", rj.line, clean(rj.code, secret), clean(rj.cpr, secret), clean(d, secret))
	}
	out.Flush()
	if p.bundle {
		fmt.Fprintln(w, "(the file was a Bundle: line N is its entry N)")
	}
}

// clean makes text from the server safe to print: the token blanked out,
// should a server ever echo it, and control characters (which could move
// a terminal's cursor, or break the table) replaced by spaces.
func clean(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[token]")
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}
