package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/profiles"
)

// healthz answers while the process is up.
func (s *Server) healthz(c echo.Context) error {
	return writeJSON(c, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when the store can serve: a load balancer takes a
// replica out while its database is unreachable.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.Register.Ready(ctx); err != nil {
		return cpis.E("api.readyz", cpis.Unavailable, "the store is not reachable", err)
	}
	return writeJSON(c, http.StatusOK, map[string]string{"status": "ready"})
}

// capabilityStatement describes what this server does (GET /metadata),
// with the same token endpoints as the SMART configuration.
func (s *Server) capabilityStatement(c echo.Context) error {
	sec := fhir.Security{CORS: len(s.CORSOrigins) > 0}
	if s.SMART != nil {
		sec.TokenURL, sec.AuthorizeURL = s.SMART.TokenEndpoint, s.SMART.AuthorizationEndpoint
	}
	return s.writeResource(c, http.StatusOK, fhir.CapabilityStatement(s.BaseURL, s.Version, sec))
}

// smartConfiguration is the SMART App Launch discovery document.
func (s *Server) smartConfiguration(c echo.Context) error {
	if s.SMART == nil {
		return cpis.E("api.smartConfiguration", cpis.NotFound, "no SMART configuration is published: this server knows no usable token endpoint of its token issuer")
	}
	return writeJSON(c, http.StatusOK, s.SMART)
}

// conformanceResource serves our StructureDefinitions, CodeSystems and
// ValueSets, read-only, from the embedded profiles.
func (s *Server) conformanceResource(resourceType string) echo.HandlerFunc {
	return func(c echo.Context) error {
		b, ok := profiles.Lookup(resourceType, c.Param("id"))
		if !ok {
			return cpis.E("api.conformanceResource", cpis.NotFound, "no "+resourceType+" with this id")
		}
		return c.Blob(http.StatusOK, fhirJSON, b)
	}
}

// devToken issues a token for a persona (dev mode, loopback only), to a
// standard OAuth 2.0 client_credentials request (a form, answered as RFC
// 6749 sections 5.1 and 5.2 say) or to JSON {"persona": "<name>"}, the
// shortcut the README uses, whose errors are OperationOutcomes.
func (s *Server) devToken(c echo.Context) error {
	const op = "api.devToken"
	if formMedia(c.Request().Header.Get(echo.HeaderContentType)) {
		return s.devTokenForm(c)
	}
	var req struct {
		Persona string `json:"persona"`
	}
	if err := c.Bind(&req); err != nil || req.Persona == "" {
		return cpis.E(op, cpis.InvalidValue, cpis.Expr("persona"), `send JSON {"persona": "<name>"}, or an OAuth 2.0 client_credentials form with client_id=<name>; GET /dev/personas lists the names`)
	}
	g, err := s.Dev.Grant(req.Persona, "")
	switch {
	case errors.Is(err, auth.ErrInvalidClient):
		return cpis.E(op, cpis.InvalidValue, cpis.Expr("persona"), "no such development persona; GET /dev/personas lists them")
	case err != nil:
		return cpis.E(op, err)
	}
	return writeTokenJSON(c, http.StatusOK, tokenResponse(g))
}

// devTokenForm answers an OAuth 2.0 token request: the development
// authorization server's (a code, or a registered system's client
// assertion: devAuthToken), or the quick start's: grant_type
// client_credentials, client_id a persona's name (no client
// authentication), scope optional and within the persona's.
func (s *Server) devTokenForm(c echo.Context) error {
	form, err := readForm(c)
	if err != nil {
		return oauthError(c, http.StatusBadRequest, "invalid_request", err.Error())
	}
	for _, k := range []string{"grant_type", "client_id", "scope", "code", "redirect_uri", "code_verifier", "client_assertion_type", "client_assertion"} {
		if len(form[k]) > 1 { // RFC 6749 section 3.2
			return oauthError(c, http.StatusBadRequest, "invalid_request", k+" is given more than once")
		}
	}
	if s.devAuthGrant(form) {
		return s.devAuthToken(c, form)
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		return oauthError(c, http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		return oauthError(c, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
	}
	g, err := s.Dev.Grant(form.Get("client_id"), form.Get("scope"))
	switch {
	case errors.Is(err, auth.ErrInvalidClient):
		return oauthError(c, http.StatusUnauthorized, "invalid_client", err.Error())
	case errors.Is(err, auth.ErrInvalidScope):
		return oauthError(c, http.StatusBadRequest, "invalid_scope", err.Error())
	case err != nil:
		return cpis.E("api.devTokenForm", err)
	}
	return writeTokenJSON(c, http.StatusOK, tokenResponse(g))
}

// readForm reads an application/x-www-form-urlencoded body of at most
// MaxBodyBytes.
func readForm(c echo.Context) (url.Values, error) {
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxBodyBytes+1))
	switch {
	case err != nil:
		return nil, errors.New("the request body could not be read")
	case len(b) > MaxBodyBytes:
		return nil, errors.New("the request body is larger than 64 KiB")
	}
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, errors.New("the body is not a valid application/x-www-form-urlencoded form")
	}
	return form, nil
}

// tokenResponse is the body of a successful token response (RFC 6749
// section 5.1).
func tokenResponse(g auth.DevGrant) map[string]any {
	return map[string]any{
		"access_token": g.Token,
		"token_type":   "Bearer",
		"expires_in":   int(g.ExpiresIn.Seconds()),
		"scope":        g.Scope,
	}
}

// oauthError answers with an RFC 6749 section 5.2 error. Its description
// holds only characters the RFC allows (no quote, no backslash).
func oauthError(c echo.Context, status int, code, description string) error {
	return writeTokenJSON(c, status, map[string]string{"error": code, "error_description": description})
}

// writeTokenJSON writes a token endpoint's answer, which no cache may keep
// (RFC 6749 section 5.1).
func writeTokenJSON(c echo.Context, status int, v any) error {
	h := c.Response().Header()
	h.Set(echo.HeaderCacheControl, "no-store")
	h.Set("Pragma", "no-cache")
	return writeJSON(c, status, v)
}

// formMedia reports whether a Content-Type is an HTML form's.
func formMedia(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), echo.MIMEApplicationForm)
}

// devPersonas lists the personas /dev/token knows.
func (s *Server) devPersonas(c echo.Context) error {
	return writeJSON(c, http.StatusOK, s.Dev.Personas())
}

// devJWKS publishes the dev issuer's public keys.
func (s *Server) devJWKS(c echo.Context) error {
	return writeJSON(c, http.StatusOK, s.Dev.PublicKeys())
}
