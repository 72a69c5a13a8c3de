package api

import "github.com/labstack/echo/v4"

// Route is one entry of the route table: the HTTP surface, kept equal to
// openapi.yaml by a test.
type Route struct {
	Method, Path string
	Public       bool // no bearer token needed
	DevOnly      bool // exists only in dev mode
}

// routeTable is the whole HTTP surface in one place.
func (s *Server) routeTable() []struct {
	Route
	h echo.HandlerFunc
} {
	type r = struct {
		Route
		h echo.HandlerFunc
	}
	pub := func(m, p string, h echo.HandlerFunc) r { return r{Route{m, p, true, false}, h} }
	sec := func(m, p string, h echo.HandlerFunc) r { return r{Route{m, p, false, false}, h} }
	dev := func(m, p string, h echo.HandlerFunc) r { return r{Route{m, p, true, true}, h} }
	return []r{
		pub("GET", "/healthz", s.healthz),
		pub("GET", "/readyz", s.readyz),
		pub("GET", "/metrics", s.serveMetrics),
		pub("GET", "/metadata", s.capabilityStatement),
		pub("GET", "/.well-known/smart-configuration", s.smartConfiguration),
		pub("GET", "/StructureDefinition/:id", s.conformanceResource("StructureDefinition")),
		pub("GET", "/CodeSystem/:id", s.conformanceResource("CodeSystem")),
		pub("GET", "/ValueSet/:id", s.conformanceResource("ValueSet")),
		pub("GET", "/SearchParameter/:id", s.conformanceResource("SearchParameter")),
		pub("GET", "/OperationDefinition/:id", s.conformanceResource("OperationDefinition")),
		pub("GET", "/Basic/:id", s.conformanceResource("Basic")),

		sec("POST", "/", s.postBundle),
		sec("POST", "/Flag", s.createFlag),
		sec("PUT", "/Flag", s.updateFlag),
		sec("DELETE", "/Flag", s.deleteFlag),
		sec("POST", "/Flag/$import", s.importFlags),
		sec("GET", "/Flag", s.searchFlags),
		sec("GET", "/Flag/:id", s.readFlag),
		sec("PUT", "/Flag/:id", s.updateFlag),
		sec("DELETE", "/Flag/:id", s.deleteFlag),
		sec("GET", "/Flag/_history", s.flagChanges),
		sec("GET", "/Flag/:id/_history", s.flagHistory),
		sec("GET", "/Flag/:id/_history/:vid", s.vreadFlag),
		sec("GET", "/AuditEvent", s.searchAuditEvents),
		sec("GET", "/CareTeam", s.searchCareTeams),
		sec("GET", "/CareTeam/:id", s.readCareTeam),
		sec("GET", "/Communication", s.searchCommunications),
		sec("GET", "/Communication/:id", s.readCommunication),
		sec("POST", "/Subscription", s.createSubscription),
		sec("GET", "/Subscription", s.searchSubscriptions),
		sec("GET", "/Subscription/:id", s.readSubscription),
		sec("PUT", "/Subscription/:id", s.updateSubscription),
		sec("DELETE", "/Subscription/:id", s.deleteSubscription),
		sec("GET", "/Subscription/:id/$status", s.subscriptionStatus),
		sec("GET", "/Subscription/:id/$events", s.subscriptionEvents),

		dev("POST", "/dev/token", s.devToken),
		dev("GET", "/dev/authorize", s.devAuthorize),
		dev("POST", "/dev/authorize", s.devApprove),
		dev("GET", "/dev/launch", s.devLaunch),
		dev("GET", "/dev/personas", s.devPersonas),
		dev("GET", "/dev/jwks", s.devJWKS),
	}
}

// Routes lists the HTTP surface; dev-only routes are included and marked.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.routeTable() {
		out = append(out, r.Route)
	}
	return out
}

// Routes lists the HTTP surface of a server built with these dependencies.
func Routes() []Route { return (&Server{}).Routes() }

func (s *Server) routes(e *echo.Echo) {
	for _, r := range s.routeTable() {
		if r.DevOnly && s.Dev == nil {
			continue
		}
		var mw []echo.MiddlewareFunc
		if r.DevOnly {
			mw = append(mw, loopbackOnly)
		}
		if !r.Public {
			mw = append(mw, s.authenticate)
		}
		e.Add(r.Method, r.Path, r.h, mw...)
	}
}
