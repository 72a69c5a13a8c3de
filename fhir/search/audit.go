package search

import (
	"net/url"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// NationalAuditInclude is the _include the national CP-IS API sends with its
// AuditEvent searches. Our AuditEvents already name the practitioner and
// organisation in AuditEvent.agent, so it is accepted and changes nothing.
const NationalAuditInclude = "AuditEvent:entity-type=http://terminology.hl7.org/CodeSystem/v3-RoleClass|ASSIGNED"

// auditBases are the AuditEvent search parameters in any form.
var auditBases = []string{"patient", "agent", "date", "_count", "_cursor", "_sort"}

// ParseAuditSearch reads the parameters of GET /AuditEvent into an audit
// query, with warnings and errors as ParseFlagSearch. An _include other than
// NationalAuditInclude, and any _revinclude, is ignored with a warning (an
// error under strict). Records are always returned newest first, so _sort
// accepts only -date. The query has Limit set (default DefaultAuditCount),
// and Before when the search continues from a next link's _cursor; OrgCode
// and AccessOnly are left for the caller.
func ParseAuditSearch(v url.Values, strict bool) (q store.AuditQuery, warnings []*cpis.Error, err error) {
	p := &parser{op: "search.ParseAuditSearch", strict: strict}
	q = store.AuditQuery{Limit: DefaultAuditCount}
	var recorded timeBounds
	p.run(v, func(p *parser, name, base string, values []string) bool {
		switch {
		case name == "patient" || name == "patient:identifier":
			p.patient(&q.Patient, name, values, name != "patient")
		case name == "agent" || name == "agent:identifier":
			p.agent(&q.ActorUserID, name, values, name != "agent")
		case name == "date":
			p.dates(&recorded, name, values)
		case name == "_count":
			q.Limit = p.count(name, values, DefaultAuditCount)
		case name == "_cursor":
			if c, ok := p.cursor(name, values, auditCursor); ok {
				q.Before = &store.AuditKey{Recorded: c.at, ID: c.id}
			}
		case name == "_sort":
			if s, ok := p.single(name, values); ok && s != "-date" {
				p.fail(cpis.InvalidSearch, name, "_sort supports only -date: audit records are listed newest first")
			}
		case base == "_include" || base == "_revinclude":
			p.auditInclude(name, values)
		default:
			return false
		}
		return true
	}, auditBases...)
	q.RecordedFrom, q.RecordedBefore = recorded.from, recorded.before
	if err := p.err(); err != nil {
		return store.AuditQuery{}, p.warnings, err
	}
	return q, p.warnings, nil
}

// auditInclude accepts the national API's _include and ignores the rest.
func (p *parser) auditInclude(name string, values []string) {
	for _, s := range values {
		if name != "_include" || s != NationalAuditInclude {
			p.ignore(name, "this "+name+" is not supported and was ignored")
		}
	}
}

// EncodeAudit writes q as the canonical query string of a Bundle link: the
// query ParseAuditSearch reads back into q. For a next link the api sets
// Before to the key of the page's last record: it is written as _cursor.
func EncodeAudit(q store.AuditQuery) url.Values {
	v := url.Values{}
	if q.Patient != "" {
		v.Set("patient:identifier", cpis.NHSNumberSystem+"|"+string(q.Patient))
	}
	if q.ActorUserID != "" {
		v.Set("agent:identifier", SDSUserIDSystem+"|"+q.ActorUserID)
	}
	encodeBounds(v, "date", q.RecordedFrom, q.RecordedBefore)
	encodeCount(v, q.Limit)
	if q.Before != nil {
		v.Set("_cursor", auditCursorOf(q))
	}
	v.Set("_sort", "-date")
	return v
}
