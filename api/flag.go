package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// createFlag stores a new plan from its responsible LA (POST /Flag).
func (s *Server) createFlag(c echo.Context) error {
	const op = "api.createFlag"
	p, err := writer(c, op)
	if err != nil {
		return err
	}
	plan, err := s.planFromBody(c, p, op)
	if err != nil {
		return err
	}
	plan.ID, plan.Version, plan.LastUpdated = s.NewID(), 1, s.stamp()
	rec := s.writeRecord(c, p, cpis.ActionCreate, "create", plan)
	stored, replayed, err := s.Store.CreatePlan(c.Request().Context(), plan, rec)
	if err != nil {
		return cpis.E(op, err)
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK // a retry of a write we already did: nothing new was created
	}
	c.Response().Header().Set(echo.HeaderLocation, s.BaseURL+"/Flag/"+stored.ID+"/_history/"+strconv.Itoa(stored.Version))
	return s.writeFlag(c, status, stored, fhir.OwnerView)
}

// updateFlag replaces a plan with a new version (PUT /Flag/{id}); the caller
// must name the version it is changing in If-Match.
func (s *Server) updateFlag(c echo.Context) error {
	const op = "api.updateFlag"
	p, err := writer(c, op)
	if err != nil {
		return err
	}
	expect, err := requireIfMatch(c, op)
	if err != nil {
		return err
	}
	plan, err := s.planFromBody(c, p, op)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if plan.ID != "" && plan.ID != id {
		return cpis.E(op, cpis.Invalid, cpis.Expr("Flag.id"), "the resource id in the body does not match the id in the URL")
	}
	current, err := s.ownPlan(c, p, id, op)
	if err != nil {
		return err
	}
	if current.EnteredInError {
		return cpis.E(op, cpis.Invalid, cpis.Expr("Flag.status"), "this plan was withdrawn (entered in error) and cannot change: create a new plan")
	}
	if current.NHSNumber != plan.NHSNumber {
		return cpis.E(op, cpis.Invalid, cpis.Expr("Flag.subject"), "a plan cannot move to another NHS number: delete it and create a plan on the right one")
	}
	plan.ID, plan.LastUpdated = id, s.stamp()
	rec := s.writeRecord(c, p, cpis.ActionUpdate, "update", plan)
	stored, _, err := s.Store.UpdatePlan(c.Request().Context(), plan, expect, rec)
	if err != nil {
		return cpis.E(op, err)
	}
	return s.writeFlag(c, http.StatusOK, stored, fhir.OwnerView)
}

// deleteFlag withdraws a plan: it becomes entered-in-error, and health users
// no longer see it (DELETE /Flag/{id}). If-Match is honoured when given.
func (s *Server) deleteFlag(c echo.Context) error {
	const op = "api.deleteFlag"
	p, err := writer(c, op)
	if err != nil {
		return err
	}
	expect := 0
	if h := c.Request().Header.Get("If-Match"); h != "" {
		v, ok := parseIfMatch(h)
		if !ok {
			return cpis.E(op, cpis.PreconditionFailed, cpis.Expr("http.If-Match"), `If-Match must name a version, e.g. W/"1"`)
		}
		expect = v
	}
	current, err := s.ownPlan(c, p, c.Param("id"), op)
	if err != nil {
		return err
	}
	at := s.stamp()
	current.EnteredInError, current.LastUpdated = true, at
	rec := s.writeRecord(c, p, cpis.ActionDelete, "delete", current)
	stored, err := s.Store.DeletePlan(c.Request().Context(), current.ID, p.LACode, expect, at, rec)
	if err != nil {
		return cpis.E(op, err)
	}
	versionHeaders(c, stored)
	return c.NoContent(http.StatusNoContent)
}

// readFlag returns the current version of a plan (GET /Flag/{id}).
func (s *Server) readFlag(c echo.Context) error {
	const op = "api.readFlag"
	r, plan, err := s.readablePlan(c, op)
	if err != nil {
		return err
	}
	if err := s.audited(c, r, cpis.ActionRead, "read", plan.NHSNumber, []cpis.Plan{plan}); err != nil {
		return err
	}
	return s.writeFlag(c, http.StatusOK, plan, r.view)
}

// vreadFlag returns one version of a plan (GET /Flag/{id}/_history/{vid}).
func (s *Server) vreadFlag(c echo.Context) error {
	const op = "api.vreadFlag"
	r, current, err := s.readablePlan(c, op)
	if err != nil {
		return err
	}
	v, err := strconv.Atoi(c.Param("vid"))
	if err != nil || v < 1 {
		return cpis.E(op, cpis.NotFound, "no such version of this plan")
	}
	plan, err := s.Store.PlanVersion(c.Request().Context(), current.ID, v)
	if err != nil {
		return cpis.E(op, err)
	}
	if r.health && plan.EnteredInError {
		return cpis.E(op, cpis.NotFound, "no such version of this plan")
	}
	if err := s.audited(c, r, cpis.ActionRead, "vread", plan.NHSNumber, []cpis.Plan{plan}); err != nil {
		return err
	}
	return s.writeFlag(c, http.StatusOK, plan, r.view)
}

// flagHistory returns every version of a plan (GET /Flag/{id}/_history).
func (s *Server) flagHistory(c echo.Context) error {
	const op = "api.flagHistory"
	r, current, err := s.readablePlan(c, op)
	if err != nil {
		return err
	}
	versions, err := s.Store.PlanHistory(c.Request().Context(), current.ID)
	if err != nil {
		return cpis.E(op, err)
	}
	if err := s.audited(c, r, cpis.ActionRead, "history-instance", current.NHSNumber, versions); err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, fhir.HistoryBundle(s.BaseURL, versions, s.today(), r.view))
}

// writer returns the caller if it may write plans: an LA system.
func writer(c echo.Context, op string) (*auth.Principal, error) {
	p := principal(c)
	if !p.MayWritePlans() {
		return nil, cpis.E(op, cpis.AccessDenied, "changing plans needs a local authority system token with scope system/Flag.write")
	}
	return p, nil
}

// requireIfMatch reads the version a versioned update is based on.
func requireIfMatch(c echo.Context, op string) (int, error) {
	h := c.Request().Header.Get("If-Match")
	if h == "" {
		return 0, cpis.E(op, cpis.PreconditionRequired, cpis.Expr("http.If-Match"), `an update needs If-Match with the version being changed, e.g. If-Match: W/"1"`)
	}
	v, ok := parseIfMatch(h)
	if !ok {
		return 0, cpis.E(op, cpis.PreconditionFailed, cpis.Expr("http.If-Match"), `If-Match must name a version, e.g. W/"1"`)
	}
	return v, nil
}

// planFromBody reads, parses and checks a Flag sent by LA p: every profile
// and SOP rule, and that p is the plan's responsible LA.
func (s *Server) planFromBody(c echo.Context, p *auth.Principal, op string) (cpis.Plan, error) {
	body, err := readBody(c)
	if err != nil {
		return cpis.Plan{}, err
	}
	plan, err := fhir.ParseFlag(body)
	if err != nil {
		return cpis.Plan{}, cpis.E(op, err)
	}
	if err := plan.Validate(); err != nil {
		return cpis.Plan{}, err
	}
	if plan.LA.Code != p.LACode {
		return cpis.Plan{}, cpis.E(op, cpis.ForbiddenUpdate, cpis.Expr("Flag.author"), "a local authority may write only plans it is responsible for: the author must be your own LA")
	}
	return plan, nil
}

// ownPlan returns the current version of plan id if LA p is responsible for it.
func (s *Server) ownPlan(c echo.Context, p *auth.Principal, id, op string) (cpis.Plan, error) {
	current, err := s.Store.Plan(c.Request().Context(), id)
	if err != nil {
		return cpis.Plan{}, cpis.E(op, err)
	}
	if current.LA.Code != p.LACode {
		return cpis.Plan{}, cpis.E(op, cpis.ForbiddenUpdate, "this plan belongs to another local authority: only the responsible LA may change it")
	}
	return current, nil
}

// readablePlan returns the caller as a reader and the current version of
// the plan in the URL, if the caller may see it; otherwise NotFound, whether
// or not the plan exists.
func (s *Server) readablePlan(c echo.Context, op string) (reader, cpis.Plan, error) {
	r, err := s.reader(c, op)
	if err != nil {
		return r, cpis.Plan{}, err
	}
	plan, err := s.Store.Plan(c.Request().Context(), c.Param("id"))
	if err != nil {
		return r, cpis.Plan{}, cpis.E(op, err)
	}
	if !r.maySee(plan, s.today()) {
		return r, cpis.Plan{}, cpis.E(op, cpis.NotFound, "no plan with this id")
	}
	return r, plan, nil
}

// writeFlag writes one plan version with its ETag and Last-Modified.
func (s *Server) writeFlag(c echo.Context, status int, p cpis.Plan, v fhir.View) error {
	versionHeaders(c, p)
	return s.writeResource(c, status, fhir.FlagResource(p, s.today(), v))
}

// stamp is the time a write is recorded: now, in UTC, at the microsecond
// precision both stores keep.
func (s *Server) stamp() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }
