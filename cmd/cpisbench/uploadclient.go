package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// importPath is the operation the upload run measures.
const importPath = "/Flag/$import"

// uploadTimeout bounds one file's import: the server allows 30 minutes.
const uploadTimeout = 30 * time.Minute

// maxRejectionsShown is how many rejected lines the report quotes.
const maxRejectionsShown = 5

// importCounts are the counts of an import's Parameters answer.
type importCounts struct {
	created, updated, unchanged, ended, rejected int
}

func (c *importCounts) add(o importCounts) {
	c.created += o.created
	c.updated += o.updated
	c.unchanged += o.unchanged
	c.ended += o.ended
	c.rejected += o.rejected
}

func (c importCounts) String() string {
	return fmt.Sprintf("created %d, updated %d, unchanged %d, ended %d, rejected %d", c.created, c.updated, c.unchanged, c.ended, c.rejected)
}

// answer is the server's answer to one LA's file.
type answer struct {
	la         string
	lines      int
	took       time.Duration
	counts     importCounts
	err        error    // the file was not imported: transport error or status other than 200
	rejections []string // "line n: diagnostics", the first few
}

// uploadRun is what one phase measured on one store.
type uploadRun struct {
	phase      string
	lines      int           // lines sent
	wall       time.Duration // first request to last answer
	got, want  importCounts
	errors     int            // files not imported
	errKinds   map[string]int // why
	rejections []string       // the first few rejected lines, with why
	slowest    answer         // the file that took longest
	peakRSS    float64        // MiB, sampled
	cpu        cpuUse
	serverCPU  time.Duration
}

// rate is lines sent per second of wall time.
func (r uploadRun) rate() float64 { return float64(r.lines) / r.wall.Seconds() }

// cpuPerLine is the server's CPU time per line sent.
func (r uploadRun) cpuPerLine() time.Duration {
	if r.lines == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.lines)
}

// ok reports whether every file was imported with the counts the data set
// implies: every line loaded, none rejected.
func (r uploadRun) ok() bool { return r.errors == 0 && r.got == r.want }

// add takes in the answers to the phase's files.
func (r *uploadRun) add(answers []answer) {
	r.errKinds = map[string]int{}
	for _, a := range answers {
		r.got.add(a.counts)
		if a.err != nil {
			r.errors++
			r.errKinds[a.err.Error()]++
		}
		for _, rj := range a.rejections {
			if len(r.rejections) < maxRejectionsShown {
				r.rejections = append(r.rejections, a.la+" "+rj)
			}
		}
		if a.took > r.slowest.took {
			r.slowest = a
		}
	}
}

// uploadEach sends each LA's file to base's $import, clients at a time in
// the order given, each with a token of its own LA, and returns the answers.
func uploadEach(ctx context.Context, base string, iss *issuer, las []laFiles, full bool, clients int) []answer {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: uploadTimeout}
	answers := make([]answer, len(las))
	work := make(chan int)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range work {
				answers[i] = uploadFile(ctx, hc, base, iss, las[i], full)
			}
		})
	}
	for i := range las {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return answers
}

// uploadFile sends one LA's file, streamed from disk, and reads the answer.
func uploadFile(ctx context.Context, hc *http.Client, base string, iss *issuer, f laFiles, full bool) answer {
	a := answer{la: f.la.Code, lines: f.lines}
	path, size, query := f.path, f.size, ""
	if full {
		path, size, query, a.lines = f.fullPath, f.fullSize, "?mode=full", f.fullLines
	}
	start := time.Now()
	a.counts, a.rejections, a.err = postFile(ctx, hc, base+importPath+query, iss, f, path, size)
	a.took = time.Since(start)
	return a
}

func postFile(ctx context.Context, hc *http.Client, url string, iss *issuer, f laFiles, path string, size int64) (importCounts, []string, error) {
	tok, err := iss.laToken(f.la)
	if err != nil {
		return importCounts{}, nil, err
	}
	body, err := os.Open(path)
	if err != nil {
		return importCounts{}, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		body.Close()
		return importCounts{}, nil, err
	}
	req.ContentLength = size
	req.Header["Authorization"] = []string{"Bearer " + tok}
	req.Header["Content-Type"] = []string{"application/fhir+ndjson"}
	req.Header["Accept"] = []string{"application/fhir+json"}
	resp, err := hc.Do(req)
	if err != nil {
		return importCounts{}, nil, fmt.Errorf("transport error")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return importCounts{}, nil, fmt.Errorf("reading the answer failed")
	case resp.StatusCode != http.StatusOK:
		return importCounts{}, nil, fmt.Errorf("status %d: %s", resp.StatusCode, outcomeDiagnostics(b))
	}
	return parseImportAnswer(b)
}

// parameters is the part of an import's Parameters answer read here
// (profiles/OperationDefinition-flag-import.json): the counts, and for
// each rejected line its number and diagnostics.
type parameters struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []parameter `json:"parameter"`
}

type parameter struct {
	Name         string      `json:"name"`
	ValueInteger *int        `json:"valueInteger"`
	ValueString  string      `json:"valueString"`
	Part         []parameter `json:"part"`
}

// parseImportAnswer reads the counts and the rejections of an answer.
func parseImportAnswer(b []byte) (importCounts, []string, error) {
	var p parameters
	if err := json.Unmarshal(b, &p); err != nil || p.ResourceType != "Parameters" {
		return importCounts{}, nil, fmt.Errorf("the answer is not a Parameters resource")
	}
	var c importCounts
	var rejections []string
	fields := map[string]*int{"created": &c.created, "updated": &c.updated, "unchanged": &c.unchanged, "ended": &c.ended, "rejected": &c.rejected}
	for _, pp := range p.Parameter {
		if f, ok := fields[pp.Name]; ok && pp.ValueInteger != nil {
			*f = *pp.ValueInteger
		}
		if pp.Name == "rejection" && len(rejections) < maxRejectionsShown {
			rejections = append(rejections, rejectionText(pp.Part))
		}
	}
	return c, rejections, nil
}

func rejectionText(parts []parameter) string {
	line, diag := 0, ""
	for _, p := range parts {
		switch {
		case p.Name == "line" && p.ValueInteger != nil:
			line = *p.ValueInteger
		case p.Name == "diagnostics":
			diag = p.ValueString
		}
	}
	return fmt.Sprintf("line %d: %s", line, diag)
}

// outcomeDiagnostics is the first issue's diagnostics of an
// OperationOutcome, shortened, to say why a file was refused.
func outcomeDiagnostics(b []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) != nil || len(oo.Issue) == 0 {
		return strings.TrimSpace(string(bytes.ToValidUTF8(b[:min(len(b), 120)], nil)))
	}
	d := oo.Issue[0].Diagnostics
	if len(d) > 160 {
		d = d[:160] + "..."
	}
	return d
}
