package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// handleError is the one place where an error becomes a response: an
// OperationOutcome whose Spine code and HTTP status come from fhir.SpineError.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	err = fromEcho(err)
	problems := cpis.Problems(err)
	_, status, _ := fhir.SpineError(problems[0].Kind)
	h := c.Response().Header()
	if problems[0].Kind == cpis.Unauthenticated {
		unauthenticatedHeaders(h, c.Request().Header.Get(echo.HeaderAuthorization) != "")
	}
	if problems[0].Kind == cpis.Unavailable {
		h.Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = s.writeResource(c, status, fhir.OperationOutcome(problems))
}

// fromEcho translates the framework's own errors (no route, wrong method,
// body too large) into the service's kinds.
func fromEcho(err error) error {
	var he *echo.HTTPError
	if !errors.As(err, &he) {
		return err
	}
	const op = "api.route"
	switch he.Code {
	case http.StatusNotFound:
		return cpis.E(op, cpis.NotFound, "no such resource type or endpoint")
	case http.StatusMethodNotAllowed:
		return cpis.E(op, cpis.NotSupported, "this interaction is not supported on this endpoint")
	case http.StatusRequestEntityTooLarge:
		return cpis.E(op, cpis.TooLarge, "the request body is larger than 64 KiB")
	case http.StatusUnauthorized:
		return cpis.E(op, cpis.Unauthenticated, "a bearer token is required")
	case http.StatusForbidden:
		return cpis.E(op, cpis.AccessDenied, "access denied")
	case http.StatusServiceUnavailable:
		return cpis.E(op, cpis.Unavailable, "the service is unavailable")
	}
	if he.Code >= 400 && he.Code < 500 {
		return cpis.E(op, cpis.InvalidValue, http.StatusText(he.Code))
	}
	return cpis.E(op, cpis.Other, he)
}
