package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// entryBytes is what one Bundle entry may take of a Bundle's body: a Flag
// is well under 4 KiB, and its entry's request a few hundred bytes.
const entryBytes = 8 << 10

// postBundle carries out a batch or transaction Bundle of Flag writes
// (POST / at the base URL): a batch entry by entry, each on its own; a
// transaction all or nothing.
func (s *Server) postBundle(c echo.Context) error {
	const op = "api.postBundle"
	rc, err := s.writeCaller(c)
	if err != nil {
		return err
	}
	body, err := readBody(c, s.maxBundleEntries()*entryBytes)
	if err != nil {
		return err
	}
	b, err := fhir.ParseWriteBundle(body, s.maxBundleEntries())
	if err != nil {
		return cpis.E(op, err)
	}
	entries := make([]register.Entry, len(b.Entries))
	for i, e := range b.Entries {
		entries[i] = register.Entry{Write: writeOf(e), Err: e.Err}
	}
	ctx := c.Request().Context()
	if !b.Transaction {
		results, err := s.Register.Batch(ctx, rc, entries)
		if err != nil {
			return err
		}
		return s.writeResource(c, http.StatusOK, fhir.BatchResponse(false, entryResults(results)))
	}
	results, err := s.Register.Transaction(ctx, rc, entries)
	var failed *register.EntryError
	if errors.As(err, &failed) {
		// Nothing was stored: one OperationOutcome names the entry at fault.
		problems := fhir.InEntry(failed.Index, cpis.Problems(failed.Err))
		return s.writeResource(c, fhir.HTTPStatus(problems), fhir.RecordOutcome(problems))
	}
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, fhir.BatchResponse(true, entryResults(results)))
}

// maxBundleEntries is the configured limit, or the default.
func (s *Server) maxBundleEntries() int {
	if s.MaxBundleEntries > 0 {
		return s.MaxBundleEntries
	}
	return fhir.DefaultMaxBundleEntries
}

// writeOf is the write a Bundle entry asks for.
func writeOf(e fhir.WriteEntry) register.Write {
	w := register.Write{ID: e.ID, Reference: e.Reference, Expect: e.IfMatch, Plan: e.Plan}
	switch e.Method {
	case http.MethodPost:
		w.Kind, w.Reference = register.Create, e.IfNoneExist
	case http.MethodPut:
		w.Kind = register.Update
	case http.MethodDelete:
		w.Kind = register.Delete
	}
	return w
}

// entryResults are the register's results as the wire model's.
func entryResults(results []register.EntryResult) []fhir.EntryResult {
	out := make([]fhir.EntryResult, len(results))
	for i, r := range results {
		if r.Err != nil {
			out[i].Problems = cpis.Problems(r.Err)
			continue
		}
		p := r.Result.Plan
		out[i] = fhir.EntryResult{Status: writeStatus(r.Result.Outcome), ID: p.ID, Version: p.Version, LastModified: p.LastUpdated}
	}
	return out
}

// writeStatus is the HTTP status of a write's outcome, as a single write
// would be answered.
func writeStatus(o register.Outcome) int {
	switch o {
	case register.Created:
		return http.StatusCreated
	case register.Deleted:
		return http.StatusNoContent
	}
	return http.StatusOK
}
