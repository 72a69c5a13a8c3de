package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	ppb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/parameters_go_proto"
	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// token is the bearer token of the upload tests: it must show nowhere.
const token = "eyJhbGciOiJFUzI1NiJ9.tok-must-not-show.c2lnbmF0dXJl"

// tokenFile writes token to a file, among white space to be trimmed.
func tokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte("\n  "+token+" \r\n\t"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// inputFile writes content to a file named name.
func inputFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seenRequest is what the fake server saw of a request.
type seenRequest struct {
	method, path  string
	query         url.Values
	header        http.Header
	contentLength int64
	chunked       bool
	body          []byte
}

// fakeImport is a Flag/$import that records the requests and gives one
// answer to all of them.
type fakeImport struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

func newFakeImport(t *testing.T, status int, answer string, header ...string) *fakeImport {
	f := &fakeImport{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server: reading the body: %v", err)
		}
		f.record(r, body)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("X-Request-Id", "3f1b3a9e-4d7c-4a55-9d1e-1c2b3a4d5e6f")
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeImport) record(r *http.Request, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, seenRequest{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), r.ContentLength,
		slices.Contains(r.TransferEncoding, "chunked"), body})
}

// requests returns the requests the server has seen.
func (f *fakeImport) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// only returns the one request the server has seen.
func (f *fakeImport) only(t *testing.T) seenRequest {
	t.Helper()
	seen := f.requests()
	if len(seen) != 1 {
		t.Fatalf("the server saw %d requests, want 1", len(seen))
	}
	return seen[0]
}

// uploadRun is what one run of cpisctl printed and returned.
type uploadRun struct {
	out, errOut string
	err         error
}

// exit is the status main would exit with.
func (r uploadRun) exit() int { return exitCode(r.err) }

// all is everything the run showed the operator.
func (r uploadRun) all() string { return r.out + r.errOut + errorText(r.err) }

// runCLI runs cpisctl with stdin and a terminal or not, and checks the
// token shows nowhere. Its clock stands still, so that no rate is printed.
func runCLI(t *testing.T, stdin io.Reader, terminal bool, args ...string) uploadRun {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{getenv: func(string) string { return "" }, stdin: stdin, stdout: &out, stderr: &errOut,
		terminal: terminal, now: func() time.Time { return someDay }}
	err := e.run(t.Context(), args)
	r := uploadRun{out.String(), errOut.String(), err}
	if strings.Contains(r.all(), token) || strings.Contains(r.all(), "tok-must-not-show") {
		t.Errorf("cpisctl %v printed the token:\n%s", args, r.all())
	}
	return r
}

// answerSpec is a Parameters answer of the fake server.
type answerSpec struct {
	outcome, display string
	mode             string
	dryRun           bool
	counts           map[string]int32
	skipped          *bool  // reconciliationSkipped, when given
	cprName          string // the name of the record response part: recordResponse unless set
	rejections       []rejection
}

// parameters renders a as the server would: built as an R4 proto,
// rendered by jsonformat.
func parameters(t testing.TB, a answerSpec) string {
	t.Helper()
	p := &ppb.Parameters{}
	add := func(name string, v *ppb.Parameters_Parameter_ValueX) {
		p.Parameter = append(p.Parameter, &ppb.Parameters_Parameter{Name: &dpb.String{Value: name}, Value: v})
	}
	outcome := codingValue(uploadResponseSystem, a.outcome)
	if a.display != "" {
		outcome.GetCoding().Display = &dpb.String{Value: a.display}
	}
	add("outcome", outcome)
	add("mode", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Code{Code: &dpb.Code{Value: a.mode}}})
	add("dryRun", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Boolean{Boolean: &dpb.Boolean{Value: a.dryRun}}})
	for _, c := range counts {
		if n, ok := a.counts[c.param]; ok {
			add(c.param, intValue(n))
		}
	}
	if a.skipped != nil {
		add("reconciliationSkipped", &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Boolean{Boolean: &dpb.Boolean{Value: *a.skipped}}})
	}
	cprName := a.cprName
	if cprName == "" {
		cprName = "recordResponse"
	}
	for _, rj := range a.rejections {
		p.Parameter = append(p.Parameter, rejectionParam(rj, cprName))
	}
	b, err := fhir.MarshalResource(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func codingValue(system, code string) *ppb.Parameters_Parameter_ValueX {
	return &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Coding{Coding: &dpb.Coding{
		System: &dpb.Uri{Value: system}, Code: &dpb.Code{Value: code}}}}
}

func intValue(n int32) *ppb.Parameters_Parameter_ValueX {
	return &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_Integer{Integer: &dpb.Integer{Value: n}}}
}

func stringValue(s string) *ppb.Parameters_Parameter_ValueX {
	return &ppb.Parameters_Parameter_ValueX{Choice: &ppb.Parameters_Parameter_ValueX_StringValue{StringValue: &dpb.String{Value: s}}}
}

func rejectionParam(rj rejection, cprName string) *ppb.Parameters_Parameter {
	part := func(name string, v *ppb.Parameters_Parameter_ValueX) *ppb.Parameters_Parameter {
		return &ppb.Parameters_Parameter{Name: &dpb.String{Value: name}, Value: v}
	}
	parts := []*ppb.Parameters_Parameter{
		part("line", intValue(int32(rj.line))),
		part("code", codingValue(fhir.SpineErrorSystem, rj.code)),
		part(cprName, codingValue("https://cpis.example.org/fhir/CodeSystem/cpis-upload-record-response", rj.cpr)),
		part("diagnostics", stringValue(rj.diagnostic)),
	}
	if rj.expression != "" {
		parts = append(parts, part("expression", stringValue(rj.expression)))
	}
	return &ppb.Parameters_Parameter{Name: &dpb.String{Value: "rejection"}, Part: parts}
}

// operationOutcome renders an error answer as the server's error handler
// does.
func operationOutcome(t testing.TB, k cpis.Kind, msg string) string {
	t.Helper()
	b, err := fhir.MarshalResource(fhir.OperationOutcome([]*cpis.Error{{Kind: k, Msg: msg}}))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	loadedCounts  = map[string]int32{"created": 2, "updated": 0, "unchanged": 0, "ended": 0, "rejected": 0, "notReconciled": 0}
	partialCounts = map[string]int32{"created": 1, "updated": 0, "unchanged": 0, "ended": 0, "rejected": 2, "notReconciled": 0}
	twoRejections = []rejection{
		{line: 2, code: "INVALID_VALUE", cpr: "CPR07", diagnostic: "Flag.period.start is after Flag.period.end", expression: "Flag.period"},
		{line: 3, code: "INVALID_RESOURCE_ID", cpr: "CPR01", diagnostic: "the NHS number fails its check digit"},
	}
)

const ndjsonInput = flagLine1 + "\n" + flagLine2 + "\n"

func TestUploadRequest(t *testing.T) {
	tests := []struct {
		name  string
		args  []string // before FILE, but for "FILE" in them
		query url.Values
		mode  string
	}{
		{"delta", nil, url.Values{"mode": {"delta"}}, "delta"},
		{"full", []string{"--full"}, url.Values{"mode": {"full"}}, "full"},
		{"dry run", []string{"--dry-run"}, url.Values{"mode": {"delta"}, "dryRun": {"true"}}, "delta"},
		{"full forced", []string{"--full", "--force"}, url.Values{"mode": {"full"}, "force": {"true"}}, "full"},
		{"flags after FILE, single dashes", []string{"FILE", "-force", "-dry-run", "-full"}, url.Values{"mode": {"full"}, "dryRun": {"true"}, "force": {"true"}}, "full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: allLoaded, mode: tt.mode, dryRun: tt.query.Has("dryRun"), counts: loadedCounts}))
			file := inputFile(t, "plans.ndjson", ndjsonInput)
			args := []string{"upload", "--server", srv.URL, "--token-file", tokenFile(t)}
			if !slices.Contains(tt.args, "FILE") {
				args = append(args, tt.args...)
				args = append(args, file)
			} else {
				for _, a := range tt.args {
					args = append(args, strings.Replace(a, "FILE", file, 1))
				}
			}
			r := runCLI(t, nil, false, args...)
			if r.err != nil {
				t.Fatalf("upload: %v\n%s", r.err, r.out)
			}
			req := srv.only(t)
			if req.method != http.MethodPost || req.path != "/Flag/$import" {
				t.Errorf("request %s %s, want POST /Flag/$import", req.method, req.path)
			}
			if diff := cmp.Diff(tt.query, req.query); diff != "" {
				t.Errorf("query (-want +got):\n%s", diff)
			}
			checkHeaders(t, req)
			if string(req.body) != ndjsonInput || req.contentLength != int64(len(ndjsonInput)) || req.chunked {
				t.Errorf("body %q, Content-Length %d, chunked %t; want the file as it is, its length, not chunked", req.body, req.contentLength, req.chunked)
			}
			if r.errOut != "" {
				t.Errorf("stderr: %s", r.errOut)
			}
		})
	}
}

func checkHeaders(t *testing.T, req seenRequest) {
	t.Helper()
	for h, want := range map[string]string{
		"Content-Type":  "application/fhir+ndjson",
		"Authorization": "Bearer " + token,
		"Accept":        "application/fhir+json",
	} {
		if got := req.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, strings.ReplaceAll(got, token, "<token>"), strings.ReplaceAll(want, token, "<token>"))
		}
	}
}

// TestUploadServerPath: the server URL's path is the FHIR base, with or
// without a final slash; standard input is sent chunked.
func TestUploadServerPath(t *testing.T) {
	for _, base := range []string{"/fhir", "/fhir/"} {
		srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts}))
		r := runCLI(t, strings.NewReader(ndjsonInput), false, "upload", "--server", srv.URL+base, "--token-file", tokenFile(t), "-")
		if r.err != nil {
			t.Fatalf("upload: %v", r.err)
		}
		req := srv.only(t)
		if req.path != "/fhir/Flag/$import" {
			t.Errorf("server %q: path %q, want /fhir/Flag/$import", base, req.path)
		}
		if string(req.body) != ndjsonInput || !req.chunked {
			t.Errorf("from standard input: body %q, chunked %t; want the input, chunked", req.body, req.chunked)
		}
		checkHeaders(t, req)
		if want := "uploading standard input (NDJSON) to " + srv.URL + "/fhir/Flag/$import?mode=delta\n"; !strings.HasPrefix(r.out, want) {
			t.Errorf("output starts %q, want %q", r.out, want)
		}
	}
}

// TestUploadSummary pins the summary: the counts, then the rejected lines.
func TestUploadSummary(t *testing.T) {
	srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: someLoaded, mode: "full", dryRun: true,
		counts: map[string]int32{"created": 1200, "updated": 35, "unchanged": 298000, "ended": 12, "rejected": 2, "notReconciled": 3}, rejections: twoRejections}))
	file := inputFile(t, "plans.ndjson", ndjsonInput)
	r := runCLI(t, nil, false, "upload", "--full", "--dry-run", "--server", srv.URL, "--token-file", tokenFile(t), file)
	want := "uploading " + file + " (NDJSON, 276 B) to " + srv.URL + "/Flag/$import?dryRun=true&mode=full\n" +
		"sent 276 B\n" + `outcome   CPF03 (some lines loaded, some rejected)
mode      full
dry run   yes: the server checked the file and changed nothing

created           1200
updated             35
unchanged       298000
ended               12
rejected             2
not reconciled       3

rejected lines (2):
LINE  CODE                 CPR    DIAGNOSTICS
2     INVALID_VALUE        CPR07  Flag.period.start is after Flag.period.end (Flag.period)
3     INVALID_RESOURCE_ID  CPR01  the NHS number fails its check digit
`
	if diff := cmp.Diff(want, r.out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if r.exit() != 2 || !strings.Contains(errorText(r.err), "the server rejected 2 line(s) of the file (CPF03") {
		t.Errorf("error %v, exit %d; want the rejections, exit 2", r.err, r.exit())
	}
}

// TestUploadAnswers: the exit status and what is said, for each kind of
// answer.
func TestUploadAnswers(t *testing.T) {
	tests := []struct {
		name    string
		flags   []string
		status  int
		answer  string
		header  []string
		exit    int
		out     []string // in stdout
		err     []string // in the error
		notInIt string   // in neither
	}{
		{name: "all loaded", status: 200, answer: parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts}),
			exit: 0, out: []string{"outcome   CPF02 (every line loaded)\n", "created         2\n", "dry run   no\n"}, notInIt: "rejected lines"},
		{name: "created answer", status: 201, answer: parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts}), exit: 0},
		{name: "dry run all loaded", flags: []string{"--dry-run"}, status: 200, answer: parameters(t, answerSpec{outcome: allLoaded, mode: "delta", dryRun: true, counts: loadedCounts}),
			exit: 0, out: []string{"dry run   yes: the server checked the file and changed nothing"}},
		{name: "some rejected", status: 200, answer: parameters(t, answerSpec{outcome: someLoaded, mode: "delta", counts: partialCounts, rejections: twoRejections}),
			exit: 2, out: []string{"rejected lines (2):", "2     INVALID_VALUE        CPR07  Flag.period.start is after Flag.period.end (Flag.period)"}, err: []string{"rejected 2 line(s)", "CPF03"}},
		{name: "nothing loaded, lines rejected", status: 200, answer: parameters(t, answerSpec{outcome: noneLoaded, mode: "delta", counts: partialCounts, rejections: twoRejections}),
			exit: 2, out: []string{"CPF04 (nothing loaded)", "3     INVALID_RESOURCE_ID"}, err: []string{"(CPF04: nothing loaded)"}},
		{name: "nothing loaded, nothing rejected", status: 200, answer: parameters(t, answerSpec{outcome: noneLoaded, mode: "delta", counts: map[string]int32{}}),
			exit: 1, out: []string{"created         -\n"}, err: []string{"loaded nothing (CPF04) and rejected no line"}},
		{name: "the server's display, and the record response as first planned", status: 200, answer: parameters(t, answerSpec{outcome: someLoaded, display: "Some records loaded", mode: "delta",
			counts: partialCounts, cprName: "cpr", rejections: twoRejections}),
			exit: 2, out: []string{"outcome   CPF03 (Some records loaded)\n", "2     INVALID_VALUE        CPR07  Flag.period.start"}},
		{name: "a line rejected for two reasons is one line", status: 200, answer: parameters(t, answerSpec{outcome: someLoaded, mode: "delta",
			counts: map[string]int32{"created": 1, "rejected": 1}, rejections: []rejection{
				{line: 4, code: "INVALID_VALUE", cpr: "CPR07", diagnostic: "Flag.period.start is after Flag.period.end"},
				{line: 4, code: "MISSING_VALUE", cpr: "CPR07", diagnostic: "Flag.identifier is required"}}}),
			exit: 2, out: []string{"rejected lines (1):\n", "4     MISSING_VALUE  CPR07  Flag.identifier is required\n"}, err: []string{"rejected 1 line(s)"}},
		{name: "full, reconciliation skipped", flags: []string{"--full"}, status: 200, answer: parameters(t, answerSpec{outcome: someLoaded, mode: "full",
			counts: partialCounts, skipped: ptr(true), rejections: twoRejections}),
			exit: 2, out: []string{"ended     nothing: a rejected line could not be read far enough to know which plan it was, so no plan was ended\n"}},
		{name: "full, reconciled", flags: []string{"--full"}, status: 200, answer: parameters(t, answerSpec{outcome: allLoaded, mode: "full", counts: loadedCounts, skipped: ptr(false)}),
			exit: 0, notInIt: "no plan was ended"},
		{name: "rejections under an all-loaded outcome", status: 200, answer: parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts, rejections: twoRejections[:1]}),
			exit: 2, err: []string{"rejected 1 line(s)"}},
		{name: "unknown outcome", status: 200, answer: parameters(t, answerSpec{outcome: "CPF99", mode: "delta"}), exit: 1, err: []string{`unknown outcome "CPF99"`}},
		{name: "not Parameters", status: 200, answer: operationOutcome(t, cpis.Other, "odd"), exit: 1, err: []string{"not a FHIR Parameters resource", "200 OK", "request id 3f1b3a9e"}},
		{name: "not FHIR", status: 200, answer: `{"ok":true}`, exit: 1, err: []string{"not a FHIR resource"}},
		{name: "full would end too many", flags: []string{"--full"}, status: 422,
			answer: operationOutcome(t, cpis.Invalid, "the full upload would end 40 of the LA's 200 current plans (20%), more than 10%"),
			exit:   1, err: []string{"422 Unprocessable Entity: VALIDATION_ERROR: the full upload would end 40 of the LA's 200 current plans (20%), more than 10%", "run the upload again with --force"}},
		{name: "forced and still refused", flags: []string{"--full", "--force"}, status: 422, answer: operationOutcome(t, cpis.Invalid, "no"),
			exit: 1, err: []string{"422"}, notInIt: "--force"},
		{name: "too large, delta", status: 413, answer: operationOutcome(t, cpis.TooLarge, "the file is over 1 GB"),
			exit: 1, err: []string{"413 Request Entity Too Large: VALIDATION_ERROR: the file is over 1 GB", "may be split"}},
		{name: "too large, full", flags: []string{"--full"}, status: 413, answer: operationOutcome(t, cpis.TooLarge, "too large"),
			exit: 1, err: []string{"a full upload must be one file"}, notInIt: "split"},
		{name: "bad token", status: 401, answer: operationOutcome(t, cpis.Unauthenticated, "the token has expired"),
			exit: 1, err: []string{"401 Unauthorized: ACCESS_DENIED: the token has expired", "does the token file hold a current token"}},
		{name: "not an LA", status: 403, answer: operationOutcome(t, cpis.AccessDenied, "scope plans.write is required"),
			exit: 1, err: []string{"403 Forbidden: ACCESS_DENIED: scope plans.write is required", "LA's case-management system"}},
		{name: "unavailable", status: 503, answer: operationOutcome(t, cpis.Unavailable, "the store is unavailable"), header: []string{"Retry-After", "30"},
			exit: 1, err: []string{"503 Service Unavailable: SERVICE_UNAVAILABLE: the store is unavailable", "try again later (it asks for 30 s)"}},
		{name: "a proxy's error page", status: 502, answer: "<html><body>Bad Gateway</body></html>",
			exit: 1, err: []string{"502 Bad Gateway: (the answer is not a FHIR OperationOutcome)"}, notInIt: "html"},
		{name: "redirect", status: 308, answer: "", header: []string{"Location", "https://cpis.example.org/fhir/Flag/$import"},
			exit: 1, err: []string{"308 Permanent Redirect, to https://cpis.example.org/fhir/Flag/$import: give that address as --server"}},
		{name: "a server that echoes the token", status: 401, answer: operationOutcome(t, cpis.Unauthenticated, "token "+token+" has expired"),
			exit: 1, err: []string{"ACCESS_DENIED: token [token] has expired"}},
		{name: "a server that echoes the token in a rejection", status: 200, answer: parameters(t, answerSpec{outcome: someLoaded, mode: "delta", counts: partialCounts,
			rejections: []rejection{{line: 1, code: "INVALID_VALUE", cpr: "CPR07", diagnostic: "Bearer " + token}}}),
			exit: 2, out: []string{"CPR07  Bearer [token]\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeImport(t, tt.status, tt.answer, tt.header...)
			args := append([]string{"upload", "--server", srv.URL, "--token-file", tokenFile(t)}, tt.flags...)
			r := runCLI(t, nil, false, append(args, inputFile(t, "plans.ndjson", ndjsonInput))...)
			if r.exit() != tt.exit {
				t.Errorf("exit %d (error %v), want %d", r.exit(), r.err, tt.exit)
			}
			for _, want := range tt.out {
				if !strings.Contains(r.out, want) {
					t.Errorf("output does not contain %q:\n%s", want, r.out)
				}
			}
			for _, want := range tt.err {
				if !strings.Contains(errorText(r.err), want) {
					t.Errorf("error does not contain %q: %v", want, r.err)
				}
			}
			if tt.notInIt != "" && strings.Contains(r.all(), tt.notInIt) {
				t.Errorf("output or error contains %q:\n%s", tt.notInIt, r.all())
			}
			if len(srv.requests()) != 1 {
				t.Errorf("%d requests, want 1 (no retry, no redirect followed)", len(srv.requests()))
			}
		})
	}
}

// TestUploadBundle: a Bundle is sent as NDJSON, a line per entry, and the
// rejected lines are said to be its entries.
func TestUploadBundle(t *testing.T) {
	srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: someLoaded, mode: "delta", counts: partialCounts, rejections: twoRejections}))
	file := inputFile(t, "bundle.json", prettyBundle)
	r := runCLI(t, nil, false, "upload", "--server", srv.URL, "--token-file", tokenFile(t), file)
	if r.exit() != 2 {
		t.Fatalf("exit %d (%v), want 2", r.exit(), r.err)
	}
	req := srv.only(t)
	if string(req.body) != prettyBundleLines || req.contentLength != int64(len(prettyBundleLines)) {
		t.Errorf("body\n%s(Content-Length %d)\nwant\n%s", req.body, req.contentLength, prettyBundleLines)
	}
	checkHeaders(t, req)
	for _, want := range []string{
		fmt.Sprintf("uploading %s (a Bundle of 3 entries, sent as %s of NDJSON)", file, byteCount(int64(len(prettyBundleLines)))),
		"(the file was a Bundle: line N is its entry N)",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output does not contain %q:\n%s", want, r.out)
		}
	}
	srv = newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts}))
	r = runCLI(t, strings.NewReader(prettyBundle), false, "upload", "--server", srv.URL, "--token-file", tokenFile(t), "-")
	if req := srv.only(t); r.err != nil || string(req.body) != prettyBundleLines || req.chunked {
		t.Errorf("Bundle from standard input: %v, body %q, chunked %t; want the lines, with their length", r.err, req.body, req.chunked)
	}
}

// TestUploadRefusedLocally: inputs that are neither NDJSON nor a Bundle
// are refused before anything is sent.
func TestUploadRefusedLocally(t *testing.T) {
	srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: allLoaded, mode: "full"}))
	tests := []struct {
		name, input string
		flags       []string
		err         string
	}{
		{"CSV", "nhs_number,plan\n9990276579,CPP\n", nil, "does not start with '{'"},
		{"broken Bundle", `{"resourceType":"Bundle","entry":[{}]}`, nil, "entry 1 has no resource"},
		{"one pretty-printed Flag", "{\n  \"resourceType\": \"Flag\"\n}\n", []string{"--full"}, "spans several lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"upload", "--server", srv.URL, "--token-file", tokenFile(t)}, tt.flags...)
			r := runCLI(t, nil, false, append(args, inputFile(t, "plans", tt.input))...)
			if r.exit() != 1 || !strings.Contains(errorText(r.err), tt.err) {
				t.Errorf("exit %d, error %v; want 1 and %q", r.exit(), r.err, tt.err)
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("the server saw %d requests, want none", n)
	}
}

// TestUploadEmpty: an empty file is the server's to judge (a quiet day's
// delta is empty; a full upload of nothing meets the server's guard).
func TestUploadEmpty(t *testing.T) {
	srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: map[string]int32{"created": 0}}))
	for _, terminal := range []bool{false, true} {
		r := runCLI(t, nil, terminal, "upload", "--server", srv.URL, "--token-file", tokenFile(t), inputFile(t, "none", ""))
		if r.err != nil {
			t.Errorf("empty file, terminal %t: %v; want it sent, and exit 0", terminal, r.err)
		}
	}
	for _, req := range srv.requests() {
		if len(req.body) != 0 {
			t.Errorf("body %q, want none", req.body)
		}
	}
}

func TestUploadUsage(t *testing.T) {
	srv := newFakeImport(t, http.StatusOK, parameters(t, answerSpec{outcome: allLoaded, mode: "delta"}))
	tf := tokenFile(t)
	file := inputFile(t, "plans.ndjson", ndjsonInput)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no file", []string{"--server", srv.URL, "--token-file", tf}, true, "give the FILE to send (- for standard input)"},
		{"two files", []string{"--server", srv.URL, "--token-file", tf, file, file + "2"}, true, "unexpected argument"},
		{"no server", []string{"--token-file", tf, file}, true, "--server URL is required"},
		{"no token file", []string{"--server", srv.URL, file}, true, "--token-file PATH is required"},
		{"force without full", []string{"--force", "--server", srv.URL, "--token-file", tf, file}, true, "--force only applies to --full"},
		{"unknown flag", []string{"--fast", "--server", srv.URL, "--token-file", tf, file}, true, "flag provided but not defined: -fast"},
		{"not a URL", []string{"--server", "cpis.example.org", "--token-file", tf, file}, true, "--server must be an http or https URL"},
		{"ftp", []string{"--server", "ftp://cpis.example.org/fhir", "--token-file", tf, file}, true, "--server must be an http or https URL"},
		{"password in the URL", []string{"--server", "https://la:hunter2@cpis.example.org/fhir", "--token-file", tf, file}, true, "no user name or password"},
		{"query in the URL", []string{"--server", srv.URL + "?mode=full", "--token-file", tf, file}, true, "no query or fragment"},
		{"no token file there", []string{"--server", srv.URL, "--token-file", filepath.Join(dir, "none"), file}, false, "--token-file: open"},
		{"empty token file", []string{"--server", srv.URL, "--token-file", write("empty", " \n"), file}, false, "is empty"},
		{"two tokens", []string{"--server", srv.URL, "--token-file", write("two", "abc\ndef\n"), file}, false, "more than one word"},
		{"the plans as the token", []string{"--server", srv.URL, "--token-file", write("big", strings.Repeat("x", maxTokenFile+1)), file}, false, "larger than a token"},
		{"no such file", []string{"--server", srv.URL, "--token-file", tf, filepath.Join(dir, "plans.ndjson")}, false, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCLI(t, nil, false, append([]string{"upload"}, tt.args...)...)
			if got := errors.As(r.err, new(*usageError)); got != tt.usage || r.err == nil {
				t.Errorf("error %v: usage error %t, want %t", r.err, got, tt.usage)
			}
			if !strings.Contains(r.all(), tt.want) {
				t.Errorf("output and error %q do not contain %q", r.all(), tt.want)
			}
			if strings.Contains(r.all(), "hunter2") {
				t.Errorf("the URL's password was printed: %s", r.all())
			}
		})
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("the server saw %d requests, want none", n)
	}
}

// TestUploadPlainHTTP: a token sent in clear to another host is warned of.
func TestUploadPlainHTTP(t *testing.T) {
	r := runCLI(t, nil, false, "upload", "--server", "http://192.0.2.1:1", "--token-file", tokenFile(t), "/nonexistent/plans.ndjson")
	if !strings.Contains(r.errOut, "warning: --server is plain http") {
		t.Errorf("stderr %q, want a warning", r.errOut)
	}
}

// TestUploadUnreachable: a server that does not answer is a failure,
// naming the URL.
func TestUploadUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	r := runCLI(t, nil, false, "upload", "--server", srv.URL, "--token-file", tokenFile(t), inputFile(t, "p", ndjsonInput))
	if r.exit() != 1 || !strings.Contains(errorText(r.err), "upload to "+srv.URL+"/Flag/$import?mode=delta") {
		t.Errorf("exit %d, error %v; want 1 naming the URL", r.exit(), r.err)
	}
}

// TestUploadRefusedBeforeTheBody: a server that refuses the token answers
// before the body is sent (Expect: 100-continue), and the operator is told
// its answer, not of a broken connection.
func TestUploadRefusedBeforeTheBody(t *testing.T) {
	answer := operationOutcome(t, cpis.Unauthenticated, "the token has expired")
	var mu sync.Mutex
	expect := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		expect = r.Header.Get("Expect")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	big := strings.Repeat(flagLine1+"\n", 16<<20/len(flagLine1))
	for _, in := range []struct {
		name  string
		stdin io.Reader
		file  string
	}{{"file", nil, inputFile(t, "plans.ndjson", big)}, {"standard input", strings.NewReader(big), "-"}} {
		r := runCLI(t, in.stdin, false, "upload", "--server", srv.URL, "--token-file", tokenFile(t), in.file)
		if !strings.Contains(errorText(r.err), "401 Unauthorized: ACCESS_DENIED: the token has expired") {
			t.Errorf("%s: error %v, want the server's 401", in.name, r.err)
		}
		if strings.Contains(r.out, "sent") {
			t.Errorf("%s: output %q, want nothing sent", in.name, r.out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if expect != "100-continue" {
		t.Errorf("Expect: %q, want 100-continue", expect)
	}
}

// TestUploadStreams: the server has the first line before the rest of the
// input has even been written, so upload does not read its input whole
// before sending it.
func TestUploadStreams(t *testing.T) {
	rest := strings.Repeat(flagLine2+"\n", 1000)
	firstLine := make(chan struct{})
	var mu sync.Mutex
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		br := bufio.NewReader(r.Body)
		line, err := br.ReadBytes('\n')
		close(firstLine)
		more, err2 := io.ReadAll(br)
		if err != nil || err2 != nil {
			t.Errorf("server: reading the body: %v, %v", err, err2)
		}
		mu.Lock()
		got = append(line, more...)
		mu.Unlock()
		io.WriteString(w, parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts}))
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	go func() {
		io.WriteString(pw, flagLine1+"\n")
		select {
		case <-firstLine:
		case <-time.After(20 * time.Second):
			pw.CloseWithError(errors.New("the server did not get line 1 before the rest was written"))
			return
		}
		io.WriteString(pw, rest)
		pw.Close()
	}()
	r := runCLI(t, pr, false, "upload", "--server", srv.URL, "--token-file", tokenFile(t), "-")
	if r.err != nil {
		t.Fatalf("upload: %v", r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if string(got) != flagLine1+"\n"+rest {
		t.Errorf("the server got %d bytes, want the %d of the input, unchanged", len(got), len(flagLine1)+1+len(rest))
	}
}

// generated is an NDJSON input of size bytes made on the fly: a block of
// numbered lines, repeated.
type generated struct {
	block []byte
	left  int64
	off   int
}

func newGenerated(size int64) *generated {
	var b bytes.Buffer
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, `{"resourceType":"Flag","identifier":[{"system":"https://cpis.example.org/fhir/Id/la-plan-reference","value":"P-%06d"}],"status":"active"}`+"\n", i)
	}
	return &generated{block: b.Bytes(), left: size}
}

func (g *generated) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.left)]
	n := copy(p, g.block[g.off:])
	g.off = (g.off + n) % len(g.block)
	g.left -= int64(n)
	return n, nil
}

// TestUploadLargeInput sends 300 MB, about 300,000 plans, from a pipe: the
// server gets every byte, in order, and the heap never grows by more than
// a small fraction of the input.
func TestUploadLargeInput(t *testing.T) {
	size := int64(300 << 20)
	if testing.Short() {
		size = 30 << 20
	}
	want := sha256.New()
	io.Copy(want, newGenerated(size))
	var mu sync.Mutex
	var got []byte
	var n int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		c, err := io.Copy(h, r.Body)
		if err != nil {
			t.Errorf("server: %v", err)
		}
		mu.Lock()
		got, n = h.Sum(nil), c
		mu.Unlock()
		io.WriteString(w, parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts}))
	}))
	defer srv.Close()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := make(chan uint64)
	stop := make(chan struct{})
	go func() { peak <- heapPeak(stop) }()
	r := runCLI(t, newGenerated(size), false, "upload", "--server", srv.URL, "--token-file", tokenFile(t), "-")
	close(stop)
	top := <-peak
	if r.err != nil {
		t.Fatalf("upload: %v", r.err)
	}
	mu.Lock()
	defer mu.Unlock()
	if n != size || !bytes.Equal(got, want.Sum(nil)) {
		t.Errorf("the server got %d bytes (sha256 %x), want %d (sha256 %x)", n, got, size, want.Sum(nil))
	}
	if growth := int64(top) - int64(before.HeapInuse); growth > 64<<20 {
		t.Errorf("the heap grew by %d MiB while sending %d MiB: the input was held in memory", growth>>20, size>>20)
	}
	if !strings.Contains(r.out, "sent "+byteCount(size)+"\n") {
		t.Errorf("output %q, want the bytes sent", r.out)
	}
}

// heapPeak samples the heap in use until stop is closed, and returns the
// most it saw.
func heapPeak(stop <-chan struct{}) uint64 {
	var top uint64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		top = max(top, m.HeapInuse)
		select {
		case <-stop:
			return top
		case <-tick.C:
		}
	}
}

// TestUploadProgress: a bar on a terminal; on a file or a pipe one line,
// with no control characters.
func TestUploadProgress(t *testing.T) {
	answer := parameters(t, answerSpec{outcome: allLoaded, mode: "delta", counts: loadedCounts})
	big := strings.Repeat(flagLine1+"\n", 20000)
	tests := []struct {
		name     string
		terminal bool
		stdin    bool
		want     []string
	}{
		{"terminal, file", true, false, []string{"uploading", "100%", byteCount(int64(len(big))), "sent; waiting for the server's answer\n"}},
		{"terminal, standard input", true, true, []string{"uploading", "sent; waiting for the server's answer\n"}},
		{"not a terminal", false, false, []string{"\nsent " + byteCount(int64(len(big))) + "\noutcome"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeImport(t, http.StatusOK, answer)
			args := []string{"upload", "--server", srv.URL, "--token-file", tokenFile(t), inputFile(t, "plans.ndjson", big)}
			var stdin io.Reader
			if tt.stdin {
				args[len(args)-1], stdin = "-", strings.NewReader(big)
			}
			r := runCLI(t, stdin, tt.terminal, args...)
			if r.err != nil {
				t.Fatalf("upload: %v", r.err)
			}
			for _, want := range tt.want {
				if !strings.Contains(r.out, want) {
					t.Errorf("output does not contain %q:\n%q", want, r.out)
				}
			}
			if !tt.terminal && strings.ContainsAny(r.out, "\r\x1b") {
				t.Errorf("output has control characters:\n%q", r.out)
			}
		})
	}
}

// TestClean: what the server writes is printed without the token, and
// without control characters that could drive the terminal or break the
// table.
func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                       "plain",
		"token " + token + " echoed":  "token [token] echoed",
		"clear\x1b[2Jscreen":          "clear [2Jscreen",
		"two\nlines\tand\rtab\u0085":  "two lines and tab ",
		"accents: é, ü, and – dashes": "accents: é, ü, and – dashes",
	} {
		if got := clean(in, token); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("network"), 1},
		{&usageError{"bad"}, 2},
		{&rejectedError{rejected: 3, outcome: someLoaded}, 2},
		{fmt.Errorf("upload: %w", &rejectedError{rejected: 1, outcome: noneLoaded}), 2},
		{errHelpShown, 1}, // run turns it into nil before main sees it
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
