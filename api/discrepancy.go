package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// The Trust's safeguarding team reads its discrepancy reports through the
// same endpoints as LA systems read their ASNs (GET /Communication and
// GET /Communication/{id}): the register says who is which
// (MayReviewDiscrepancies), and anyone else is answered as before.

// searchDiscrepancies answers GET /Communication for a safeguarding
// reviewer: its organisation's discrepancy reports, open ones first.
func (s *Server) searchDiscrepancies(c echo.Context, rc register.Caller) error {
	const op = "api.searchDiscrepancies"
	q, warnings, err := search.ParseDiscrepancySearch(queryParams(c), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	ds, err := s.Register.Discrepancies(c.Request().Context(), rc, q)
	if err != nil {
		return err
	}
	entries := make([]proto.Message, len(ds))
	for i, d := range ds {
		entries[i] = fhir.DiscrepancyResource(d)
	}
	return s.writeSearchset(c, "Communication", searchset{entries: entries, warnings: warnings, query: search.EncodeDiscrepancy(q)})
}

// readDiscrepancy answers GET /Communication/{id} for a safeguarding
// reviewer: one report addressed to its organisation.
func (s *Server) readDiscrepancy(c echo.Context, rc register.Caller) error {
	d, err := s.Register.Discrepancy(c.Request().Context(), rc, c.Param("id"))
	if err != nil {
		return err
	}
	changed := d.ReportedAt
	if d.Resolved() {
		changed = d.ResolvedAt
	}
	c.Response().Header().Set("Last-Modified", changed.UTC().Format(http.TimeFormat))
	return s.writeResource(c, http.StatusOK, fhir.DiscrepancyResource(d))
}
