package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// importTime is how long an import may take to send and to answer: an LA's
// whole caseload (up to 300,000 plans) takes about a minute, and the
// server's usual read and write timeouts (30 s) would cut it off.
const importTime = 30 * time.Minute

// importFlags loads an LA's file of Flags (POST /Flag/$import, NDJSON, one
// plan per line keyed by the LA's reference): mode=delta (default) creates
// or updates each line, mode=full also ends the LA's current plans the file
// no longer holds; dryRun=true reports and stores nothing; force=true lets a
// full import end more than the guard allows. The body is read a line at a
// time, never whole. The answer is a Parameters report.
func (s *Server) importFlags(c echo.Context) error {
	const op = "api.importFlags"
	rc, err := s.writeCaller(c)
	if err != nil {
		return err
	}
	if !ndjsonMedia(c.Request().Header.Get(echo.HeaderContentType)) {
		return cpis.E(op, cpis.UnsupportedMedia, "an import's body must be application/fhir+ndjson: one Flag per line")
	}
	o, err := importOptions(queryParams(c), op)
	if err != nil {
		return err
	}
	ctl := http.NewResponseController(c.Response().Writer)
	deadline := time.Now().Add(importTime) // the connection's deadlines are on the real clock
	_ = ctl.SetReadDeadline(deadline)
	_ = ctl.SetWriteDeadline(deadline)
	ctx := c.Request().Context()
	rep, err := s.Register.Import(ctx, rc, ndjsonLines(ctx, c.Request().Body), parseFlagLine, o)
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, fhir.ImportParameters(importReport(rep)))
}

// importOptions reads mode, dryRun and force; anything else is refused, as
// an import must not be run other than as asked.
func importOptions(q map[string][]string, op string) (register.ImportOptions, error) {
	var o register.ImportOptions
	for name, vs := range q {
		if len(vs) != 1 {
			return o, cpis.E(op, cpis.InvalidValue, cpis.Expr(name), name+" may be given once")
		}
		v := vs[0]
		switch {
		case name == "mode" && (v == "delta" || v == "full"):
			o.Full = v == "full"
		case name == "dryRun" && (v == "true" || v == "false"):
			o.DryRun = v == "true"
		case name == "force" && (v == "true" || v == "false"):
			o.Force = v == "true"
		case name == "mode" || name == "dryRun" || name == "force":
			return o, cpis.E(op, cpis.InvalidValue, cpis.Expr(name), "mode is delta or full; dryRun and force are true or false")
		default:
			return o, cpis.E(op, cpis.InvalidValue, cpis.Expr(shownName(name)), "an import takes only mode, dryRun and force")
		}
	}
	return o, nil
}

// shownName is a parameter name as an error may repeat it.
func shownName(name string) string {
	if len(name) > 32 || strings.ContainsFunc(name, func(r rune) bool { return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) {
		return ""
	}
	return name
}

// ndjsonMedia reports whether ct is a newline-delimited JSON media type.
func ndjsonMedia(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "application/fhir+ndjson", "application/ndjson", "application/x-ndjson":
		return true
	}
	return false
}

// importReport is the register's report as the wire model's. A line refused
// for several reasons is listed once for each.
func importReport(r register.ImportReport) fhir.ImportReport {
	out := fhir.ImportReport{
		Mode: "delta", DryRun: r.Options.DryRun,
		Created: r.Created, Updated: r.Updated, Unchanged: r.Unchanged, Ended: r.Ended,
		NotReconciled: r.NotReconciled, ReconciliationSkipped: r.ReconciliationSkipped,
		Rejected: len(r.Rejections),
	}
	if r.Options.Full {
		out.Mode = "full"
	}
	for _, rej := range r.Rejections {
		for _, p := range cpis.Problems(rej.Err) {
			out.Rejections = append(out.Rejections, fhir.Rejection{Line: rej.Line, Problem: p})
		}
	}
	return out
}
