package api

import (
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// caller is the request as the application layer sees it: who, when, with
// which ids, and the care setting the caller stated.
func (s *Server) caller(c echo.Context) (register.Caller, error) {
	u, err := unscheduledHeader(c)
	return register.Caller{
		Principal:   principal(c),
		RequestID:   requestID(c),
		TraceID:     traceIDOf(c),
		At:          s.Now(),
		Unscheduled: u,
		Query:       c.Request().URL.RequestURI(),
	}, err
}

// unscheduledHeader reads IsUnscheduledAccessEvent: nil when absent. What
// each value requires of the caller's role is the register's rule.
func unscheduledHeader(c echo.Context) (*bool, error) {
	switch h := strings.ToLower(strings.TrimSpace(c.Request().Header.Get(headerUnscheduled))); h {
	case "":
		return nil, nil
	case "true", "false":
		v := h == "true"
		return &v, nil
	}
	return nil, cpis.E("api.unscheduledHeader", cpis.InvalidValue, cpis.Expr("http.IsUnscheduledAccessEvent"), "IsUnscheduledAccessEvent must be true or false")
}

// queryKey is where checkRequest keeps the decoded query in the echo.Context.
const queryKey = "cpis.query"

// checkRequest refuses, before any handler reads anything, a request whose
// target is not valid UTF-8 or whose query string cannot be decoded: a
// malformed parameter must never be dropped (dropping patient=%zz would
// widen a search), and the request as received goes into the audit trail,
// which holds text only.
func (s *Server) checkRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		const op = "api.checkRequest"
		u := c.Request().URL
		if !utf8.ValidString(c.Request().RequestURI) || !utf8.ValidString(u.Path) {
			return cpis.E(op, cpis.InvalidValue, "the request target is not valid UTF-8")
		}
		v, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return cpis.E(op, cpis.InvalidSearch, "the query string cannot be decoded: escape '%' as %25 and use valid percent-encoding")
		}
		for k, vs := range v {
			if !utf8.ValidString(k) || !validValues(vs) {
				return cpis.E(op, cpis.InvalidSearch, "the query string is not valid UTF-8 once decoded")
			}
		}
		c.Set(queryKey, v) // decoded once, for the handler (queryParams)
		return next(c)
	}
}

func validValues(vs []string) bool {
	for _, s := range vs {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return false
		}
	}
	return true
}
