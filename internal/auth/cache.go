package auth

import (
	"crypto/sha256"
	"slices"
	"sync"
	"time"
)

// Bounds of the verified-token cache.
const (
	// verifiedTTL is the longest a verification is trusted. An EPR session
	// reuses its token for many reads, so a minute already saves nearly all
	// the work.
	verifiedTTL = time.Minute
	// verifiedCacheSize bounds the memory the cache takes: past it, expired
	// entries are dropped, then all of them.
	verifiedCacheSize = 10_000
)

// verifiedCache remembers the principals of bearer tokens verified
// recently. Checking a token's ES256 signature and decoding its claims was
// half the server's CPU in the audited-read benchmark (cmd/cpisbench),
// repeated for every request of a session that presents the same token.
//
// An entry is trusted from when the token was verified until the earliest
// of its expiry (exp, without the verifier's leeway: after exp the verifier
// decides again), verifiedTTL later, and the next scheduled fetch of the
// issuer's keys; and only while the keys are those it was verified with, so
// that a key the issuer withdraws stops being honoured at the first fetch
// that finds it gone, scheduled or not. Only successes are cached: a
// refused token is checked again each time, so a failure never outlives its
// cause. Tokens are not kept, only their SHA-256 digests.
type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]cachedVerification
}

// cachedVerification is one cached verification.
type cachedVerification struct {
	p           *Principal
	gen         uint64 // of the keys it was made with
	from, until time.Time
}

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{m: map[[sha256.Size]byte]cachedVerification{}}
}

func cacheKey(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// get returns a copy of the principal of the token whose key is k, if it
// was verified with keys of generation gen and is trusted at now.
func (c *verifiedCache) get(k [sha256.Size]byte, now time.Time, gen uint64) (*Principal, bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	// The clock may have gone back (a test's, or after an NTP step): an
	// entry counts only from the instant it was verified.
	if !ok || e.gen != gen || now.Before(e.from) || !now.Before(e.until) {
		return nil, false
	}
	return e.p.clone(), true
}

// put adds a verification, trusted until the earlier of e.until and
// verifiedTTL after e.from, making room first if the cache is full. A
// verification that is not trusted even now is not added.
func (c *verifiedCache) put(k [sha256.Size]byte, e cachedVerification) {
	if ttl := e.from.Add(verifiedTTL); ttl.Before(e.until) {
		e.until = ttl
	}
	if !e.from.Before(e.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= verifiedCacheSize {
		for t, old := range c.m {
			if !e.from.Before(old.until) {
				delete(c.m, t)
			}
		}
		if len(c.m) >= verifiedCacheSize {
			clear(c.m)
		}
	}
	c.m[k] = e
}

// clone is a deep copy of p: no request can change another's principal.
func (p *Principal) clone() *Principal {
	cp := *p
	cp.Scopes = slices.Clone(p.Scopes)
	cp.Activities = slices.Clone(p.Activities)
	return &cp
}
