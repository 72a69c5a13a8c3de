package api

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// fhirJSON is the media type of every response body.
const fhirJSON = "application/fhir+json; charset=utf-8"

// writeResource marshals a FHIR resource and writes it with the given status.
func (s *Server) writeResource(c echo.Context, status int, r proto.Message) error {
	b, err := fhir.MarshalResource(r)
	if err != nil {
		return cpis.E("api.writeResource", cpis.Other, err)
	}
	return c.Blob(status, fhirJSON, b)
}

// writeJSON writes a plain JSON document (the SMART configuration, dev tokens).
func writeJSON(c echo.Context, status int, v any) error {
	return c.JSON(status, v)
}

// versionHeaders sets ETag and Last-Modified for one version of a plan.
func versionHeaders(c echo.Context, p cpis.Plan) {
	h := c.Response().Header()
	h.Set("ETag", fhir.ETag(p.Version))
	h.Set(echo.HeaderLastModified, p.LastUpdated.UTC().Format(http.TimeFormat))
}

// parseIfMatch reads a version from If-Match: W/"3", "3" or 3.
func parseIfMatch(h string) (int, bool) {
	h = strings.TrimSpace(h)
	h = strings.TrimPrefix(h, "W/")
	h = strings.Trim(h, `"`)
	v, err := strconv.Atoi(h)
	return v, err == nil && v > 0
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(c echo.Context) ([]byte, error) {
	const op = "api.readBody"
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" && !jsonMedia(ct) {
		return nil, cpis.E(op, cpis.UnsupportedMedia, "the body must be application/fhir+json")
	}
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, MaxBodyBytes+1))
	if err != nil {
		return nil, cpis.E(op, cpis.Invalid, "the request body could not be read")
	}
	if len(b) > MaxBodyBytes {
		return nil, cpis.E(op, cpis.TooLarge, "the request body is larger than 64 KiB")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, cpis.E(op, cpis.Invalid, cpis.Expr("Flag"), "the request body is empty")
	}
	return b, nil
}

func jsonMedia(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/fhir+json" || mt == "application/json"
}
