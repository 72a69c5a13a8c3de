package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Searchset is the content of a searchset Bundle.
type Searchset struct {
	BaseURL  string          // the server's base URL: each entry's fullUrl is BaseURL/Type/id
	Self     string          // the search as the server understood it, a full URL
	Next     string          // the next page, a full URL; "" on the last page
	Entries  []proto.Message // the matches (search.mode match), each an R4 resource proto
	Included []Included      // resources added by _include (search.mode include)
	// Warnings become one OperationOutcome entry (search.mode outcome) with
	// severity warning, placed last: for example unknown search parameters
	// that were ignored.
	Warnings []*cpis.Error
	Total    *int // the number of matches in all pages, when known; left out otherwise
	// LastUpdated, when set, is the Bundle's meta.lastUpdated: for a search
	// of a feed, the instant up to which the feed was complete when it was
	// read (store.EventPage.Horizon), so that a client knows where to ask
	// again from.
	LastUpdated time.Time
}

// Included is a resource added to a searchset by _include. FullURL, when
// set, is its entry's fullUrl (e.g. a urn:uuid for a resource this server
// does not serve); otherwise it is made from the resource's id.
type Included struct {
	FullURL  string
	Resource proto.Message
}

// MarshalSearchset renders s as the compact FHIR JSON of a searchset
// Bundle, as MarshalResource would render the same Bundle built as a proto
// (a golden file pins the bytes): keys in alphabetical order, no HTML
// escaping. Each entry's resource goes through jsonformat; the Bundle
// around them is plain JSON, because building it as a proto and rendering
// it with jsonformat cost more than the search it reports (cmd/cpisbench:
// most searches at a front door find nothing, and jsonformat was 14% of the
// server's CPU). Every entry must be an R4 resource proto; anything else is
// a programming error and panics. The Bundle has no id and no timestamp:
// it is not stored, and the package has no clock.
func MarshalSearchset(s Searchset) ([]byte, error) {
	b := searchsetJSON{ResourceType: "Bundle", Type: "searchset"}
	if s.Total != nil {
		b.Total = new(max(*s.Total, 0))
	}
	if !s.LastUpdated.IsZero() {
		b.Meta = &metaJSON{LastUpdated: instantJSON(s.LastUpdated)}
	}
	for _, l := range [][2]string{{"self", s.Self}, {"next", s.Next}} {
		if l[1] != "" {
			b.Link = append(b.Link, linkJSON{Relation: l[0], URL: l[1]})
		}
	}
	add := func(r proto.Message, mode string) error {
		e, err := entryOf(s.BaseURL, r, mode)
		b.Entry = append(b.Entry, e)
		return err
	}
	var errs []error
	for _, r := range s.Entries {
		errs = append(errs, add(r, "match"))
	}
	for _, in := range s.Included {
		e, err := entryOf(s.BaseURL, in.Resource, "include")
		if in.FullURL != "" {
			e.FullURL = in.FullURL
		}
		b.Entry = append(b.Entry, e)
		errs = append(errs, err)
	}
	if len(s.Warnings) > 0 {
		errs = append(errs, add(WarningOutcome(s.Warnings), "outcome"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as jsonformat: URLs keep their '&'
	if err := enc.Encode(b); err != nil {
		return nil, cpis.E("fhir.MarshalSearchset", cpis.Other, "a searchset Bundle could not be rendered as JSON")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// searchsetJSON is a searchset Bundle's JSON; fields are declared in the
// alphabetical order jsonformat writes keys in.
type searchsetJSON struct {
	Entry        []entryJSON `json:"entry,omitempty"`
	Link         []linkJSON  `json:"link,omitempty"`
	Meta         *metaJSON   `json:"meta,omitempty"`
	ResourceType string      `json:"resourceType"`
	Total        *int        `json:"total,omitempty"`
	Type         string      `json:"type"`
}

type entryJSON struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource"`
	Search   struct {
		Mode string `json:"mode"`
	} `json:"search"`
}

type linkJSON struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type metaJSON struct {
	LastUpdated string `json:"lastUpdated"`
}

// instantJSON writes t as jsonformat writes instant(t): UTC, "Z", with as
// many fractional digits as the precision instant chooses (none, 3 or 6).
func instantJSON(t time.Time) string {
	layout := "2006-01-02T15:04:05.000000Z"
	switch instant(t).Precision {
	case dpb.Instant_SECOND:
		layout = "2006-01-02T15:04:05Z"
	case dpb.Instant_MILLISECOND:
		layout = "2006-01-02T15:04:05.000Z"
	}
	return t.UTC().Format(layout)
}

// entryOf is the entry holding r, with fullUrl when r has an id.
func entryOf(base string, r proto.Message, mode string) (entryJSON, error) {
	if _, ok := r.(*bcrpb.ContainedResource); !ok {
		if _, ok := containedField[r.ProtoReflect().Descriptor().FullName()]; !ok {
			panic("fhir: " + string(r.ProtoReflect().Descriptor().FullName()) + " is not an R4 resource")
		}
	}
	var e entryJSON
	if typ, rid := typeAndID(r); rid != "" {
		e.FullURL = base + "/" + typ + "/" + rid
	}
	e.Search.Mode = mode
	var err error
	e.Resource, err = MarshalResource(r)
	return e, err
}

// links builds Bundle links from relation, URL pairs, leaving out empty URLs.
func links(pairs ...string) []*bcrpb.Bundle_Link {
	var ls []*bcrpb.Bundle_Link
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			ls = append(ls, &bcrpb.Bundle_Link{Relation: str(pairs[i]), Url: uri(pairs[i+1])})
		}
	}
	return ls
}

// resourceEntry is an entry holding r, with fullUrl when r has an id.
func resourceEntry(base string, r proto.Message) *bcrpb.Bundle_Entry {
	e := &bcrpb.Bundle_Entry{Resource: contain(r)}
	if typ, rid := typeAndID(r); rid != "" {
		e.FullUrl = uri(base + "/" + typ + "/" + rid)
	}
	return e
}

// HistoryBundle builds the history Bundle of one plan (GET /Flag/{id}/_history)
// from its versions, newest first as the store returns them, each rendered
// as on day today through view v. Each entry carries the interaction that
// made the version: POST for version 1, DELETE for the version that marked
// the plan entered-in-error, PUT otherwise; its response gives the status,
// ETag (W/"n"), Last-Modified and, for POST and PUT, the version's location.
// A DELETE's entry keeps its resource, because the withdrawn version is
// stored and can be read with vread.
func HistoryBundle(baseURL string, versions []cpis.Plan, today cpis.Date, v cpis.View) *bcrpb.Bundle {
	total := len(versions)
	b := &bcrpb.Bundle{
		Type:  &bcrpb.Bundle_TypeCode{Value: cpb.BundleTypeCode_HISTORY},
		Total: &dpb.UnsignedInt{Value: uint32(total)},
		Entry: make([]*bcrpb.Bundle_Entry, 0, total),
	}
	if total > 0 {
		b.Link = links("self", baseURL+"/Flag/"+versions[0].ID+"/_history")
	}
	for i, p := range versions {
		e := resourceEntry(baseURL, FlagResource(p, today, v))
		e.Request, e.Response = historyExchange(p, i+1 < len(versions) && versions[i+1].EnteredInError)
		b.Entry = append(b.Entry, e)
	}
	return b
}

// historyExchange is the request that made version p and the server's
// response to it. olderDeleted tells whether the version before p was
// already entered-in-error (so p is not the DELETE itself).
func historyExchange(p cpis.Plan, olderDeleted bool) (*bcrpb.Bundle_Entry_Request, *bcrpb.Bundle_Entry_Response) {
	method, url, status := cpb.HTTPVerbCode_PUT, "Flag/"+p.ID, "200 OK"
	switch {
	case p.Version <= 1:
		method, url, status = cpb.HTTPVerbCode_POST, "Flag", "201 Created"
	case p.EnteredInError && !olderDeleted:
		method = cpb.HTTPVerbCode_DELETE
	}
	req := &bcrpb.Bundle_Entry_Request{Method: &bcrpb.Bundle_Entry_Request_MethodCode{Value: method}, Url: uri(url)}
	resp := &bcrpb.Bundle_Entry_Response{Status: str(status), Etag: str(ETag(p.Version))}
	if method != cpb.HTTPVerbCode_DELETE {
		resp.Location = uri("Flag/" + p.ID + "/_history/" + strconv.Itoa(p.Version))
	}
	if !p.LastUpdated.IsZero() {
		resp.LastModified = instant(p.LastUpdated)
	}
	return req, resp
}

// ETag is the weak entity tag of a version, W/"3", as HTTP headers and
// Bundle entries carry it.
func ETag(version int) string { return `W/"` + strconv.Itoa(version) + `"` }
