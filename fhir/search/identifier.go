package search

import (
	"regexp"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// SDSUserIDSystem is the identifier system of SDS user ids (docs/domain.md,
// Identifier systems).
const SDSUserIDSystem = "https://fhir.nhs.uk/Id/sds-user-id"

// tokenValue returns the value of one identifier token. With the :identifier
// modifier the token is "system|value" and the system must be the one given;
// a bare value (no '|') means "any system" in FHIR, which for the one system we
// index is the same thing. "|value" asks for identifiers without a system,
// which we never hold, so it is refused rather than silently matching nothing.
func (p *parser) tokenValue(name, s, system string, identifier bool) (string, bool) {
	if identifier {
		if sys, val, ok := strings.Cut(s, "|"); ok {
			if sys != system {
				p.fail(cpis.InvalidSearch, name, "search parameter "+name+" supports only the identifier system "+system)
				return "", false
			}
			s = val
		}
	}
	if strings.Contains(s, ",") {
		p.fail(cpis.InvalidSearch, name, "search parameter "+name+" takes one value: a search is about one person")
		return "", false
	}
	return s, true
}

// patient reads one form of the patient parameter into *cur. The same patient
// may be given several times and in several forms, but only with one value.
func (p *parser) patient(cur *cpis.NHSNumber, name string, values []string, identifier bool) {
	for _, s := range values {
		raw, ok := p.tokenValue(name, s, cpis.NHSNumberSystem, identifier)
		if !ok {
			continue
		}
		n, err := cpis.ParseNHSNumber(raw)
		if err != nil {
			p.failCause(name, "the patient's NHS number in "+name+" is not valid", err)
			continue
		}
		setOnce(p, cur, n, name, "the patient")
	}
}

// sdsUserID is what a user id may look like: SDS ids are digits, and an LA
// system's client id is a short token. Anything else is refused before it can
// reach a query.
var sdsUserID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// agent reads one form of the agent parameter (an SDS user id) into *cur.
func (p *parser) agent(cur *string, name string, values []string, identifier bool) {
	for _, s := range values {
		id, ok := p.tokenValue(name, s, SDSUserIDSystem, identifier)
		if !ok {
			continue
		}
		if !sdsUserID.MatchString(id) {
			p.fail(cpis.InvalidSearch, name, "the user id in "+name+" is not an SDS user id")
			continue
		}
		setOnce(p, cur, id, name, "the agent")
	}
}

// setOnce stores v in *cur unless a different value is already there.
func setOnce[T ~string](p *parser, cur *T, v T, name, what string) {
	if *cur != "" && *cur != v {
		p.fail(cpis.InvalidSearch, name, what+" is given more than once with different values")
		return
	}
	*cur = v
}
