package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
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

// readBody reads the request body, at most limit bytes of it.
func readBody(c echo.Context, limit int) ([]byte, error) {
	const op = "api.readBody"
	if ct := c.Request().Header.Get(echo.HeaderContentType); ct != "" && !jsonMedia(ct) {
		return nil, cpis.E(op, cpis.UnsupportedMedia, "the body must be application/fhir+json")
	}
	b, err := io.ReadAll(io.LimitReader(c.Request().Body, int64(limit)+1))
	if err != nil {
		return nil, cpis.E(op, cpis.Invalid, "the request body could not be read")
	}
	if len(b) > limit {
		return nil, cpis.E(op, cpis.TooLarge, fmt.Sprintf("the request body is larger than %d KiB", limit>>10))
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
