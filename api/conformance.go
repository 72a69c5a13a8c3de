package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
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

// capabilityStatement describes what this server does (GET /metadata).
func (s *Server) capabilityStatement(c echo.Context) error {
	return s.writeResource(c, http.StatusOK, fhir.CapabilityStatement(s.BaseURL, s.Version))
}

// smartConfiguration is the SMART App Launch discovery document.
func (s *Server) smartConfiguration(c echo.Context) error {
	if s.SMART == nil {
		return cpis.E("api.smartConfiguration", cpis.NotFound, "no SMART configuration is published")
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

// devToken issues a token for a named persona (dev mode, loopback only).
func (s *Server) devToken(c echo.Context) error {
	const op = "api.devToken"
	var req struct {
		Persona string `json:"persona"`
	}
	if err := c.Bind(&req); err != nil || req.Persona == "" {
		return cpis.E(op, cpis.InvalidValue, cpis.Expr("persona"), `send JSON {"persona": "<name>"}; GET /dev/personas lists the names`)
	}
	tok, ttl, err := s.Dev.Token(req.Persona)
	if err != nil {
		return cpis.E(op, err)
	}
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store") // RFC 6749 section 5.1
	return writeJSON(c, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(ttl.Seconds()),
	})
}

// devPersonas lists the personas /dev/token knows.
func (s *Server) devPersonas(c echo.Context) error {
	return writeJSON(c, http.StatusOK, s.Dev.Personas())
}

// devJWKS publishes the dev issuer's public keys.
func (s *Server) devJWKS(c echo.Context) error {
	return writeJSON(c, http.StatusOK, s.Dev.PublicKeys())
}
