package api

import (
	"slices"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// searchAuditEvents serves the audit trail (GET /AuditEvent): a child's
// access history ("previously viewed by") for those who may see it, or an
// auditor's search of its own organisation's trail.
func (s *Server) searchAuditEvents(c echo.Context) error {
	const op = "api.searchAuditEvents"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	q, warnings, err := search.ParseAuditSearch(queryParams(c), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	trail, err := s.Register.AuditTrail(c.Request().Context(), rc, q)
	if err != nil {
		return err
	}
	entries := make([]proto.Message, len(trail.Records))
	for i, r := range trail.Records {
		entries[i] = fhir.AuditEventResource(r, s.BaseURL)
	}
	query := search.EncodeAudit(trail.Query)
	var included []fhir.Included
	if slices.Contains(queryParams(c)["_include"], search.NationalAuditInclude) {
		query.Set("_include", search.NationalAuditInclude)
		included = practitionerRoles(trail.Records)
	}
	r := searchset{entries: entries, included: included, warnings: warnings, query: query}
	if trail.More {
		// The trail only grows, newest first: the next page continues
		// before the last record of this one.
		next := trail.Query
		next.Before = store.AuditKeyOf(trail.Records[len(trail.Records)-1])
		r.next = search.EncodeAudit(next)
		if query.Has("_include") {
			r.next.Set("_include", search.NationalAuditInclude)
		}
	}
	return s.writeSearchset(c, "AuditEvent", r)
}

// practitionerRoles are the roles the health users of recs acted in, each
// once, in order of first appearance: what the national API's _include of
// the ASSIGNED entities returns.
func practitionerRoles(recs []cpis.AuditRecord) []fhir.Included {
	var out []fhir.Included
	seen := map[string]bool{}
	for _, r := range recs {
		if !fhir.HasPractitionerRole(r.Actor) {
			continue
		}
		urn := fhir.PractitionerRoleURN(r.Actor)
		if !seen[urn] {
			seen[urn] = true
			out = append(out, fhir.Included{FullURL: urn, Resource: fhir.PractitionerRoleResource(r.Actor)})
		}
	}
	return out
}
