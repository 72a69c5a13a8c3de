package delivery_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/delivery"
	"github.com/cpis-fhir/cpis/internal/register"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// The delivery engine against a real embedded store, a real register and a
// receiver on loopback; the clock is the test's, so backoff and the retry
// period are checked without waiting for them.

var start = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// receiver records the notifications it acknowledged; fail decides, per
// request, whether to answer 500 instead.
type receiver struct {
	mu    sync.Mutex
	got   []notification
	tries int
	fail  func(try int) bool
	srv   *httptest.Server
}

type notification struct {
	Type    string
	Numbers []int
	Auth    string
}

func newReceiver(t *testing.T, fail func(int) bool) *receiver {
	r := &receiver{fail: fail}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if r.fail != nil && r.fail(r.tries) {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		r.got = append(r.got, parse(t, body, req.Header.Get("Authorization")))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) acknowledged() (types []string, numbers []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.got {
		types = append(types, n.Type)
		numbers = append(numbers, n.Numbers...)
	}
	return types, numbers
}

// parse reads a notification Bundle's status Parameters.
func parse(t *testing.T, body []byte, authz string) notification {
	var b struct {
		Type  string
		Entry []struct {
			Resource struct {
				ResourceType string
				Parameter    []struct {
					Name      string
					ValueCode string
					Part      []struct {
						Name        string
						ValueString string
					}
				}
			}
		}
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Type != "history" || len(b.Entry) == 0 || b.Entry[0].Resource.ResourceType != "Parameters" {
		t.Errorf("not a notification Bundle: %v %s", err, body)
		return notification{}
	}
	n := notification{Auth: authz}
	for _, p := range b.Entry[0].Resource.Parameter {
		switch p.Name {
		case "type":
			n.Type = p.ValueCode
		case "notification-event":
			for _, part := range p.Part {
				if part.Name == "event-number" {
					v, _ := strconv.Atoi(part.ValueString)
					n.Numbers = append(n.Numbers, v)
				}
			}
		}
	}
	return n
}

type fixture struct {
	clock *clock
	store store.Store
	reg   *register.Service
}

func newFixture(t *testing.T) *fixture {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cpis.db"))
	if err != nil {
		t.Fatal(err)
	}
	rec := audit.NewRecorder(st, audit.Options{})
	t.Cleanup(func() { rec.Close(); st.Close() })
	reg := register.New(register.Config{Store: st, Audit: rec, NewID: uuid.NewString, Source: "test",
		Authorities: cpis.DevAuthorities(), DevEndpoints: true})
	return &fixture{clock: &clock{now: start}, store: st, reg: reg}
}

func (f *fixture) deliverer(cfg delivery.Config) *delivery.Deliverer {
	cfg.Store, cfg.Register, cfg.Now, cfg.BaseURL = f.store, f.reg, f.clock.Now, "https://cpis.example.org/fhir"
	cfg.Policy = delivery.Policy{Dev: true}
	return delivery.New(cfg)
}

func la() register.Caller {
	p := &auth.Principal{Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "la-ZLA01", OrgCode: "ZLA01"}, LACode: "ZLA01",
		Scopes: []string{"system/Flag.write", "system/Flag.read", "system/Subscription.cruds"}}
	return register.Caller{Principal: p, At: start}
}

// subscribe has the LA watch its plans on one child.
func (f *fixture) subscribe(t *testing.T, endpoint string) store.SubscriptionRecord {
	c := la()
	c.At = f.clock.Now()
	rec, err := f.reg.Subscribe(t.Context(), c, cpis.Subscription{Topic: cpis.TopicPlanChange, NHSNumber: "9990276579",
		Endpoint: endpoint, Content: cpis.ContentIDOnly, MaxCount: 2, Headers: []string{"Authorization: Bearer receiver-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// change writes n new versions of one plan: n events.
func (f *fixture) change(t *testing.T, n int) {
	c := la()
	for i := range n {
		c.At, c.RequestID = f.clock.Now(), uuid.NewString()
		p := cpis.Plan{NHSNumber: "9990276579", Type: cpis.CPP, Start: cpis.MustDate("2026-06-01"), End: cpis.MustDate("2027-06-01"),
			LA: cpis.LocalAuthority{Code: "ZLA01"}, EmergencyPhone: "020 7946 010" + strconv.Itoa(i%10), BirthDate: cpis.MustDate("2014-03-15"),
			Reference: "REF-1"}
		if _, _, err := f.reg.Apply(t.Context(), c, register.Write{Kind: register.Update, Reference: "REF-1", Plan: p}); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Millisecond)
	}
}

func pass(t *testing.T, d *delivery.Deliverer) {
	d.Pass(t.Context())
	d.Wait()
}

func TestEventsArriveInOrderAfterTheHandshake(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, nil)
	sub := f.subscribe(t, r.srv.URL)
	f.change(t, 5)
	d := f.deliverer(delivery.Config{})
	pass(t, d)
	types, numbers := r.acknowledged()
	if want := []string{"handshake", "event-notification", "event-notification", "event-notification"}; !slices.Equal(types, want) {
		t.Errorf("types %v, want %v (max-count 2: three notifications for five events)", types, want)
	}
	if want := []int{1, 2, 3, 4, 5}; !slices.Equal(numbers, want) {
		t.Errorf("event numbers %v, want %v", numbers, want)
	}
	if r.got[0].Auth != "Bearer receiver-secret" {
		t.Errorf("the channel header was not sent: %q", r.got[0].Auth)
	}
	rec, err := f.store.Subscription(t.Context(), sub.ID)
	if err != nil || rec.Status != cpis.SubActive || rec.State.Delivered != 5 || !rec.State.Handshake {
		t.Fatalf("after delivery: %+v %+v, %v", rec.Status, rec.State, err)
	}
	pass(t, d) // nothing more to send
	if _, again := r.acknowledged(); len(again) != 5 {
		t.Errorf("a second pass sent again: %v", again)
	}
}

func TestAFailingEndpointIsRetriedWithBackoffThenSetToError(t *testing.T) {
	f := newFixture(t)
	down := true
	var mu sync.Mutex
	r := newReceiver(t, func(int) bool { mu.Lock(); defer mu.Unlock(); return down })
	sub := f.subscribe(t, r.srv.URL)
	d := f.deliverer(delivery.Config{RetryFor: time.Hour})
	var waits []time.Duration
	for range 20 {
		pass(t, d)
		rec, err := f.store.Subscription(t.Context(), sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status == cpis.SubError {
			break
		}
		wait := rec.State.NextAttempt.Sub(f.clock.Now())
		waits = append(waits, wait)
		f.clock.Add(wait / 2)
		pass(t, d) // not due yet: no attempt
		f.clock.Add(wait - wait/2)
	}
	// 1 s doubling to the 10 min ceiling; the 16th attempt, 4,023 s after
	// the first, is past the hour: error.
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600, 600, 600}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
	if r.tries != len(want)+1 {
		t.Errorf("%d attempts, want %d: none before its time", r.tries, len(want)+1)
	}
	rec, _ := f.store.Subscription(t.Context(), sub.ID)
	if rec.Status != cpis.SubError || rec.Error == "" {
		t.Fatalf("after an hour of failures: status %s (%q), want error", rec.Status, rec.Error)
	}
	f.change(t, 3) // events keep being numbered while in error
	mu.Lock()
	down = false
	mu.Unlock()
	pass(t, d)
	if _, numbers := r.acknowledged(); len(numbers) != 0 {
		t.Fatalf("a subscription in error was delivered: %v", numbers)
	}
	change := rec.Subscription
	change.Status = cpis.SubActive
	c := la()
	c.At = f.clock.Now()
	if _, err := f.reg.ChangeSubscription(t.Context(), c, change, nil); err != nil {
		t.Fatal(err)
	}
	pass(t, d)
	types, numbers := r.acknowledged()
	if !slices.Equal(numbers, []int{1, 2, 3}) || types[0] != "handshake" {
		t.Errorf("after resuming: %v %v; want the handshake, then every event kept", types, numbers)
	}
}

func TestTwoReplicasNeverDeliverOneSubscriptionAtOnce(t *testing.T) {
	f := newFixture(t)
	r := newReceiver(t, nil)
	f.subscribe(t, r.srv.URL)
	f.change(t, 20)
	a, b := f.deliverer(delivery.Config{}), f.deliverer(delivery.Config{})
	var wg sync.WaitGroup
	for _, d := range []*delivery.Deliverer{a, b, a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); pass(t, d) }()
	}
	wg.Wait()
	_, numbers := r.acknowledged()
	var want []int
	for i := 1; i <= 20; i++ {
		want = append(want, i)
	}
	if !slices.Equal(numbers, want) {
		t.Errorf("event numbers %v, want each of 1..20 once, in order", numbers)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	f := newFixture(t)
	target := newReceiver(t, nil)
	redirect := httptest.NewServer(http.RedirectHandler(target.srv.URL, http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	sub := f.subscribe(t, redirect.URL)
	pass(t, f.deliverer(delivery.Config{}))
	if target.tries != 0 {
		t.Error("the redirect was followed")
	}
	rec, _ := f.store.Subscription(t.Context(), sub.ID)
	if rec.State.Failures != 1 || rec.State.LastError != "the endpoint answered HTTP 307" {
		t.Errorf("state %+v", rec.State)
	}
}

// subscribeWith has the LA watch its plans on one child, as modify says.
func (f *fixture) subscribeWith(t *testing.T, endpoint string, modify func(*cpis.Subscription)) store.SubscriptionRecord {
	c := la()
	c.At = f.clock.Now()
	sub := cpis.Subscription{Topic: cpis.TopicPlanChange, NHSNumber: "9990276579", Endpoint: endpoint, Content: cpis.ContentIDOnly}
	modify(&sub)
	rec, err := f.reg.Subscribe(t.Context(), c, sub)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestNoAnswerWithinTheTimeoutIsAFailedAttempt(t *testing.T) {
	f := newFixture(t)
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // then the server sees the client go
		select {                           // answers only once the client has given up
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(silent.Close)
	sub := f.subscribeWith(t, silent.URL, func(s *cpis.Subscription) { s.Timeout = 200 * time.Millisecond })
	began := time.Now()
	pass(t, f.deliverer(delivery.Config{}))
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("the attempt took %v with a 200 ms timeout", took)
	}
	rec, _ := f.store.Subscription(t.Context(), sub.ID)
	if rec.State.Failures != 1 || rec.State.LastError != "no answer within the timeout" || rec.State.Handshake {
		t.Errorf("state %+v; want one failed handshake, timed out", rec.State)
	}
}

func TestAnAnswerIsReadToAtMost64KiB(t *testing.T) {
	f := newFixture(t)
	const offered = 64 << 20
	written := make(chan int, 1)
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk, n := make([]byte, 32<<10), 0
		for n < offered {
			m, err := w.Write(chunk)
			n += m
			if err != nil {
				break
			}
		}
		written <- n
	}))
	t.Cleanup(endless.Close)
	sub := f.subscribeWith(t, endless.URL, func(*cpis.Subscription) {})
	pass(t, f.deliverer(delivery.Config{}))
	select {
	case n := <-written:
		if n >= offered {
			t.Errorf("the whole %d MiB answer was taken", offered>>20)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still writing: the answer was not cut off")
	}
	if rec, _ := f.store.Subscription(t.Context(), sub.ID); !rec.State.Handshake {
		t.Errorf("a 2xx with a long body was not an acknowledgement: %+v", rec.State)
	}
}
