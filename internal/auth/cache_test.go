package auth

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// countingKeys counts the verifications that were not answered from the
// cache: each asks for the current keys.
type countingKeys struct {
	keySource
	calls atomic.Int32
}

func (c *countingKeys) current(ctx context.Context) (keySet, error) {
	c.calls.Add(1)
	return c.keySource.current(ctx)
}

// countKeys makes v count its full verifications.
func countKeys(v *Verifier) *countingKeys {
	c := &countingKeys{keySource: v.keys}
	v.keys = c
	return c
}

// cacheSetup is a development issuer, a verifier of its tokens counting its
// full verifications, and their shared clock.
func cacheSetup(t *testing.T) (*DevIssuer, *Verifier, *countingKeys, *testClock) {
	t.Helper()
	clock := &testClock{now: t0}
	d := newDevIssuer(t, t.TempDir(), clock.Now)
	v := devVerifier(t, d, clock.Now)
	return d, v, countKeys(v), clock
}

func mint(tb testing.TB, d *DevIssuer, persona string) string {
	tb.Helper()
	tok, _, err := d.Token(persona)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// TestVerifiedCache follows one token through its life: each step moves the
// clock (relative to when the token was minted), verifies, and says whether
// the token had to be verified in full and whether it is accepted.
func TestVerifiedCache(t *testing.T) {
	d, v, keys, clock := cacheSetup(t)
	tok := mint(t, d, "ed-clinician")
	persona, _ := d.persona("ed-clinician")
	want := personaPrincipal(persona)
	steps := []struct {
		name   string
		at     time.Duration // after minting
		full   bool          // verified in full, not from the cache
		accept bool
	}{
		{"first use", 0, true, true},
		{"again at once", time.Second, false, true},
		{"just inside the minute", verifiedTTL - time.Second, false, true},
		{"a minute on: verified again", verifiedTTL, true, true},
		{"then cached again", verifiedTTL + time.Second, false, true},
		{"clock gone back before that verification", 30 * time.Second, true, true},
		{"near expiry", DevTokenLifetime - 10*time.Second, true, true},
		{"past exp, within the verifier's leeway: not from the cache", DevTokenLifetime + 10*time.Second, true, true},
		{"well past exp", DevTokenLifetime + 5*time.Minute, true, false},
		{"and again: refusals are not cached", DevTokenLifetime + 5*time.Minute, true, false},
	}
	for _, st := range steps {
		clock.set(t0.Add(st.at))
		before := keys.calls.Load()
		p, err := v.Verify(t.Context(), tok)
		if full := keys.calls.Load() > before; full != st.full {
			t.Errorf("%s: verified in full %v, want %v", st.name, full, st.full)
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

func TestVerifiedCacheKeepsTokensApart(t *testing.T) {
	d, v, keys, _ := cacheSetup(t)
	personas := []string{"ed-clinician", "community-nurse", "la:ZLA01"}
	tokens := map[string]string{}
	for _, persona := range personas {
		tokens[persona] = mint(t, d, persona)
	}
	for round := range 2 { // the second round comes from the cache
		for _, persona := range personas {
			p, err := v.Verify(t.Context(), tokens[persona])
			if err != nil {
				t.Fatal(err)
			}
			want, _ := d.persona(persona)
			if diff := cmp.Diff(personaPrincipal(want), p); diff != "" {
				t.Errorf("round %d, %s: principal (-want +got):\n%s", round, persona, diff)
			}
		}
	}
	if got := keys.calls.Load(); got != int32(len(personas)) {
		t.Errorf("%d full verifications, want %d", got, len(personas))
	}
	if _, err := v.Verify(t.Context(), "not.a.token"); err == nil {
		t.Error("a malformed token was accepted")
	}
}

func TestVerifiedCacheHandsOutCopies(t *testing.T) {
	d, v, _, _ := cacheSetup(t)
	tok := mint(t, d, "ed-clinician")
	for i := range 2 { // the first principal comes from a full verification, the second from the cache
		p, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		p.Name, p.Scopes[0], p.Activities[0] = "changed by one request", "system/Flag.write", "B0000"
		again, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatal(err)
		}
		if again.Name == p.Name || again.Scopes[0] == p.Scopes[0] || again.Activities[0] == p.Activities[0] {
			t.Errorf("round %d: one request's change to its principal reached the next request", i)
		}
	}
}

func TestVerifiedCacheStaysBounded(t *testing.T) {
	tests := []struct {
		name  string
		until time.Time // of the entries filling the cache
		want  int       // entries after one more is added
	}{
		{"full of expired entries: they go", t0, 1},
		{"full of live entries: all go", t0.Add(time.Minute), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newVerifiedCache()
			for i := range verifiedCacheSize {
				c.put(cacheKey(fmt.Sprint(i)), cachedVerification{p: &Principal{}, from: t0.Add(-time.Minute), until: tt.until})
			}
			if len(c.m) != verifiedCacheSize {
				t.Fatalf("%d entries before the one too many, want %d", len(c.m), verifiedCacheSize)
			}
			c.put(cacheKey("new"), cachedVerification{p: &Principal{}, from: t0, until: t0.Add(time.Minute)})
			if len(c.m) != tt.want {
				t.Errorf("%d entries, want %d", len(c.m), tt.want)
			}
			if _, ok := c.get(cacheKey("new"), t0, 0); !ok {
				t.Error("the new entry is missing")
			}
		})
	}
}

func TestVerifiedCacheEntryWindow(t *testing.T) {
	k := cacheKey("token")
	tests := []struct {
		name  string
		until time.Time // given to put, besides verifiedTTL
		at    time.Time
		gen   uint64
		want  bool
	}{
		{"within", t0.Add(time.Hour), t0.Add(30 * time.Second), 1, true},
		{"at until", t0.Add(20 * time.Second), t0.Add(20 * time.Second), 1, false},
		{"at the TTL", t0.Add(time.Hour), t0.Add(verifiedTTL), 1, false},
		{"before it was verified", t0.Add(time.Hour), t0.Add(-time.Second), 1, false},
		{"keys fetched since", t0.Add(time.Hour), t0.Add(time.Second), 2, false},
		{"keys as they were", t0.Add(time.Hour), t0.Add(time.Second), 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newVerifiedCache()
			c.put(k, cachedVerification{p: &Principal{}, gen: 1, from: t0, until: tt.until})
			if _, ok := c.get(k, tt.at, tt.gen); ok != tt.want {
				t.Errorf("get = %v, want %v", ok, tt.want)
			}
		})
	}
	c := newVerifiedCache()
	c.put(k, cachedVerification{p: &Principal{}, from: t0, until: t0})
	if len(c.m) != 0 {
		t.Error("a verification trusted for no time at all was cached")
	}
}
