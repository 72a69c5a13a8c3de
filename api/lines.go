package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"iter"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// MaxLineBytes is the longest line of an NDJSON import: a Flag is well
// under 4 KiB, as for a single write.
const MaxLineBytes = MaxBodyBytes

// ndjsonLines reads an NDJSON body a line at a time, never whole, handing
// on each line with its digest (so that a line the register has stored
// before need not be parsed again). Blank lines are skipped but counted, so
// line numbers are the file's. The sequence ends with an error when the body
// itself cannot be read on (the client went away, or it is not readable).
func ndjsonLines(ctx context.Context, body io.Reader) iter.Seq2[register.Line, error] {
	return func(yield func(register.Line, error) bool) {
		r := bufio.NewReaderSize(body, 64<<10)
		for n := 1; ; n++ {
			if err := ctx.Err(); err != nil {
				yield(register.Line{}, cpis.E("api.import", cpis.Unavailable, "the request ended", err))
				return
			}
			raw, err := readLine(r)
			switch {
			case errors.Is(err, errLineTooLong):
				if !yield(register.Line{N: n, Err: cpis.E("api.import", cpis.TooLarge, cpis.Expr("Flag"), "the line is longer than 64 KiB: a Flag is well under 4 KiB")}, nil) {
					return
				}
				continue
			case len(bytes.TrimSpace(raw)) > 0:
				sum := sha256.Sum256(raw)
				if !yield(register.Line{N: n, Raw: raw, Digest: hex.EncodeToString(sum[:])}, nil) {
					return
				}
			}
			switch {
			case errors.Is(err, io.EOF):
				return
			case err != nil:
				yield(register.Line{}, cpis.E("api.import", cpis.Invalid, "the file could not be read to its end: nothing was stored", err))
				return
			}
		}
	}
}

// errLineTooLong is a line over MaxLineBytes; the rest of it is skipped.
var errLineTooLong = errors.New("line too long")

// readLine returns the next line without its newline. A line over
// MaxLineBytes is skipped to its end and reported as errLineTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > MaxLineBytes+1 {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			if err == nil || errors.Is(err, io.EOF) {
				return nil, errLineTooLong
			}
			return nil, err
		}
		line = append(line, chunk...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return bytes.TrimRight(line, "\r\n"), err
		}
	}
}

// parseFlagLine reads one line of an import as a CP-IS Flag: the plan, or
// its error and, when it can be read, the LA's reference on the line.
func parseFlagLine(raw []byte) (cpis.Plan, string, error) {
	plan, err := fhir.ParseFlag(raw)
	if err != nil {
		ref, _ := fhir.FlagReference(raw)
		return cpis.Plan{}, ref, err
	}
	return plan, plan.Reference, nil
}
