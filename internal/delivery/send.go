package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// maxAnswer is how much of a receiver's answer is read: the status is what
// counts, and a hostile receiver must not make the server read gigabytes.
const maxAnswer = 64 << 10

// sender POSTs notifications under the network policy.
type sender struct {
	policy Policy
	client *http.Client
}

// newSender builds the HTTP client every notification goes through:
// redirects are not followed (a 3xx is a failed delivery, never a second
// request to a host nobody vetted), connections are checked by the policy
// as they are dialled, and each attempt is bounded by the subscription's
// timeout.
func newSender(p Policy) *sender {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // a proxy would dial on our behalf, past the policy
	t.MaxIdleConnsPerHost = 4
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		d := net.Dialer{Timeout: cpis.MaxDeliveryTimeout, Control: p.control(host)}
		return d.DialContext(ctx, network, addr)
	}
	return &sender{policy: p, client: &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// attemptError is a failed delivery attempt, worded for the subscription's
// owner ($status) and for the logs: it never holds the endpoint's URL, the
// channel headers or the notification.
type attemptError struct{ reason string }

func (e *attemptError) Error() string { return e.reason }

// post sends body to sub's endpoint with its channel headers, and returns
// nil only for a 2xx answer within timeout.
func (s *sender) post(ctx context.Context, sub cpis.Subscription, body []byte) error {
	timeout := sub.Timeout
	if timeout <= 0 || timeout > cpis.MaxDeliveryTimeout {
		timeout = cpis.DefaultDeliveryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.policy.Check(ctx, sub.Endpoint); err != nil {
		return &attemptError{reason: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return &attemptError{reason: "the endpoint is not a URL"}
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Accept", "application/fhir+json")
	for _, h := range sub.Headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return &attemptError{reason: describe(err, ctx)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &attemptError{reason: fmt.Sprintf("the endpoint answered HTTP %d", resp.StatusCode)}
	}
	return nil
}

// describe words a transport error without the URL it carries.
func describe(err error, ctx context.Context) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, errForbiddenAddress):
		return errForbiddenAddress.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return "no answer within the timeout"
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		return "the endpoint could not be reached (" + ne.Op + ")"
	}
	var de *net.DNSError
	if errors.As(err, &de) {
		return "the endpoint's host does not resolve"
	}
	return "the endpoint could not be reached"
}
