package fhir

import (
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Feed is one page of the plan feed, GET /Flag/_history: versions of an
// LA's plans in the order they committed.
type Feed struct {
	BaseURL string // the server's base URL: each entry's fullUrl is BaseURL/Flag/id
	Self    string // the page as the server understood it, a full URL
	Next    string // the next page, a full URL; "" when there is none
	// LastUpdated, when set, is the Bundle's meta.lastUpdated: the instant
	// up to which the feed was complete when the page was read
	// (store.EventPage.Horizon), where the next poll asks from (_since).
	LastUpdated time.Time
	Plans       []cpis.Plan // the versions, oldest first, as the feed gives them
	Today       cpis.Date   // the day each version's status is computed on
	View        cpis.View   // what the reader is shown of each version
}

// FeedBundle builds the type-level history Bundle of f. Each entry holds
// a version (FlagResource on f.Today through f.View) and the interaction
// that made it, as HistoryBundle's entries do: POST for version 1, DELETE
// for the version that marked the plan entered-in-error, PUT otherwise.
// Telling the DELETE needs no earlier version, which may be on an earlier
// page: a withdrawn plan never changes again (the register refuses to
// update it, and withdrawing it again stores nothing), so an
// entered-in-error version is always the DELETE. The Bundle has no total:
// the feed's length is not known, and it keeps growing.
//
// A history Bundle has no place for warnings about ignored parameters: R4
// requires request and response on each of its entries (bdl-3, bdl-4), and
// the search.mode outcome entry of a searchset is not allowed in it.
func FeedBundle(f Feed) *bcrpb.Bundle {
	b := &bcrpb.Bundle{
		Type:  &bcrpb.Bundle_TypeCode{Value: cpb.BundleTypeCode_HISTORY},
		Link:  links("self", f.Self, "next", f.Next),
		Entry: make([]*bcrpb.Bundle_Entry, 0, len(f.Plans)),
	}
	if !f.LastUpdated.IsZero() {
		b.Meta = &dpb.Meta{LastUpdated: instant(f.LastUpdated)}
	}
	for _, p := range f.Plans {
		e := resourceEntry(f.BaseURL, FlagResource(p, f.Today, f.View))
		e.Request, e.Response = historyExchange(p, false)
		b.Entry = append(b.Entry, e)
	}
	return b
}
