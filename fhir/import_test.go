package fhir

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/profiles"
)

func TestFileResponse(t *testing.T) {
	rejected := []Rejection{{Line: 1, Problem: &cpis.Error{Kind: cpis.Invalid}}}
	tests := []struct {
		name string
		r    ImportReport
		want string
	}{
		{"empty file", ImportReport{}, "CPF02"},
		{"all created", ImportReport{Created: 3}, "CPF02"},
		{"nothing changed", ImportReport{Unchanged: 3}, "CPF02"},
		{"dry run, all loaded", ImportReport{DryRun: true, Created: 1, Updated: 1}, "CPF02"},
		{"some rejected", ImportReport{Created: 1, Rejected: 1, Rejections: rejected}, "CPF03"},
		{"some rejected, the rest unchanged", ImportReport{Unchanged: 1, Rejected: 1, Rejections: rejected}, "CPF03"},
		{"some rejected, plans ended", ImportReport{Mode: "full", Ended: 2, Rejected: 1, Rejections: rejected}, "CPF03"},
		{"all rejected", ImportReport{Rejected: 2, Rejections: rejected}, "CPF04"},
		{"all rejected, counted only", ImportReport{Rejected: 2}, "CPF04"},
		{"all rejected, listed only", ImportReport{Rejections: rejected}, "CPF04"},
		{"all rejected, none reconciled", ImportReport{Rejected: 1, NotReconciled: 4}, "CPF04"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, display := FileResponse(tt.r)
			if code != tt.want || display != fileResponses[tt.want] {
				t.Errorf("FileResponse = %s %q, want %s", code, display, tt.want)
			}
		})
	}
}

// TestImportParametersDelta: delta mode (also the default) reports no
// reconciliation, and a rejection without an expression has no expression
// part.
func TestImportParametersDelta(t *testing.T) {
	for _, mode := range []string{"", "delta"} {
		ps := ImportParameters(ImportReport{Mode: mode, DryRun: true, Rejected: 1,
			Rejections: []Rejection{{Line: 2, Problem: &cpis.Error{Kind: cpis.Conflict, Msg: "twice"}}, {Line: 3}}})
		var names []string
		for _, p := range ps.GetParameter() {
			names = append(names, p.GetName().GetValue())
		}
		want := []string{"outcome", "mode", "dryRun", "created", "updated", "unchanged", "ended", "rejected", "notReconciled", "rejection", "rejection"}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("mode %q: parameters (-want +got):\n%s", mode, diff)
		}
		if got := ps.GetParameter()[1].GetValue().GetCode().GetValue(); got != "delta" {
			t.Errorf("mode %q reported as %q", mode, got)
		}
		var parts []string
		for _, p := range ps.GetParameter()[9].GetPart() {
			parts = append(parts, p.GetName().GetValue())
		}
		if diff := cmp.Diff([]string{"line", "code", "recordResponse", "diagnostics"}, parts); diff != "" {
			t.Errorf("rejection parts (-want +got):\n%s", diff)
		}
		if got := ps.GetParameter()[10].GetPart()[1].GetValue().GetCoding().GetCode().GetValue(); got != "INTERNAL_SERVER_ERROR" {
			t.Errorf("a rejection without a problem has code %s", got)
		}
	}
}

// TestImportOperationDefinition: the OperationDefinition in profiles/
// declares exactly the out parameters and parts ImportParameters writes,
// with the types it writes them with.
func TestImportOperationDefinition(t *testing.T) {
	b, ok := profiles.Lookup("OperationDefinition", "flag-import")
	if !ok {
		t.Fatal("flag-import not in profiles/")
	}
	type param struct {
		Name, Use, Type string
		Part            []param
	}
	var od struct {
		URL, Code string
		Resource  []string
		Parameter []param
	}
	if err := json.Unmarshal(b, &od); err != nil {
		t.Fatal(err)
	}
	if od.URL != ImportOperationURL || od.Code != "import" || !slices.Equal(od.Resource, []string{"Flag"}) {
		t.Errorf("url %s, code %s, resource %v", od.URL, od.Code, od.Resource)
	}
	declared := map[string]string{}
	for _, p := range od.Parameter {
		if p.Use != "out" {
			continue
		}
		declared[p.Name] = p.Type
		for _, pp := range p.Part {
			declared[p.Name+"."+pp.Name] = pp.Type
		}
	}
	written := map[string]string{}
	r := importReport()
	r.ReconciliationSkipped = true
	r.Rejections[1].Problem.Expression = "Flag.identifier"
	out, err := MarshalResource(ImportParameters(r))
	if err != nil {
		t.Fatal(err)
	}
	var ps struct {
		Parameter []map[string]any
	}
	if err := json.Unmarshal(out, &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Parameter {
		name := p["name"].(string)
		written[name] = valueType(p)
		for _, pp := range anySlice(p["part"]) {
			written[name+"."+pp["name"].(string)] = valueType(pp)
		}
	}
	if diff := cmp.Diff(declared, written); diff != "" {
		t.Errorf("out parameters (-declared +written):\n%s", diff)
	}
}

// valueType is the FHIR type of a parameter's value[x] ("" for none):
// primitive types start lower case, Coding is the one complex type used.
func valueType(p map[string]any) string {
	for k := range p {
		if t, ok := strings.CutPrefix(k, "value"); ok && t != "" {
			if t == "Coding" {
				return t
			}
			return strings.ToLower(t[:1]) + t[1:]
		}
	}
	return ""
}

func anySlice(v any) []map[string]any {
	l, _ := v.([]any)
	out := make([]map[string]any, 0, len(l))
	for _, x := range l {
		out = append(out, x.(map[string]any))
	}
	return out
}
