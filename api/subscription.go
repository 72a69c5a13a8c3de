package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/delivery"
	"github.com/cpis-fhir/cpis/internal/register"
)

// Subscriptions (docs/domain.md, Subscriptions), in the shape of the R4
// Subscriptions Backport IG. The register decides who may subscribe to
// what and keeps each subscription its owner's; internal/delivery sends
// the notifications.

// maxEventsPage is the most events one $events answer holds: a receiver
// asks again from the next number.
const maxEventsPage = 1000

// createSubscription answers POST /Subscription: 201 with the subscription,
// status requested; its handshake follows.
func (s *Server) createSubscription(c echo.Context) error {
	const op = "api.createSubscription"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	sub, err := subscriptionFromBody(c, op)
	if err != nil {
		return err
	}
	rec, err := s.Register.Subscribe(c.Request().Context(), rc, sub)
	if err != nil {
		return err
	}
	s.wakeDelivery()
	c.Response().Header().Set(echo.HeaderLocation, s.BaseURL+"/Subscription/"+rec.ID)
	return s.writeResource(c, http.StatusCreated, fhir.SubscriptionResource(rec.Subscription))
}

// readSubscription answers GET /Subscription/{id}: the caller's own only.
func (s *Server) readSubscription(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	rec, err := s.Register.Subscription(c.Request().Context(), rc, c.Param("id"))
	if err != nil {
		return err
	}
	return s.writeResource(c, http.StatusOK, fhir.SubscriptionResource(rec.Subscription))
}

// searchSubscriptions answers GET /Subscription: the caller's own
// subscriptions, oldest first, in one page.
func (s *Server) searchSubscriptions(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	recs, err := s.Register.Subscriptions(c.Request().Context(), rc)
	if err != nil {
		return err
	}
	entries := make([]proto.Message, len(recs))
	for i, rec := range recs {
		entries[i] = fhir.SubscriptionResource(rec.Subscription)
	}
	return s.writeSearchset(c, "Subscription", searchset{entries: entries, query: map[string][]string{}})
}

// updateSubscription answers PUT /Subscription/{id}: a new endpoint,
// headers, payload or status. A header sent back masked, as GET shows it,
// keeps its stored value.
func (s *Server) updateSubscription(c echo.Context) error {
	const op = "api.updateSubscription"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	sub, err := subscriptionFromBody(c, op)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if sub.ID != "" && sub.ID != id {
		return cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.id"), "the resource id in the body does not match the id in the URL")
	}
	sub.ID = id
	rec, err := s.Register.ChangeSubscription(c.Request().Context(), rc, sub, fhir.MaskedHeader)
	if err != nil {
		return err
	}
	s.wakeDelivery()
	return s.writeResource(c, http.StatusOK, fhir.SubscriptionResource(rec.Subscription))
}

// deleteSubscription answers DELETE /Subscription/{id}: 204.
func (s *Server) deleteSubscription(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	if err := s.Register.Unsubscribe(c.Request().Context(), rc, c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// subscriptionStatus answers GET /Subscription/{id}/$status: a searchset
// Bundle holding the subscription's status Parameters (query-status).
func (s *Server) subscriptionStatus(c echo.Context) error {
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	rec, err := s.Register.Subscription(c.Request().Context(), rc, c.Param("id"))
	if err != nil {
		return err
	}
	n := delivery.Notification(s.BaseURL, rec, "query-status", register.Notice{}, s.Now())
	return s.writeResource(c, http.StatusOK, fhir.StatusBundle(s.BaseURL, []fhir.Notification{n}))
}

// subscriptionEvents answers GET /Subscription/{id}/$events: the events
// numbered eventsSinceNumber to eventsUntilNumber (both optional), at most
// maxEventsPage of them, as a notification Bundle (query-event) with the
// subscription's content or the one the content parameter asks for.
func (s *Server) subscriptionEvents(c echo.Context) error {
	const op = "api.subscriptionEvents"
	rc, err := s.caller(c)
	if err != nil {
		return err
	}
	since, err := eventNumber(c, "eventsSinceNumber", op)
	if err != nil {
		return err
	}
	until, err := eventNumber(c, "eventsUntilNumber", op)
	if err != nil {
		return err
	}
	content := cpis.PayloadContent(c.QueryParam("content"))
	switch content {
	case "", cpis.ContentEmpty, cpis.ContentIDOnly, cpis.ContentFullResource:
	default:
		return cpis.E(op, cpis.InvalidValue, cpis.Expr("content"), "content is empty, id-only or full-resource")
	}
	rec, n, err := s.Register.SubscriptionEvents(c.Request().Context(), rc, c.Param("id"), since, until, maxEventsPage, content)
	if err != nil {
		return err
	}
	if content != "" {
		rec.Content = content
	}
	return s.writeResource(c, http.StatusOK, fhir.NotificationBundle(delivery.Notification(s.BaseURL, rec, "query-event", n, s.Now())))
}

// eventNumber reads an optional event number parameter: 1 or more.
func eventNumber(c echo.Context, name, op string) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return 0, cpis.E(op, cpis.InvalidValue, cpis.Expr(name), name+" is an event number: 1 or more")
	}
	return n, nil
}

// subscriptionFromBody reads and parses the Subscription in the request body.
func subscriptionFromBody(c echo.Context, op string) (cpis.Subscription, error) {
	body, err := readBody(c, MaxBodyBytes)
	if err != nil {
		return cpis.Subscription{}, err
	}
	sub, err := fhir.ParseSubscription(body)
	if err != nil {
		return cpis.Subscription{}, cpis.E(op, err)
	}
	return sub, nil
}

// wakeDelivery asks the deliverer, when there is one, to look now.
func (s *Server) wakeDelivery() {
	if s.Wake != nil {
		s.Wake()
	}
}
