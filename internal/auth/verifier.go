package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Config says which tokens a Verifier accepts.
type Config struct {
	Issuer   string // the iss every token must carry, exactly
	Audience string // a value the token's aud must contain
	// JWKSURL is where the issuer publishes its keys. When empty, it is read
	// from the issuer's OpenID Connect discovery document at
	// Issuer + "/.well-known/openid-configuration". Remote URLs must be https
	// unless they point at this machine (localhost, 127.0.0.1, ::1).
	JWKSURL string
	// KeySet, when set, is the fixed set of keys to trust (the development
	// issuer's); nothing is fetched.
	KeySet     jwk.Set
	Now        func() time.Time // the clock; time.Now when nil
	HTTPClient *http.Client     // for discovery and JWKS; a client with a 10 s timeout when nil
	// Skew is the clock difference tolerated on exp, nbf and iat: 60 s when
	// zero, and never more than MaxSkew.
	Skew time.Duration
}

// MaxSkew is the largest clock skew a Verifier tolerates.
const MaxSkew = 60 * time.Second

// maxTokenBytes bounds the work an unauthenticated caller can cause. CIS2
// tokens of users with many roles run to a few kilobytes.
const maxTokenBytes = 64 << 10

// allowedAlgs are the asymmetric JWS algorithms accepted. "none" and the
// HMAC family are absent on purpose: with a public key set, accepting HS*
// would let anyone sign with the public key as the shared secret.
var allowedAlgs = map[jwa.SignatureAlgorithm]bool{
	jwa.RS256: true, jwa.RS384: true, jwa.RS512: true,
	jwa.PS256: true, jwa.PS384: true, jwa.PS512: true,
	jwa.ES256: true, jwa.ES384: true, jwa.ES512: true,
	jwa.EdDSA: true,
}

// Verifier checks bearer tokens and turns them into principals. It is safe
// for concurrent use.
type Verifier struct {
	issuer   string
	audience string
	skew     time.Duration
	now      func() time.Time
	keys     keySource
}

// NewVerifier builds a Verifier. With a remote key set it fetches the keys
// once before returning, and fails if it cannot: a server that cannot check
// any token should refuse to start with a clear message rather than answer
// 401 to everyone. The keys are then kept fresh in the background for as
// long as ctx lives, so ctx should be the server's lifetime context.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	const op = "auth.NewVerifier"
	if err := cfg.validate(); err != nil {
		return nil, cpis.E(op, err)
	}
	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience, skew: cfg.Skew, now: cfg.Now}
	if v.skew == 0 {
		v.skew = MaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.KeySet != nil {
		v.keys = staticKeys{cfg.KeySet}
		return v, nil
	}
	keys, err := newRemoteKeys(ctx, cfg, v.now)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	v.keys = keys
	return v, nil
}

func (cfg Config) validate() error {
	const op = "auth.Config"
	switch {
	case cfg.Issuer == "":
		return cpis.E(op, cpis.MissingValue, "the token issuer is not configured")
	case cfg.Audience == "":
		return cpis.E(op, cpis.MissingValue, "the token audience is not configured")
	case cfg.Skew < 0 || cfg.Skew > MaxSkew:
		return cpis.E(op, cpis.InvalidValue, "the clock skew must be between 0 and 60 seconds")
	}
	return nil
}

// Verify checks token (the bearer token without the "Bearer " prefix) and
// returns the principal it identifies. Every failure of the token is an
// *cpis.Error of kind Unauthenticated whose message gives the reason and
// nothing of the token itself. Unavailable means the issuer's keys could not
// be had at all, which is not the caller's fault.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	payload, err := v.verifySignature(ctx, token)
	if err != nil {
		return nil, err
	}
	tok := jwt.New()
	if err := json.Unmarshal(payload, tok); err != nil {
		return nil, unauthenticated("the token's registered claims are malformed")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, unauthenticated("the token's identity claims are malformed")
	}
	if err := v.validate(ctx, tok); err != nil {
		return nil, err
	}
	return c.principal(), nil
}

func unauthenticated(reason string) error {
	return cpis.E("auth.Verify", cpis.Unauthenticated, reason)
}

// verifySignature returns the payload of a compact JWS signed by one of the
// issuer's keys. An unknown kid triggers one refetch of the key set, rate
// limited, so that a key rotation at the issuer is picked up at once.
func (v *Verifier) verifySignature(ctx context.Context, token string) ([]byte, error) {
	if len(token) > maxTokenBytes {
		return nil, unauthenticated("the bearer token is too long")
	}
	// Exactly three parts: a compact JWS. This shuts out JWS JSON
	// serialization (several signatures) and JWE (five parts) before parsing.
	if strings.Count(token, ".") != 2 {
		return nil, unauthenticated("the bearer token is not a signed JWT in compact form")
	}
	if _, err := jws.Parse([]byte(token), jws.WithCompact()); err != nil {
		return nil, unauthenticated("the bearer token is not a well-formed signed JWT")
	}
	set, err := v.keys.current(ctx)
	if err != nil {
		return nil, cpis.E("auth.Verify", cpis.Unavailable, "the token issuer's keys are not available", err)
	}
	payload, err := verifyWith(ctx, token, set)
	if errors.Is(err, errUnknownKid) && v.keys.refresh(ctx) {
		if set, err = v.keys.current(ctx); err == nil {
			payload, err = verifyWith(ctx, token, set)
		}
	}
	if err != nil {
		return nil, unauthenticated(signatureReason(err))
	}
	return payload, nil
}

func verifyWith(ctx context.Context, token string, set jwk.Set) ([]byte, error) {
	return jws.Verify([]byte(token), jws.WithCompact(), jws.WithContext(ctx), jws.WithKeyProvider(keyProvider{set}))
}

func signatureReason(err error) string {
	for _, r := range []error{errAlgNotAllowed, errCritical, errNoKid, errUnknownKid, errKeyNotForSigning, errAlgMismatch} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return "the token's signature does not verify"
}

// validate checks the registered claims against the configuration and the clock.
func (v *Verifier) validate(ctx context.Context, tok jwt.Token) error {
	if tok.Expiration().IsZero() {
		return unauthenticated("the token has no expiry (exp)")
	}
	if tok.Subject() == "" {
		return unauthenticated("the token has no subject (sub)")
	}
	err := jwt.Validate(tok,
		jwt.WithContext(ctx),
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithAcceptableSkew(v.skew),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
	)
	if err != nil {
		return unauthenticated(claimReason(err))
	}
	return nil
}

func claimReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return "the token has expired (exp)"
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return "the token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return "the token was issued in the future (iat)"
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return "the token was not issued by the trusted issuer (iss)"
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return "the token is not meant for this server (aud)"
	}
	return "the token's claims are not valid"
}
