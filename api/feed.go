package api

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/fhir/search"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The two feeds an LA system polls (docs/domain.md, Access to Service
// Notifications and The change feed). Both page by a cursor on the event
// log's commit order, so following next links neither skips nor repeats an
// event; the last page of an oldest-first read carries the log's horizon as
// Bundle.meta.lastUpdated, the _since (or _lastUpdated=ge) of the next poll.

// flagChanges answers GET /Flag/_history: every version of the caller's own
// plans, oldest first, as a history Bundle.
func (s *Server) flagChanges(c echo.Context) error {
	const op = "api.flagChanges"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	// A history Bundle has no place for an OperationOutcome of warnings
	// (every entry needs a request and a response): unknown parameters are
	// ignored, or refused under Prefer: handling=strict.
	q, _, err := search.ParseFlagHistory(queryParams(c), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	f, err := s.Register.PlanChanges(c.Request().Context(), rc, q)
	if err != nil {
		return err
	}
	plans := make([]cpis.Plan, len(f.Events))
	for i, e := range f.Events {
		plans[i] = e.Plan
	}
	feed := fhir.Feed{
		BaseURL: s.BaseURL,
		Self:    s.BaseURL + "/Flag/_history?" + search.EncodeFlagHistory(f.Query).Encode(),
		Plans:   plans,
		Today:   f.Today,
		View:    f.View,
	}
	if next, ok := f.Next(); ok {
		feed.Next = s.BaseURL + "/Flag/_history?" + search.EncodeFlagHistory(next).Encode()
	}
	feed.LastUpdated = f.PollFrom()
	return s.writeResource(c, http.StatusOK, fhir.FeedBundle(feed))
}

// searchCommunications answers GET /Communication: the ASNs sent to the
// caller's LA, newest first unless _sort=_lastUpdated; for a Trust's
// safeguarding team, its discrepancy reports (discrepancy.go).
func (s *Server) searchCommunications(c echo.Context) error {
	const op = "api.searchCommunications"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	if s.Register.MayReviewDiscrepancies(rc) {
		return s.searchDiscrepancies(c, rc)
	}
	q, recipient, warnings, err := search.ParseCommunicationSearch(queryParams(c), strict(c))
	if err != nil {
		return cpis.E(op, err)
	}
	f, err := s.Register.Notifications(c.Request().Context(), rc, q, recipient)
	if err != nil {
		return err
	}
	entries := make([]proto.Message, len(f.Events))
	for i, e := range f.Events {
		entries[i] = fhir.CommunicationResource(e.ASN, e.Stamp)
	}
	r := searchset{entries: entries, warnings: warnings, query: search.EncodeCommunication(f.Query, recipient)}
	if next, ok := f.Next(); ok {
		r.next = search.EncodeCommunication(next, recipient)
	}
	return s.writeSearchsetAsOf(c, "Communication", r, f.PollFrom())
}

// readCommunication answers GET /Communication/{id}: one ASN sent to the
// caller's LA, or one discrepancy report for a safeguarding team.
func (s *Server) readCommunication(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	if s.Register.MayReviewDiscrepancies(rc) {
		return s.readDiscrepancy(c, rc)
	}
	e, err := s.Register.Notification(c.Request().Context(), rc, c.Param("id"))
	if err != nil {
		return err
	}
	c.Response().Header().Set("Last-Modified", e.Stamp.UTC().Format(http.TimeFormat))
	return s.writeResource(c, http.StatusOK, fhir.CommunicationResource(e.ASN, e.Stamp))
}
