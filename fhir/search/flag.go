package search

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// planTypeSystem is the CodeSystem of CP-IS plan types. Package fhir owns the
// exported constant (fhir.PlanTypeSystem); this copy keeps search free of the
// wire model, and fhir_test.go checks the two agree.
const planTypeSystem = "https://cpis.example.org/fhir/CodeSystem/cpis-plan-type"

// SNOMED CT codes for the plan types that have one (docs/domain.md, Codes).
const (
	snomedSystem = "http://snomed.info/sct"
	snomedCPP    = "1064311000000109" // child protection plan
	snomedCLA    = "764841000000100"  // looked after child
)

// flagBases are the Flag search parameters in any form, so that an
// unsupported modifier on one of them is an error, not an ignored parameter.
var flagBases = []string{"patient", "subject", "status", "code", "_lastUpdated", "_count", "_cursor", "_sort"}

// allStatuses is every plan status in the order links list them.
var allStatuses = []cpis.Status{cpis.Active, cpis.Inactive, cpis.EnteredInError}

// ParseFlagSearch reads the parameters of GET /Flag into a plan query.
// Warnings list what was ignored (or capped); with strict set, ignoring a
// parameter is an error instead. Errors are *cpis.Error values (joined when
// there are several) of kind InvalidSearch, InvalidNHSNumber or InvalidValue,
// with the parameter name as the expression.
//
// A missing patient is not an error here: whether one is required depends on
// who is asking, which is for the api to decide. The query has Limit and
// Order set (default DefaultFlagCount, NewestFirst), and After and AsOf when
// the search continues from a next link's _cursor; LACode, Today and
// VisibleOn are left for the caller.
func ParseFlagSearch(v url.Values, strict bool) (q store.PlanQuery, warnings []*cpis.Error, err error) {
	p := &parser{op: "search.ParseFlagSearch", strict: strict}
	q = store.PlanQuery{Limit: DefaultFlagCount, Order: store.NewestFirst}
	var updated timeBounds
	p.run(v, func(p *parser, name, _ string, values []string) bool {
		switch name {
		case "patient":
			p.patient(&q.NHSNumber, name, values, false)
		case "patient:identifier", "subject:identifier":
			p.patient(&q.NHSNumber, name, values, true)
		case "status":
			q.Statuses = anyOf(p, name, values, allStatuses, parseStatus)
		case "code":
			q.Types = anyOf(p, name, values, cpis.PlanTypes, parsePlanType)
		case "_lastUpdated":
			p.dates(&updated, name, values)
		case "_count":
			q.Limit = p.count(name, values, DefaultFlagCount)
		case "_cursor":
			if c, ok := p.cursor(name, values, flagCursor); ok {
				q.AsOf, q.After = c.asOf, &store.PlanKey{LastUpdated: c.at, ID: c.id}
			}
		case "_sort":
			q.Order = p.planOrder(name, values)
		default:
			return false
		}
		return true
	}, flagBases...)
	q.UpdatedFrom, q.UpdatedBefore = updated.from, updated.before
	if err := p.err(); err != nil {
		return store.PlanQuery{}, p.warnings, err
	}
	return q, p.warnings, nil
}

// anyOf reads a token parameter: commas within a value are OR, repeats of the
// parameter are AND, so the result is the values every repeat allows, in the
// order of all. A set of repeats with nothing in common is refused: the store
// query cannot say "match nothing", and an empty list would mean "match all".
func anyOf[T comparable](p *parser, name string, values []string, all []T, read func(string) (T, bool)) []T {
	allowed := slices.Clone(all)
	for _, s := range values {
		var this []T
		for item := range strings.SplitSeq(s, ",") {
			t, ok := read(item)
			if !ok {
				p.fail(cpis.InvalidSearch, name, name+" has a value this server does not know")
				return nil
			}
			this = append(this, t)
		}
		allowed = slices.DeleteFunc(allowed, func(t T) bool { return !slices.Contains(this, t) })
	}
	if len(allowed) == 0 {
		p.fail(cpis.InvalidSearch, name, name+" is repeated with no value in common, so nothing could match")
		return nil
	}
	return allowed
}

func parseStatus(s string) (cpis.Status, bool) {
	st := cpis.Status(s)
	return st, slices.Contains(allStatuses, st)
}

// parsePlanType reads a plan type token: our own code, bare or with our
// system, or the SNOMED CT concept for CPP and CLA.
func parsePlanType(s string) (cpis.PlanType, bool) {
	sys, code, hasSystem := strings.Cut(s, "|")
	if !hasSystem {
		code = s
	}
	if !hasSystem || sys == planTypeSystem {
		if t := cpis.PlanType(code); t.Valid() {
			return t, true
		}
	}
	if !hasSystem || sys == snomedSystem {
		switch code {
		case snomedCPP:
			return cpis.CPP, true
		case snomedCLA:
			return cpis.CLA, true
		}
	}
	return "", false
}

// planOrder reads _sort: last update, either way.
func (p *parser) planOrder(name string, values []string) store.Order {
	s, ok := p.single(name, values)
	switch {
	case !ok:
	case s == "-_lastUpdated":
		return store.NewestFirst
	case s == "_lastUpdated":
		return store.OldestFirst
	default:
		p.fail(cpis.InvalidSearch, name, "_sort supports only _lastUpdated and -_lastUpdated")
	}
	return store.NewestFirst
}

// Encode writes q as the canonical query string of a Bundle link: the query
// ParseFlagSearch reads back into q. Only the fields ParseFlagSearch sets are
// written. For a next link the api sets After to the key of the page's last
// plan and AsOf to the instant the search's first page ran (or keeps the
// AsOf it was given): they are written as _cursor. AsOf is written only
// with After.
func Encode(q store.PlanQuery) url.Values {
	v := url.Values{}
	if q.NHSNumber != "" {
		v.Set("patient:identifier", cpis.NHSNumberSystem+"|"+string(q.NHSNumber))
	}
	if len(q.Types) > 0 {
		v.Set("code", joinTokens(q.Types))
	}
	if len(q.Statuses) > 0 {
		v.Set("status", joinTokens(q.Statuses))
	}
	encodeBounds(v, "_lastUpdated", q.UpdatedFrom, q.UpdatedBefore)
	encodeCount(v, q.Limit)
	if q.After != nil {
		v.Set("_cursor", planCursor(q))
	}
	if q.Order == store.OldestFirst {
		v.Set("_sort", "_lastUpdated")
	} else {
		v.Set("_sort", "-_lastUpdated")
	}
	return v
}

func joinTokens[T ~string](ts []T) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

// encodeBounds writes a half-open range as the ge and lt values that parse back to it.
func encodeBounds(v url.Values, name string, from, before time.Time) {
	if !from.IsZero() {
		v.Add(name, "ge"+formatBound(from))
	}
	if !before.IsZero() {
		v.Add(name, "lt"+formatBound(before))
	}
}

func encodeCount(v url.Values, limit int) {
	if limit > 0 {
		v.Set("_count", strconv.Itoa(limit))
	}
}
