package auth

import (
	"context"
	"errors"
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
// key's own alg, when it has one, must equal the token's.
type keyProvider struct{ set jwk.Set }

// FetchKeys implements jws.KeyProvider.
func (kp keyProvider) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
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
	sink.Key(alg, key)
	return nil
}

// keySource gives the keys to verify with.
type keySource interface {
	current(ctx context.Context) (jwk.Set, error)
	// refresh refetches the keys if that may help (a rotation at the
	// issuer) and reports whether it did.
	refresh(ctx context.Context) bool
}

// staticKeys is a fixed key set, as the development issuer's.
type staticKeys struct{ set jwk.Set }

func (s staticKeys) current(context.Context) (jwk.Set, error) { return s.set, nil }
func (s staticKeys) refresh(context.Context) bool             { return false }

// minForcedRefresh spaces out refetches caused by unknown kids, so that
// tokens with made-up kids cannot turn this server against the issuer.
const minForcedRefresh = time.Minute

// remoteKeys is the issuer's JWKS, cached and refreshed by jwk.Cache.
type remoteKeys struct {
	cache *jwk.Cache
	url   string
	now   func() time.Time

	mu        sync.Mutex
	lastFetch time.Time
}

func (r *remoteKeys) current(ctx context.Context) (jwk.Set, error) {
	return r.cache.Get(ctx, r.url)
}

func (r *remoteKeys) refresh(ctx context.Context) bool {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.lastFetch) < minForcedRefresh {
		r.mu.Unlock()
		return false
	}
	r.lastFetch = now
	r.mu.Unlock()
	_, err := r.cache.Refresh(ctx, r.url)
	return err == nil
}
