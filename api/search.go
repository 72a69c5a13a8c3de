package api

import (
	"net/http"
	"net/url"
	"strings"
	"time"

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
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	q, warnings, err := search.ParseFlagSearch(queryParams(c), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	shown, err := s.Register.SearchPlans(c.Request().Context(), rc, q)
	if err != nil {
		return err
	}
	entries := make([]proto.Message, len(shown.Plans))
	for i, p := range shown.Plans {
		entries[i] = fhir.FlagResource(p, shown.Today, shown.View)
	}
	r := searchset{entries: entries, warnings: warnings, query: search.Encode(q)}
	if shown.More {
		// The next page continues after the last plan of this one, on the
		// register as it was when the first page ran, so that plans changing
		// between pages are neither skipped nor repeated.
		next := q
		next.After = store.KeyOf(shown.Plans[len(shown.Plans)-1])
		if next.AsOf.IsZero() {
			next.AsOf = rc.At.UTC().Truncate(time.Microsecond)
		}
		r.next = search.Encode(next)
	}
	return s.writeSearchset(c, "Flag", r)
}

// searchCareTeams answers the national CP-IS API's question (GET /CareTeam):
// the plans and their LA contacts for one NHS number, as CareTeams.
func (s *Server) searchCareTeams(c echo.Context) error {
	const op = "api.searchCareTeams"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	query := queryParams(c)
	nhs, warnings, err := search.ParsePatientOnly(query, strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	shown, err := s.Register.CareTeams(c.Request().Context(), rc, nhs)
	if err != nil {
		return err
	}
	entries := make([]proto.Message, len(shown.Plans))
	for i, p := range shown.Plans {
		entries[i] = fhir.CareTeamResource(p, shown.Today)
	}
	return s.writeSearchset(c, "CareTeam", searchset{entries: entries, warnings: warnings, query: query})
}

// readCareTeam returns one plan as a CareTeam (GET /CareTeam/{id}), so that
// the fullUrl of every CareTeam in a search resolves. The rules and the
// audit are a Flag read's.
func (s *Server) readCareTeam(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	shown, err := s.Register.ReadPlan(c.Request().Context(), rc, c.Param("id"))
	if err != nil {
		return err
	}
	versionHeaders(c, shown.Plans[0])
	return s.writeResource(c, http.StatusOK, fhir.CareTeamResource(shown.Plans[0], shown.Today))
}

// queryParams is the request's query, as checkRequest decoded it.
func queryParams(c echo.Context) url.Values {
	v, _ := c.Get(queryKey).(url.Values)
	return v
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

// searchset is what a search answers: the matches, the resources _include
// added, warnings, and the query of this page and of the next (nil on the
// last page), in canonical form.
type searchset struct {
	entries     []proto.Message
	included    []fhir.Included
	warnings    []*cpis.Error
	query, next url.Values
}

// writeSearchset writes a searchset Bundle with self and next links.
func (s *Server) writeSearchset(c echo.Context, resourceType string, r searchset) error {
	return s.writeSearchsetAsOf(c, resourceType, r, time.Time{})
}

// writeSearchsetAsOf writes a searchset Bundle whose meta.lastUpdated is
// asOf (left out when zero): the instant up to which a feed's search is
// complete.
func (s *Server) writeSearchsetAsOf(c echo.Context, resourceType string, r searchset, asOf time.Time) error {
	link := func(q url.Values) string {
		if q == nil {
			return ""
		}
		return s.BaseURL + "/" + resourceType + "?" + q.Encode()
	}
	b, err := fhir.MarshalSearchset(fhir.Searchset{
		BaseURL:     s.BaseURL,
		Self:        link(r.query),
		Next:        link(r.next),
		Entries:     r.entries,
		Included:    r.included,
		Warnings:    r.warnings,
		LastUpdated: asOf,
	})
	if err != nil {
		return cpis.E("api.writeSearchset", cpis.Other, err)
	}
	return c.Blob(http.StatusOK, fhirJSON, b)
}
