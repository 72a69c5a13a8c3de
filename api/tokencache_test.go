package api

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// countingVerifier is the real verifier, counting the tokens it is asked
// to check.
type countingVerifier struct {
	v     *auth.Verifier
	calls atomic.Int32
}

func (c *countingVerifier) Verify(ctx context.Context, token string) (*auth.Principal, error) {
	c.calls.Add(1)
	return c.v.Verify(ctx, token)
}

// cacheSetup is a development issuer, the real verifier of its tokens
// behind a tokenCache, and their shared clock.
func cacheSetup(t *testing.T) (*auth.DevIssuer, *countingVerifier, *tokenCache, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	dev, err := auth.LoadOrCreateDevIssuer(t.TempDir(), "http://127.0.0.1/dev", "cpis", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(t.Context(), auth.Config{Issuer: dev.Issuer(), Audience: "cpis", KeySet: dev.PublicKeys(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cv := &countingVerifier{v: v}
	return dev, cv, newTokenCache(cv, clock.Now), clock
}

func mint(t *testing.T, dev *auth.DevIssuer, persona string) string {
	t.Helper()
	tok, _, err := dev.Token(persona)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTokenCache follows one token through its life: each step moves the
// clock (relative to when the token was minted), verifies through the
// cache, and says whether the verifier had to be asked and whether the
// token is accepted.
func TestTokenCache(t *testing.T) {
	dev, cv, cache, clock := cacheSetup(t)
	minted := clock.Now()
	tok := mint(t, dev, "ed-clinician")
	want, err := cv.v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name   string
		at     time.Duration // after minting
		asked  bool          // the verifier was called
		accept bool
	}{
		{"first use", 0, true, true},
		{"again at once", time.Second, false, true},
		{"just inside the minute", tokenCacheTTL - time.Second, false, true},
		{"a minute on: verified again", tokenCacheTTL, true, true},
		{"then cached again", tokenCacheTTL + time.Second, false, true},
		{"clock gone back before that verification", 30 * time.Second, true, true},
		{"near expiry", auth.DevTokenLifetime - 10*time.Second, true, true},
		{"past exp, within the verifier's leeway: not from the cache", auth.DevTokenLifetime + 10*time.Second, true, true},
		{"well past exp", auth.DevTokenLifetime + 5*time.Minute, true, false},
		{"and again: refusals are not cached", auth.DevTokenLifetime + 5*time.Minute, true, false},
	}
	for _, st := range steps {
		clock.set(minted.Add(st.at))
		before := cv.calls.Load()
		p, err := cache.Verify(t.Context(), tok)
		if asked := cv.calls.Load() > before; asked != st.asked {
			t.Errorf("%s: verifier asked %v, want %v", st.name, asked, st.asked)
		}
		if (err == nil) != st.accept {
			t.Fatalf("%s: error %v, want accepted %v", st.name, err, st.accept)
		}
		if err == nil {
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("%s: principal (-want +got):\n%s", st.name, diff)
			}
		}
	}
}

func TestTokenCacheKeepsTokensApart(t *testing.T) {
	dev, _, cache, _ := cacheSetup(t)
	for range 2 { // the second round comes from the cache
		for _, persona := range []string{"ed-clinician", "community-nurse", "la:ZLA01"} {
			tok := mint(t, dev, persona)
			p, err := cache.Verify(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if again, _ := cache.Verify(t.Context(), tok); again.Subject != p.Subject || again.Name != p.Name {
				t.Errorf("%s: second principal %s %q, first %s %q", persona, again.Subject, again.Name, p.Subject, p.Name)
			}
		}
	}
	if _, err := cache.Verify(t.Context(), "not.a.token"); err == nil {
		t.Error("a malformed token was accepted")
	}
}

func TestTokenCacheHandsOutCopies(t *testing.T) {
	dev, _, cache, _ := cacheSetup(t)
	tok := mint(t, dev, "ed-clinician")
	first, err := cache.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	first.Name = "changed by one request"
	second, err := cache.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if second.Name == first.Name {
		t.Error("one request's change to its principal reached the next request")
	}
}

func TestTokenCacheStaysBounded(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		until time.Time // of the entries filling the cache
		want  int       // entries after one more is added
	}{
		{"full of expired entries: they go", now, 1},
		{"full of live entries: all go", now.Add(time.Minute), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTokenCache(nil, func() time.Time { return now })
			for i := range tokenCacheSize {
				c.put(fmt.Sprint(i), verified{p: &auth.Principal{}, from: now.Add(-time.Minute), until: tt.until})
			}
			c.put("new", verified{p: &auth.Principal{}, from: now, until: now.Add(time.Minute)})
			if len(c.m) != tt.want {
				t.Errorf("%d entries, want %d", len(c.m), tt.want)
			}
			if _, ok := c.m["new"]; !ok {
				t.Error("the new entry is missing")
			}
		})
	}
}
