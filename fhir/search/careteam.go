package search

import (
	"net/url"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// ParsePatientOnly reads the parameters of GET /CareTeam: the patient, in
// either form. The national API's _include and _revinclude are accepted with
// a warning, even under strict handling, because its clients always send
// them and our CareTeam already carries the LA's details. A missing patient
// is not an error here; the api decides what it requires.
func ParsePatientOnly(v url.Values, strict bool) (cpis.NHSNumber, []*cpis.Error, error) {
	p := &parser{op: "search.ParsePatientOnly", strict: strict}
	var nhs cpis.NHSNumber
	p.run(v, func(p *parser, name, base string, values []string) bool {
		switch {
		case name == "patient" || name == "patient:identifier":
			p.patient(&nhs, name, values, name != "patient")
		case base == "_include" || base == "_revinclude":
			p.warn(name, name+" was ignored: the CareTeam already carries the local authority's details")
		default:
			return false
		}
		return true
	}, "patient")
	if err := p.err(); err != nil {
		return "", p.warnings, err
	}
	return nhs, p.warnings, nil
}
