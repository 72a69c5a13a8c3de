package fhir

import (
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// conditionForm is how a condition is written, for messages.
const conditionForm = "identifier=" + LAReferenceSystem + "|<reference>"

// ParseCondition reads the condition of a conditional interaction on Flag:
// the If-None-Exist header of a create, the query of PUT /Flag?... and
// DELETE /Flag?..., and a Bundle entry's request.ifNoneExist or the query of
// its request.url. query is the query string as sent, without the '?'; it
// may be percent-encoded ('|' as %7C) or not.
//
// The one condition a CP-IS server matches plans by is the LA's own plan
// reference: exactly one parameter, identifier, given once, without a
// modifier, naming the system LAReferenceSystem and a valid reference (1 to
// 64 of A-Z a-z 0-9 . _ -); a bare value without its system is refused too,
// so that a client's condition always says what it means. It returns the
// reference; a problem is one *cpis.Error with expression expr (the caller
// knows where the condition came from: "http.If-None-Exist",
// "Bundle.entry[3].request.url" ...), of kind InvalidSearch for a condition
// that cannot be understood or that asks for something else, InvalidValue
// for a reference that cannot be one. Messages never repeat a value.
func ParseCondition(query, expr string) (reference string, err error) {
	const op = "fhir.ParseCondition"
	bad := func(kind cpis.Kind, msg string) error { return cpis.E(op, kind, cpis.Expr(expr), msg) }
	v, perr := url.ParseQuery(query)
	switch {
	case perr != nil:
		return "", bad(cpis.InvalidSearch, "the condition is not a query string: send "+conditionForm)
	case len(v) == 0:
		return "", bad(cpis.InvalidSearch, "the condition is empty: send "+conditionForm)
	}
	for _, name := range slices.Sorted(maps.Keys(v)) { // sorted: the same query always gets the same message
		if name == "identifier" {
			continue
		}
		if elementName.MatchString(name) {
			return "", bad(cpis.InvalidSearch, "parameter "+name+" is not accepted in a condition: a Flag is matched by identifier only, "+conditionForm)
		}
		return "", bad(cpis.InvalidSearch, "a condition takes one parameter, identifier, without a modifier: "+conditionForm)
	}
	if len(v["identifier"]) != 1 {
		return "", bad(cpis.InvalidSearch, "identifier may be given only once in a condition: a conditional write is about one plan")
	}
	system, ref, ok := strings.Cut(v["identifier"][0], "|")
	switch {
	case !ok:
		return "", bad(cpis.InvalidSearch, "the identifier in a condition must name its system: "+conditionForm)
	case system != LAReferenceSystem:
		return "", bad(cpis.InvalidSearch, "a condition matches only the LA's own plan reference, system "+LAReferenceSystem)
	case !cpis.ValidReference(ref):
		return "", bad(cpis.InvalidValue, "the plan reference in a condition must be 1 to 64 of A-Z a-z 0-9 . _ - (one value, no comma)")
	}
	return ref, nil
}
