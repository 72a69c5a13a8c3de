package cpis_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// asError is E's result as the *Error it always is.
func asError(tb testing.TB, err error) *cpis.Error {
	tb.Helper()
	e, ok := err.(*cpis.Error)
	if !ok {
		tb.Fatalf("E returned %T, want *cpis.Error", err)
	}
	return e
}

// sameError compares wrapped causes by identity: Error values are compared
// field by field, their causes must be the very same error.
var sameError = cmp.Comparer(func(a, b error) bool { return a == b })

// values turns problems into comparable values, so that sameError applies
// to their causes and not to the problems themselves.
func values(es []*cpis.Error) []cpis.Error {
	var out []cpis.Error
	for _, e := range es {
		out = append(out, *e)
	}
	return out
}

func TestE(t *testing.T) {
	cause := cpis.E("store.Plan", cpis.NotFound, "no such plan")
	tests := []struct {
		name string
		err  error
		want cpis.Error
		text string
	}{
		{"arguments by type", cpis.E("api.read", cpis.InvalidValue, cpis.Expr("Flag.status"), "bad status"),
			cpis.Error{Op: "api.read", Kind: cpis.InvalidValue, Expression: "Flag.status", Msg: "bad status"},
			"api.read: invalid value at Flag.status: bad status"},
		{"kind taken from the cause", cpis.E("api.read", cause),
			cpis.Error{Op: "api.read", Kind: cpis.NotFound, Err: cause},
			"api.read: not found: store.Plan: not found: no such plan"},
		{"own kind wins over the cause's", cpis.E("api.read", cpis.Unavailable, cause),
			cpis.Error{Op: "api.read", Kind: cpis.Unavailable, Err: cause},
			"api.read: unavailable: store.Plan: not found: no such plan"},
		{"plain cause stays Other", cpis.E("store.open", io.EOF),
			cpis.Error{Op: "store.open", Err: io.EOF},
			"store.open: EOF"},
		{"op only", cpis.E("x"), cpis.Error{Op: "x"}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := asError(t, tt.err)
			if diff := cmp.Diff(tt.want, *e, sameError); diff != "" {
				t.Errorf("E (-want +got):\n%s", diff)
			}
			if got := e.Error(); got != tt.text {
				t.Errorf("Error() = %q, want %q", got, tt.text)
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	err := fmt.Errorf("api.read: %w", cpis.E("store.Plan", cpis.Unavailable, io.ErrUnexpectedEOF))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("errors.Is does not reach the driver error")
	}
	var e *cpis.Error
	if !errors.As(err, &e) || e.Op != "store.Plan" {
		t.Errorf("errors.As = %v", e)
	}
}

func TestKindString(t *testing.T) {
	tests := []struct {
		k    cpis.Kind
		want string
	}{
		{cpis.Other, "other"},
		{cpis.InvalidNHSNumber, "invalid NHS number"},
		{cpis.NotSupported, "not supported"},
		{cpis.Kind(200), "kind(200)"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(tt.k), got, tt.want)
		}
	}
	for k := cpis.Other; k <= cpis.NotSupported; k++ {
		if s := k.String(); s == "" || s == fmt.Sprintf("kind(%d)", k) {
			t.Errorf("kind %d has no name", k)
		}
	}
}

func TestKindOf(t *testing.T) {
	notFound := cpis.E("store.Plan", cpis.NotFound)
	invalid := cpis.E("cpis.Plan.Validate", cpis.Invalid)
	tests := []struct {
		name string
		err  error
		want cpis.Kind
	}{
		{"nil", nil, cpis.Other},
		{"plain", io.EOF, cpis.Other},
		{"direct", notFound, cpis.NotFound},
		{"wrapped with %w", fmt.Errorf("api.read: %w", notFound), cpis.NotFound},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", notFound)), cpis.NotFound},
		{"kindless *Error over a kind", &cpis.Error{Op: "api.read", Err: fmt.Errorf("x: %w", notFound)}, cpis.NotFound},
		{"kindless *Error over a plain error", &cpis.Error{Op: "api.read", Err: io.EOF}, cpis.Other},
		{"outer kind first", cpis.E("api", cpis.Unavailable, notFound), cpis.Unavailable},
		{"join: the first kind", errors.Join(invalid, notFound), cpis.Invalid},
		{"join: plain errors are skipped", errors.Join(io.EOF, notFound), cpis.NotFound},
		{"wrapped join", fmt.Errorf("api: %w", errors.Join(io.EOF, invalid)), cpis.Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpis.KindOf(tt.err); got != tt.want {
				t.Errorf("KindOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProblems(t *testing.T) {
	a := asError(t, cpis.E("v", cpis.Invalid, cpis.Expr("Flag.period.end"), "a"))
	b := asError(t, cpis.E("v", cpis.InvalidNHSNumber, cpis.Expr("Flag.subject.identifier.value"), "b"))
	c := asError(t, cpis.E("v", cpis.Invalid, cpis.Expr("Flag.code"), "c"))
	outer := asError(t, cpis.E("store.AppendAudit", cpis.Unavailable, errors.Join(io.EOF, io.ErrClosedPipe)))
	tests := []struct {
		name string
		err  error
		want []*cpis.Error
	}{
		{"nil", nil, nil},
		{"one", a, []*cpis.Error{a}},
		{"one wrapped", fmt.Errorf("api: %w", a), []*cpis.Error{a}},
		{"plain", io.EOF, []*cpis.Error{{Kind: cpis.Other, Err: io.EOF}}},
		{"join", errors.Join(a, b), []*cpis.Error{a, b}},
		{"nested joins flatten", errors.Join(a, errors.Join(b, c)), []*cpis.Error{a, b, c}},
		{"join with a plain error", errors.Join(a, io.EOF), []*cpis.Error{a, {Kind: cpis.Other, Err: io.EOF}}},
		{"join wrapped with %w", fmt.Errorf("api.createFlag: %w", errors.Join(a, b, c)), []*cpis.Error{a, b, c}},
		{"join wrapped twice", fmt.Errorf("x: %w", fmt.Errorf("y: %w", errors.Join(a, b))), []*cpis.Error{a, b}},
		{"several %w", fmt.Errorf("%w; %w", a, b), []*cpis.Error{a, b}},
		{"an *Error over a join stays one problem", outer, []*cpis.Error{outer}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(values(tt.want), values(cpis.Problems(tt.err)), sameError); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProblemsOfValidate(t *testing.T) {
	err := fmt.Errorf("api.createFlag: %w", cpis.Plan{}.Validate())
	if got := len(cpis.Problems(err)); got != 6 {
		t.Errorf("a wrapped Validate error gives %d problems, want all 6", got)
	}
}
