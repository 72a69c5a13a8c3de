package auth

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Reasons a token's key cannot be used. Their texts are the messages callers
// see, so they say nothing of the token's content (not even its kid).
var (
	errAlgNotAllowed    = errors.New("the token's signing algorithm is not accepted (only RS*, PS*, ES* and EdDSA)")
	errNoKid            = errors.New("the token names no signing key (kid)")
	errUnknownKid       = errors.New("the token's signing key (kid) is not one of the issuer's keys")
	errKeyNotForSigning = errors.New("the token's key is not a signing key")
	errAlgMismatch      = errors.New("the token's algorithm does not match its key")
	errCritical         = errors.New("the token's header has critical extensions (crit) this server does not understand")
)

// keyProvider offers jws.Verify exactly one key: the one named by the
// token's kid, and only for an allowed algorithm the key is made for. A
// key's own alg, when it has one, must equal the token's. One keyProvider
// serves one verification: it notes whether it offered a key, which tells a
// token whose signature verified from one that never got that far.
type keyProvider struct {
	set     jwk.Set
	offered bool
}

// FetchKeys implements jws.KeyProvider.
func (kp *keyProvider) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg := h.Algorithm()
	if !allowedAlgs[alg] {
		return errAlgNotAllowed
	}
	if len(h.Critical()) > 0 {
		return errCritical // RFC 7515 section 4.1.11: none is understood here
	}
	kid := h.KeyID()
	if kid == "" {
		return errNoKid
	}
	key, ok := kp.set.LookupKeyID(kid)
	if !ok {
		return errUnknownKid
	}
	if u := key.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
		return errKeyNotForSigning
	}
	if ka := key.Algorithm().String(); ka != "" && ka != alg.String() {
		return errAlgMismatch
	}
	if algs, err := jws.AlgorithmsForKey(key); err != nil || !slices.Contains(algs, alg) {
		return errAlgMismatch
	}
	kp.offered = true
	sink.Key(alg, key)
	return nil
}

// keySet is the issuer's keys as of one fetch.
type keySet struct {
	set jwk.Set
	// gen counts the fetches that succeeded before this one: a verification
	// made under an older generation may rest on a key since withdrawn.
	gen uint64
	// refreshAt is when the keys are next due to be fetched; zero for a
	// fixed set. No verification is trusted past it.
	refreshAt time.Time
}

// keySource gives the keys to verify with.
type keySource interface {
	// current returns the keys, fetching them first if they are due.
	current(ctx context.Context) (keySet, error)
	// refresh refetches the keys, as a token names a key not among them,
	// if the rate limit allows; or waits for a fetch under way.
	refresh(ctx context.Context)
	// generation is the gen of the keys current now, without fetching.
	generation() uint64
}

// staticKeys is a fixed key set, as the development issuer's.
type staticKeys struct{ set jwk.Set }

func (s staticKeys) current(context.Context) (keySet, error) { return keySet{set: s.set}, nil }
func (s staticKeys) refresh(context.Context)                 {}
func (s staticKeys) generation() uint64                      { return 0 }

// Refresh timing of a remote key set, on the Verifier's clock.
const (
	// keyRefreshInterval is how often the issuer's keys are fetched again:
	// a key the issuer withdraws is no longer trusted once they have been.
	keyRefreshInterval = 5 * time.Minute
	// minForcedRefresh spaces out fetches outside the schedule: those
	// caused by unknown kids, so that tokens with made-up kids cannot turn
	// this server against the issuer, and retries after a failed fetch.
	minForcedRefresh = time.Minute
	// fetchTimeout bounds one fetch, whoever's request triggered it.
	fetchTimeout = 10 * time.Second
)

// remoteKeys is the issuer's JWKS, fetched when a verification finds it
// keyRefreshInterval old on the injected clock, and when a token names an
// unknown kid (at most once per minForcedRefresh). It needs no timer of its
// own: keys nobody uses need not be fresh, and the refresh schedule follows
// the same clock as the expiry of tokens. When a fetch fails the keys held
// are kept (an issuer's outage should not lock every user out at once) and
// the fetch is retried no sooner than minForcedRefresh later; meanwhile no
// verification is cached. Likewise, requests that come while a fetch is
// under way carry on with the keys held, uncached, rather than wait for it:
// only the request that fetches waits.
type remoteKeys struct {
	url    string
	client *http.Client
	now    func() time.Time

	fetchMu sync.Mutex // held for the whole of a fetch: one at a time

	mu          sync.Mutex // guards keys and lastAttempt
	keys        keySet
	fetchedAt   time.Time
	lastAttempt time.Time
}

func (r *remoteKeys) current(ctx context.Context) (keySet, error) {
	r.mu.Lock()
	ks, due := r.keys, r.dueLocked(r.now())
	r.mu.Unlock()
	if !due {
		return ks, nil
	}
	r.fetchIf(ctx, (*remoteKeys).dueLocked)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys, nil
}

func (r *remoteKeys) refresh(ctx context.Context) {
	r.fetchIf(ctx, (*remoteKeys).forcedAllowedLocked)
}

func (r *remoteKeys) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys.gen
}

// dueLocked reports whether the keys are due to be fetched at now: they
// are keyRefreshInterval old (or the clock went back past their fetch),
// and no fetch was tried within minForcedRefresh.
func (r *remoteKeys) dueLocked(now time.Time) bool {
	return elapsed(r.fetchedAt, now, keyRefreshInterval) && r.forcedAllowedLocked(now)
}

func (r *remoteKeys) forcedAllowedLocked(now time.Time) bool {
	return elapsed(r.lastAttempt, now, minForcedRefresh)
}

// elapsed reports whether d has passed since then, counting a clock that
// went back before then as having passed it.
func elapsed(then, now time.Time, d time.Duration) bool {
	return now.Before(then) || now.Sub(then) >= d
}

// fetchIf fetches the keys if should, asked under mu once this caller holds
// fetchMu (a fetch that finished meanwhile may have made it false), still
// says so.
func (r *remoteKeys) fetchIf(ctx context.Context, should func(*remoteKeys, time.Time) bool) {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.Lock()
	now := r.now()
	if !should(r, now) {
		r.mu.Unlock()
		return
	}
	r.lastAttempt = now
	r.mu.Unlock()
	// The fetch serves every waiting request: it must not fail because the
	// one that started it went away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	defer cancel()
	set, err := fetchJWKS(ctx, r.client, r.url)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys = keySet{set: set, gen: r.keys.gen + 1, refreshAt: now.Add(keyRefreshInterval)}
	r.fetchedAt = now
}
