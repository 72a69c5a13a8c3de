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
// Dev (nil outside dev mode), Registry (nil: no metrics), SMART and
// CORSOrigins.
type Deps struct {
	Register *register.Service // the application layer: every rule, every audit record
	Verifier TokenVerifier
	Dev      *auth.DevIssuer // dev mode only: serves /dev/*
	// DevAuth, in dev mode, is the SMART authorization server behind
	// /dev/authorize, /dev/launch and the code and backend grants of
	// /dev/token; nil: those answer as if it did not exist.
	DevAuth  *auth.DevAuthServer
	Now      func() time.Time
	NewID    func() string // request ids when the caller sends none (UUIDs)
	Logger   *slog.Logger
	Registry *prometheus.Registry
	BaseURL  string            // public base URL, e.g. https://cpis.example.org/fhir; no trailing slash
	Version  string            // software version for the CapabilityStatement
	SMART    *auth.SMARTConfig // the SMART configuration document; nil: not published
	// MaxBundleEntries bounds the entries of a batch or transaction Bundle;
	// 0 means fhir.DefaultMaxBundleEntries (1,000).
	MaxBundleEntries int
	// CORSOrigins are the browser origins (scheme://host[:port], exactly)
	// allowed to call this server from their pages. None: no CORS headers.
	CORSOrigins []string
	// Wake, when set, asks the subscription deliverer to look for work now
	// (a new or changed subscription is greeted without waiting a poll).
	Wake func()
	// App, when set, is the clinician's web viewer (package viewer),
	// served at /app and under /app/ with the same request ids, request
	// log and metrics as the API. It is not part of the FHIR surface, so
	// neither the route table nor openapi.yaml lists it. Nil: /app is 404.
	App http.Handler
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
	e.Use(s.observe)
	if len(d.CORSOrigins) > 0 {
		// After observe, so that preflights are logged and counted (method
		// OPTIONS); before the rest, so that refusals carry CORS headers too
		// and a browser lets the page read them.
		e.Use(cors(d.CORSOrigins))
	}
	e.Use(s.requestIDs, s.checkRequest)
	s.routes(e)
	s.mountApp(e)
	return e
}

// mountApp serves the web viewer at /app and everything under it. Its
// pages are labelled /app/* in the metrics and the request log (never
// their paths).
func (s *Server) mountApp(e *echo.Echo) {
	if s.App == nil {
		return
	}
	h := echo.WrapHandler(s.App)
	e.Any("/app", h)
	e.Any("/app/*", h)
	s.metrics.routes["/app"], s.metrics.routes["/app/*"] = true, true
}

// cors answers preflights and marks the answers that pages of the given
// origins may read (the Fetch standard's CORS protocol). Origins are compared
// exactly, never as patterns, and "*" is never sent. Bearer tokens travel in
// the Authorization header, which needs no credentials mode, so credentials
// are never allowed. Another origin's preflight goes on unanswered by CORS
// (the router's OPTIONS answer, without CORS headers), and so does any other
// request of it. echo's middleware.CORSWithConfig is not used: its package
// needs a module this one does not (golang.org/x/time), and it matches
// configured origins as patterns.
func cors(origins []string) echo.MiddlewareFunc {
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		allowed[o] = true
	}
	const (
		methods = "GET, HEAD, POST, PUT, DELETE"
		headers = "Authorization, Content-Type, If-Match, Prefer, " + headerRequestID + ", " + headerCorrelationID + ", TraceID, " + headerUnscheduled
		exposed = "ETag, Location, Last-Modified, " + headerRequestID + ", " + headerCorrelationID
		maxAge  = "600" // seconds a browser may reuse a preflight's answer
	)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req, h := c.Request(), c.Response().Header()
			h.Add(echo.HeaderVary, echo.HeaderOrigin)
			origin := req.Header.Get(echo.HeaderOrigin)
			if !allowed[origin] {
				return next(c)
			}
			h.Set(echo.HeaderAccessControlAllowOrigin, origin)
			if req.Method != http.MethodOptions || req.Header.Get(echo.HeaderAccessControlRequestMethod) == "" {
				h.Set(echo.HeaderAccessControlExposeHeaders, exposed)
				return next(c)
			}
			h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestMethod)
			h.Add(echo.HeaderVary, echo.HeaderAccessControlRequestHeaders)
			h.Set(echo.HeaderAccessControlAllowMethods, methods)
			h.Set(echo.HeaderAccessControlAllowHeaders, headers)
			h.Set(echo.HeaderAccessControlMaxAge, maxAge)
			return c.NoContent(http.StatusNoContent)
		}
	}
}
