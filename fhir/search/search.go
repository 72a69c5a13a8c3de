// Package search turns the FHIR search parameters of outside requests into the
// store's query types (store.PlanQuery, store.AuditQuery, store.EventQuery for
// the two feeds: GET /Communication and GET /Flag/_history), and back into the
// canonical query strings the api puts in Bundle self and next links.
//
// Parsing follows FHIR R4 search with the server's lenient default: a
// parameter the server does not know is ignored and reported as a warning,
// unless the client asked for strict handling (Prefer: handling=strict), in
// which case it is an error. A parameter the server knows but cannot honour
// (a bad value, an unsupported modifier or prefix) is always an error, because
// ignoring it would return a different set of results than the client asked
// for. Messages name parameters, never their values: values may be NHS numbers.
package search

import (
	"errors"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Page sizes. MaxCount is also what the api may advertise in its
// CapabilityStatement.
const (
	DefaultFlagCount  = 20
	DefaultAuditCount = 25
	MaxCount          = 100
)

// parser collects the outcome of reading one query: the errors that make it
// fail and the warnings that travel with a successful result.
type parser struct {
	op       string
	strict   bool
	errs     []error
	warnings []*cpis.Error
}

// fail records an error about parameter name.
func (p *parser) fail(kind cpis.Kind, name, msg string) {
	p.errs = append(p.errs, cpis.E(p.op, kind, cpis.Expr(name), msg))
}

// failCause records an error about parameter name caused by err, whose kind it keeps.
func (p *parser) failCause(name, msg string, err error) {
	p.errs = append(p.errs, cpis.E(p.op, cpis.Expr(name), msg, err))
}

// ignore reports that parameter name was not applied: a warning, or an error
// under strict handling.
func (p *parser) ignore(name, msg string) {
	if p.strict {
		p.fail(cpis.InvalidSearch, name, msg)
		return
	}
	p.warn(name, msg)
}

// warn records a warning whatever the handling.
func (p *parser) warn(name, msg string) {
	p.warnings = append(p.warnings, &cpis.Error{Op: p.op, Kind: cpis.InvalidSearch, Expression: name, Msg: msg})
}

// err is the error of the whole parse: nil, the one error, or all of them joined.
func (p *parser) err() error {
	switch len(p.errs) {
	case 0:
		return nil
	case 1:
		return p.errs[0]
	}
	return errors.Join(p.errs...)
}

// handler applies one parameter (name as given, base the name without its
// modifier) to the query being built. It reports false when it does not know
// the parameter.
type handler func(p *parser, name, base string, values []string) bool

// run applies every parameter of v, in name order so that errors and warnings
// come out in a stable order. knownBases are the parameters the resource
// supports in some form: any other form of them (an unsupported modifier) is
// an error rather than an unknown parameter.
func (p *parser) run(v url.Values, h handler, knownBases ...string) {
	for _, name := range slices.Sorted(maps.Keys(v)) {
		base, _, _ := strings.Cut(name, ":")
		switch {
		case h(p, name, base, v[name]):
		case p.common(name, v[name]):
		case slices.Contains(knownBases, base):
			p.fail(cpis.InvalidSearch, shown(name), "search parameter "+base+" does not support this modifier")
		case shown(name) == "":
			p.ignore("", "unknown search parameter (its name looks like a value, so it is not repeated here)")
		default:
			p.ignore(name, "unknown search parameter "+name)
		}
	}
}

// paramName is what a parameter name looks like; withheldDigits catches a
// value sent as a name ("?9000000009", "?patient9000000009"), which must not
// be echoed into messages that reach logs.
var (
	paramName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$`)
	withheldDigits = regexp.MustCompile(`[0-9]{5}`)
)

// shown returns name if it may appear in a message or an expression, or "".
func shown(name string) string {
	if paramName.MatchString(name) && !withheldDigits.MatchString(name) {
		return name
	}
	return ""
}

// common handles the parameters FHIR defines for every interaction.
func (p *parser) common(name string, values []string) bool {
	switch name {
	case "_format":
		for _, s := range values {
			if !jsonFormat(s) {
				p.fail(cpis.InvalidValue, name, "_format must be json or application/fhir+json: this server speaks only JSON")
			}
		}
	case "_pretty":
		for _, s := range values {
			if s != "true" && s != "false" {
				p.fail(cpis.InvalidValue, name, "_pretty must be true or false")
			}
		}
	case "_summary", "_elements":
		p.ignore(name, "search parameter "+name+" is not supported: whole resources are returned")
	default:
		return false
	}
	return true
}

// jsonFormat reports whether a _format value asks for JSON. A '+' in a query
// string decodes to a space, so "application/fhir json" is what a client that
// did not escape its '+' sends.
func jsonFormat(s string) bool {
	mt, _, _ := strings.Cut(s, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "json", "application/fhir+json", "application/fhir json", "application/json":
		return true
	}
	return false
}

// single returns the one value of a parameter that cannot be repeated.
func (p *parser) single(name string, values []string) (string, bool) {
	if len(values) != 1 {
		p.fail(cpis.InvalidSearch, name, "search parameter "+name+" may be given only once")
		return "", false
	}
	return values[0], true
}

// count reads _count: at least 1, capped at MaxCount with a warning.
func (p *parser) count(name string, values []string, def int) int {
	s, ok := p.single(name, values)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		p.fail(cpis.InvalidSearch, name, "_count must be a whole number of at least 1")
		return def
	}
	if n > MaxCount {
		p.warn(name, "_count is capped at "+strconv.Itoa(MaxCount))
		return MaxCount
	}
	return n
}
