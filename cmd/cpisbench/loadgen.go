package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// searchPath is the request measured, less the NHS number: a health user's
// search by NHS number, as a front-door EPR makes it (Patient Flags API style).
const searchPath = "/Flag?patient:identifier=" + cpis.NHSNumberSystem + "%7C"

// persona is a health user whose token clients search with.
type persona struct {
	name        string
	unscheduled bool // unscheduled care (B0107): reads that return plans send ASNs
}

var (
	edClinician    = persona{"ed-clinician", true}
	communityNurse = persona{"community-nurse", false}
	// standardMix is the personas of the standard runs, one per client in
	// turn: half the clients read in unscheduled care, half in scheduled.
	standardMix = []persona{edClinician, communityNurse}
	// scheduledOnly is the same load without ASNs: every read in
	// scheduled care.
	scheduledOnly = []persona{communityNurse}
)

// names is the personas' names joined for the report.
func names(ps []persona) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	return strings.Join(out, " and ")
}

// session is a persona with a token the server gave it.
type session struct {
	persona
	token string
}

// workload is what one run of the load generator does: clients searching
// concurrently, each with the session of its turn; warmup unmeasured, then
// duration measured.
type workload struct {
	sessions  []session
	planOneIn int // searches for each one for an NHS number with a plan
	clients   int
	warmup    time.Duration
	duration  time.Duration
}

// asnPair is what an ASN is sent for once per coalescing window: a child
// and the LA responsible for a plan shown (the accessing organisation is
// the same for all the benchmark's readers).
type asnPair struct {
	nhs cpis.NHSNumber
	la  string
}

// pairSet is a set of (NHS number, LA) pairs.
type pairSet map[asnPair]struct{}

// load is what one run of the load generator saw.
type load struct {
	clients    int
	window     time.Duration   // the measured time
	latencies  []time.Duration // of the measured requests, sorted
	errors     int             // measured requests that failed (non-200 or transport)
	warmErrors int             // the same during warm-up
	served     int64           // 200 responses, warm-up included: each must have left one AuditEvent
	found      int64           // 200 responses carrying plans, warm-up included
	wrong      int64           // 200 responses with plans for a number without, or none for one with, or another's
	errKinds   map[string]int  // what the errors were
	// unscheduledFound is the 200 responses to unscheduled-care sessions
	// that carried plans, warm-up included: each is an access that sends
	// an ASN to each LA of its plans, unless one was sent for the same
	// child and LA within the coalescing window.
	unscheduledFound int64
	// pairs are the (NHS number, LA of a plan returned) of those reads.
	pairs pairSet
}

// client is one simulated EPR session, looping over searches.
type client struct {
	http       *http.Client
	base       string
	session    session
	planOneIn  int
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
	// unscheduledFound and pairs as in load.
	unscheduledFound int64
	pairs            pairSet
}

// drive runs w against base. Every client shares one transport, with an
// idle connection kept for each, as a load balancer in front of a server
// would.
func drive(ctx context.Context, base string, d *dataset, w workload) *load {
	tr := &http.Transport{MaxIdleConns: 2 * w.clients, MaxIdleConnsPerHost: 2 * w.clients, IdleConnTimeout: time.Minute, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	start := time.Now()
	measureFrom, end := start.Add(w.warmup), start.Add(w.warmup+w.duration)
	expect := int(w.duration.Seconds()*20_000)/w.clients + 1024 // room for 20,000 requests/s without growing
	cs := make([]*client, w.clients)
	var wg sync.WaitGroup
	for i := range cs {
		cs[i] = &client{http: hc, base: base, session: w.sessions[i%len(w.sessions)], planOneIn: w.planOneIn, d: d,
			errKinds: map[string]int{}, pairs: pairSet{},
			r: rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano()))), latencies: make([]time.Duration, 0, expect)}
		wg.Go(func() { cs[i].loop(ctx, measureFrom, end) })
	}
	wg.Wait()
	return merge(cs, w.clients, w.duration)
}

// loop searches until end; requests started from measureFrom are measured.
func (c *client) loop(ctx context.Context, measureFrom, end time.Time) {
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		hasPlan := c.r.IntN(c.planOneIn) == 0
		nhs := c.d.without[c.r.IntN(len(c.d.without))]
		if hasPlan {
			nhs = c.d.withPlan[c.r.IntN(len(c.d.withPlan))]
		}
		ans, err := c.search(ctx, nhs)
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
			c.account(nhs, hasPlan, ans)
			if measured {
				c.latencies = append(c.latencies, took)
			}
		}
	}
}

// account counts a 200 response for nhs: wrong if it found plans for a
// number without, none for one with, or plans the generator cannot read;
// and notes the ASNs an unscheduled-care read that found plans sends.
func (c *client) account(nhs cpis.NHSNumber, hasPlan bool, ans searchAnswer) {
	found := ans.unreadable || len(ans.las) > 0
	c.found += b2i(found)
	c.wrong += b2i(found != hasPlan || ans.unreadable)
	if !found || !c.session.unscheduled {
		return
	}
	c.unscheduledFound++
	for _, la := range ans.las {
		c.pairs[asnPair{nhs, la}] = struct{}{}
	}
}

// entryMarker is in a searchset Bundle's JSON only when it has entries.
var entryMarker = []byte(`"entry":`)

// searchAnswer is what a search answered with 200.
type searchAnswer struct {
	las        []string // the LAs of the plans returned, one per plan; none: no plan
	unreadable bool     // it had entries, but not Flags of the NHS number asked for, each with its LA
}

// search makes one audited search and reads the whole body.
func (c *client) search(ctx context.Context, nhs cpis.NHSNumber) (searchAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+searchPath+string(nhs), nil)
	if err != nil {
		return searchAnswer{}, err
	}
	req.Header["Authorization"] = []string{"Bearer " + c.session.token}
	req.Header["Accept"] = []string{"application/fhir+json"}
	resp, err := c.http.Do(req)
	if err != nil {
		return searchAnswer{}, errors.New("transport error")
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return searchAnswer{}, errors.New("reading the body failed")
	case resp.StatusCode != http.StatusOK:
		return searchAnswer{}, fmt.Errorf("status %d", resp.StatusCode)
	case !bytes.Contains(c.buf.Bytes(), entryMarker):
		return searchAnswer{}, nil // most searches: decoding only bundles with entries keeps the generator's share of the CPUs small
	}
	las, ok := flagAuthors(c.buf.Bytes(), nhs)
	return searchAnswer{las: las, unreadable: !ok || len(las) == 0}, nil
}

// searchset is what the load generator reads of a searchset Bundle: each
// entry's resource type, subject and author (the responsible LA).
type searchset struct {
	Entry []struct {
		Resource struct {
			ResourceType string    `json:"resourceType"`
			Subject      reference `json:"subject"`
			Author       reference `json:"author"`
		} `json:"resource"`
	} `json:"entry"`
}

type reference struct {
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
}

// flagAuthors are the LA codes of the Flags in a searchset Bundle, one per
// Flag (the LA is the Flag's author). ok is false if the body is not such
// a Bundle, or a Flag is about another NHS number or lacks its LA: the
// load generator could not tell which ASNs the read sent.
func flagAuthors(body []byte, nhs cpis.NHSNumber) (las []string, ok bool) {
	var b searchset
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, false
	}
	for _, e := range b.Entry {
		if e.Resource.ResourceType != "Flag" {
			continue
		}
		if e.Resource.Subject.Identifier.Value != string(nhs) || e.Resource.Author.Identifier.Value == "" {
			return nil, false
		}
		las = append(las, e.Resource.Author.Identifier.Value)
	}
	return las, true
}

// merge adds up the clients' results and sorts the latencies.
func merge(cs []*client, clients int, window time.Duration) *load {
	l := &load{clients: clients, window: window, errKinds: map[string]int{}, pairs: pairSet{}}
	for _, c := range cs {
		l.latencies = append(l.latencies, c.latencies...)
		l.errors += c.errors
		l.warmErrors += c.warmErrors
		l.served += c.served
		l.found += c.found
		l.wrong += c.wrong
		l.unscheduledFound += c.unscheduledFound
		for k, n := range c.errKinds {
			l.errKinds[k] += n
		}
		maps.Copy(l.pairs, c.pairs)
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
