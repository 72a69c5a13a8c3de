package fhir

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// today is the day the tests run on, whatever the clock says: within every
// example plan's dates.
var today = cpis.MustDate("2026-11-15")

// examplePlans are the plans the files in examples/ describe.
var examplePlans = map[string]cpis.Plan{
	"flag-cpp.json": {
		NHSNumber: "9990276579", Type: cpis.CPP,
		Start: cpis.MustDate("2026-06-01"), End: cpis.MustDate("2027-06-01"),
		LA:             cpis.LocalAuthority{Code: "ZLA01", Name: "London Borough of Hackney and City of London"},
		EmergencyPhone: "020 7946 0101", OfficePhone: "020 7946 0102",
		BirthDate: cpis.MustDate("2014-03-15"),
	},
	"flag-cla.json": {
		NHSNumber: "9992345675", Type: cpis.CLA,
		Start: cpis.MustDate("2026-04-20"), End: cpis.MustDate("2027-04-20"),
		LA:             cpis.LocalAuthority{Code: "ZLA01", Name: "London Borough of Hackney and City of London"},
		EmergencyPhone: "020 7946 0101", OfficePhone: "020 7946 0102",
		BirthDate: cpis.MustDate("2016-08-09"),
	},
	"flag-ucpp.json": {
		NHSNumber: "9993456780", Type: cpis.UCPP,
		Start: cpis.MustDate("2026-09-01"), End: cpis.MustDate("2027-02-10"),
		LA:             cpis.LocalAuthority{Code: "ZLA01", Name: "London Borough of Hackney and City of London"},
		EmergencyPhone: "020 7946 0101", OfficePhone: "020 7946 0102",
	},
}

// storedPlan is a plan as a store returns it: with id, version and time,
// and the LA's own reference.
func storedPlan() cpis.Plan {
	p := examplePlans["flag-cpp.json"]
	p.ID = "5f0c7a52-3d5e-4c8e-9a53-0f2b7f1f6a01"
	p.Reference = "HK-CP-2026.0042_a"
	p.Version = 2
	p.LastUpdated = time.Date(2026, 11, 2, 9, 30, 15, 123000000, time.UTC)
	return p
}

func readExample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// exampleObject is the CPP example as a generic JSON object, for tests to
// break one rule at a time.
func exampleObject(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(readExample(tb, "flag-cpp.json"), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// problem is what a test expects of one *cpis.Error.
type problem struct {
	Kind cpis.Kind
	Expr string
}

// problemsOf lists err's problems; anything that is not a *cpis.Error fails tb.
func problemsOf(tb testing.TB, err error) []problem {
	tb.Helper()
	var out []problem
	for _, e := range unjoin(err) {
		var ce *cpis.Error
		if !errors.As(e, &ce) {
			tb.Fatalf("error %v (%T) is not a *cpis.Error", e, e)
		}
		out = append(out, problem{ce.Kind, ce.Expression})
	}
	return out
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}
