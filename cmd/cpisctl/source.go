package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// payload is what upload sends for one input: NDJSON, one resource a line.
//
// An NDJSON input is streamed as it is: only its first JSON value is read
// ahead, to tell it from a Bundle, so a file of 300,000 plans (some
// 300 MB) is never held in memory. A Bundle is read whole (a Bundle
// export is much smaller than the NDJSON files LAs send, and JSON cannot be
// cut into entries before it has been read) and converted in memory, each
// entry's resource becoming one line, compacted but otherwise unchanged:
// the server, not cpisctl, judges every resource, so that a bad entry is
// one rejected line, as in an NDJSON file, where line N is entry N.
//
// Only the Bundle's envelope (resourceType, entry[].resource) is read with
// encoding/json, as fhir's checkEnvelope reads a Flag's: the resources
// pass through untouched, with no FHIR model written by hand.
type payload struct {
	body    io.Reader
	size    int64 // bytes in body; -1 when unknown (NDJSON from a pipe)
	bundle  bool  // the input was a Bundle, converted to NDJSON
	entries int   // the Bundle's entries, when bundle
}

// utf8BOM is dropped from the start of an input: NDJSON is UTF-8 without
// one, and editors and Windows exports add it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// sniffBufferSize is the read-ahead of an NDJSON input.
const sniffBufferSize = 64 << 10

// openInput opens the file upload was given ("-" for stdin) and returns
// its payload, and a function that closes the file.
func openInput(name string, stdin io.Reader) (*payload, func(), error) {
	if name == "-" {
		p, err := sniff(stdin, -1)
		if err != nil {
			return nil, nil, fmt.Errorf("standard input: %w", err)
		}
		return p, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	size := int64(-1)
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	p, err := sniff(f, size)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, func() { f.Close() }, nil
}

// sniff tells NDJSON from a Bundle by the input's first JSON value, and
// returns the payload to send. size is the input's size in bytes, or -1.
func sniff(r io.Reader, size int64) (*payload, error) {
	br := bufio.NewReaderSize(r, sniffBufferSize)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
		if size >= 0 {
			size -= int64(len(utf8BOM))
		}
	}
	first, dropped, err := firstNonSpace(br)
	if size >= 0 {
		size -= dropped
	}
	if errors.Is(err, io.EOF) {
		return &payload{body: br, size: size}, nil // an empty file is the server's to judge
	} else if err != nil {
		return nil, err
	}
	if first != '{' {
		return nil, errors.New("neither NDJSON nor a FHIR Bundle: it does not start with '{'")
	}
	var read bytes.Buffer // what the decoder took from br, to be sent first
	dec := json.NewDecoder(io.TeeReader(br, &read))
	var head json.RawMessage
	if err := dec.Decode(&head); err != nil {
		return nil, firstValueError(err)
	}
	var envelope struct {
		ResourceType string `json:"resourceType"`
	}
	_ = json.Unmarshal(head, &envelope) // not an object: the server rejects line 1
	if envelope.ResourceType != "Bundle" {
		if bytes.ContainsAny(head, "\r\n") {
			return nil, errors.New("neither NDJSON nor a FHIR Bundle: its first resource spans several lines, and NDJSON has one resource a line")
		}
		return &payload{body: io.MultiReader(&read, br), size: size}, nil
	}
	if _, _, err := firstNonSpace(bufio.NewReader(io.MultiReader(dec.Buffered(), br))); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, errors.New("holds more after its Bundle: give one Bundle, or NDJSON of Flags with no Bundle")
	}
	return bundleLines(head)
}

// firstNonSpace returns the first byte of br that is not JSON white space,
// leaving it unread, or io.EOF; and how many bytes of white space it
// dropped. It only peeks within br's buffer, and drops a buffer that holds
// nothing but white space (64 KiB of it before the first value is no one's
// NDJSON, and it holds no line that the server could number).
func firstNonSpace(br *bufio.Reader) (byte, int64, error) {
	var dropped int64
	for {
		if _, err := br.Peek(1); err != nil {
			return 0, dropped, err
		}
		buf, _ := br.Peek(br.Buffered())
		for _, c := range buf {
			if !isSpace(c) {
				return c, dropped, nil
			}
		}
		n, _ := br.Discard(len(buf))
		dropped += int64(n)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// firstValueError says why the input's first JSON value could not be read,
// by offset only: the input's content is never printed.
func firstValueError(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("neither NDJSON nor a FHIR Bundle: its first JSON object is not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("neither NDJSON nor a FHIR Bundle: it ends inside its first JSON object")
	}
	return err
}

// bundleLines converts a Bundle's entries to NDJSON, one resource a line.
func bundleLines(bundle []byte) (*payload, error) {
	var b struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, errors.New("the Bundle's entry is not a list of entries")
	}
	var out bytes.Buffer
	out.Grow(len(bundle))
	for i, e := range b.Entry {
		if len(e.Resource) == 0 || e.Resource[0] != '{' {
			return nil, fmt.Errorf("the Bundle's entry %d has no resource", i+1)
		}
		json.Compact(&out, e.Resource) // valid: json.Unmarshal checked it
		out.WriteByte('\n')
	}
	return &payload{body: &out, size: int64(out.Len()), bundle: true, entries: len(b.Entry)}, nil
}
