package fhir

import (
	"testing"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// feedHorizon is the horizon of the golden feed page: a microsecond after
// its last version's stamp.
var feedHorizon = time.Date(2026, 11, 2, 10, 30, 15, 123001000, time.UTC)

// feedVersions are a page of the plan feed, oldest first: the CPP created,
// the CLA created, the CPP updated, the CPP withdrawn.
func feedVersions() []cpis.Plan {
	cpp := history(storedPlan()) // newest first: withdrawn, updated, created
	cla := examplePlans["flag-cla.json"]
	cla.ID, cla.Version, cla.LastUpdated = "0d6f1b7e-8a1c-4d4e-b1a3-6c2f9d0e7b12", 1, time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	return []cpis.Plan{cpp[2], cla, cpp[1], cpp[0]}
}

// goldenFeed is the page of the plan feed pinned in testdata/history-feed.json.
func goldenFeed() Feed {
	return Feed{
		BaseURL: testBase,
		Self:    testBase + "/Flag/_history?_count=4&_since=2026-10-31T00%3A00%3A00Z",
		// The cursor of a next link is opaque to this package: this is the
		// one fhir/search writes for the key (2026-11-02T10:30:15.123Z, 42).
		Next:        testBase + "/Flag/_history?_count=4&_cursor=AUgABl9Ioa6cODQy&_since=2026-10-31T00%3A00%3A00Z",
		LastUpdated: feedHorizon,
		Plans:       feedVersions(),
		Today:       today,
		View:        cpis.OwnerView,
	}
}

func TestPlanFeedBundle(t *testing.T) {
	vs := feedVersions()
	const none = "INVALID_UNINITIALIZED"
	entry := func(p cpis.Plan, method, reqURL, status string) entryShape {
		return entryShape{testBase + "/Flag/" + p.ID, "Flag", none, method, reqURL, status}
	}
	cppURL := "Flag/" + vs[0].ID
	withdrawnAlone := vs[3]
	tests := []struct {
		name  string
		feed  Feed
		want  []entryShape
		links []string // relations
		meta  bool
	}{
		{"an empty log", Feed{BaseURL: testBase, Self: testBase + "/Flag/_history"}, nil, []string{"self"}, false},
		{"nothing new since the last poll", Feed{BaseURL: testBase, Self: testBase + "/Flag/_history?_since=x", LastUpdated: feedHorizon}, nil, []string{"self"}, true},
		{"a full page", goldenFeed(), []entryShape{
			entry(vs[0], "POST", "Flag", "201 Created"),
			entry(vs[1], "POST", "Flag", "201 Created"),
			entry(vs[2], "PUT", cppURL, "200 OK"),
			entry(vs[3], "DELETE", cppURL, "200 OK"),
		}, []string{"self", "next"}, true},
		{"a page holding the withdrawal alone is still the DELETE", Feed{BaseURL: testBase, Self: testBase + "/Flag/_history?_cursor=x",
			Plans: []cpis.Plan{withdrawnAlone}, Today: today, View: cpis.OwnerView}, []entryShape{entry(withdrawnAlone, "DELETE", cppURL, "200 OK")}, []string{"self"}, false},
	}
	validator := newValidator(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := FeedBundle(tt.feed)
			if got := b.GetType().GetValue(); got != cpb.BundleTypeCode_HISTORY {
				t.Errorf("type %v, want history", got)
			}
			if diff := cmp.Diff(tt.want, shapeOf(b)); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
			var rels []string
			for _, l := range b.GetLink() {
				rels = append(rels, l.GetRelation().GetValue())
			}
			if diff := cmp.Diff(tt.links, rels); diff != "" {
				t.Errorf("links (-want +got):\n%s", diff)
			}
			if got := b.GetMeta().GetLastUpdated(); (got != nil) != tt.meta || (tt.meta && !proto.Equal(got, instant(feedHorizon))) {
				t.Errorf("meta.lastUpdated %v, want the horizon: %v", got, tt.meta)
			}
			if b.GetTotal() != nil {
				t.Errorf("total %v: the feed's length is not known", b.GetTotal())
			}
			mustValidate(t, validator, b)
		})
	}
}

// TestPlanFeedEntries: each entry's response says which version it holds
// and when it was stored, and the resource is the version through the view.
func TestPlanFeedEntries(t *testing.T) {
	vs := feedVersions()
	b := FeedBundle(Feed{BaseURL: testBase, Plans: vs, Today: today, View: cpis.HealthView})
	for i, e := range b.GetEntry() {
		p := vs[i]
		resp := e.GetResponse()
		if got, want := resp.GetEtag().GetValue(), ETag(p.Version); got != want {
			t.Errorf("entry %d: etag %s, want %s", i, got, want)
		}
		if !proto.Equal(resp.GetLastModified(), instant(p.LastUpdated)) {
			t.Errorf("entry %d: lastModified %v, want %v", i, resp.GetLastModified(), p.LastUpdated)
		}
		if !proto.Equal(e.GetResource().GetFlag(), FlagResource(p, today, cpis.HealthView)) {
			t.Errorf("entry %d: the resource is not the version as the view shows it", i)
		}
	}
}

// TestSearchsetLastUpdated: Searchset.LastUpdated is written exactly as
// jsonformat writes the same Bundle built as a proto, at each precision an
// instant can have, and the rest of the envelope keeps its key order.
func TestSearchsetLastUpdated(t *testing.T) {
	validator := newValidator(t)
	for _, at := range []time.Time{
		time.Date(2026, 11, 2, 10, 30, 15, 0, time.UTC),
		time.Date(2026, 11, 2, 10, 30, 15, 120000000, time.UTC),
		time.Date(2026, 11, 2, 10, 30, 15, 123001000, time.FixedZone("", 3600)),
		time.Date(2026, 11, 2, 10, 30, 15, 1000, time.UTC),
	} {
		s := goldenSearchset()
		s.LastUpdated = at
		got, err := MarshalSearchset(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := MarshalResource(searchsetProto(s))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("LastUpdated %v: MarshalSearchset differs from jsonformat (-jsonformat +ours):\n%s", at, diff)
		}
		b := searchsetOf(t, validator, s)
		if !proto.Equal(b.GetMeta().GetLastUpdated(), instant(at)) {
			t.Errorf("LastUpdated %v read back as %v", at, b.GetMeta().GetLastUpdated())
		}
	}
	b := searchsetOf(t, validator, goldenSearchset())
	if b.GetMeta() != nil {
		t.Errorf("meta %v without Searchset.LastUpdated", b.GetMeta())
	}
}

// searchsetProto is s built as a Bundle proto, the way MarshalSearchset
// describes it, for jsonformat to render.
func searchsetProto(s Searchset) *bcrpb.Bundle {
	b := &bcrpb.Bundle{
		Type: &bcrpb.Bundle_TypeCode{Value: cpb.BundleTypeCode_SEARCHSET},
		Link: links("self", s.Self, "next", s.Next),
	}
	if s.Total != nil {
		b.Total = &dpb.UnsignedInt{Value: uint32(max(*s.Total, 0))}
	}
	if !s.LastUpdated.IsZero() {
		b.Meta = &dpb.Meta{LastUpdated: instant(s.LastUpdated)}
	}
	add := func(r proto.Message, fullURL string, mode cpb.SearchEntryModeCode_Value) {
		e := resourceEntry(s.BaseURL, r)
		if fullURL != "" {
			e.FullUrl = uri(fullURL)
		}
		e.Search = &bcrpb.Bundle_Entry_Search{Mode: &bcrpb.Bundle_Entry_Search_ModeCode{Value: mode}}
		b.Entry = append(b.Entry, e)
	}
	for _, r := range s.Entries {
		add(r, "", cpb.SearchEntryModeCode_MATCH)
	}
	for _, in := range s.Included {
		add(in.Resource, in.FullURL, cpb.SearchEntryModeCode_INCLUDE)
	}
	if len(s.Warnings) > 0 {
		add(WarningOutcome(s.Warnings), "", cpb.SearchEntryModeCode_OUTCOME)
	}
	return b
}
