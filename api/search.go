package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// searchFlags finds plans (GET /Flag). Health users search by NHS number and
// see plans within their display window; an LA may also list its own plans.
// No match is an empty searchset, never a 404.
func (s *Server) searchFlags(c echo.Context) error {
	const op = "api.searchFlags"
	r, q, warnings, err := s.planSearch(c, op)
	if err != nil {
		return err
	}
	page, err := s.Store.SearchPlans(c.Request().Context(), q)
	if err != nil {
		return cpis.E(op, err)
	}
	if err := s.auditedSearch(c, r, q.NHSNumber, page.Plans); err != nil {
		return err
	}
	today := s.today()
	entries := make([]proto.Message, len(page.Plans))
	for i, p := range page.Plans {
		entries[i] = fhir.FlagResource(p, today, r.view)
	}
	return s.writeSearchset(c, "Flag", entries, warnings, search.Encode(q), q.Offset, q.Limit, page.More)
}

// searchCareTeams answers the national CP-IS API's question (GET /CareTeam):
// the plans and their LA contacts for one NHS number, as CareTeams.
func (s *Server) searchCareTeams(c echo.Context) error {
	const op = "api.searchCareTeams"
	r, err := s.reader(c, op)
	if err != nil {
		return err
	}
	nhs, warnings, err := search.ParsePatientOnly(c.QueryParams(), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	if nhs == "" {
		return cpis.E(op, cpis.MissingValue, cpis.Expr("patient:identifier"), "a CareTeam search needs the patient's NHS number: patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<nhs>")
	}
	today := s.today()
	q := store.PlanQuery{NHSNumber: nhs, Today: today, Limit: 100}
	if r.health {
		q.VisibleOn = today
	} else {
		q.LACode = r.p.LACode
	}
	page, err := s.Store.SearchPlans(c.Request().Context(), q)
	if err != nil {
		return cpis.E(op, err)
	}
	if err := s.auditedSearch(c, r, nhs, page.Plans); err != nil {
		return err
	}
	entries := make([]proto.Message, len(page.Plans))
	for i, p := range page.Plans {
		entries[i] = fhir.CareTeamResource(p, today)
	}
	return s.writeSearchset(c, "CareTeam", entries, warnings, c.QueryParams(), 0, 0, false)
}

// planSearch parses a Flag search and scopes it to what the caller may see.
func (s *Server) planSearch(c echo.Context, op string) (reader, store.PlanQuery, []*cpis.Error, error) {
	r, err := s.reader(c, op)
	if err != nil {
		return r, store.PlanQuery{}, nil, err
	}
	q, warnings, err := search.ParseFlagSearch(c.QueryParams(), strict(c))
	if err != nil {
		return r, q, nil, cpis.E(op, err)
	}
	q.Today = s.today()
	if r.health {
		if q.NHSNumber == "" {
			return r, q, nil, cpis.E(op, cpis.MissingValue, cpis.Expr("patient"), "a search needs the patient's NHS number: patient, patient:identifier or subject:identifier")
		}
		q.VisibleOn = q.Today
	} else {
		q.LACode = r.p.LACode
	}
	return r, q, warnings, nil
}

// strict reports whether the client asked for unknown search parameters to
// be errors (Prefer: handling=strict) rather than reported and ignored.
func strict(c echo.Context) bool {
	for _, pref := range c.Request().Header.Values("Prefer") {
		for _, p := range strings.Split(pref, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "handling=strict") {
				return true
			}
		}
	}
	return false
}

// writeSearchset writes a searchset Bundle with self and next links. The
// query is in canonical form; next is the same query one page on.
func (s *Server) writeSearchset(c echo.Context, resourceType string, entries []proto.Message, warnings []*cpis.Error, query url.Values, offset, limit int, more bool) error {
	self := s.BaseURL + "/" + resourceType + "?" + query.Encode()
	next := ""
	if more {
		nq := cloneValues(query)
		nq.Set("_offset", strconv.Itoa(offset+limit))
		next = s.BaseURL + "/" + resourceType + "?" + nq.Encode()
	}
	b, err := fhir.MarshalSearchset(fhir.Searchset{
		BaseURL:  s.BaseURL,
		Self:     self,
		Next:     next,
		Entries:  entries,
		Warnings: warnings,
	})
	if err != nil {
		return cpis.E("api.writeSearchset", cpis.Other, err)
	}
	return c.Blob(http.StatusOK, fhirJSON, b)
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
