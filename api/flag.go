package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// createFlag stores a new plan from its responsible LA (POST /Flag), or,
// with If-None-Exist naming the LA's reference, answers with the plan the
// LA already holds under it.
func (s *Server) createFlag(c echo.Context) error {
	const op = "api.createFlag"
	rc, err := s.writeCaller(c)
	if err != nil {
		return err
	}
	w := register.Write{Kind: register.Create}
	if h := c.Request().Header.Get("If-None-Exist"); h != "" {
		if w.Reference, err = fhir.ParseCondition(h, "http.If-None-Exist"); err != nil {
			return cpis.E(op, err)
		}
	}
	if w.Plan, err = planFromBody(c, op); err != nil {
		return err
	}
	return s.applyWrite(c, rc, w)
}

// updateFlag replaces a plan with a new version: PUT /Flag/{id}, naming the
// version it changes in If-Match, or PUT /Flag?identifier=<system>|<ref>,
// conditional on the LA's reference (If-Match optional), which creates the
// plan when the LA holds none with that reference. A plan that would not
// change is answered as it is, and nothing is written.
func (s *Server) updateFlag(c echo.Context) error {
	const op = "api.updateFlag"
	rc, err := s.writeCaller(c)
	if err != nil {
		return err
	}
	w := register.Write{Kind: register.Update, ID: c.Param("id")}
	if w.ID == "" {
		if w.Reference, err = fhir.ParseCondition(c.Request().URL.RawQuery, "identifier"); err != nil {
			return cpis.E(op, err)
		}
		w.Expect, err = optionalIfMatch(c, op)
	} else {
		w.Expect, err = requireIfMatch(c, op)
	}
	if err != nil {
		return err
	}
	if w.Plan, err = planFromBody(c, op); err != nil {
		return err
	}
	return s.applyWrite(c, rc, w)
}

// deleteFlag withdraws a plan: it becomes entered-in-error, and health users
// no longer see it (DELETE /Flag/{id}, or DELETE /Flag?identifier=... by the
// LA's reference). If-Match is honoured when given.
func (s *Server) deleteFlag(c echo.Context) error {
	const op = "api.deleteFlag"
	rc, err := s.writeCaller(c)
	if err != nil {
		return err
	}
	w := register.Write{Kind: register.Delete, ID: c.Param("id")}
	if w.ID == "" {
		if w.Reference, err = fhir.ParseCondition(c.Request().URL.RawQuery, "identifier"); err != nil {
			return cpis.E(op, err)
		}
	}
	if w.Expect, err = optionalIfMatch(c, op); err != nil {
		return err
	}
	return s.applyWrite(c, rc, w)
}

// applyWrite has the register carry out w and answers as FHIR does: 201
// with Location for a plan created, 200 with the plan otherwise, 204 for a
// withdrawal.
func (s *Server) applyWrite(c echo.Context, rc register.Caller, w register.Write) error {
	res, shown, err := s.Register.Apply(c.Request().Context(), rc, w)
	if err != nil {
		return err
	}
	p := shown.Plans[0]
	status := writeStatus(res.Outcome)
	switch status {
	case http.StatusNoContent:
		versionHeaders(c, p)
		return c.NoContent(status)
	case http.StatusCreated:
		c.Response().Header().Set(echo.HeaderLocation, s.BaseURL+"/Flag/"+p.ID+"/_history/"+strconv.Itoa(p.Version))
	}
	return s.writeFlag(c, status, shown) // 201, or 200: updated, unchanged, or a retry of a write already done
}

// readFlag returns the current version of a plan (GET /Flag/{id}).
func (s *Server) readFlag(c echo.Context) error {
	return s.readOne(c, func(rc register.Caller) (register.Shown, error) {
		return s.Register.ReadPlan(c.Request().Context(), rc, c.Param("id"))
	})
}

// vreadFlag returns one version of a plan (GET /Flag/{id}/_history/{vid}).
func (s *Server) vreadFlag(c echo.Context) error {
	return s.readOne(c, func(rc register.Caller) (register.Shown, error) {
		v, err := strconv.Atoi(c.Param("vid"))
		if err != nil {
			v = 0 // not a version number: the register answers not found
		}
		return s.Register.ReadPlanVersion(c.Request().Context(), rc, c.Param("id"), v)
	})
}

// readOne serves a read of one plan version as a Flag.
func (s *Server) readOne(c echo.Context, read func(register.Caller) (register.Shown, error)) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	shown, err := read(rc)
	if err != nil {
		return err
	}
	return s.writeFlag(c, http.StatusOK, shown)
}

// flagHistory returns every version of a plan (GET /Flag/{id}/_history).
func (s *Server) flagHistory(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	shown, err := s.Register.PlanHistory(c.Request().Context(), rc, c.Param("id"))
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, fhir.HistoryBundle(s.BaseURL, shown.Plans, shown.Today, shown.View))
}

// writeCaller is the caller of a write, refused before its request is read
// any further if it may not write plans at all.
func (s *Server) writeCaller(c echo.Context) (register.Caller, error) {
	rc, err := s.caller(c)
	if err != nil {
		return rc, err
	}
	return rc, s.Register.MayWrite(rc)
}

// optionalIfMatch reads If-Match when it is given (0 when not).
func optionalIfMatch(c echo.Context, op string) (int, error) {
	if c.Request().Header.Get("If-Match") == "" {
		return 0, nil
	}
	return requireIfMatch(c, op)
}

// requireIfMatch reads the version a versioned update is based on.
func requireIfMatch(c echo.Context, op string) (int, error) {
	h := c.Request().Header.Get("If-Match")
	if h == "" {
		return 0, cpis.E(op, cpis.PreconditionRequired, cpis.Expr("http.If-Match"), `an update needs If-Match with the version being changed, e.g. If-Match: W/"1"`)
	}
	v, ok := fhir.ParseETag(h)
	if !ok {
		return 0, cpis.E(op, cpis.PreconditionFailed, cpis.Expr("http.If-Match"), `If-Match must name a version, e.g. W/"1"`)
	}
	return v, nil
}

// planFromBody reads and parses the Flag in the request body. The
// register applies the SOP's rules and decides who may write it.
func planFromBody(c echo.Context, op string) (cpis.Plan, error) {
	body, err := readBody(c, MaxBodyBytes)
	if err != nil {
		return cpis.Plan{}, err
	}
	plan, err := fhir.ParseFlag(body)
	if err != nil {
		return cpis.Plan{}, cpis.E(op, err)
	}
	return plan, nil
}

// writeFlag writes the one plan version shown, with its ETag and
// Last-Modified, through the view the register chose.
func (s *Server) writeFlag(c echo.Context, status int, shown register.Shown) error {
	p := shown.Plans[0]
	versionHeaders(c, p)
	return s.writeResource(c, status, fhir.FlagResource(p, shown.Today, shown.View))
}
