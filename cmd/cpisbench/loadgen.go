package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// searchPath is the request measured, less the NHS number: a health user's
// search by NHS number, as a front-door EPR makes it (Patient Flags API style).
const searchPath = "/Flag?patient:identifier=" + cpis.NHSNumberSystem + "%7C"

// planOneIn is how many searches there are for each one that finds a plan:
// at a real front door most children are not known to social care.
const planOneIn = 20

// personas whose tokens the clients use, alternately: unscheduled care
// (reads notify the LA) and scheduled care.
var personas = []string{"ed-clinician", "community-nurse"}

// load is what one run of the load generator saw.
type load struct {
	clients    int
	window     time.Duration   // the measured time
	latencies  []time.Duration // of the measured requests, sorted
	errors     int             // measured requests that failed (non-200 or transport)
	warmErrors int             // the same during warm-up
	served     int64           // 200 responses, warm-up included: each must have left one AuditEvent
	found      int64           // 200 responses carrying plans, warm-up included
	wrong      int64           // 200 responses with plans for a number without, or none for one with
	errKinds   map[string]int  // what the errors were
}

// client is one simulated EPR session, looping over searches.
type client struct {
	http       *http.Client
	base       string
	token      string
	r          *rand.Rand
	d          *dataset
	buf        bytes.Buffer
	latencies  []time.Duration
	errors     int
	warmErrors int
	served     int64
	found      int64
	wrong      int64
	errKinds   map[string]int
}

// drive runs clients concurrent searches against base: warmup unmeasured,
// then duration measured. Every client shares one transport, with an idle
// connection kept for each, as a load balancer in front of a server would.
func drive(ctx context.Context, base string, tokens []string, d *dataset, clients int, warmup, duration time.Duration) *load {
	tr := &http.Transport{MaxIdleConns: 2 * clients, MaxIdleConnsPerHost: 2 * clients, IdleConnTimeout: time.Minute, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	measureFrom, end := start.Add(warmup), start.Add(warmup+duration)
	expect := int(duration.Seconds()*20_000)/clients + 1024 // room for 20,000 requests/s without growing
	cs := make([]*client, clients)
	var wg sync.WaitGroup
	for i := range cs {
		cs[i] = &client{http: hc, base: base, token: tokens[i%len(tokens)], d: d, errKinds: map[string]int{},
			r: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))), latencies: make([]time.Duration, 0, expect)}
		wg.Go(func() { cs[i].loop(ctx, measureFrom, end) })
	}
	wg.Wait()
	return merge(cs, clients, duration)
}

// loop searches until end; requests started from measureFrom are measured.
func (c *client) loop(ctx context.Context, measureFrom, end time.Time) {
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		hasPlan := c.r.IntN(planOneIn) == 0
		nhs := c.d.without[c.r.IntN(len(c.d.without))]
		if hasPlan {
			nhs = c.d.withPlan[c.r.IntN(len(c.d.withPlan))]
		}
		found, err := c.search(ctx, nhs)
		took := time.Since(t0)
		measured := !t0.Before(measureFrom)
		switch {
		case err != nil && measured:
			c.errors++
			c.errKinds[err.Error()]++
		case err != nil:
			c.warmErrors++
			c.errKinds[err.Error()]++
		default:
			c.served++
			c.found += b2i(found)
			c.wrong += b2i(found != hasPlan)
			if measured {
				c.latencies = append(c.latencies, took)
			}
		}
	}
}

// entryMarker is in a searchset Bundle's JSON only when it has entries.
var entryMarker = []byte(`"entry":`)

// search makes one audited search and reads the whole body; found reports
// whether it returned plans.
func (c *client) search(ctx context.Context, nhs cpis.NHSNumber) (found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+searchPath+string(nhs), nil)
	if err != nil {
		return false, err
	}
	req.Header["Authorization"] = []string{"Bearer " + c.token}
	req.Header["Accept"] = []string{"application/fhir+json"}
	resp, err := c.http.Do(req)
	if err != nil {
		return false, errors.New("transport error")
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return false, errors.New("reading the body failed")
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return bytes.Contains(c.buf.Bytes(), entryMarker), nil
}

// merge adds up the clients' results and sorts the latencies.
func merge(cs []*client, clients int, window time.Duration) *load {
	l := &load{clients: clients, window: window, errKinds: map[string]int{}}
	for _, c := range cs {
		l.latencies = append(l.latencies, c.latencies...)
		l.errors += c.errors
		l.warmErrors += c.warmErrors
		l.served += c.served
		l.found += c.found
		l.wrong += c.wrong
		for k, n := range c.errKinds {
			l.errKinds[k] += n
		}
	}
	slices.Sort(l.latencies)
	return l
}

// rate is the measured searches answered (200, audited) per second.
func (l *load) rate() float64 { return float64(len(l.latencies)) / l.window.Seconds() }

// percentile is the nearest-rank q-quantile of the measured latencies, in ms.
func (l *load) percentile(q float64) float64 {
	if len(l.latencies) == 0 {
		return math.NaN()
	}
	i := max(0, int(math.Ceil(q*float64(len(l.latencies))))-1)
	return ms(l.latencies[i])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
