// Package profiles holds this server's conformance resources as FHIR R4
// JSON: the cpis-flag StructureDefinition and its extensions, the CP-IS code
// systems and value sets, the search parameters FHIR does not define, the
// OperationDefinition of POST /Flag/$import, and the subscription topics.
// The files are data, embedded in the binary and served as they are; each is
// named <resourceType>-<id>.json, and a test checks each against jsonformat.
//
// FHIR R4 has no SubscriptionTopic resource: each topic is a Basic carrying
// the R5 SubscriptionTopic's elements as cross-version extensions, the form
// the Subscriptions Backport IG shows for R4 servers. Its canonical URL is
// the value of the extension TopicURLExtension, and its id is the last
// segment of that URL (GET /Basic/access-to-service-notification).
package profiles

import (
	"embed"
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

//go:embed *.json
var files embed.FS

// Entry names one conformance resource.
type Entry struct {
	Type string // resourceType, e.g. "StructureDefinition"
	ID   string // logical id, e.g. "cpis-flag"
	URL  string // canonical URL; for a topic (a Basic), the topic's
}

// TopicURLExtension is the R5 cross-version extension holding a
// SubscriptionTopic's canonical URL on the Basic that stands for it in R4.
const TopicURLExtension = "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.url"

// resource is one file, read once.
type resource struct {
	Entry
	body []byte
}

// index reads the embedded files once, on first use. The files are part
// of the binary and a test reads every one, so a failure here is a broken
// build, reported by panic.
var index = sync.OnceValue(func() []resource {
	var rs []resource
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".json") {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		var e struct {
			ResourceType, ID, URL string
			Extension             []struct {
				URL      string
				ValueURI string `json:"valueUri"`
			}
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return err
		}
		for _, x := range e.Extension {
			if e.ResourceType == "Basic" && x.URL == TopicURLExtension {
				e.URL = x.ValueURI
			}
		}
		rs = append(rs, resource{Entry{e.ResourceType, e.ID, e.URL}, body})
		return nil
	})
	if err != nil {
		panic("profiles: reading the embedded conformance resources: " + err.Error())
	}
	slices.SortFunc(rs, func(a, b resource) int {
		return strings.Compare(a.Type+"/"+a.ID, b.Type+"/"+b.ID)
	})
	return rs
})

// Lookup returns the JSON of the conformance resource of the given type and
// id, as served by GET /<type>/<id>. The bytes are a copy the caller may keep.
func Lookup(resourceType, id string) ([]byte, bool) {
	for _, r := range index() {
		if r.Type == resourceType && r.ID == id {
			return slices.Clone(r.body), true
		}
	}
	return nil, false
}

// All lists every conformance resource, sorted by type and id.
func All() []Entry {
	rs := index()
	es := make([]Entry, len(rs))
	for i, r := range rs {
		es[i] = r.Entry
	}
	return es
}
