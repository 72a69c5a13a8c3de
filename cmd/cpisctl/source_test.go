package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

const (
	flagLine1 = `{"resourceType":"Flag","identifier":[{"system":"https://cpis.example.org/fhir/Id/la-plan-reference","value":"P-0001"}],"status":"active"}`
	flagLine2 = `{"resourceType":"Flag","identifier":[{"system":"https://cpis.example.org/fhir/Id/la-plan-reference","value":"P-0002"}],"status":"active"}`
)

// prettyBundle is a Bundle as an export writes it: indented, each entry
// with a fullUrl, the resources over several lines.
const prettyBundle = `
{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {
      "fullUrl": "urn:uuid:6f1c4b9e-0001",
      "resource": {
        "resourceType": "Flag",
        "identifier": [ { "system": "https://cpis.example.org/fhir/Id/la-plan-reference", "value": "P-0001" } ],
        "status": "active"
      }
    },
    { "resource": {"resourceType": "Flag", "status": "inactive", "note": "a \"quoted\" text\nover two lines"} },
    { "resource": {"resourceType": "Flag", "identifier": [], "status": "active"} }
  ]
}
`

var prettyBundleLines = strings.Join([]string{
	`{"resourceType":"Flag","identifier":[{"system":"https://cpis.example.org/fhir/Id/la-plan-reference","value":"P-0001"}],"status":"active"}`,
	`{"resourceType":"Flag","status":"inactive","note":"a \"quoted\" text\nover two lines"}`,
	`{"resourceType":"Flag","identifier":[],"status":"active"}`,
}, "\n") + "\n"

func TestSniff(t *testing.T) {
	ndjson := flagLine1 + "\n" + flagLine2 + "\n"
	tests := []struct {
		name    string
		in      string
		want    string // the body sent
		size    int64  // its size, given the input's
		bundle  bool
		entries int
		err     string // in the error, when it fails
	}{
		{name: "NDJSON", in: ndjson, want: ndjson, size: int64(len(ndjson))},
		{name: "NDJSON without a final newline", in: flagLine1 + "\n" + flagLine2, want: flagLine1 + "\n" + flagLine2, size: int64(len(ndjson) - 1)},
		{name: "NDJSON with CRLF", in: flagLine1 + "\r\n" + flagLine2 + "\r\n", want: flagLine1 + "\r\n" + flagLine2 + "\r\n", size: int64(len(ndjson) + 2)},
		{name: "NDJSON after a BOM", in: "\xEF\xBB\xBF" + ndjson, want: ndjson, size: int64(len(ndjson))},
		{name: "blank lines kept, so the lines keep their numbers", in: "\n \n" + ndjson, want: "\n \n" + ndjson, size: int64(len(ndjson) + 3)},
		{name: "a first line with no resourceType is sent, for the server to reject", in: "{}\n" + flagLine1, want: "{}\n" + flagLine1, size: int64(len(flagLine1) + 3)},
		{name: "a Bundle on line 2 is a line like any other", in: flagLine1 + "\n" + `{"resourceType":"Bundle"}`, want: flagLine1 + "\n" + `{"resourceType":"Bundle"}`, size: int64(len(flagLine1) + 26)},
		{name: "empty", in: ""},
		{name: "white space only", in: " \n\t\r\n", want: "", size: 0},
		{name: "pretty Bundle", in: prettyBundle, want: prettyBundleLines, size: int64(len(prettyBundleLines)), bundle: true, entries: 3},
		{name: "one-line Bundle after a BOM", in: "\xEF\xBB\xBF" + `{"resourceType":"Bundle","entry":[{"resource":` + flagLine1 + `}]}` + "\n", want: flagLine1 + "\n", size: int64(len(flagLine1) + 1), bundle: true, entries: 1},
		{name: "resourceType after the entries", in: `{"entry":[{"resource":` + flagLine1 + `}],"resourceType":"Bundle"}`, want: flagLine1 + "\n", size: int64(len(flagLine1) + 1), bundle: true, entries: 1},
		{name: "Bundle with no entries", in: `{"resourceType":"Bundle","type":"collection"}`, want: "", size: 0, bundle: true},
		{name: "not JSON", in: "nhs_number,plan\n", err: "does not start with '{'"},
		{name: "a JSON array", in: "[" + flagLine1 + "]", err: "does not start with '{'"},
		{name: "a broken first line", in: `{"resourceType": "Flag", ` + "\n" + flagLine2 + "\n", err: "not valid JSON (at byte"},
		{name: "cut short", in: `{"resourceType":"Bundle","entry":[`, err: "ends inside its first JSON object"},
		{name: "one pretty-printed Flag", in: "{\n  \"resourceType\": \"Flag\"\n}\n", err: "spans several lines"},
		{name: "a Bundle and more", in: `{"resourceType":"Bundle"}` + "\n" + flagLine1, err: "holds more after its Bundle"},
		{name: "an entry without a resource", in: `{"resourceType":"Bundle","entry":[{"resource":` + flagLine1 + `},{"fullUrl":"urn:x"}]}`, err: "entry 2 has no resource"},
		{name: "a resource that is not an object", in: `{"resourceType":"Bundle","entry":[{"resource":"Flag"}]}`, err: "entry 1 has no resource"},
		{name: "entry not a list", in: `{"resourceType":"Bundle","entry":{"resource":{}}}`, err: "not a list of entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := sniff(strings.NewReader(tt.in), int64(len(tt.in)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("sniff: error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("sniff: %v", err)
			}
			body, err := io.ReadAll(p.body)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != tt.want {
				t.Errorf("body\n%q\nwant\n%q", body, tt.want)
			}
			if p.size != tt.size || p.bundle != tt.bundle || p.entries != tt.entries {
				t.Errorf("size %d, bundle %t, entries %d; want %d, %t, %d", p.size, p.bundle, p.entries, tt.size, tt.bundle, tt.entries)
			}
		})
	}
}

// TestSniffUnknownSize: from a pipe, the size stays unknown, and is known
// once a Bundle has been converted.
func TestSniffUnknownSize(t *testing.T) {
	p, err := sniff(strings.NewReader(flagLine1+"\n"), -1)
	if err != nil || p.size != -1 {
		t.Errorf("NDJSON from a pipe: size %d, error %v; want -1, nil", p.size, err)
	}
	p, err = sniff(strings.NewReader(prettyBundle), -1)
	if err != nil || p.size != int64(len(prettyBundleLines)) {
		t.Errorf("Bundle from a pipe: size %d, error %v; want %d, nil", p.size, err, len(prettyBundleLines))
	}
}

// TestSniffLeadingSpace: more white space than the read-ahead buffer holds
// is dropped, and the size accounts for it.
func TestSniffLeadingSpace(t *testing.T) {
	in := strings.Repeat(" ", 3*sniffBufferSize) + flagLine1
	p, err := sniff(strings.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(p.body)
	if int64(len(body)) != p.size || !strings.HasSuffix(string(body), flagLine1) {
		t.Errorf("body of %d bytes, size %d; want the Flag line and its size", len(body), p.size)
	}
}

// FuzzSniff: whatever the input, sniff does not panic; an NDJSON body is
// the input's tail unchanged and as long as said; a Bundle becomes one
// JSON object a line.
func FuzzSniff(f *testing.F) {
	for _, s := range []string{flagLine1 + "\n" + flagLine2, prettyBundle, "", " \n", "\xEF\xBB\xBF{}", `{"resourceType":"Bundle","entry":[{"resource":{}}]}`, "{\n}", "[]", `{"a":"\u2028"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := sniff(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			return
		}
		body, err := io.ReadAll(p.body)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(body)) != p.size {
			t.Errorf("body of %d bytes, size said %d", len(body), p.size)
		}
		if !p.bundle {
			if !bytes.HasSuffix(in, body) {
				t.Errorf("NDJSON body %q is not the tail of the input %q", body, in)
			}
			return
		}
		lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
		if len(body) == 0 {
			lines = nil
		}
		if len(lines) != p.entries {
			t.Errorf("%d lines for %d entries", len(lines), p.entries)
		}
		for _, l := range lines {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(l, &m); err != nil {
				t.Errorf("line %q is not a JSON object: %v", l, err)
			}
		}
	})
}
