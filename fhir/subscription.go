package fhir

import (
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	subpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/subscription_go_proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// A subscription as an R4 Subscription of the Subscriptions R4 Backport IG
// (hl7.fhir.uv.subscriptions-backport 1.1.0, profile backport-subscription).
// The same shape is written by SubscriptionResource and read by
// ParseSubscription:
//
//	id                 the subscription's id. On input optional and returned
//	                   to the caller (create ignores it, update compares it).
//	meta.profile       [backport-subscription]; on input optional, but if sent
//	                   must include it. meta.lastUpdated is the last change;
//	                   on input meta.versionId and meta.lastUpdated are ignored.
//	status             requested | active | error | off, required (R4 1..1).
//	                   Read as sent: the API decides what a client may set.
//	end                an instant, optional.
//	reason             required (R4 1..1): the subscriber's own words, plain
//	                   text of at most 1,000 characters.
//	criteria           the topic's canonical URL (cpis.Topics()), required.
//	_criteria          backport-filter-criteria extensions (valueString), one
//	                   search-style filter each, "Resource?param=value":
//	                   plan-change: exactly one,
//	                     Flag?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|<nhs>
//	                   ASN: at most one, the LA notified,
//	                     Communication?recipient:identifier=https://fhir.nhs.uk/Id/ods-organization-code|<code>
//	                     (recipient=<system>|<code> is read the same way).
//	                   Nothing else may filter a topic.
//	error              written when the status is error: why. Ignored on input.
//	channel.type       rest-hook, required.
//	channel.endpoint   required; its form is checked by cpis.CheckEndpoint.
//	channel.payload    application/fhir+json, required (the profile's 1..1),
//	                   with _payload backport-payload-content (valueCode
//	                   empty | id-only | full-resource), also required: the
//	                   profile makes it 1..1 and the IG gives no default, so a
//	                   subscription without it is refused, not guessed at.
//	channel.header     "Name: value" strings sent with every notification.
//	                   Never written back: each is rendered "Name: ***"
//	                   (MaskHeader), and a client that sends such a masked
//	                   header in an update means "keep the stored value"
//	                   (MaskedHeader; the register keeps the stored value).
//	channel.extension  backport-heartbeat-period (valueUnsignedInt seconds;
//	                   absent: no heartbeat), backport-timeout
//	                   (valueUnsignedInt seconds, at least 1; absent:
//	                   cpis.DefaultDeliveryTimeout), backport-max-count
//	                   (valuePositiveInt; absent: cpis.DefaultMaxCount).
//	anything else      refused with the element's FHIRPath, as for a Flag:
//	                   text, contained, contact, modifier extensions, other
//	                   extensions, meta.tag and meta.security ...
//
// The bounds (heartbeat period, timeout, max-count, header count and form,
// the endpoint's form) are cpis.Subscription.Check's, applied by the
// register; ParseSubscription reads shapes only.

// Canonical URLs of the Subscriptions R4 Backport IG, version 1.1.0.
const (
	// BackportBase is the IG's canonical base.
	BackportBase = "http://hl7.org/fhir/uv/subscriptions-backport"
	// BackportSubscriptionProfile is the profile of a topic-based R4 Subscription.
	BackportSubscriptionProfile = BackportBase + "/StructureDefinition/backport-subscription"
	// BackportStatusProfile is the profile of the Parameters that carries a
	// subscription's status, first in every notification.
	BackportStatusProfile = BackportBase + "/StructureDefinition/backport-subscription-status-r4"
	// BackportNotificationProfile is the profile of a notification Bundle.
	BackportNotificationProfile = BackportBase + "/StructureDefinition/backport-subscription-notification-r4"
	// StatusOperationURL and EventsOperationURL define
	// GET /Subscription/{id}/$status and GET /Subscription/{id}/$events.
	StatusOperationURL = BackportBase + "/OperationDefinition/backport-subscription-status"
	EventsOperationURL = BackportBase + "/OperationDefinition/backport-subscription-events"
	// TopicCanonicalURL is the CapabilityStatement extension listing a
	// topic a server offers, on its Subscription resource entry.
	TopicCanonicalURL = BackportBase + "/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"

	filterCriteriaURL  = BackportBase + "/StructureDefinition/backport-filter-criteria"
	payloadContentURL  = BackportBase + "/StructureDefinition/backport-payload-content"
	heartbeatPeriodURL = BackportBase + "/StructureDefinition/backport-heartbeat-period"
	timeoutURL         = BackportBase + "/StructureDefinition/backport-timeout"
	maxCountURL        = BackportBase + "/StructureDefinition/backport-max-count"
)

// subscriptionPayload is the only payload MIME type offered.
const subscriptionPayload = "application/fhir+json"

// MaxSubscriptionReason bounds Subscription.reason, in characters.
const MaxSubscriptionReason = 1000

// FHIRPath expressions of the elements ParseSubscription reports on.
const (
	filterExpr    = "Subscription.criteria.extension('backport-filter-criteria')"
	contentExpr   = "Subscription.channel.payload.extension('backport-payload-content')"
	heartbeatExpr = "Subscription.channel.extension('backport-heartbeat-period')"
	timeoutExpr   = "Subscription.channel.extension('backport-timeout')"
	maxCountExpr  = "Subscription.channel.extension('backport-max-count')"
)

// Filter parameters, as a filter names them.
const (
	patientFilter   = "patient:identifier"
	recipientFilter = "recipient:identifier"
)

// ParseSubscription reads an R4 Subscription of the backport-subscription
// profile (the shape above) and returns the subscription it asks for: ID,
// Topic, NHSNumber (plan-change) or LACode (ASN, when filtered), Endpoint,
// Headers (masked ones as sent: see MaskedHeader), Content, Status,
// Reason, HeartbeatPeriod, Timeout, MaxCount and End. Owner, Error, Created
// and Updated are never taken from the body.
//
// Every problem found is returned, joined, each an *cpis.Error of kind
// Invalid (InvalidNHSNumber for the filter's NHS number) with the FHIRPath
// of the element at fault. Messages never repeat a value from the body. It
// does not call cpis.Subscription.Check: the register does. On error the
// Subscription is the zero value.
func ParseSubscription(body []byte) (cpis.Subscription, error) {
	const op = "fhir.ParseSubscription"
	if err := checkEnvelope(op, body, "Subscription"); err != nil {
		return cpis.Subscription{}, err
	}
	m, err := unmarshaller.Unmarshal(body)
	if err != nil {
		return cpis.Subscription{}, subscriptionParserProblems(op, err)
	}
	sp := m.(*bcrpb.ContainedResource).GetSubscription()
	if sp == nil { // checkEnvelope saw resourceType Subscription, so this is not expected
		return cpis.Subscription{}, cpis.E(op, cpis.Invalid, cpis.Expr("Subscription.resourceType"), "the body is not a Subscription")
	}
	pr := &subProblems{op: op}
	walkElements(sp.ProtoReflect(), "Subscription", "Subscription", func(path, key string) bool {
		if !subscriptionElements[key] {
			pr.invalid(path, refusedSubscriptionElement)
			return false
		}
		return true
	})
	s := pr.subscription(sp)
	if len(pr.errs) > 0 {
		return cpis.Subscription{}, joinProblems(pr.errs)
	}
	return s, nil
}

// subscriptionElements is every element a client may send in a
// Subscription, as allowlist.go lists a Flag's.
var subscriptionElements = elementSet(
	"Subscription.id",
	"Subscription.meta", "Subscription.meta.versionId", "Subscription.meta.lastUpdated", "Subscription.meta.profile",
	"Subscription.status", "Subscription.end", "Subscription.reason", "Subscription.error",
	"Subscription.criteria", "Subscription.criteria.extension",
	"Subscription.criteria.extension.url", "Subscription.criteria.extension.valueString",
	"Subscription.channel", "Subscription.channel.type", "Subscription.channel.endpoint", "Subscription.channel.header",
	"Subscription.channel.payload", "Subscription.channel.payload.extension",
	"Subscription.channel.payload.extension.url", "Subscription.channel.payload.extension.valueCode",
	"Subscription.channel.extension", "Subscription.channel.extension.url",
	"Subscription.channel.extension.valueUnsignedInt", "Subscription.channel.extension.valuePositiveInt",
)

const refusedSubscriptionElement = "this element is not part of a CP-IS subscription (backport-subscription): it is refused rather than dropped"

// walkElements visits every set field of m, at FHIRPath path and
// allow-list key key (the path without indexes, a choice by its JSON name,
// valueString), and descends into those for which visit returns true.
// Inside a primitive only its id and extensions are elements.
func walkElements(m protoreflect.Message, path, key string, visit func(path, key string) bool) {
	primitive, choice := isPrimitive(m.Descriptor()), isChoice(m.Descriptor())
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if primitive && f.Name() != "id" && f.Name() != "extension" {
			return true
		}
		name := elementOf(f)
		p, k := path+"."+name, key+"."+name
		if choice {
			p, k = path+upperFirst(name), key+upperFirst(name)
		}
		switch {
		case f.Message() != nil && isChoice(f.Message()):
			walkElements(v.Message(), p, k, visit)
		case !visit(p, k) || f.Message() == nil:
		case f.IsList():
			for i := 0; i < v.List().Len(); i++ {
				walkElements(v.List().Get(i).Message(), p+"["+strconv.Itoa(i)+"]", k, visit)
			}
		default:
			walkElements(v.Message(), p, k, visit)
		}
		return true
	})
}

// subProblems collects what is wrong with one Subscription.
type subProblems struct {
	op   string
	errs []*cpis.Error
}

func (pr *subProblems) add(kind cpis.Kind, expr, msg string) {
	pr.errs = append(pr.errs, &cpis.Error{Op: pr.op, Kind: kind, Expression: expr, Msg: msg})
}

func (pr *subProblems) invalid(expr, msg string) { pr.add(cpis.Invalid, expr, msg) }

// subscription reads the subscription out of sp, recording every problem.
func (pr *subProblems) subscription(sp *subpb.Subscription) cpis.Subscription {
	s := cpis.Subscription{ID: sp.GetId().GetValue()}
	pr.subMeta(sp.GetMeta())
	s.Status = pr.subStatus(sp.GetStatus())
	if e := sp.GetEnd(); e != nil {
		s.End = time.UnixMicro(e.GetValueUs()).UTC()
	}
	s.Reason = pr.reason(sp.GetReason())
	pr.criteria(sp.GetCriteria(), &s)
	pr.channel(sp.GetChannel(), &s)
	return s
}

func (pr *subProblems) subMeta(m *dpb.Meta) {
	if len(m.GetProfile()) == 0 {
		return
	}
	for _, p := range m.GetProfile() {
		if p.GetValue() == BackportSubscriptionProfile {
			return
		}
	}
	pr.invalid("Subscription.meta.profile", "meta.profile, if sent, must include "+BackportSubscriptionProfile)
}

var subStatuses = map[cpb.SubscriptionStatusCode_Value]cpis.SubscriptionStatus{
	cpb.SubscriptionStatusCode_REQUESTED: cpis.SubRequested,
	cpb.SubscriptionStatusCode_ACTIVE:    cpis.SubActive,
	cpb.SubscriptionStatusCode_ERROR:     cpis.SubError,
	cpb.SubscriptionStatusCode_OFF:       cpis.SubOff,
}

func (pr *subProblems) subStatus(c *subpb.Subscription_StatusCode) cpis.SubscriptionStatus {
	s, ok := subStatuses[c.GetValue()]
	if !ok {
		pr.invalid("Subscription.status", "status is required: requested, active, error or off")
	}
	return s
}

func (pr *subProblems) reason(r *dpb.String) string {
	v := r.GetValue()
	switch {
	case v == "":
		pr.invalid("Subscription.reason", "reason is required (FHIR R4): say in a few words what the subscription is for")
	case !cpis.SafeText(v, MaxSubscriptionReason):
		pr.invalid("Subscription.reason", "reason is plain text of at most 1000 characters, with no control characters and no surrounding spaces")
	}
	return v
}

// criteria reads the topic and its filters.
func (pr *subProblems) criteria(c *dpb.String, s *cpis.Subscription) {
	s.Topic = cpis.Topic(c.GetValue())
	if !knownTopic(s.Topic) {
		pr.invalid("Subscription.criteria", "criteria is the canonical URL of one of this server's subscription topics: "+topicList())
		s.Topic = ""
	}
	var filters []string
	bad := false // a problem already reported: the filters are not checked against the topic
	for _, e := range c.GetExtension() {
		f := e.GetValue().GetStringValue().GetValue()
		switch {
		case e.GetUrl().GetValue() != filterCriteriaURL:
			pr.invalid("Subscription.criteria.extension", "criteria takes only "+filterCriteriaURL+" extensions")
		case f == "":
			pr.invalid(filterExpr, "a filter is a valueString: Resource?parameter=value")
		default:
			filters = append(filters, f)
			continue
		}
		bad = true
	}
	if bad {
		return
	}
	switch s.Topic {
	case cpis.TopicPlanChange:
		s.NHSNumber = pr.planFilter(filters)
	case cpis.TopicASN:
		s.LACode = pr.asnFilter(filters)
	}
}

// TopicID is the id of the Basic that describes topic t, the last segment
// of its canonical URL: GET /Basic/{id} serves profiles.Lookup("Basic", id).
func TopicID(t cpis.Topic) string {
	return string(t[strings.LastIndexByte(string(t), '/')+1:])
}

func knownTopic(t cpis.Topic) bool {
	for _, k := range cpis.Topics() {
		if t == k {
			return true
		}
	}
	return false
}

func topicList() string {
	var ts []string
	for _, t := range cpis.Topics() {
		ts = append(ts, string(t))
	}
	return strings.Join(ts, ", ")
}

// planFilter reads the one filter of a plan-change subscription: the
// child's NHS number.
func (pr *subProblems) planFilter(filters []string) cpis.NHSNumber {
	const form = "Flag?" + patientFilter + "=" + NHSNumberSystem + "|<nhs>"
	if len(filters) != 1 {
		pr.invalid(filterExpr, "a plan-change subscription watches one child: exactly one filter, "+form)
		return ""
	}
	v, ok := pr.filter(filters[0], "Flag", form, patientFilter)
	if !ok {
		return ""
	}
	nhs, ok := strings.CutPrefix(v, NHSNumberSystem+"|")
	if !ok {
		pr.invalid(filterExpr, "the child is named by NHS number: "+form)
		return ""
	}
	n, err := cpis.ParseNHSNumber(nhs)
	if err != nil {
		pr.add(cpis.InvalidNHSNumber, filterExpr, "the filter's NHS number is not valid: 10 digits passing the Modulus 11 check")
		return ""
	}
	return n
}

// odsCode is the form of an ODS organisation code.
var odsCode = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)

// asnFilter reads the optional filter of an ASN subscription: the LA
// notified, by ODS code.
func (pr *subProblems) asnFilter(filters []string) string {
	const form = "Communication?" + recipientFilter + "=" + ODSSystem + "|<code>"
	switch len(filters) {
	case 0:
		return ""
	case 1:
	default:
		pr.invalid(filterExpr, "an ASN subscription takes at most one filter, the local authority notified: "+form)
		return ""
	}
	v, ok := pr.filter(filters[0], "Communication", form, recipientFilter, "recipient")
	if !ok {
		return ""
	}
	code, ok := strings.CutPrefix(v, ODSSystem+"|")
	if !ok || !odsCode.MatchString(code) {
		pr.invalid(filterExpr, "the recipient is a local authority's ODS code (3 to 10 of A-Z 0-9): "+form)
		return ""
	}
	return code
}

// filter reads a search-style filter "Resource?parameter=value" on
// resource type typ, with one parameter, one of params, given once; it
// returns the value, decoded.
func (pr *subProblems) filter(f, typ, form string, params ...string) (string, bool) {
	rt, query, ok := strings.Cut(f, "?")
	if !ok || rt != typ {
		pr.invalid(filterExpr, "a filter on this topic has the form "+form)
		return "", false
	}
	q, err := url.ParseQuery(query)
	if err != nil || len(q) != 1 {
		pr.invalid(filterExpr, "a filter names one search parameter, once: "+form)
		return "", false
	}
	for _, p := range params {
		if vs, ok := q[p]; ok && len(vs) == 1 {
			return vs[0], true
		}
	}
	pr.invalid(filterExpr, "this topic can be filtered only as "+form)
	return "", false
}

// channel reads the rest-hook channel.
func (pr *subProblems) channel(ch *subpb.Subscription_Channel, s *cpis.Subscription) {
	if ch == nil {
		pr.invalid("Subscription.channel", "channel is required: type rest-hook, an endpoint and payload "+subscriptionPayload)
		return
	}
	if ch.GetType().GetValue() != cpb.SubscriptionChannelTypeCode_REST_HOOK || len(ch.GetType().GetExtension()) > 0 {
		pr.invalid("Subscription.channel.type", "the only channel type offered is rest-hook")
	}
	s.Endpoint = ch.GetEndpoint().GetValue()
	if s.Endpoint == "" {
		pr.invalid("Subscription.channel.endpoint", "endpoint is required: the https URL notifications are posted to")
	}
	s.Content = pr.payload(ch.GetPayload())
	for _, h := range ch.GetHeader() {
		s.Headers = append(s.Headers, h.GetValue())
	}
	s.Timeout, s.MaxCount = cpis.DefaultDeliveryTimeout, cpis.DefaultMaxCount
	pr.channelExtensions(ch.GetExtension(), s)
}

// payload reads the payload type and the content level.
func (pr *subProblems) payload(p *subpb.Subscription_Channel_PayloadCode) cpis.PayloadContent {
	if !strings.EqualFold(p.GetValue(), subscriptionPayload) {
		pr.invalid("Subscription.channel.payload", "payload is required and must be "+subscriptionPayload)
	}
	var content cpis.PayloadContent
	n := 0
	for _, e := range p.GetExtension() {
		if e.GetUrl().GetValue() != payloadContentURL {
			pr.invalid("Subscription.channel.payload.extension", "payload takes only the "+payloadContentURL+" extension")
			continue
		}
		n++
		content = cpis.PayloadContent(e.GetValue().GetCode().GetValue())
	}
	switch {
	case n != 1:
		pr.invalid(contentExpr, "payload needs exactly one "+payloadContentURL+" extension (the profile's 1..1): valueCode empty, id-only or full-resource")
	case content != cpis.ContentEmpty && content != cpis.ContentIDOnly && content != cpis.ContentFullResource:
		pr.invalid(contentExpr, "the payload content is a valueCode: empty, id-only or full-resource")
	default:
		return content
	}
	return ""
}

// channelExtensionExprs are the channel's extensions and the expressions
// problems with them are reported at.
var channelExtensionExprs = map[string]string{heartbeatPeriodURL: heartbeatExpr, timeoutURL: timeoutExpr, maxCountURL: maxCountExpr}

// channelExtensions reads the heartbeat period, timeout and max-count.
func (pr *subProblems) channelExtensions(exts []*dpb.Extension, s *cpis.Subscription) {
	seen := map[string]bool{}
	for _, e := range exts {
		u := e.GetUrl().GetValue()
		expr, ok := channelExtensionExprs[u]
		if !ok {
			pr.invalid("Subscription.channel.extension", "channel takes only the backport-heartbeat-period, backport-timeout and backport-max-count extensions")
			continue
		}
		if seen[u] {
			pr.invalid(expr, "this extension may appear only once")
		}
		seen[u] = true
		switch u {
		case heartbeatPeriodURL:
			s.HeartbeatPeriod = pr.seconds(e, expr, 0)
		case timeoutURL:
			s.Timeout = pr.seconds(e, expr, 1)
		case maxCountURL:
			s.MaxCount = pr.positive(e)
		}
	}
}

// seconds reads a valueUnsignedInt of at least least seconds.
func (pr *subProblems) seconds(e *dpb.Extension, expr string, least uint32) time.Duration {
	v := e.GetValue().GetUnsignedInt()
	if v == nil || v.GetValue() < least || v.GetValue() > math.MaxInt32 {
		msg := "this extension takes a valueUnsignedInt, a number of seconds"
		if least > 0 {
			msg += " of at least " + strconv.Itoa(int(least))
		}
		pr.invalid(expr, msg)
		return 0
	}
	return time.Duration(v.GetValue()) * time.Second
}

// positive reads max-count's valuePositiveInt (FHIR's: 1 to 2^31-1).
func (pr *subProblems) positive(e *dpb.Extension) int {
	v := e.GetValue().GetPositiveInt()
	if v == nil || v.GetValue() == 0 || v.GetValue() > math.MaxInt32 {
		pr.invalid(maxCountExpr, "this extension takes a valuePositiveInt, the most events in one notification")
		return 0
	}
	return int(v.GetValue())
}

// subscriptionParserProblems turns jsonformat's errors about a
// Subscription into *cpis.Error values, showing only the path and the
// library's fixed wording, as flagParserProblems does for a Flag.
func subscriptionParserProblems(op string, err error) error {
	var errs []*cpis.Error
	for _, e := range parserErrors(err) {
		errs = append(errs, subscriptionParserProblem(op, e))
	}
	return joinProblems(errs)
}

// safeSubscriptionPath matches the paths jsonformat reports about a
// Subscription; anything else is not shown.
var safeSubscriptionPath = regexp.MustCompile(`^Subscription(\.[A-Za-z_][A-Za-z0-9_]*(\[[0-9]+\])?)*$`)

func subscriptionParserProblem(op string, e parserError) *cpis.Error {
	bad := func(expr, msg string) *cpis.Error {
		return &cpis.Error{Op: op, Kind: cpis.Invalid, Expression: expr, Msg: msg}
	}
	if !e.ok {
		return bad("Subscription", "the request body is not a valid FHIR R4 Subscription")
	}
	expr := e.path
	if !safeSubscriptionPath.MatchString(expr) {
		expr = "Subscription"
	}
	if expr == "Subscription.contained" || strings.HasPrefix(expr, "Subscription.contained[") {
		return bad("Subscription.contained", "contained resources are not accepted in a subscription")
	}
	if name, ok := e.unknownElement(); ok {
		return bad(expr+"."+name, "unknown element: it is not part of a FHIR R4 Subscription")
	}
	if e.details == "unknown field" {
		return bad(expr, "an unknown element is present: it is not part of a FHIR R4 Subscription")
	}
	return bad(expr, "not valid FHIR R4: "+e.details)
}

// masked is what replaces a channel header's value whenever a
// subscription is shown.
const masked = "***"

// MaskHeader is channel header h ("Name: value") as a subscription shows
// it: "Name: ***". The receiver's credentials are never returned.
func MaskHeader(h string) string { return cpis.HeaderName(h) + ": " + masked }

// MaskedHeader reports whether h is a header as MaskHeader shows it. In an
// update, such a header means "keep the stored value of the header of this
// name": a client that read its subscription and sends it back unchanged
// keeps its credentials. (A credential that is literally "***" cannot be
// set.)
func MaskedHeader(h string) bool {
	name, value, ok := strings.Cut(h, ":")
	return ok && strings.TrimSpace(name) != "" && strings.TrimSpace(value) == masked
}

// SubscriptionResource renders s as a backport-subscription R4
// Subscription (the shape above), its channel headers masked.
// eventsSinceStart is not shown: neither R4's Subscription nor the IG's
// profile has an element for it (the IG carries it in the status
// Parameters of $status and of every notification); it is accepted so
// that callers can pass what they hold, and is ignored.
func SubscriptionResource(s cpis.Subscription) *subpb.Subscription {
	r := &subpb.Subscription{
		Meta:     &dpb.Meta{Profile: []*dpb.Canonical{canonical(BackportSubscriptionProfile)}},
		Status:   &subpb.Subscription_StatusCode{Value: subStatusCode(s.Status)},
		Criteria: &dpb.String{Value: string(s.Topic), Extension: filterExtensions(s)},
		Channel:  subscriptionChannel(s),
	}
	if s.ID != "" {
		r.Id = id(s.ID)
	}
	if !s.Updated.IsZero() {
		r.Meta.LastUpdated = instant(s.Updated)
	}
	if !s.End.IsZero() {
		r.End = instant(s.End)
	}
	if s.Reason != "" {
		r.Reason = str(s.Reason)
	}
	if s.Status == cpis.SubError && s.Error != "" {
		r.Error = str(s.Error)
	}
	return r
}

func subStatusCode(s cpis.SubscriptionStatus) cpb.SubscriptionStatusCode_Value {
	for code, st := range subStatuses {
		if st == s {
			return code
		}
	}
	return cpb.SubscriptionStatusCode_INVALID_UNINITIALIZED
}

// filterExtensions are the filters of s, in the form ParseSubscription reads.
func filterExtensions(s cpis.Subscription) []*dpb.Extension {
	var f string
	switch {
	case s.Topic == cpis.TopicPlanChange && s.NHSNumber != "":
		f = "Flag?" + patientFilter + "=" + NHSNumberSystem + "|" + s.NHSNumber.String()
	case s.Topic == cpis.TopicASN && s.LACode != "":
		f = "Communication?" + recipientFilter + "=" + ODSSystem + "|" + s.LACode
	default:
		return nil
	}
	return []*dpb.Extension{{Url: uri(filterCriteriaURL), Value: &dpb.Extension_ValueX{
		Choice: &dpb.Extension_ValueX_StringValue{StringValue: str(f)}}}}
}

func subscriptionChannel(s cpis.Subscription) *subpb.Subscription_Channel {
	ch := &subpb.Subscription_Channel{
		Type: &subpb.Subscription_Channel_TypeCode{Value: cpb.SubscriptionChannelTypeCode_REST_HOOK},
		Payload: &subpb.Subscription_Channel_PayloadCode{Value: subscriptionPayload, Extension: []*dpb.Extension{{
			Url: uri(payloadContentURL), Value: &dpb.Extension_ValueX{Choice: &dpb.Extension_ValueX_Code{Code: code(string(s.Content))}},
		}}},
	}
	if s.Endpoint != "" {
		ch.Endpoint = &dpb.Url{Value: s.Endpoint}
	}
	for _, h := range s.Headers {
		ch.Header = append(ch.Header, str(MaskHeader(h)))
	}
	if s.HeartbeatPeriod > 0 {
		ch.Extension = append(ch.Extension, unsignedExtension(heartbeatPeriodURL, s.HeartbeatPeriod))
	}
	if s.Timeout > 0 {
		ch.Extension = append(ch.Extension, unsignedExtension(timeoutURL, s.Timeout))
	}
	if s.MaxCount > 0 {
		ch.Extension = append(ch.Extension, &dpb.Extension{Url: uri(maxCountURL), Value: &dpb.Extension_ValueX{
			Choice: &dpb.Extension_ValueX_PositiveInt{PositiveInt: &dpb.PositiveInt{Value: uint32(min(s.MaxCount, math.MaxInt32))}}}})
	}
	return ch
}

// unsignedExtension is a duration as a valueUnsignedInt of whole seconds
// (at most 2^31-1, what a FHIR unsignedInt holds).
func unsignedExtension(url string, d time.Duration) *dpb.Extension {
	secs := uint32(min(d/time.Second, math.MaxInt32))
	return &dpb.Extension{Url: uri(url), Value: &dpb.Extension_ValueX{
		Choice: &dpb.Extension_ValueX_UnsignedInt{UnsignedInt: &dpb.UnsignedInt{Value: secs}}}}
}
