package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"runtime"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// MaxLineBytes is the longest line of an NDJSON import: a Flag is well
// under 4 KiB, as for a single write.
const MaxLineBytes = MaxBodyBytes

// parsedLine is one line on its way from the body to the register: parsed
// by a worker, handed on in order.
type parsedLine struct {
	raw  []byte // the line as read, until a worker parses it
	line register.Line
	done chan struct{}
}

// ndjsonLines reads an NDJSON body a line at a time, never whole, and
// parses the lines on every core, handing them on in file order. Blank lines
// are skipped. A line that is not a valid CP-IS Flag is handed on with its
// error (and its reference, when one can be read), for the register to
// report. The sequence ends with an error when the body itself cannot be
// read on (the client went away, or the body is larger than allowed).
func ndjsonLines(ctx context.Context, body io.Reader) iter.Seq2[register.Line, error] {
	return func(yield func(register.Line, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		workers := runtime.GOMAXPROCS(0)
		jobs := make(chan *parsedLine, 4*workers)
		order := make(chan *parsedLine, 64*workers) // bounds the lines held in memory
		readErr := make(chan error, 1)
		go readLines(ctx, body, jobs, order, readErr)
		for range workers {
			go func() {
				for j := range jobs {
					j.line, j.raw = parseLine(j.line.N, j.raw), nil
					close(j.done)
				}
			}()
		}
		for j := range order {
			<-j.done
			if !yield(j.line, nil) {
				return
			}
		}
		if err := <-readErr; err != nil {
			yield(register.Line{}, err)
		}
	}
}

// readLines splits body into lines, queueing each for a worker (jobs) and
// for the reader in order (order), until the body ends or ctx does.
func readLines(ctx context.Context, body io.Reader, jobs, order chan<- *parsedLine, readErr chan<- error) {
	defer close(order)
	defer close(jobs)
	r := bufio.NewReaderSize(body, 64<<10)
	for n := 1; ; n++ {
		raw, err := readLine(r)
		if len(bytes.TrimSpace(raw)) > 0 || errors.Is(err, errLineTooLong) {
			j := &parsedLine{line: register.Line{N: n}, done: make(chan struct{})}
			if errors.Is(err, errLineTooLong) {
				j.line.Err = cpis.E("api.import", cpis.TooLarge, cpis.Expr("Flag"), "the line is longer than 64 KiB: a Flag is well under 4 KiB")
				close(j.done)
			} else {
				j.raw = bytes.Clone(raw) // the reader reuses its buffer
			}
			select {
			case order <- j:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
			if j.line.Err == nil {
				jobs <- j
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			readErr <- nil
			return
		case err != nil && !errors.Is(err, errLineTooLong):
			readErr <- cpis.E("api.import", cpis.Invalid, "the file could not be read to its end: nothing was stored", err)
			return
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

// parseLine parses line n: its plan, or its error and, when it can be read,
// its reference.
func parseLine(n int, raw []byte) register.Line {
	plan, err := fhir.ParseFlag(raw)
	if err != nil {
		ref, _ := fhir.FlagReference(raw)
		return register.Line{N: n, Err: err, Reference: ref}
	}
	return register.Line{N: n, Plan: plan}
}
