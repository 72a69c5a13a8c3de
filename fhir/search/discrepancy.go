package search

import (
	"net/url"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// discrepancyBases are the parameters of the safeguarding team's GET
// /Communication (its discrepancy reports) in any form.
var discrepancyBases = []string{"status", "_count"}

// ParseDiscrepancySearch reads the parameters of GET /Communication from
// a Trust's safeguarding team, its discrepancy reports, into a
// store.DiscrepancyQuery, with warnings and errors as ParseFlagSearch.
// status is in-progress (open reports only) or completed (resolved only);
// both, or none, list every report, open ones first. _count is the most
// reports listed (default and at most MaxCount): there is no next page,
// the open ones coming first. OrgCode is left for the caller: it is the
// reviewer's own organisation.
func ParseDiscrepancySearch(v url.Values, strict bool) (store.DiscrepancyQuery, []*cpis.Error, error) {
	p := &parser{op: "search.ParseDiscrepancySearch", strict: strict}
	q := store.DiscrepancyQuery{Limit: MaxCount}
	p.run(v, func(p *parser, name, _ string, values []string) bool {
		switch name {
		case "status":
			p.discrepancyStatus(&q, name, values)
		case "_count":
			q.Limit = p.count(name, values, MaxCount)
		default:
			return false
		}
		return true
	}, discrepancyBases...)
	if err := p.err(); err != nil {
		return store.DiscrepancyQuery{}, p.warnings, err
	}
	return q, p.warnings, nil
}

// discrepancyStatus reads status: each value a comma-separated list of
// in-progress and completed; all the values must hold (FHIR's AND), so a
// report can match only if they agree.
func (p *parser) discrepancyStatus(q *store.DiscrepancyQuery, name string, values []string) {
	for _, s := range values {
		var open, resolved bool
		for _, code := range strings.Split(s, ",") {
			switch code {
			case "in-progress":
				open = true
			case "completed":
				resolved = true
			default:
				p.fail(cpis.InvalidSearch, name, "a discrepancy report's status is in-progress (open) or completed (resolved)")
				return
			}
		}
		if open != resolved { // one of them: a filter
			q.Open, q.Resolved = q.Open || open, q.Resolved || resolved
		}
	}
	if q.Open && q.Resolved {
		p.fail(cpis.InvalidSearch, name, "status asks for reports both open and resolved: none can match")
	}
}

// EncodeDiscrepancy writes q as the canonical query string of a Bundle's
// self link: what ParseDiscrepancySearch reads back into it. OrgCode is
// not part of a link.
func EncodeDiscrepancy(q store.DiscrepancyQuery) url.Values {
	v := url.Values{}
	switch {
	case q.Open:
		v.Set("status", "in-progress")
	case q.Resolved:
		v.Set("status", "completed")
	}
	encodeCount(v, q.Limit)
	return v
}
