package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
)

// Bounds of the verified-token cache.
const (
	// tokenCacheTTL is the longest a verification is trusted. An EPR session
	// reuses its token for many reads, so a minute already saves nearly all
	// the work; and a key the issuer withdraws stops being honoured through
	// the cache within it.
	tokenCacheTTL = time.Minute
	// tokenCacheSize bounds the memory the cache takes (a token is about a
	// kilobyte): past it, expired entries are dropped, then all of them.
	tokenCacheSize = 10_000
)

// tokenCache remembers the principals of bearer tokens verified recently.
// Checking a token's ES256 signature and decoding its claims was half the
// server's CPU in the audited-read benchmark (cmd/cpisbench), repeated for
// every request of a session that presents the same token. An entry is
// trusted from when the token was verified until the earliest of its expiry
// (exp, without the verifier's leeway: after exp the verifier decides
// again) and tokenCacheTTL later. Only successes are cached: a refused
// token is checked again each time, so a failure never outlives its cause.
// Tokens are held in memory only, never logged.
type tokenCache struct {
	next TokenVerifier
	now  func() time.Time
	mu   sync.Mutex
	m    map[string]verified
}

// verified is one cached verification.
type verified struct {
	p           *auth.Principal
	from, until time.Time
}

func newTokenCache(next TokenVerifier, now func() time.Time) *tokenCache {
	return &tokenCache{next: next, now: now, m: map[string]verified{}}
}

// Verify returns the principal of a token verified within its trust
// window, and otherwise asks the verifier.
func (c *tokenCache) Verify(ctx context.Context, token string) (*auth.Principal, error) {
	now := c.now()
	c.mu.Lock()
	v, ok := c.m[token]
	c.mu.Unlock()
	// The clock may have gone back (a test's, or after an NTP step): an
	// entry counts only from the instant it was verified.
	if ok && !now.Before(v.from) && now.Before(v.until) {
		p := *v.p // a copy: no request can change another's principal
		return &p, nil
	}
	p, err := c.next.Verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if exp, ok := expiry(token); ok {
		c.put(token, verified{p: p, from: now, until: minTime(exp, now.Add(tokenCacheTTL))})
	}
	cp := *p
	return &cp, nil
}

// put adds an entry, making room first if the cache is full.
func (c *tokenCache) put(token string, v verified) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= tokenCacheSize {
		for t, e := range c.m {
			if !v.from.Before(e.until) {
				delete(c.m, t)
			}
		}
		if len(c.m) >= tokenCacheSize {
			clear(c.m)
		}
	}
	c.m[token] = v
}

// expiry reads exp from a token the verifier has just accepted, so its
// payload is known to be well formed and signed.
func expiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	sec := int64(*claims.Exp) // NumericDate: seconds, perhaps with a fraction; dropping it errs early
	return time.Unix(sec, 0), true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
