// Package api is the HTTP surface of the service: the route table (routes.go),
// middleware, handlers and the one error handler that turns every error into
// an OperationOutcome. Handlers return errors; they never write error bodies
// themselves.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/register"
)

// MaxBodyBytes is the largest request body accepted: a Flag is well under 4 KiB.
const MaxBodyBytes = 64 << 10

// TokenVerifier turns a bearer token into the caller's identity.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*auth.Principal, error)
}

// Deps is everything the HTTP surface needs. All fields are required except
// Dev (nil outside dev mode) and Registry (nil: no metrics).
type Deps struct {
	Register *register.Service // the application layer: every rule, every audit record
	Verifier TokenVerifier
	Dev      *auth.DevIssuer // dev mode only: serves /dev/*
	Now      func() time.Time
	NewID    func() string // request ids when the caller sends none (UUIDs)
	Logger   *slog.Logger
	Registry *prometheus.Registry
	BaseURL  string // public base URL, e.g. https://cpis.example.org/fhir; no trailing slash
	Version  string // software version for the CapabilityStatement
	SMART    any    // the SMART configuration document; nil: not published
}

// Server holds the dependencies the handlers share.
type Server struct {
	Deps
	metrics *httpMetrics
}

// New builds the HTTP handler with every route, middleware and the error handler.
func New(d Deps) http.Handler {
	s := &Server{Deps: d, metrics: newHTTPMetrics(d.Registry)}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Pre(s.requestIDs)
	e.Use(s.observe, s.checkRequest)
	s.routes(e)
	return e
}
