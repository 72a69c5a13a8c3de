package auth

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// refreshSetup is a test issuer, a verifier of its tokens on a clock the
// test moves (starting at t0), and a token signed with the issuer's ES256
// key ec-1.
func refreshSetup(t *testing.T) (*testIssuer, *Verifier, *countingKeys, *testClock, string) {
	t.Helper()
	ti := newTestIssuer(t)
	clock := &testClock{now: t0}
	v := newTestVerifier(t, ti, clock.Now)
	return ti, v, countKeys(v), clock, sign(t, jwa.ES256, ti.ec, "ec-1", ti.baseClaims())
}

// keyStep is one verification of a key refresh test: at a time after t0,
// with an optional change at the issuer first, and what must follow.
type keyStep struct {
	name    string
	at      time.Duration
	issuer  func() // a change at the issuer before the verification, or nil
	token   string // "" for the setup's token
	accept  bool
	want    string // for a refusal, the reason
	fetched int32  // JWKS fetches caused by this step
	full    bool   // verified in full rather than from the cache
}

func runKeySteps(t *testing.T, ti *testIssuer, v *Verifier, keys *countingKeys, clock *testClock, token string, steps []keyStep) {
	t.Helper()
	for _, st := range steps {
		clock.set(t0.Add(st.at))
		if st.issuer != nil {
			st.issuer()
		}
		tok := st.token
		if tok == "" {
			tok = token
		}
		fetches, calls := ti.fetches.Load(), keys.calls.Load()
		_, err := v.Verify(t.Context(), tok)
		if (err == nil) != st.accept {
			t.Fatalf("%s: error %v, want accepted %v", st.name, err, st.accept)
		}
		if err != nil && !strings.Contains(err.Error(), st.want) {
			t.Errorf("%s: error %q does not give the reason %q", st.name, err, st.want)
		}
		if got := ti.fetches.Load() - fetches; got != st.fetched {
			t.Errorf("%s: %d JWKS fetches, want %d", st.name, got, st.fetched)
		}
		if full := keys.calls.Load() > calls; full != st.full {
			t.Errorf("%s: verified in full %v, want %v", st.name, full, st.full)
		}
	}
}

// TestWithdrawnKeyStopsAtTheNextRefresh withdraws the key of a token in use:
// the token keeps working, from the cache or not, until the keys are next
// due (five minutes after the last fetch), and not a moment after.
func TestWithdrawnKeyStopsAtTheNextRefresh(t *testing.T) {
	ti, v, keys, clock, tok := refreshSetup(t)
	withdraw := func() { ti.setKeys(t, ti.rsa, ti.ed) }
	runKeySteps(t, ti, v, keys, clock, tok, []keyStep{
		{name: "first use", at: 0, accept: true, full: true},
		{name: "the issuer withdraws ec-1; cached", at: 30 * time.Second, issuer: withdraw, accept: true},
		{name: "old keys, not yet due", at: 4*time.Minute + 30*time.Second, accept: true, full: true},
		{name: "cached, still before the refresh", at: 4*time.Minute + 59*time.Second, accept: true},
		{name: "the refresh is due: fetched, refused", at: 5 * time.Minute, accept: false, want: "not one of the issuer's keys", fetched: 1, full: true},
		{name: "refused without fetching again", at: 5*time.Minute + 30*time.Second, accept: false, want: "not one of the issuer's keys", full: true},
		{name: "a minute on, the unknown kid may fetch once", at: 6 * time.Minute, accept: false, want: "not one of the issuer's keys", fetched: 1, full: true},
		{name: "and not again within the minute", at: 6*time.Minute + 59*time.Second, accept: false, want: "not one of the issuer's keys", full: true},
	})
}

// TestKeysRefreshEveryFiveMinutes verifies every 30 s of the clock for 21
// minutes: the keys are fetched at 5, 10, 15 and 20 minutes, no more often
// and no less.
func TestKeysRefreshEveryFiveMinutes(t *testing.T) {
	ti, v, _, clock, _ := refreshSetup(t)
	var fetchedAt []time.Duration
	for at := time.Duration(0); at <= 21*time.Minute; at += 30 * time.Second {
		clock.set(t0.Add(at))
		claims := with(ti.baseClaims(), map[string]any{"iat": t0.Add(at).Unix(), "nbf": t0.Add(at).Unix(), "exp": t0.Add(at + time.Hour).Unix()})
		before := ti.fetches.Load()
		if _, err := v.Verify(t.Context(), sign(t, jwa.ES256, ti.ec, "ec-1", claims)); err != nil {
			t.Fatalf("at %v: %v", at, err)
		}
		if ti.fetches.Load() > before {
			fetchedAt = append(fetchedAt, at)
		}
	}
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute}
	if !slices.Equal(fetchedAt, want) {
		t.Errorf("keys fetched at %v, want %v", fetchedAt, want)
	}
}

// TestUnknownKidRefreshDropsCachedVerifications rotates the issuer's key
// between the 5-minute refreshes: the new key's first token makes the
// verifier fetch the keys, after which a cached verification of a token
// signed with the withdrawn key is no longer trusted.
func TestUnknownKidRefreshDropsCachedVerifications(t *testing.T) {
	ti, v, keys, clock, tok := refreshSetup(t)
	rotated := newECKey(t, "ec-2")
	runKeySteps(t, ti, v, keys, clock, tok, []keyStep{
		{name: "ec-1 token", at: 2 * time.Minute, accept: true, full: true},
		{name: "ec-1 token, cached", at: 2*time.Minute + 5*time.Second, accept: true},
		{name: "the issuer rotates to ec-2; an ec-2 token fetches the keys", at: 2*time.Minute + 10*time.Second,
			issuer: func() { ti.setKeys(t, rotated) }, token: sign(t, jwa.ES256, rotated, "ec-2", ti.baseClaims()), accept: true, fetched: 1, full: true},
		{name: "ec-1 token: its cached verification is stale", at: 2*time.Minute + 20*time.Second, accept: false, want: "not one of the issuer's keys", full: true},
	})
}

// TestFailedRefreshKeepsKeysUncached makes the JWKS fail when the refresh is
// due: the keys held are used, no verification is cached, and the fetch is
// retried a minute later, when it finds the key withdrawn.
func TestFailedRefreshKeepsKeysUncached(t *testing.T) {
	ti, v, keys, clock, tok := refreshSetup(t)
	runKeySteps(t, ti, v, keys, clock, tok, []keyStep{
		{name: "first use", at: 0, accept: true, full: true},
		{name: "the JWKS fails when due: old keys", at: 5 * time.Minute, issuer: func() { ti.failWith.Store(http.StatusServiceUnavailable) }, accept: true, fetched: 1, full: true},
		{name: "not cached meanwhile", at: 5*time.Minute + time.Second, accept: true, full: true},
		{name: "no retry within the minute", at: 5*time.Minute + 59*time.Second, accept: true, full: true},
		{name: "the retry finds ec-1 withdrawn", at: 6 * time.Minute, issuer: func() { ti.failWith.Store(0); ti.setKeys(t, ti.rsa) }, accept: false, want: "not one of the issuer's keys", fetched: 1, full: true},
	})
}

// TestRefreshOutlivesItsRequest starts the due refresh from a request
// whose context is already cancelled: the fetch serves every request, so
// it happens regardless.
func TestRefreshOutlivesItsRequest(t *testing.T) {
	ti, v, _, clock, tok := refreshSetup(t)
	ti.setKeys(t, ti.rsa)
	clock.set(t0.Add(5 * time.Minute))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	before := ti.fetches.Load()
	if _, err := v.Verify(ctx, tok); err == nil || !strings.Contains(err.Error(), "not one of the issuer's keys") {
		t.Errorf("Verify error = %v, want the withdrawn key refused", err)
	}
	if got := ti.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

// TestConcurrentRefreshFetchesOnce has many requests come when the keys are
// due: the first one fetches them, and its fetch is held until every other
// request has asked for the keys. They do not fetch again, nor wait: they
// carry on with the keys held (uncached, as the keys are due).
func TestConcurrentRefreshFetchesOnce(t *testing.T) {
	ti, v, keys, clock, tok := refreshSetup(t)
	const n = 8
	hold := func() {
		for deadline := time.Now().Add(5 * time.Second); keys.calls.Load() < n && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	ti.onFetch.Store(&hold)
	clock.set(t0.Add(5 * time.Minute))
	before := ti.fetches.Load()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := keys.calls.Load(); got != n {
		t.Fatalf("%d verifications asked for the keys, want %d", got, n)
	}
	if got := ti.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}

// TestRotationSeenByConcurrentRequests has two requests bring tokens signed
// with a key just published: the first fetches the keys, and the second,
// finding the fetch under way, waits for it and verifies with its keys
// rather than refuse the token.
func TestRotationSeenByConcurrentRequests(t *testing.T) {
	ti, v, keys, clock, _ := refreshSetup(t)
	rotated := newECKey(t, "ec-2")
	ti.setKeys(t, ti.ec, rotated)
	clock.set(t0.Add(2 * time.Minute))
	hold := func() {
		for deadline := time.Now().Add(5 * time.Second); keys.calls.Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // time for the second request to reach the fetch under way
	}
	ti.onFetch.Store(&hold)
	before := ti.fetches.Load()
	var wg sync.WaitGroup
	for i := range 2 {
		tok := sign(t, jwa.ES256, rotated, "ec-2", with(ti.baseClaims(), map[string]any{"jti": fmt.Sprint(i)}))
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), tok); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := ti.fetches.Load() - before; got != 1 {
		t.Errorf("%d fetches, want 1", got)
	}
}
