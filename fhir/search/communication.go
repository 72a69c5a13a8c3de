package search

import (
	"net/url"
	"regexp"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// ODSSystem is the identifier system of ODS organisation codes, which name
// an ASN's recipient (docs/domain.md, Identifier systems).
const ODSSystem = "https://fhir.nhs.uk/Id/ods-organization-code"

// odsCode is what an LA's ODS code looks like (the form cpis.Authorities
// requires of the register): anything else is refused before it can reach
// a comparison or a link.
var odsCode = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)

// communicationBases are the Communication search parameters in any form.
var communicationBases = []string{"patient", "recipient", "_lastUpdated", "_count", "_cursor", "_sort"}

// ParseCommunicationSearch reads the parameters of GET /Communication, a
// local authority's Access to Service Notifications, into a query of the
// event log, with warnings and errors as ParseFlagSearch. The query has
// Kind store.ASNSent, Limit (default DefaultFlagCount, at most MaxCount),
// Order (default NewestFirst), NHSNumber from patient, From and Before from
// _lastUpdated (the ASN's stamp on the feed, its meta.lastUpdated), and
// After when the search continues from a next link's _cursor. LACode is left
// for the caller: recipient is the ODS code the client asked for, or "",
// and whether it may ask for it (its own LA only) is the caller's to decide.
func ParseCommunicationSearch(v url.Values, strict bool) (q store.EventQuery, recipient string, warnings []*cpis.Error, err error) {
	p := &parser{op: "search.ParseCommunicationSearch", strict: strict}
	q = store.EventQuery{Kind: store.ASNSent, Limit: DefaultFlagCount, Order: store.NewestFirst}
	var updated timeBounds
	p.run(v, func(p *parser, name, _ string, values []string) bool {
		switch name {
		case "patient", "patient:identifier":
			p.patient(&q.NHSNumber, name, values, name != "patient")
		case "recipient", "recipient:identifier":
			p.recipient(&recipient, name, values, name != "recipient")
		case "_lastUpdated":
			p.dates(&updated, name, values)
		case "_count":
			q.Limit = p.count(name, values, DefaultFlagCount)
		case "_cursor":
			if k, ok := p.eventCursor(name, values, communicationCursor); ok {
				q.After = k
			}
		case "_sort":
			q.Order = p.planOrder(name, values)
		default:
			return false
		}
		return true
	}, communicationBases...)
	q.From, q.Before = updated.from, updated.before
	if err := p.err(); err != nil {
		return store.EventQuery{}, "", p.warnings, err
	}
	return q, recipient, p.warnings, nil
}

// recipient reads one form of the recipient parameter (an ODS code) into
// *cur. The same code may be given several times and in both forms.
func (p *parser) recipient(cur *string, name string, values []string, identifier bool) {
	for _, s := range values {
		code, ok := p.tokenValue(name, s, ODSSystem, identifier)
		if !ok {
			continue
		}
		if !odsCode.MatchString(code) {
			p.fail(cpis.InvalidSearch, name, "the recipient in "+name+" is not an ODS code (3 to 10 of A-Z 0-9)")
			continue
		}
		setOnce(p, cur, code, name, "the recipient")
	}
}

// EncodeCommunication writes q and recipient as the canonical query string
// of a Bundle link: what ParseCommunicationSearch reads back into them. For
// a next link the api sets After to the key of the page's last event: it is
// written as _cursor. Kind, LACode and ASNID are not part of a link.
func EncodeCommunication(q store.EventQuery, recipient string) url.Values {
	v := url.Values{}
	if q.NHSNumber != "" {
		v.Set("patient:identifier", cpis.NHSNumberSystem+"|"+string(q.NHSNumber))
	}
	if recipient != "" {
		v.Set("recipient:identifier", ODSSystem+"|"+recipient)
	}
	encodeBounds(v, "_lastUpdated", q.From, q.Before)
	encodeCount(v, q.Limit)
	if q.After != nil {
		v.Set("_cursor", eventCursorOf(communicationCursor, *q.After))
	}
	if q.Order == store.OldestFirst {
		v.Set("_sort", "_lastUpdated")
	} else {
		v.Set("_sort", "-_lastUpdated")
	}
	return v
}
