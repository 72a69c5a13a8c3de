package main

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress reports the bytes upload has sent: a bar (bytes sent, rate,
// time left) when stdout is a terminal, else one line once the body has
// been sent.
//
// The HTTP transport reads the body on a goroutine of its own, which may
// in principle still read after the request has returned (see
// http.RoundTripper), while upload's goroutine writes the rest of the
// output. So all of progress's writing happens under mu, and none after
// stop.
type progress struct {
	mu    sync.Mutex
	out   io.Writer
	bar   *progressbar.ProgressBar // nil when stdout is not a terminal
	now   func() time.Time
	start time.Time
	size  int64 // -1 when unknown
	sent  int64
	done  bool // the body has been read to its end, or stop was called
}

func newProgress(e *env, size int64) *progress {
	p := &progress{out: e.stdout, now: e.now, start: e.now(), size: size}
	if e.terminal && size != 0 { // an empty body has no progress to show, and no bar of 0 bytes draws
		p.bar = progressbar.NewOptions64(size,
			progressbar.OptionSetWriter(e.stdout),
			progressbar.OptionSetDescription("uploading"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			// No spinner goroutine of the bar's own, for an unknown size:
			// it would write outside mu.
			progressbar.OptionSetSpinnerChangeInterval(0),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stdout) }),
		)
	}
	return p
}

// wrap returns r counted into p: the transport reads the body from it.
func (p *progress) wrap(r io.Reader) io.Reader { return &countingReader{r: r, p: p} }

type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(n, err == io.EOF)
	return n, err
}

// add counts n bytes read. The body is sent when its reader says EOF or,
// of a known size, once it has all been read: with a Content-Length the
// transport copies the body straight to the connection and reads on for
// EOF only afterwards, by which time the server may have answered.
func (p *progress) add(n int, eof bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.sent += int64(n)
	if p.bar != nil {
		p.bar.Add(n)
	}
	if eof || p.sent == p.size {
		p.finish()
	}
}

// finish reports the body sent.
func (p *progress) finish() {
	p.done = true
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.out, "sent; waiting for the server's answer")
	} else {
		fmt.Fprintf(p.out, "sent %s\n", p.rateText())
	}
}

// stop ends the reporting, before upload writes anything more: when the
// body was not sent whole (the server answered early, or the connection
// failed), it says how much was.
func (p *progress) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.done:
	case p.sent == p.size: // an empty body, never read
		p.finish()
	default:
		p.done = true
		if p.bar != nil {
			p.bar.Exit()
		}
		if p.sent > 0 {
			fmt.Fprintf(p.out, "stopped after sending %s\n", p.rateText())
		}
	}
}

// rateText says how much was sent, in how long and how fast.
func (p *progress) rateText() string {
	s := byteCount(p.sent)
	if p.size >= 0 && p.sent != p.size {
		s += " of " + byteCount(p.size)
	}
	d := p.now().Sub(p.start)
	if d <= 0 {
		return s
	}
	rate := byteCount(int64(float64(p.sent) / d.Seconds()))
	if d >= time.Second {
		d = d.Round(time.Second)
	} else {
		d = d.Round(time.Millisecond)
	}
	return fmt.Sprintf("%s in %s (%s/s)", s, d, rate)
}

// byteCount renders n bytes in decimal units, as the progress bar does.
func byteCount(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGT"[exp])
}
