package search

import (
	"errors"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// problem is what a test checks of an error or a warning: what kind and where.
type problem struct {
	Kind cpis.Kind
	Expr string
}

// problemsOf lists the kind and expression of every *cpis.Error in err.
func problemsOf(tb testing.TB, err error) []problem {
	tb.Helper()
	var out []problem
	for _, e := range cpis.Problems(err) {
		out = append(out, problem{e.Kind, e.Expression})
	}
	return out
}

func warningsOf(ws []*cpis.Error) []problem {
	var out []problem
	for _, w := range ws {
		out = append(out, problem{w.Kind, w.Expression})
	}
	return out
}

// query parses a raw query string as the server's router would.
func query(tb testing.TB, raw string) url.Values {
	tb.Helper()
	v, err := url.ParseQuery(raw)
	if err != nil {
		tb.Fatalf("url.ParseQuery(%q): %v", raw, err)
	}
	return v
}

func mustTime(tb testing.TB, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// digitRun finds anything that could be an NHS number, an SDS id or a date
// value leaking into a message: no message has five digits in a row.
var digitRun = regexp.MustCompile(`[0-9]{5}`)

// checkNoValues fails if an error or warning message quotes a value.
func checkNoValues(tb testing.TB, err error, warnings []*cpis.Error) {
	tb.Helper()
	if err != nil && digitRun.MatchString(err.Error()) {
		tb.Errorf("error message quotes a value: %v", err)
	}
	for _, w := range warnings {
		if digitRun.MatchString(w.Error()) {
			tb.Errorf("warning quotes a value: %v", w)
		}
	}
}

// checkErrorShape fails unless err is nil or made only of *cpis.Error values
// carrying an operation name and a kind.
func checkErrorShape(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	for _, e := range cpis.Problems(err) {
		if e.Op == "" || e.Kind == cpis.Other {
			tb.Errorf("problem without op or kind: %#v", e)
		}
	}
	var ce *cpis.Error
	if !errors.As(err, &ce) {
		tb.Errorf("error %v is not a *cpis.Error", err)
	}
}
