package cpis

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Subscriptions push the event log to the systems that asked for it
// (docs/domain.md, Subscriptions): an LA's system receives its ASNs as they
// are sent, and a system watching a child learns when a plan on that child
// starts, changes or ends. They follow the FHIR R4 Subscriptions Backport
// IG: a subscription names a topic, a filter, a rest-hook endpoint and how
// much of each event a notification carries.

// Topic is the canonical URL of a subscription topic.
type Topic string

// The topics this service offers.
const (
	// TopicASN is the ASNs sent to the subscribing LA: its own only.
	TopicASN Topic = "https://cpis.example.org/fhir/SubscriptionTopic/access-to-service-notification"
	// TopicPlanChange is the plan versions stored (created, updated,
	// ended, withdrawn) on one child, named by NHS number.
	TopicPlanChange Topic = "https://cpis.example.org/fhir/SubscriptionTopic/plan-change"
)

// Topics lists the topics in a stable order.
func Topics() []Topic { return []Topic{TopicASN, TopicPlanChange} }

// PayloadContent is how much of each event a notification carries
// (backport-payload-content).
type PayloadContent string

// Payload contents.
const (
	ContentEmpty        PayloadContent = "empty"         // the event numbers only
	ContentIDOnly       PayloadContent = "id-only"       // and the focus resource's id
	ContentFullResource PayloadContent = "full-resource" // and the focus resource itself
)

// SubscriptionStatus is a subscription's status (R4 Subscription.status).
type SubscriptionStatus string

// Subscription statuses.
const (
	SubRequested SubscriptionStatus = "requested" // created: its handshake has not been answered yet
	SubActive    SubscriptionStatus = "active"    // delivering
	SubError     SubscriptionStatus = "error"     // delivery failed for the whole retry period; events keep being numbered
	SubOff       SubscriptionStatus = "off"       // stopped by its owner or by its end; events keep being numbered
)

// Bounds of what a subscription may ask for.
const (
	MaxSubscriptionHeaders  = 10
	MaxSubscriptionHeader   = 4096 // bytes of one "Name: value" header
	MaxSubscriptionEndpoint = 2048 // bytes of the endpoint URL
	MaxHeartbeatPeriod      = 24 * time.Hour
	DefaultDeliveryTimeout  = 10 * time.Second
	MaxDeliveryTimeout      = 10 * time.Second
	DefaultMaxCount         = 100 // events per notification
	MaxMaxCount             = 1000
)

// Subscription is one system's standing request for the events of a topic.
type Subscription struct {
	ID    string
	Owner Actor // the subscribing system, as its token said when it subscribed
	Topic Topic
	// LACode is the LA whose events the subscription receives: for
	// TopicASN the recipient (the owner's own LA); for TopicPlanChange the
	// plans' LA when the owner is an LA system, "" for a health system
	// (every LA's plans on the child).
	LACode    string
	NHSNumber NHSNumber // TopicPlanChange: the child watched
	Endpoint  string    // the rest-hook URL
	// Headers are sent with every notification ("Name: value"): the
	// receiver's credentials. Never logged, never returned.
	Headers         []string
	Content         PayloadContent
	Status          SubscriptionStatus
	Error           string        // why the status is error; "" otherwise
	Reason          string        // the subscriber's own words, as R4 requires
	HeartbeatPeriod time.Duration // 0: no heartbeat
	Timeout         time.Duration // how long an attempt may take (at most MaxDeliveryTimeout)
	MaxCount        int           // events per notification
	End             time.Time     // zero: no end
	Created         time.Time
	Updated         time.Time
}

// Check is what every subscription must satisfy before it is stored,
// whoever asks: the rules of who may subscribe to what are the
// register's. dev allows http to a loopback endpoint.
func (s Subscription) Check(dev bool) error {
	const op = "cpis.Subscription.Check"
	switch {
	case s.Topic != TopicASN && s.Topic != TopicPlanChange:
		return E(op, Invalid, Expr("Subscription.criteria"), "no such subscription topic")
	case s.Topic == TopicPlanChange && s.NHSNumber == "":
		return E(op, Invalid, Expr("Subscription.criteria"), "a plan-change subscription watches one child: filter by patient:identifier with an NHS number")
	case s.Topic == TopicASN && s.NHSNumber != "":
		return E(op, Invalid, Expr("Subscription.criteria"), "the ASN topic is filtered by recipient only")
	case s.Content != ContentEmpty && s.Content != ContentIDOnly && s.Content != ContentFullResource:
		return E(op, Invalid, Expr("Subscription.channel.payload"), "payload content is empty, id-only or full-resource")
	case s.HeartbeatPeriod < 0 || s.HeartbeatPeriod > MaxHeartbeatPeriod:
		return E(op, Invalid, Expr("Subscription.channel"), "the heartbeat period is at most a day")
	case s.Timeout < 0 || s.Timeout > MaxDeliveryTimeout:
		return E(op, Invalid, Expr("Subscription.channel"), fmt.Sprintf("the timeout is at most %d seconds", int(MaxDeliveryTimeout.Seconds())))
	case s.MaxCount < 0 || s.MaxCount > MaxMaxCount:
		return E(op, Invalid, Expr("Subscription.channel"), fmt.Sprintf("max-count is 1 to %d", MaxMaxCount))
	case len(s.Headers) > MaxSubscriptionHeaders:
		return E(op, Invalid, Expr("Subscription.channel.header"), fmt.Sprintf("at most %d channel headers", MaxSubscriptionHeaders))
	}
	for _, h := range s.Headers {
		if err := checkHeader(h); err != nil {
			return E(op, Invalid, Expr("Subscription.channel.header"), err.Error())
		}
	}
	if s.NHSNumber != "" {
		if _, err := ParseNHSNumber(string(s.NHSNumber)); err != nil {
			return E(op, Invalid, Expr("Subscription.criteria"), "the filter's NHS number is not valid", err)
		}
	}
	return CheckEndpoint(s.Endpoint, dev)
}

// CheckEndpoint checks the form of a rest-hook endpoint: an absolute
// https URL with a host and no credentials in it, or in dev mode http to
// a loopback host. Where the host resolves to is checked when it is
// dialled (the delivery's network policy), since DNS may change.
func CheckEndpoint(endpoint string, dev bool) error {
	const op = "cpis.CheckEndpoint"
	bad := func(msg string) error { return E(op, Invalid, Expr("Subscription.channel.endpoint"), msg) }
	if len(endpoint) > MaxSubscriptionEndpoint {
		return bad("the endpoint URL is too long")
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil || !u.IsAbs() || u.Hostname() == "" || u.Opaque != "":
		return bad("the endpoint must be an absolute https URL")
	case u.User != nil:
		return bad("the endpoint must not carry credentials: send them in a channel header")
	case u.Fragment != "":
		return bad("the endpoint must not have a fragment")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && dev && IsLoopbackHost(u.Hostname()):
		return nil
	case u.Scheme == "http" && dev:
		return bad("plain http is allowed only to a loopback host, in dev mode")
	}
	return bad("the endpoint must be an https URL")
}

// IsLoopbackHost reports whether host names the loopback interface by
// name or address.
func IsLoopbackHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().IsLoopback()
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// checkHeader checks one "Name: value" channel header.
func checkHeader(h string) error {
	name, value, ok := strings.Cut(h, ":")
	name = strings.TrimSpace(name)
	switch {
	case len(h) > MaxSubscriptionHeader:
		return fmt.Errorf("a channel header is at most %d bytes", MaxSubscriptionHeader)
	case !ok || name == "" || strings.TrimSpace(value) == "":
		return fmt.Errorf("a channel header is \"Name: value\"")
	case strings.ContainsAny(h, "\r\n\x00"):
		return fmt.Errorf("a channel header is one line")
	}
	for _, r := range name {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) {
			return fmt.Errorf("a channel header's name is a token")
		}
	}
	switch strings.ToLower(name) {
	case "host", "content-length", "content-type", "transfer-encoding", "connection":
		return fmt.Errorf("the channel header %s is the server's to set", name)
	}
	return nil
}

// HeaderName is the name of a "Name: value" channel header.
func HeaderName(h string) string {
	name, _, _ := strings.Cut(h, ":")
	return strings.TrimSpace(name)
}

// Backoff is the wait before delivery attempt n+1 after n consecutive
// failures (n >= 1): base doubling, at most ceiling.
func Backoff(n int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}
