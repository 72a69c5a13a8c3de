package api

import (
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Header names of the NHS API conventions (docs/domain.md, Headers).
const (
	headerRequestID     = "X-Request-ID"
	headerCorrelationID = "X-Correlation-ID"
	headerTraceID       = "TraceID"
	headerUnscheduled   = "IsUnscheduledAccessEvent"
)

// Where the request's ids are kept in the echo.Context.
const (
	requestIDKey = "cpis.request_id"
	traceIDKey   = "cpis.trace_id"
)

// traceID is what a TraceID may be: the national API sends a UUID; any
// short token of these characters is accepted, since it is recorded in the
// audit trail and echoed, never interpreted.
var traceID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// requestIDs takes the caller's X-Request-ID (which must be a UUID, so that a
// retried write can be recognised) or makes one, takes the national API's
// TraceID when given, and echoes them with X-Correlation-ID. It runs inside
// observe, so a refused id is logged and counted like any other error.
func (s *Server) requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		const op = "api.requestIDs"
		req, res := c.Request(), c.Response()
		if corr := req.Header.Get(headerCorrelationID); corr != "" && len(corr) <= 200 && printable(corr) {
			res.Header().Set(headerCorrelationID, corr)
		}
		id := req.Header.Get(headerRequestID)
		if id == "" {
			id = s.NewID()
		} else if _, err := uuid.Parse(id); err != nil {
			return cpis.E(op, cpis.InvalidValue, cpis.Expr("http.X-Request-ID"), "X-Request-ID must be a UUID")
		}
		res.Header().Set(headerRequestID, id)
		c.Set(requestIDKey, id)
		if tr := req.Header.Get(headerTraceID); tr != "" {
			if !traceID.MatchString(tr) {
				return cpis.E(op, cpis.InvalidValue, cpis.Expr("http.TraceID"), "TraceID must be a UUID (at most 64 of A-Z a-z 0-9 . _ : -)")
			}
			res.Header().Set(headerTraceID, tr)
			c.Set(traceIDKey, tr)
		}
		return next(c)
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

func traceIDOf(c echo.Context) string {
	id, _ := c.Get(traceIDKey).(string)
	return id
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}

// observe writes the response of a failed handler through the error
// handler, then logs one structured line and records the metrics. It logs
// the route template, never the path or query: those carry NHS numbers.
// Route and method are the metric labels, from fixed sets, so that neither
// the metrics nor the log carry what a client invented. Only unexpected
// errors (kind Other, a 500) are logged at ERROR; a client's mistake,
// including the framework's own 404 and 405, is a WARN.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			err = fromEcho(err) // echo's errors carry no kind: they would all look unexpected
			c.Error(err)
		}
		elapsed := time.Since(start)
		route, method, status := s.metrics.routeLabel(c.Path()), methodLabel(c.Request().Method), c.Response().Status
		s.metrics.observe(route, method, status, elapsed)
		attrs := []slog.Attr{
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("request_id", requestID(c)),
		}
		if p, ok := auth.PrincipalFrom(c.Request().Context()); ok {
			attrs = append(attrs, slog.String("actor_kind", string(p.Kind)), slog.String("org", p.OrgCode))
		}
		level := slog.LevelInfo
		if err != nil {
			level = slog.LevelWarn
			attrs = append(attrs, errorAttrs(err)...)
			if cpis.KindOf(err) == cpis.Other {
				level = slog.LevelError
			}
		}
		s.Logger.LogAttrs(c.Request().Context(), level, "request", attrs...)
		return nil
	}
}

// errorAttrs describes an error for the log: operation, kind and our own
// message only. A driver's text is logged only for unexpected (Other) errors,
// which need it to be fixed; our messages never hold personal data.
func errorAttrs(err error) []slog.Attr {
	p := cpis.Problems(err)
	if len(p) == 0 {
		return nil
	}
	e := p[0]
	attrs := []slog.Attr{slog.String("error_kind", e.Kind.String()), slog.String("error_op", e.Op)}
	if e.Msg != "" {
		attrs = append(attrs, slog.String("error", e.Msg))
	}
	if e.Kind == cpis.Other && e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	return attrs
}

// authenticate requires a valid bearer token and puts the principal in the
// request context.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		const op = "api.authenticate"
		h := c.Request().Header.Get(echo.HeaderAuthorization)
		scheme, token, found := strings.Cut(h, " ")
		if h == "" {
			return cpis.E(op, cpis.Unauthenticated, "a bearer token is required (Authorization: Bearer <JWT>)")
		}
		if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return cpis.E(op, cpis.Unauthenticated, "the Authorization header must be: Bearer <JWT>")
		}
		p, err := s.Verifier.Verify(c.Request().Context(), strings.TrimSpace(token))
		if err != nil {
			return cpis.E(op, cpis.Unauthenticated, err)
		}
		c.SetRequest(c.Request().WithContext(auth.WithPrincipal(c.Request().Context(), p)))
		// Every authenticated answer may carry patient data (or say that a
		// child has none): no cache, shared or private, may keep it.
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		return next(c)
	}
}

// principal returns the authenticated caller; routes behind authenticate always have one.
func principal(c echo.Context) *auth.Principal {
	p, _ := auth.PrincipalFrom(c.Request().Context())
	return p
}

// loopbackOnly keeps the dev issuer's endpoints to callers on this machine.
func loopbackOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		host, _, err := net.SplitHostPort(c.Request().RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return cpis.E("api.loopbackOnly", cpis.AccessDenied, "the dev endpoints answer only callers on this machine")
		}
		return next(c)
	}
}

// unauthenticatedHeaders sets the challenge RFC 6750 asks for on a 401.
func unauthenticatedHeaders(h http.Header, hadToken bool) {
	if hadToken {
		h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="cpis", error="invalid_token"`)
		return
	}
	h.Set(echo.HeaderWWWAuthenticate, `Bearer realm="cpis"`)
}
