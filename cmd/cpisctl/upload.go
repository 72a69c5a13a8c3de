package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// uploadHelp is upload's --help, after its summary.
const uploadHelp = `FILE holds one FHIR Flag a line (NDJSON), each carrying the LA's own plan
reference as identifier https://cpis.example.org/fhir/Id/la-plan-reference;
or it is one FHIR Bundle (JSON), whose entries' resources are sent as those
lines. An NDJSON file is streamed and never held in memory; a Bundle is read
whole. The server checks every line and answers with counts and the lines it
rejected, which upload prints.

By default the upload is a delta: the plans in FILE are created or updated.
With --full, FILE is the LA's whole register, and the LA's plans absent from
it are ended; the server refuses a full upload that would end more than 10%
of the LA's current plans unless --force is given. --dry-run has the server
check and count everything and change nothing.

The token is read from --token-file (surrounding white space trimmed) and is
never printed.

Exit status: 0 every line was loaded; 2 the server rejected some lines (they
are listed), or the command line is wrong; 1 anything else (the server
refused the upload or could not be reached, FILE could not be read).
`

// maxTokenFile bounds what is read of --token-file: a bearer token is a
// few kilobytes, and a larger file is the wrong one (the plans file, say).
const maxTokenFile = 64 << 10

// maxAnswer bounds what is read of the server's answer: 300,000 rejected
// lines come to about 150 MB of Parameters.
const maxAnswer = 512 << 20

// uploadOptions is upload's command line.
type uploadOptions struct {
	full, dryRun, force bool
	server, tokenFile   string
	file                string
}

// upload sends an LA's file of Flags to the server's Flag/$import and
// prints the server's summary.
func upload(ctx context.Context, e *env, args []string) error {
	o, err := parseUpload(e, args)
	if err != nil {
		return err
	}
	endpoint, err := importURL(e, o)
	if err != nil {
		return err
	}
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	p, closeInput, err := openInput(o.file, e.stdin)
	if err != nil {
		return err
	}
	defer closeInput()
	fmt.Fprintf(e.stdout, "uploading %s to %s\n", describeInput(o.file, p), endpoint)
	r, err := send(ctx, e, o, endpoint, token, p)
	if err != nil {
		return err
	}
	printResult(e.stdout, r, p, token)
	warnMismatch(e, o, r)
	return r.verdict()
}

func parseUpload(e *env, args []string) (uploadOptions, error) {
	var o uploadOptions
	rest, err := parseFlags(e, "upload", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&o.full, "full", false, "FILE is the LA's whole register: the LA's plans absent from it are ended")
		fs.BoolVar(&o.dryRun, "dry-run", false, "have the server check and count everything, and change nothing")
		fs.BoolVar(&o.force, "force", false, "with --full: end the absent plans even when they are more than 10% of the LA's current plans")
		fs.StringVar(&o.server, "server", "", "the server's FHIR base `URL`, such as https://cpis.example.org/fhir")
		fs.StringVar(&o.tokenFile, "token-file", "", "the `PATH` of a file holding the LA system's bearer token")
	})
	switch {
	case err != nil:
		return o, err
	case len(rest) == 0:
		return o, &usageError{"upload: give the FILE to send (- for standard input)"}
	case len(rest) > 1:
		return o, &usageError{fmt.Sprintf("upload: unexpected argument %q", rest[1])}
	case o.server == "":
		return o, &usageError{"upload: --server URL is required"}
	case o.tokenFile == "":
		return o, &usageError{"upload: --token-file PATH is required"}
	case o.force && !o.full:
		return o, &usageError{"upload: --force only applies to --full"}
	}
	o.file = rest[0]
	return o, nil
}

// importURL is the address of the server's Flag/$import for o. The server
// URL is printed, so it may carry no password.
func importURL(e *env, o uploadOptions) (string, error) {
	u, err := url.Parse(o.server)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", &usageError{"upload: --server must be an http or https URL, such as https://cpis.example.org/fhir"}
	case u.User != nil:
		return "", &usageError{"upload: --server must carry no user name or password: the token authenticates"}
	case u.RawQuery != "" || u.Fragment != "":
		return "", &usageError{"upload: --server must be the server's base URL, with no query or fragment"}
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		fmt.Fprintln(e.stderr, "warning: --server is plain http: the token and the plans cross the network unencrypted")
	}
	u = u.JoinPath("Flag", "$import")
	q := url.Values{"mode": {"delta"}}
	if o.full {
		q.Set("mode", "full")
	}
	if o.dryRun {
		q.Set("dryRun", "true")
	}
	if o.force {
		q.Set("force", "true")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// readToken reads the bearer token from path, trimmed of white space. Its
// errors never quote the file.
func readToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("--token-file: %s is larger than a token (over %d KiB): is it the right file?", path, maxTokenFile>>10)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--token-file: %s is empty", path)
	}
	if strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) >= 0 {
		return "", fmt.Errorf("--token-file: %s holds more than one word, or characters no bearer token has", path)
	}
	return token, nil
}

func inputName(file string) string {
	if file == "-" {
		return "standard input"
	}
	return file
}

// describeInput names the input and what is sent of it.
func describeInput(file string, p *payload) string {
	switch {
	case p.bundle:
		return fmt.Sprintf("%s (a Bundle of %d entries, sent as %s of NDJSON)", inputName(file), p.entries, byteCount(p.size))
	case p.size >= 0:
		return fmt.Sprintf("%s (NDJSON, %s)", inputName(file), byteCount(p.size))
	}
	return inputName(file) + " (NDJSON)"
}

// send posts the payload and reads the server's answer. The body is read
// from p as the connection takes it, so an NDJSON file is never held whole.
// "Expect: 100-continue" lets the server refuse (a bad token, a file too
// large by its Content-Length) before the body is sent.
func send(ctx context.Context, e *env, o uploadOptions, endpoint, token string, p *payload) (*importResult, error) {
	prog := newProgress(e, p.size)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, prog.wrap(p.body))
	if err != nil {
		return nil, err
	}
	req.ContentLength = p.size // -1: unknown, sent chunked
	req.Header.Set("Content-Type", "application/fhir+ndjson")
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("User-Agent", "cpisctl")
	client := &http.Client{
		// A redirect would resend neither the body nor, to another host,
		// the token: the operator is told to use the new address instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	prog.stop()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("upload interrupted: %w", ctx.Err())
		}
		return nil, fmt.Errorf("upload to %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	return readAnswer(resp, o, token)
}

// readAnswer reads the server's answer: the import's result, or an error
// that says why the server refused the upload.
func readAnswer(resp *http.Response, o uploadOptions, token string) (*importResult, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the server's answer: %w", err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("the server's answer is larger than %d MiB", maxAnswer>>20)
	}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		r, err := parseResult(body)
		if err != nil {
			return nil, fmt.Errorf("%w (HTTP %s%s)", err, clean(resp.Status, token), requestID(resp, token))
		}
		return r, nil
	case code >= 300 && code < 400:
		return nil, fmt.Errorf("the server answered %s, to %s: give that address as --server",
			clean(resp.Status, token), clean(resp.Header.Get("Location"), token))
	}
	return nil, statusError(resp, body, o, token)
}

// statusError says why the server refused the upload, with what the
// operator can do about it.
func statusError(resp *http.Response, body []byte, o uploadOptions, token string) error {
	issues, ok := outcomeIssues(body)
	if !ok {
		issues = "(the answer is not a FHIR OperationOutcome)"
	}
	msg := fmt.Sprintf("the server refused the upload: %s: %s%s", clean(resp.Status, token), clean(issues, token), requestID(resp, token))
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		msg += "\nthe token was not accepted: does the token file hold a current token?"
	case http.StatusForbidden:
		msg += "\nthe token does not allow this upload: is it the token of the LA's case-management system?"
	case http.StatusRequestEntityTooLarge:
		if o.full {
			msg += "\na full upload must be one file: ask the service's operators about its upload limit"
		} else {
			msg += "\na delta upload may be split into smaller files, sent one after the other"
		}
	case http.StatusUnprocessableEntity:
		if o.full && !o.force {
			msg += "\nif ending those plans is intended, run the upload again with --force"
		}
	case http.StatusServiceUnavailable:
		msg += "\nthe service is unavailable: try again later"
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			msg += fmt.Sprintf(" (it asks for %d s)", s)
		}
	}
	return errors.New(msg)
}

// requestID names the server's request id, for its operators' logs.
func requestID(resp *http.Response, token string) string {
	if id := resp.Header.Get("X-Request-Id"); id != "" {
		return " (request id " + clean(id, token) + ")"
	}
	return ""
}

// warnMismatch warns when the server's answer is not for the mode asked.
func warnMismatch(e *env, o uploadOptions, r *importResult) {
	want := "delta"
	if o.full {
		want = "full"
	}
	if r.mode != "" && r.mode != want {
		fmt.Fprintf(e.stderr, "warning: asked for a %s upload, the server answered for mode %q\n", want, clean(r.mode, ""))
	}
	if r.dryRun != nil && *r.dryRun != o.dryRun {
		fmt.Fprintf(e.stderr, "warning: asked for dry run %t, the server answered dry run %t\n", o.dryRun, *r.dryRun)
	}
}
