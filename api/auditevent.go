package api

import (
	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/cpis"
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
	return s.writeSearchset(c, "AuditEvent", entries, warnings, search.EncodeAudit(trail.Query), trail.Query.Offset, trail.Query.Limit, trail.More)
}
