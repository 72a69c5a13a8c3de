package auth

import (
	"context"
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
	// MaxLifetime is the longest lifetime of a token accepted: exp - iat,
	// or exp - now (less Skew) when the token has no iat. Zero means
	// DefaultMaxLifetime; otherwise it must lie between MinMaxLifetime and
	// MaxMaxLifetime.
	MaxLifetime time.Duration
}

// MaxSkew is the largest clock skew a Verifier tolerates.
const MaxSkew = 60 * time.Second

// Bounds of Config.MaxLifetime. A stolen token is good until it expires, so
// no token may be good for long: a working day, unless configured otherwise.
const (
	DefaultMaxLifetime = 12 * time.Hour
	MinMaxLifetime     = time.Minute
	MaxMaxLifetime     = 24 * time.Hour
)

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
	issuer      string
	audience    string
	skew        time.Duration
	maxLifetime time.Duration
	now         func() time.Time
	keys        keySource
	typed       []jwt.ParseOption // the private claims' types
	cache       *verifiedCache
}

// NewVerifier builds a Verifier. With a remote key set it fetches the keys
// once before returning, and fails if it cannot: a server that cannot check
// any token should refuse to start with a clear message rather than answer
// 401 to everyone. The keys are fetched again as tokens are verified, every
// five minutes of the configured clock and when a token names a key not
// seen yet; ctx serves only the first fetch.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	const op = "auth.NewVerifier"
	if err := cfg.validate(); err != nil {
		return nil, cpis.E(op, err)
	}
	v := &Verifier{
		issuer: cfg.Issuer, audience: cfg.Audience, skew: cfg.Skew, maxLifetime: cfg.MaxLifetime, now: cfg.Now,
		typed: typedClaimOptions(), cache: newVerifiedCache(),
	}
	if v.skew == 0 {
		v.skew = MaxSkew
	}
	if v.maxLifetime == 0 {
		v.maxLifetime = DefaultMaxLifetime
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
	case cfg.MaxLifetime != 0 && (cfg.MaxLifetime < MinMaxLifetime || cfg.MaxLifetime > MaxMaxLifetime):
		return cpis.E(op, cpis.InvalidValue, "the maximum token lifetime must be between 1 minute and 24 hours")
	}
	return nil
}

// Verify checks token (the bearer token without the "Bearer " prefix) and
// returns the principal it identifies. Every failure of the token is an
// *cpis.Error of kind Unauthenticated whose message gives the reason and
// nothing of the token itself. Unavailable means the issuer's keys could not
// be had at all, which is not the caller's fault.
//
// A token verified recently is not checked again (see verifiedCache); the
// principal returned is the caller's own copy either way.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	if len(token) > maxTokenBytes {
		return nil, unauthenticated("the bearer token is too long")
	}
	now := v.now()
	key := cacheKey(token)
	if p, ok := v.cache.get(key, now, v.keys.generation()); ok {
		return p, nil
	}
	p, until, gen, err := v.verify(ctx, token, now)
	if err != nil {
		return nil, err
	}
	v.cache.put(key, cachedVerification{p: p, gen: gen, from: now, until: until})
	return p.clone(), nil
}

func unauthenticated(reason string) error {
	return cpis.E("auth.Verify", cpis.Unauthenticated, reason)
}

// verify checks token at now. Besides the principal, it returns until when
// the verification may be trusted without checking again (the token's exp,
// and never past the next fetch of the keys) and the generation of the keys
// it was made with. An unknown kid triggers a refetch of the key set, rate
// limited, so that a key rotation at the issuer is picked up at once.
func (v *Verifier) verify(ctx context.Context, token string, now time.Time) (*Principal, time.Time, uint64, error) {
	if err := checkCompact(token); err != nil {
		return nil, time.Time{}, 0, err
	}
	ks, err := v.keys.current(ctx)
	if err != nil {
		return nil, time.Time{}, 0, cpis.E("auth.Verify", cpis.Unavailable, "the token issuer's keys are not available", err)
	}
	tok, err := v.parse(token, ks.set, now)
	if errors.Is(err, errUnknownKid) {
		// Fetch the keys (rate limited), or wait for the fetch under way;
		// try again if keys newer than those just used came of it.
		v.keys.refresh(ctx)
		if fresh, ferr := v.keys.current(ctx); ferr == nil && fresh.gen != ks.gen {
			ks = fresh
			tok, err = v.parse(token, ks.set, now)
		}
	}
	if err != nil {
		return nil, time.Time{}, 0, unauthenticated(failureReason(err))
	}
	c, ok := claimsOf(tok)
	if !ok {
		return nil, time.Time{}, 0, unauthenticated("the token's identity claims are malformed")
	}
	if err := c.checkBounds(); err != nil {
		return nil, time.Time{}, 0, unauthenticated(err.Error())
	}
	until := tok.Expiration()
	if !ks.refreshAt.IsZero() && ks.refreshAt.Before(until) {
		until = ks.refreshAt
	}
	return c.principal(), until, ks.gen, nil
}

// checkCompact lets through only what may be a compact JWS: three parts of
// base64url. This shuts out JWS JSON serialization (several signatures) and
// JWE (five parts) before any parsing.
func checkCompact(token string) error {
	if strings.Count(token, ".") != 2 {
		return unauthenticated("the bearer token is not a signed JWT in compact form")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; !(c == '.' || c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return unauthenticated("the bearer token is not a well-formed signed JWT")
		}
	}
	return nil
}

// parse verifies the signature of token with set and validates its claims
// at now, decoding the token once. failureReason words its errors.
func (v *Verifier) parse(token string, set jwk.Set, now time.Time) (jwt.Token, error) {
	kp := &keyProvider{set: set}
	opts := append([]jwt.ParseOption{
		jwt.WithKeyProvider(kp),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAcceptableSkew(v.skew),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithValidator(jwt.ValidatorFunc(v.checkRegistered)),
	}, v.typed...)
	tok, err := jwt.Parse([]byte(token), opts...)
	switch {
	case err == nil, jwt.IsValidationError(err):
		return tok, err
	case kp.offered && !jws.IsVerificationError(err):
		// The signature verified; what it signed is not a JWT's claims.
		return nil, errMalformedRegistered
	case kp.offered:
		return nil, errBadSignature
	}
	return nil, err
}

// Reasons a token fails parse, besides the keyProvider's.
var (
	errBadSignature        = errors.New("the token's signature does not verify")
	errMalformedRegistered = errors.New("the token's registered claims are malformed")
)

// failureReason is the message for an error of parse.
func failureReason(err error) string {
	if jwt.IsValidationError(err) {
		return claimReason(err)
	}
	for _, r := range []error{errAlgNotAllowed, errCritical, errNoKid, errUnknownKid, errKeyNotForSigning, errAlgMismatch, errBadSignature, errMalformedRegistered} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return "the bearer token is not a well-formed signed JWT"
}

// Reasons checkRegistered gives, beyond those of jwx's own validators.
var (
	errNoExpiry     = errors.New("the token has no expiry (exp)")
	errNoSubject    = errors.New("the token has no subject (sub)")
	errLongLifetime = errors.New("the token's lifetime (exp - iat) is longer than this server accepts")
	errExpBeforeIat = errors.New("the token expires before it was issued (exp, iat)")
)

// checkRegistered is the validator of what jwx leaves out: exp and sub are
// required, exp 0 counts (jwx skips a zero exp as if absent: such a token
// would never expire), and the lifetime is bounded.
func (v *Verifier) checkRegistered(ctx context.Context, tok jwt.Token) jwt.ValidationError {
	exp := tok.Expiration()
	if _, ok := tok.Get(jwt.ExpirationKey); !ok {
		return jwt.NewValidationError(errNoExpiry)
	}
	if tok.Subject() == "" {
		return jwt.NewValidationError(errNoSubject)
	}
	now := jwt.ValidationCtxClock(ctx).Now()
	if !now.Before(exp.Add(v.skew)) {
		return jwt.ErrTokenExpired()
	}
	if _, ok := tok.Get(jwt.IssuedAtKey); ok {
		switch iat := tok.IssuedAt(); {
		case exp.Before(iat):
			return jwt.NewValidationError(errExpBeforeIat)
		case exp.Sub(iat) > v.maxLifetime:
			return jwt.NewValidationError(errLongLifetime)
		}
	} else if exp.Sub(now) > v.maxLifetime+v.skew {
		return jwt.NewValidationError(errLongLifetime)
	}
	return nil
}

func claimReason(err error) string {
	for _, r := range []error{errNoExpiry, errNoSubject, errLongLifetime, errExpBeforeIat} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
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
