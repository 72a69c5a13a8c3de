package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	bcrpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	ppb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/parameters_go_proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/delivery"
)

// The subscription delivery run: how fast ASNs reach an LA's rest-hook
// endpoint while health users read, whether every one arrives, and what
// delivering them costs the reads.
//
// A server of its own is started on the store's database after the
// store's other runs, in dev mode (which allows http endpoints on
// loopback) with two settings of its own: an ASN coalescing window of 0,
// so that every unscheduled-care read that returns a plan sends an ASN
// (each child's plans are of one LA: one ASN per such read), and the data
// set's 153 LAs as its register of local authorities. The dev issuer mints
// tokens over HTTP only for the six LAs of its directory, so the run signs
// the LAs' tokens itself with the issuer's key in the server's data
// directory (auth.DevIssuer.LASystemToken), which the benchmark owns. The
// subscription poll and the delivery workers keep their defaults.
//
// Each round runs the standard mix twice, which goes first alternating:
// once with no subscription, and once with every LA that owns plans
// subscribed to the ASN topic, each subscription's endpoint a path of one
// in-process receiver on loopback. For that run the subscriptions are made
// and their handshakes awaited before the load starts; after it the run
// waits until the receiver has every event the load generated (or the
// drain timeout passes), then asks each subscription's $status for the
// events the server numbered, and deletes the subscriptions: the next run
// without them is without them.

// deliveryClients is the concurrency of the delivery run.
const deliveryClients = 32

// hookPath is the receiver's path; the subscribing LA's code follows it,
// so that each subscription has an endpoint of its own.
const hookPath = "/hook/"

// deliveryResult is the delivery run on one store.
type deliveryResult struct {
	las     []cpis.LocalAuthority // those subscribed in each run with subscriptions: every LA owning plans
	without []storeRun            // one per round, no subscription
	with    []storeRun            // one per round, every LA subscribed
	rounds  []deliveryRound       // what the receiver saw of each run with subscriptions
	exit    error                 // how the run's server exited after SIGTERM
}

// deliveryRun is the delivery run under way on one store.
type deliveryRun struct {
	cfg      config
	d        *dataset
	l        *loaded
	srv      *server
	iss      *auth.DevIssuer
	las      []cpis.LocalAuthority
	hc       *http.Client
	u        *jsonformat.Unmarshaller // reads $status answers
	progress io.Writer
}

// measureDelivery starts the delivery run's server on l's database,
// measures each round and stops the server.
func measureDelivery(ctx context.Context, cfg config, d *dataset, bin string, l *loaded, progress io.Writer) (*deliveryResult, error) {
	register := filepath.Join(cfg.dir, "delivery-register-"+l.name+".csv")
	if err := writeRegister(register, d.las); err != nil {
		return nil, err
	}
	env := withEnv(withEnv(cfg.serverEnv, "CPIS_ASN_COALESCE_WINDOW", "0"), "CPIS_LA_REGISTER_FILE", register)
	srv, err := startServer(ctx, bin, l, env, false, filepath.Join(cfg.dir, "cpisd-"+l.name+"-delivery.log"))
	if err != nil {
		return nil, fmt.Errorf("delivery run: %w", err)
	}
	iss, err := auth.LoadOrCreateDevIssuer(l.dataDir, srv.url+"/dev", benchAudience, time.Now)
	if err != nil {
		srv.kill()
		return nil, fmt.Errorf("delivery run: the server's dev issuer: %w", err)
	}
	u, err := newUnmarshaller()
	if err != nil {
		srv.kill()
		return nil, err
	}
	dr := &deliveryRun{cfg: cfg, d: d, l: l, srv: srv, iss: iss, las: planLAs(d),
		hc: &http.Client{Timeout: 30 * time.Second}, u: u, progress: progress}
	res := &deliveryResult{las: dr.las}
	if err := dr.rounds(ctx, res); err != nil {
		srv.kill()
		return nil, fmt.Errorf("delivery run: %w\n%s", err, srv.logTail())
	}
	res.exit = srv.stop()
	return res, nil
}

// planLAs are the LAs that own plans of the data set, in the data set's
// order: each is sent the ASNs of its plans, and so subscribes.
func planLAs(d *dataset) []cpis.LocalAuthority {
	owns := map[string]bool{}
	for _, p := range d.plans {
		owns[p.LA.Code] = true
	}
	var out []cpis.LocalAuthority
	for _, l := range d.las {
		if owns[l.Code] {
			out = append(out, l.LocalAuthority)
		}
	}
	return out
}

// rounds runs each round: the load without subscriptions and with them,
// which goes first alternating from round to round.
func (dr *deliveryRun) rounds(ctx context.Context, res *deliveryResult) error {
	w := workload{planOneIn: dr.cfg.planOneIn, clients: deliveryClients, warmup: dr.cfg.warmup, duration: dr.cfg.deliveryDuration}
	for round := range dr.cfg.deliveryRounds {
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, with := range order {
			if !with {
				r, err := measure(ctx, dr.d, dr.srv, dr.l, standardMix, w, "")
				if err != nil {
					return fmt.Errorf("round %d, without subscriptions: %w", round+1, err)
				}
				res.without = append(res.without, r)
				fmt.Fprintf(dr.progress, "%s, delivery, round %d, without subscriptions: %.0f req/s, p99 %.2f ms, %d ASNs stored for %d unscheduled reads that found plans\n",
					dr.l.name, round+1, r.rate(), r.percentile(0.99), r.asnWritten, r.unscheduledFound)
				continue
			}
			r, dround, err := dr.withSubscriptions(ctx, w)
			if err != nil {
				return fmt.Errorf("round %d, with subscriptions: %w", round+1, err)
			}
			res.with, res.rounds = append(res.with, r), append(res.rounds, dround)
			fmt.Fprintf(dr.progress, "%s, delivery, round %d, with %d subscriptions: %.0f req/s, p99 %.2f ms; %s\n",
				dr.l.name, round+1, len(dr.las), r.rate(), r.percentile(0.99), dround.summary())
		}
	}
	return nil
}

// withSubscriptions subscribes every LA, runs the load, waits for the
// receiver to have every event, reads the subscriptions' $status and
// deletes them.
func (dr *deliveryRun) withSubscriptions(ctx context.Context, w workload) (storeRun, deliveryRound, error) {
	rcv, err := startReceiver(dr.u)
	if err != nil {
		return storeRun{}, deliveryRound{}, err
	}
	defer rcv.close()
	start := time.Now()
	subs, err := dr.subscribe(ctx, rcv)
	if err != nil {
		return storeRun{}, deliveryRound{}, errors.Join(err, dr.unsubscribe(ctx, subs))
	}
	if !rcv.wait(ctx, dr.cfg.deliveryDrain, func(rs *receiverState) bool { return rs.handshakes() >= len(subs) }) {
		err := fmt.Errorf("%d of %d handshakes arrived within %s", rcv.handshakes(), len(subs), dr.cfg.deliveryDrain)
		return storeRun{}, deliveryRound{}, errors.Join(err, dr.unsubscribe(ctx, subs))
	}
	handshakes := time.Since(start)
	r, err := measure(ctx, dr.d, dr.srv, dr.l, standardMix, w, "")
	if err != nil {
		return storeRun{}, deliveryRound{}, errors.Join(err, dr.unsubscribe(ctx, subs))
	}
	end := time.Now()
	drained := rcv.wait(ctx, dr.cfg.deliveryDrain, func(rs *receiverState) bool { return rs.received() >= r.asnWritten })
	numbered, err := dr.status(ctx, subs)
	if err != nil {
		return storeRun{}, deliveryRound{}, errors.Join(err, dr.unsubscribe(ctx, subs))
	}
	dround := rcv.tally(subs, numbered, r.asnWritten, end, drained)
	dround.handshakes = handshakes
	return r, dround, dr.unsubscribe(ctx, subs)
}

// subscription is one LA's subscription of a run.
type subscription struct {
	la    cpis.LocalAuthority
	id    string
	token string
}

// subscribe makes each LA's subscription to the ASN topic, its endpoint
// the receiver's path for the LA, with the receiver's credentials as a
// channel header. On error it returns those made so far, to be deleted.
func (dr *deliveryRun) subscribe(ctx context.Context, rcv *receiver) ([]subscription, error) {
	var subs []subscription
	for _, la := range dr.las {
		tok, _, err := dr.iss.LASystemToken(la)
		if err != nil {
			return subs, err
		}
		body, err := subscriptionBody(rcv.url+hookPath+la.Code, rcv.secret, dr.cfg.deliveryContent)
		if err != nil {
			return subs, err
		}
		resp, err := dr.call(ctx, http.MethodPost, "/Subscription", tok, body, http.StatusCreated)
		if err != nil {
			return subs, fmt.Errorf("POST /Subscription as %s: %w", la.Code, err)
		}
		id := path.Base(resp.location)
		subs = append(subs, subscription{la: la, id: id, token: tok})
	}
	return subs, nil
}

// status reads each subscription's events-since-subscription-start from
// its $status: the events the server numbered for it.
func (dr *deliveryRun) status(ctx context.Context, subs []subscription) (map[string]int64, error) {
	out := make(map[string]int64, len(subs))
	for _, s := range subs {
		resp, err := dr.call(ctx, http.MethodGet, "/Subscription/"+s.id+"/$status", s.token, nil, http.StatusOK)
		if err != nil {
			return nil, fmt.Errorf("$status of %s's subscription: %w", s.la.Code, err)
		}
		st, err := readStatus(dr.u, resp.body)
		if err != nil {
			return nil, fmt.Errorf("$status of %s's subscription: %w", s.la.Code, err)
		}
		out[s.la.Code] = st.sinceStart
	}
	return out, nil
}

// unsubscribe deletes the subscriptions, all of them whatever fails.
func (dr *deliveryRun) unsubscribe(ctx context.Context, subs []subscription) error {
	ctx = context.WithoutCancel(ctx) // an interrupted run still cleans up
	var errs []error
	for _, s := range subs {
		if _, err := dr.call(ctx, http.MethodDelete, "/Subscription/"+s.id, s.token, nil, http.StatusNoContent); err != nil {
			errs = append(errs, fmt.Errorf("DELETE %s's subscription: %w", s.la.Code, err))
		}
	}
	return errors.Join(errs...)
}

// reply is a response the run asked for.
type reply struct {
	location string
	body     []byte
}

// call makes one request of the server with a bearer token and wants the
// status want.
func (dr *deliveryRun) call(ctx context.Context, method, p, token string, body []byte, want int) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, dr.srv.url+p, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := dr.hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return reply{}, err
	}
	if resp.StatusCode != want {
		return reply{}, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return reply{location: resp.Header.Get("Location"), body: b}, nil
}

// subscriptionBody is an LA's subscription to its own ASNs (no filter: the
// topic's notifications are the subscriber's own), as the R4 Subscriptions
// Backport IG shapes it, with content content and the receiver's
// credentials as a channel header.
func subscriptionBody(endpoint, secret string, content cpis.PayloadContent) ([]byte, error) {
	ext := func(name, key string, v any) []map[string]any {
		return []map[string]any{{"url": fhir.BackportBase + "/StructureDefinition/" + name, key: v}}
	}
	return json.Marshal(map[string]any{
		"resourceType": "Subscription",
		"meta":         map[string]any{"profile": []string{fhir.BackportSubscriptionProfile}},
		"status":       "requested",
		"reason":       "cpisbench: delivery of ASNs under load",
		"criteria":     string(cpis.TopicASN),
		"channel": map[string]any{
			"type":     "rest-hook",
			"endpoint": endpoint,
			"payload":  "application/fhir+json",
			"_payload": map[string]any{"extension": ext("backport-payload-content", "valueCode", string(content))},
			"header":   []string{"Authorization: Bearer " + secret},
		},
	})
}

// deliveryRound is what the receiver saw of one run with subscriptions,
// and the server's counts beside it.
type deliveryRound struct {
	subscriptions int
	handshakes    time.Duration // from the first POST /Subscription until every handshake had arrived
	generated     int64         // ASNs stored during the load (the database)
	numbered      int64         // the subscriptions' events-since-subscription-start ($status), summed
	received      int64         // distinct (subscription, event number) received
	duplicates    int           // events received again
	incomplete    int           // subscriptions whose numbers received are not exactly 1 to their $status count
	unstamped     int           // events with neither a notification-event timestamp nor a Communication meta.lastUpdated
	refused       int           // notifications the receiver could not read or that lacked its credentials (answered 4xx)
	latencies     []time.Duration
	drained       bool          // every event generated arrived within the drain timeout
	drain         time.Duration // from the end of the load until the last event arrived
}

// equal reports whether the receiver got every event the load generated,
// as the server numbered them, each subscription's 1, 2, 3 ... in full.
func (d deliveryRound) equal() bool {
	return d.drained && d.generated == d.numbered && d.numbered == d.received &&
		d.incomplete == 0 && d.unstamped == 0 && d.refused == 0
}

// summary is the round's delivery in one line.
func (d deliveryRound) summary() string {
	return fmt.Sprintf("events generated %d (database), numbered %d ($status), received %d (%d duplicates): %s; commit-to-receipt p50 %.1f ms, p99 %.1f ms, max %.1f ms; last event %.2f s after the load",
		d.generated, d.numbered, d.received, d.duplicates, deliveryVerdict(d.equal()),
		latencyPercentile(d.latencies, 0.50), latencyPercentile(d.latencies, 0.99), latencyPercentile(d.latencies, 1), d.drain.Seconds())
}

func deliveryVerdict(ok bool) string {
	if ok {
		return "equal"
	}
	return "FAIL"
}

// latencyPercentile is the nearest-rank q-quantile of sorted latencies,
// in ms, as the reads' percentiles are taken.
func latencyPercentile(sorted []time.Duration, q float64) float64 {
	return (&load{latencies: sorted}).percentile(q)
}

// everyASN reports whether a run of the delivery server stored one ASN
// for each unscheduled-care read that returned plans: with no coalescing,
// each such read sends one to the one LA of the child's plans.
func everyASN(r storeRun) bool { return r.asnWritten == r.unscheduledFound }

// failures are the checks the delivery run failed, on store name.
func (res *deliveryResult) failures(name string) []error {
	if res == nil {
		return nil
	}
	var errs []error
	for i, r := range res.without {
		what := fmt.Sprintf("%s, delivery, round %d, without subscriptions", name, i+1)
		if !r.auditEqual() {
			errs = append(errs, fmt.Errorf("%s: %d AuditEvents written for %d reads served", what, r.written, r.served))
		}
		errs = append(errs, readFailures(what, r)...)
	}
	for i, r := range res.with {
		what := fmt.Sprintf("%s, delivery, round %d, with subscriptions", name, i+1)
		errs = append(errs, readFailures(what, r)...)
		if d := res.rounds[i]; !d.equal() {
			errs = append(errs, fmt.Errorf("%s: %s", what, d.failure()))
		}
	}
	if res.exit != nil {
		errs = append(errs, fmt.Errorf("%s, delivery: %w", name, res.exit))
	}
	return errs
}

// readFailures are the checks on the reads of a delivery run.
func readFailures(what string, r storeRun) []error {
	var errs []error
	if !everyASN(r) {
		errs = append(errs, fmt.Errorf("%s: %d ASNs stored for %d unscheduled reads that found plans", what, r.asnWritten, r.unscheduledFound))
	}
	if r.wrong > 0 {
		errs = append(errs, fmt.Errorf("%s: %d wrong answers", what, r.wrong))
	}
	return errs
}

// failure says how a round's delivery failed.
func (d deliveryRound) failure() string {
	return fmt.Sprintf("%d events generated, %d numbered by the server, %d received (drained in time: %v); %d subscriptions with a gap, %d events without a timestamp, %d notifications refused",
		d.generated, d.numbered, d.received, d.drained, d.incomplete, d.unstamped, d.refused)
}

// allLatencies are the rounds' latencies together, sorted.
func (res *deliveryResult) allLatencies() []time.Duration {
	var all []time.Duration
	for _, d := range res.rounds {
		all = append(all, d.latencies...)
	}
	slices.Sort(all)
	return all
}

// ratio is the read throughput with subscriptions as a share of that
// without, over all rounds.
func (res *deliveryResult) ratio() float64 { return meanRate(res.with) / meanRate(res.without) }

// equal reports whether every round delivered every event.
func (res *deliveryResult) equal() bool {
	return !slices.ContainsFunc(res.rounds, func(d deliveryRound) bool { return !d.equal() })
}

// printDelivery prints the delivery run of s.
func (r *report) printDelivery(w io.Writer, s *storeResult) {
	res := s.delivery
	if res == nil {
		return
	}
	fmt.Fprintf(w, "\n%s: subscription delivery, %d clients, %s alternately, 1 in %d searches finding a plan; rounds: %d, each the load without subscriptions and with %d (every LA owning plans subscribed to its ASNs, %s, each to a path of one receiver on loopback), which goes first alternating; %s warm-up then %s measured each\n",
		s.l.name, deliveryClients, names(standardMix), r.cfg.planOneIn, r.cfg.deliveryRounds, len(res.las), r.cfg.deliveryContent, r.cfg.warmup, r.cfg.deliveryDuration)
	fmt.Fprintf(w, "  server: dev mode, a server of its own on the same database, CPIS_ASN_COALESCE_WINDOW=0 (every unscheduled read that finds a plan sends an ASN), subscription poll %s and %d workers (the defaults); drain timeout %s\n",
		delivery.DefaultPoll, delivery.DefaultWorkers, r.cfg.deliveryDrain)
	fmt.Fprintln(w, "round | without req/s | p99 ms | with req/s | p99 ms | ratio | generated | numbered | received | receipt p50 ms | p99 ms |  max ms | drain s")
	for i, d := range res.rounds {
		a, b := res.without[i], res.with[i]
		fmt.Fprintf(w, "%5d | %13.0f | %6.2f | %10.0f | %6.2f | %5.3f | %9d | %8d | %8d | %14.1f | %6.1f | %7.1f | %7.2f\n",
			i+1, a.rate(), a.percentile(0.99), b.rate(), b.percentile(0.99), b.rate()/a.rate(), d.generated, d.numbered, d.received,
			latencyPercentile(d.latencies, 0.5), latencyPercentile(d.latencies, 0.99), latencyPercentile(d.latencies, 1), d.drain.Seconds())
	}
	all := res.allLatencies()
	var gen, num, got int64
	for _, d := range res.rounds {
		gen, num, got = gen+d.generated, num+d.numbered, got+d.received
	}
	fmt.Fprintf(w, "%5s | %13.0f | %6.2f | %10.0f | %6.2f | %5.3f | %9d | %8d | %8d | %14.1f | %6.1f | %7.1f | %7s\n",
		"all", meanRate(res.without), mergedPercentile(res.without, 0.99), meanRate(res.with), mergedPercentile(res.with, 0.99), res.ratio(),
		gen, num, got, latencyPercentile(all, 0.5), latencyPercentile(all, 0.99), latencyPercentile(all, 1), "-")
	printDeliveryChecks(w, res)
}

// printDeliveryChecks prints the checks of each run of the delivery run,
// and a FAIL line for each round that did not deliver every event.
func printDeliveryChecks(w io.Writer, res *deliveryResult) {
	for i := range res.rounds {
		a, b, d := res.without[i], res.with[i], res.rounds[i]
		fmt.Fprintf(w, "  delivery, round %d, without: %s; %s; %d wrong answers, %d errors%s\n",
			i+1, auditCheck(a), asnReadCheck(a), a.wrong, a.errors, errorKinds(a.errKinds))
		fmt.Fprintf(w, "  delivery, round %d, with: %s; %d wrong answers, %d errors%s; %d AuditEvents written for %d reads served (the rest record notifications)\n",
			i+1, asnReadCheck(b), b.wrong, b.errors, errorKinds(b.errKinds), b.written, b.served)
		fmt.Fprintf(w, "  delivery, round %d: %d subscriptions, handshakes all in %.1f s; %s\n", i+1, d.subscriptions, d.handshakes.Seconds(), d.summary())
		if !d.equal() {
			fmt.Fprintf(w, "FAIL: delivery, round %d: %s\n", i+1, d.failure())
		}
	}
	exit := "0"
	if res.exit != nil {
		exit = res.exit.Error()
	}
	fmt.Fprintf(w, "  delivery server: exit status after SIGTERM: %s\n", exit)
}

// asnReadCheck is the ASN check of a delivery run's reads, in words.
func asnReadCheck(r storeRun) string {
	return fmt.Sprintf("%d ASNs stored for %d unscheduled reads that found plans: %s", r.asnWritten, r.unscheduledFound, equality(everyASN(r)))
}

// printDeliveryTargets prints, per store, whether every event arrived,
// with the latency and the cost beside it.
func (r *report) printDeliveryTargets(w io.Writer) {
	for _, s := range r.stores {
		res := s.delivery
		if res == nil || len(res.rounds) == 0 {
			continue
		}
		all := res.allLatencies()
		ok := "PASS"
		if !res.equal() {
			ok = "FAIL"
		}
		fmt.Fprintf(w, "  subscription delivery on %s, %d clients: every ASN generated received: %s (commit-to-receipt p50 %.1f ms, p99 %.1f ms; reads with subscriptions / without %.3f)\n",
			s.l.name, deliveryClients, ok, latencyPercentile(all, 0.5), latencyPercentile(all, 0.99), res.ratio())
	}
}

// The receiver: an LA's rest-hook endpoint on loopback, one path per
// subscription. It records, per subscription, each event number once with
// the time from the event's commit (its feed stamp, which the
// notification carries) to the notification's receipt, and answers 200
// only to what it could read: anything else is retried by the server and
// counted here as refused.

// maxNotificationBytes bounds a notification the receiver reads: a
// full-resource one of the most events a notification holds is far less.
const maxNotificationBytes = 16 << 20

// receiver is the in-process endpoint of a run's subscriptions.
type receiver struct {
	url    string
	secret string // the credentials the subscriptions' channel header carries
	u      *jsonformat.Unmarshaller
	srv    *http.Server
	done   chan struct{}
	mu     sync.Mutex
	state  receiverState
}

// receiverState is what the receiver has seen, guarded by its mutex.
type receiverState struct {
	inboxes map[string]*inbox // by LA code, the path after hookPath
	refused int
}

// startReceiver listens on a free loopback port until close.
func startReceiver(u *jsonformat.Unmarshaller) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	rcv := &receiver{url: "http://" + ln.Addr().String(), secret: hex.EncodeToString(secret), u: u, done: make(chan struct{}),
		state: receiverState{inboxes: map[string]*inbox{}}}
	rcv.srv = &http.Server{Handler: rcv, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(rcv.done)
		_ = rcv.srv.Serve(ln)
	}()
	return rcv, nil
}

// close stops the receiver.
func (rcv *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rcv.srv.Shutdown(ctx)
	<-rcv.done
}

// ServeHTTP takes one notification: the time of receipt is when its body
// has been read.
func (rcv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	la, ok := strings.CutPrefix(r.URL.Path, hookPath)
	if r.Method != http.MethodPost || !ok || r.Header.Get("Authorization") != "Bearer "+rcv.secret {
		rcv.refuse(w, http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNotificationBytes+1))
	at := time.Now()
	if err != nil || len(body) > maxNotificationBytes {
		rcv.refuse(w, http.StatusBadRequest)
		return
	}
	n, err := readNotification(rcv.u, body)
	if err != nil {
		rcv.refuse(w, http.StatusBadRequest)
		return
	}
	rcv.mu.Lock()
	rcv.state.inbox(la).add(n, at)
	rcv.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (rcv *receiver) refuse(w http.ResponseWriter, status int) {
	rcv.mu.Lock()
	rcv.state.refused++
	rcv.mu.Unlock()
	w.WriteHeader(status)
}

// inbox is an LA's inbox, made on first use.
func (rs *receiverState) inbox(la string) *inbox {
	b := rs.inboxes[la]
	if b == nil {
		b = newInbox()
		rs.inboxes[la] = b
	}
	return b
}

// handshakes is the subscriptions whose handshake has arrived.
func (rs *receiverState) handshakes() int {
	n := 0
	for _, b := range rs.inboxes {
		n += min(b.handshakes, 1)
	}
	return n
}

// received is the distinct events received, over every subscription.
func (rs *receiverState) received() int64 {
	var n int64
	for _, b := range rs.inboxes {
		n += int64(len(b.events))
	}
	return n
}

// handshakes is receiverState.handshakes under the receiver's lock.
func (rcv *receiver) handshakes() int {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return rcv.state.handshakes()
}

// wait polls done under the receiver's lock until it holds, the timeout
// passes or ctx ends; it reports whether done held.
func (rcv *receiver) wait(ctx context.Context, timeout time.Duration, done func(*receiverState) bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		rcv.mu.Lock()
		ok := done(&rcv.state)
		rcv.mu.Unlock()
		if ok {
			return true
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tally is the round's delivery: what the receiver got of subs, against
// the events the server numbered for each and the ASNs the load stored.
// end is when the load ended.
func (rcv *receiver) tally(subs []subscription, numbered map[string]int64, generated int64, end time.Time, drained bool) deliveryRound {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	d := deliveryRound{subscriptions: len(subs), generated: generated, drained: drained, refused: rcv.state.refused}
	var last time.Time
	for _, s := range subs {
		b := rcv.state.inbox(s.la.Code)
		d.numbered += numbered[s.la.Code]
		d.received += int64(len(b.events))
		d.duplicates += b.duplicates
		d.unstamped += b.unstamped
		if !b.complete(numbered[s.la.Code]) {
			d.incomplete++
		}
		d.latencies = append(d.latencies, b.latencies...)
		if b.last.After(last) {
			last = b.last
		}
	}
	slices.Sort(d.latencies)
	d.drain = max(0, last.Sub(end))
	return d
}

// inbox is what one subscription's endpoint received.
type inbox struct {
	handshakes int
	events     map[int64]bool  // the event numbers received
	latencies  []time.Duration // commit to first receipt, one per event with a stamp
	duplicates int             // events received again (delivery is at least once)
	unstamped  int             // events with no stamp to measure from
	last       time.Time       // when the last new event arrived
}

func newInbox() *inbox { return &inbox{events: map[int64]bool{}} }

// add records notification n, received at at: each event number once,
// the first time.
func (b *inbox) add(n notification, at time.Time) {
	if n.typ == fhir.NotifyHandshake {
		b.handshakes++
	}
	if n.typ != fhir.NotifyEvent {
		return
	}
	for _, e := range n.events {
		if b.events[e.number] {
			b.duplicates++
			continue
		}
		b.events[e.number] = true
		b.last = at
		if e.stamp.IsZero() {
			b.unstamped++
			continue
		}
		b.latencies = append(b.latencies, at.Sub(e.stamp))
	}
}

// complete reports whether the events received are exactly 1 to n.
func (b *inbox) complete(n int64) bool {
	if int64(len(b.events)) != n {
		return false
	}
	for i := int64(1); i <= n; i++ {
		if !b.events[i] {
			return false
		}
	}
	return true
}

// notification is what the receiver reads of a notification Bundle (or of
// the status Parameters $status answers with).
type notification struct {
	typ        string // handshake, heartbeat, event-notification ...
	sinceStart int64  // events-since-subscription-start
	events     []notifiedEvent
}

// notifiedEvent is one notification-event.
type notifiedEvent struct {
	number int64
	stamp  time.Time // the event's commit stamp: its timestamp, else its Communication's meta.lastUpdated
	focus  string
}

// newUnmarshaller is google/fhir's R4 JSON codec, made once per run: it
// keeps no state between calls, so the receiver's handlers share it.
func newUnmarshaller() (*jsonformat.Unmarshaller, error) {
	return jsonformat.NewUnmarshallerWithoutValidation("UTC", fhirversion.R4)
}

// bundleOf reads a Bundle whose first entry is a Parameters.
func bundleOf(u *jsonformat.Unmarshaller, body []byte) (*bcrpb.Bundle, error) {
	m, err := u.Unmarshal(body)
	if err != nil {
		return nil, err
	}
	c, _ := m.(*bcrpb.ContainedResource)
	b := c.GetBundle()
	if b == nil || len(b.GetEntry()) == 0 || b.GetEntry()[0].GetResource().GetParameters() == nil {
		return nil, errors.New("not a Bundle whose first entry is a Parameters")
	}
	return b, nil
}

// readNotification reads a notification Bundle: the status Parameters of
// its first entry and, for an event without a timestamp, the
// meta.lastUpdated of the Communication its focus names (full-resource).
func readNotification(u *jsonformat.Unmarshaller, body []byte) (notification, error) {
	b, err := bundleOf(u, body)
	if err != nil {
		return notification{}, err
	}
	n, err := readParameters(b.GetEntry()[0].GetResource().GetParameters())
	if err != nil {
		return notification{}, err
	}
	updated := map[string]time.Time{}
	for _, e := range b.GetEntry()[1:] {
		if lu := e.GetResource().GetCommunication().GetMeta().GetLastUpdated(); lu != nil {
			updated[e.GetFullUrl().GetValue()] = time.UnixMicro(lu.GetValueUs())
		}
	}
	for i, e := range n.events {
		if e.stamp.IsZero() {
			n.events[i].stamp = updated[e.focus]
		}
	}
	return n, nil
}

// readStatus reads the status Parameters of a $status answer.
func readStatus(u *jsonformat.Unmarshaller, body []byte) (notification, error) {
	b, err := bundleOf(u, body)
	if err != nil {
		return notification{}, err
	}
	return readParameters(b.GetEntry()[0].GetResource().GetParameters())
}

// readParameters reads a subscription status Parameters (backport-
// subscription-status-r4).
func readParameters(p *ppb.Parameters) (notification, error) {
	var n notification
	for _, par := range p.GetParameter() {
		v := par.GetValue()
		switch par.GetName().GetValue() {
		case "type":
			n.typ = v.GetCode().GetValue()
		case "events-since-subscription-start":
			s, err := strconv.ParseInt(v.GetStringValue().GetValue(), 10, 64)
			if err != nil {
				return n, errors.New("events-since-subscription-start is not a number")
			}
			n.sinceStart = s
		case "notification-event":
			e, err := readEvent(par.GetPart())
			if err != nil {
				return n, err
			}
			n.events = append(n.events, e)
		}
	}
	if n.typ == "" {
		return n, errors.New("the status Parameters has no type")
	}
	return n, nil
}

// readEvent reads the parts of a notification-event.
func readEvent(parts []*ppb.Parameters_Parameter) (notifiedEvent, error) {
	var e notifiedEvent
	for _, part := range parts {
		v := part.GetValue()
		switch part.GetName().GetValue() {
		case "event-number":
			n, err := strconv.ParseInt(v.GetStringValue().GetValue(), 10, 64)
			if err != nil || n < 1 {
				return e, errors.New("a notification-event's event-number is not a number from 1")
			}
			e.number = n
		case "timestamp":
			if t := v.GetInstant(); t != nil {
				e.stamp = time.UnixMicro(t.GetValueUs())
			}
		case "focus":
			e.focus = v.GetReference().GetUri().GetValue()
		}
	}
	if e.number == 0 {
		return e, errors.New("a notification-event has no event-number")
	}
	return e, nil
}
