package fhir

import (
	"strconv"
	"strings"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	ppb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/parameters_go_proto"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Notifications of the Subscriptions R4 Backport IG (1.1.0): a Bundle of
// type history (profile backport-subscription-notification-r4) whose
// first entry is the subscription's status, a Parameters resource of the
// profile backport-subscription-status-r4:
//
//	subscription                     valueReference, BaseURL/Subscription/id
//	topic                            valueCanonical; left out for empty
//	                                 content (the IG: SHOULD NOT be present)
//	status                           valueCode: the subscription's status
//	type                             valueCode: handshake, heartbeat,
//	                                 event-notification, query-status, query-event
//	events-since-subscription-start  valueString (the IG types it string, so
//	                                 that 64-bit counts survive JSON)
//	notification-event               one per event (event-notification and
//	                                 query-event only), parts event-number
//	                                 (valueString), timestamp (valueInstant)
//	                                 and, unless the content is empty, focus
//	                                 (valueReference, absolute: BaseURL/Flag/id
//	                                 or BaseURL/Communication/id)
//	error                            valueCodeableConcept, its text the
//	                                 reason, when the status is error
//
// The status entry's fullUrl is urn:uuid:<the Parameters' id>; as a history
// Bundle requires (bdl-3, bdl-4), its request is the $status call that
// would return it (GET BaseURL/Subscription/id/$status) and its response
// "200". The id is derived from what the notification is (a name-based
// UUID of the subscription, the type, the timestamp and the event numbers),
// since this package has no source of randomness: two different
// notifications never share it, and rendering one twice gives the same.
//
// Content (the subscription's, or $events' content parameter as the
// caller sets it):
//
//	empty          the Parameters only; no focus.
//	id-only        the Parameters with each event's focus, and no other
//	               entry (as the IG's R4 id-only example: the ids are in focus).
//	full-resource  the Parameters with each event's focus, then one entry
//	               per event, fullUrl BaseURL/Type/id, with its request and
//	               response: a plan version as the plan's history shows it
//	               (POST for version 1, DELETE for a withdrawal, PUT
//	               otherwise), FlagResource on Today through View; an ASN as
//	               POST Communication, 201, CommunicationResource. A plan the
//	               subscriber may no longer see (Withdrawn) is an entry with
//	               request DELETE and no resource.

// Notification types (the IG's subscription-notification-type codes).
const (
	NotifyHandshake   = "handshake"
	NotifyHeartbeat   = "heartbeat"
	NotifyEvent       = "event-notification"
	NotifyQueryStatus = "query-status"
	NotifyQueryEvent  = "query-event"
)

// Notification is one notification, or the answer to $status or $events.
type Notification struct {
	BaseURL      string            // the server's base URL, for absolute references
	Subscription cpis.Subscription // its ID, Topic and Content shape the Bundle
	Type         string            // NotifyHandshake ... NotifyQueryEvent
	Status       cpis.SubscriptionStatus
	// EventsSinceStart is the number of events the subscription has had
	// since it was created (handshakes and heartbeats are not events).
	EventsSinceStart int64
	Events           []NotificationEvent // event-notification and query-event only, in number order
	Error            string              // why the status is error (shown when it is)
	Timestamp        time.Time           // Bundle.timestamp: when the notification was made
	Today            cpis.Date           // the day a plan's status is computed on
	View             cpis.View           // what the subscriber is shown of a plan
}

// NotificationEvent is one numbered event of a subscription.
type NotificationEvent struct {
	Number    int64
	Timestamp time.Time  // when the event happened (its commit); zero leaves it out
	Plan      *cpis.Plan // plan-change: the plan version
	// Withdrawn says the plan may no longer be shown to this subscriber:
	// full-resource gives an entry with request DELETE and no resource.
	Withdrawn   bool
	ASN         *cpis.ASN // ASN topic: the notification
	LastUpdated time.Time // the ASN's feed stamp, for CommunicationResource
}

// NotificationBundle builds the notification Bundle of n (the shape
// above): type history, the status Parameters first, then, for
// full-resource content, an entry per event.
func NotificationBundle(n Notification) *bcrpb.Bundle {
	b := &bcrpb.Bundle{
		Meta:  &dpb.Meta{Profile: []*dpb.Canonical{canonical(BackportNotificationProfile)}},
		Type:  &bcrpb.Bundle_TypeCode{Value: cpb.BundleTypeCode_HISTORY},
		Entry: []*bcrpb.Bundle_Entry{statusEntry(n)},
	}
	if !n.Timestamp.IsZero() {
		b.Timestamp = instant(n.Timestamp)
	}
	if n.Subscription.Content != cpis.ContentFullResource {
		return b
	}
	for _, e := range events(n) {
		if entry := eventEntry(n, e); entry != nil {
			b.Entry = append(b.Entry, entry)
		}
	}
	return b
}

// StatusBundle is the answer to $status: a searchset Bundle of one status
// Parameters (type query-status unless a Notification says otherwise) per
// subscription, each built as NotificationBundle builds its first entry,
// with base URL baseURL.
func StatusBundle(baseURL string, statuses []Notification) *bcrpb.Bundle {
	b := &bcrpb.Bundle{
		Type:  &bcrpb.Bundle_TypeCode{Value: cpb.BundleTypeCode_SEARCHSET},
		Total: &dpb.UnsignedInt{Value: uint32(len(statuses))},
		Entry: make([]*bcrpb.Bundle_Entry, 0, len(statuses)),
	}
	for _, n := range statuses {
		n.BaseURL = baseURL
		if n.Type == "" {
			n.Type = NotifyQueryStatus
		}
		p := StatusParameters(n)
		b.Entry = append(b.Entry, &bcrpb.Bundle_Entry{
			FullUrl:  uri("urn:uuid:" + p.GetId().GetValue()),
			Resource: contain(p),
			Search:   &bcrpb.Bundle_Entry_Search{Mode: &bcrpb.Bundle_Entry_Search_ModeCode{Value: cpb.SearchEntryModeCode_MATCH}},
		})
	}
	return b
}

// statusEntry is the first entry of a notification: the status Parameters.
func statusEntry(n Notification) *bcrpb.Bundle_Entry {
	p := StatusParameters(n)
	return &bcrpb.Bundle_Entry{
		FullUrl:  uri("urn:uuid:" + p.GetId().GetValue()),
		Resource: contain(p),
		Request: &bcrpb.Bundle_Entry_Request{
			Method: &bcrpb.Bundle_Entry_Request_MethodCode{Value: cpb.HTTPVerbCode_GET},
			Url:    uri(subscriptionURL(n) + "/$status"),
		},
		Response: &bcrpb.Bundle_Entry_Response{Status: str("200")},
	}
}

// StatusParameters is the status of n as a backport-subscription-status-r4
// Parameters (the shape above), with a name-based UUID as its id.
func StatusParameters(n Notification) *ppb.Parameters {
	p := &ppb.Parameters{
		Id:   id(notificationID(n).String()),
		Meta: &dpb.Meta{Profile: []*dpb.Canonical{canonical(BackportStatusProfile)}},
	}
	add := func(name string, v *ppb.Parameters_Parameter_ValueX) {
		p.Parameter = append(p.Parameter, &ppb.Parameters_Parameter{Name: str(name), Value: v})
	}
	add("subscription", refValue(subscriptionURL(n)))
	if n.Subscription.Content != cpis.ContentEmpty {
		add("topic", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Canonical{Canonical: canonical(string(n.Subscription.Topic))}})
	}
	add("status", codeValue(string(n.Status)))
	add("type", codeValue(n.Type))
	add("events-since-subscription-start", stringValue(strconv.FormatInt(n.EventsSinceStart, 10)))
	for _, e := range events(n) {
		p.Parameter = append(p.Parameter, notificationEvent(n, e))
	}
	if n.Status == cpis.SubError && n.Error != "" {
		add("error", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_CodeableConcept{
			CodeableConcept: &dpb.CodeableConcept{Text: str(n.Error)}}})
	}
	return p
}

// events are the events a notification of n's type carries.
func events(n Notification) []NotificationEvent {
	if n.Type != NotifyEvent && n.Type != NotifyQueryEvent {
		return nil
	}
	return n.Events
}

func notificationEvent(n Notification, e NotificationEvent) *ppb.Parameters_Parameter {
	part := func(name string, v *ppb.Parameters_Parameter_ValueX) *ppb.Parameters_Parameter {
		return &ppb.Parameters_Parameter{Name: str(name), Value: v}
	}
	ev := &ppb.Parameters_Parameter{Name: str("notification-event")}
	ev.Part = append(ev.Part, part("event-number", stringValue(strconv.FormatInt(e.Number, 10))))
	if !e.Timestamp.IsZero() {
		ev.Part = append(ev.Part, part("timestamp", &ppb.Parameters_Parameter_ValueX{
			Choice: &ppb.Parameters_Parameter_ValueX_Instant{Instant: instant(e.Timestamp)}}))
	}
	if focus := focusURL(n.BaseURL, e); focus != "" && n.Subscription.Content != cpis.ContentEmpty {
		ev.Part = append(ev.Part, part("focus", refValue(focus)))
	}
	return ev
}

// focusURL is the absolute URL of an event's focus resource, "" when the
// event names none.
func focusURL(base string, e NotificationEvent) string {
	switch {
	case e.Plan != nil && e.Plan.ID != "":
		return base + "/Flag/" + e.Plan.ID
	case e.ASN != nil && e.ASN.ID != "":
		return base + "/Communication/" + e.ASN.ID
	}
	return ""
}

// eventEntry is the full-resource entry of one event; nil when the event
// names no resource.
func eventEntry(n Notification, e NotificationEvent) *bcrpb.Bundle_Entry {
	switch {
	case focusURL(n.BaseURL, e) == "":
		return nil
	case e.Plan != nil && e.Withdrawn:
		return &bcrpb.Bundle_Entry{
			FullUrl: uri(focusURL(n.BaseURL, e)),
			Request: &bcrpb.Bundle_Entry_Request{
				Method: &bcrpb.Bundle_Entry_Request_MethodCode{Value: cpb.HTTPVerbCode_DELETE},
				Url:    uri("Flag/" + e.Plan.ID),
			},
			Response: &bcrpb.Bundle_Entry_Response{Status: str("200 OK")},
		}
	case e.Plan != nil:
		entry := resourceEntry(n.BaseURL, FlagResource(*e.Plan, n.Today, n.View))
		entry.Request, entry.Response = historyExchange(*e.Plan, false)
		return entry
	}
	entry := resourceEntry(n.BaseURL, CommunicationResource(*e.ASN, e.LastUpdated))
	entry.Request = &bcrpb.Bundle_Entry_Request{
		Method: &bcrpb.Bundle_Entry_Request_MethodCode{Value: cpb.HTTPVerbCode_POST},
		Url:    uri("Communication"),
	}
	entry.Response = &bcrpb.Bundle_Entry_Response{Status: str("201 Created")}
	if !e.LastUpdated.IsZero() {
		entry.Response.LastModified = instant(e.LastUpdated)
	}
	return entry
}

func subscriptionURL(n Notification) string {
	return n.BaseURL + "/Subscription/" + n.Subscription.ID
}

// notificationID names a notification: the same subscription, type,
// timestamp and events give the same UUID, anything else another.
func notificationID(n Notification) uuid.UUID {
	var k strings.Builder
	k.WriteString(subscriptionURL(n) + "\n" + n.Type + "\n" + n.Timestamp.UTC().Format(time.RFC3339Nano))
	for _, e := range events(n) {
		k.WriteString("\n" + strconv.FormatInt(e.Number, 10))
	}
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(k.String()))
}

func refValue(url string) *ppb.Parameters_Parameter_ValueX {
	return &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Reference{
		Reference: &dpb.Reference{Reference: &dpb.Reference_Uri{Uri: str(url)}}}}
}

func codeValue(c string) *ppb.Parameters_Parameter_ValueX {
	return &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Code{Code: code(c)}}
}

func stringValue(s string) *ppb.Parameters_Parameter_ValueX {
	return &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_StringValue{StringValue: str(s)}}
}
