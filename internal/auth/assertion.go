package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// ClientAssertionType is the client_assertion_type of a client that
// authenticates with a signed JWT (RFC 7523 section 2.2), as SMART Backend
// Services and SMART confidential asymmetric clients do.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime is the longest a client assertion may be valid for:
// SMART Backend Services says exp is no more than five minutes ahead.
const MaxAssertionLifetime = 5 * time.Minute

// assertionSkew is the clock difference tolerated on a client's exp and
// iat: small, because an assertion lives five minutes at most.
const assertionSkew = 30 * time.Second

// ErrBadAssertion is the reason every refused client assertion wraps; the
// token endpoint answers it with invalid_client (RFC 6749 section 5.2).
var ErrBadAssertion = errors.New("the client assertion is not valid")

// assertionAlgs are the algorithms SMART Backend Services requires servers
// to support, and the only ones accepted: each with the one key type it
// signs with.
var assertionAlgs = map[jwa.SignatureAlgorithm]jwa.KeyType{
	jwa.RS384: jwa.RSA,
	jwa.ES384: jwa.EC,
}

// SignClientAssertion signs the assertion a client sends to tokenURL to
// authenticate (RFC 7523, as SMART Backend Services profiles it): ES384 for
// an EC P-384 private key, RS384 for an RSA one; iss and sub are clientID,
// aud tokenURL, exp five minutes after now, jti a fresh UUID, and the
// header's kid is the key's, which the server looks up in the client's JWKS.
func SignClientAssertion(key jwk.Key, clientID, tokenURL string, now time.Time) (string, error) {
	const op = "auth.SignClientAssertion"
	alg, err := assertionAlg(key)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if clientID == "" || tokenURL == "" {
		return "", fmt.Errorf("%s: a client id and the token endpoint's URL are needed", op)
	}
	now = now.Truncate(time.Second)
	tok, err := jwt.NewBuilder().
		Issuer(clientID).Subject(clientID).Audience([]string{tokenURL}).
		IssuedAt(now).Expiration(now.Add(MaxAssertionLifetime)).JwtID(uuid.NewString()).
		Build()
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	hdr := jws.NewHeaders()
	if err := hdr.Set(jws.KeyIDKey, key.KeyID()); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("%s: signing: %w", op, err)
	}
	return string(signed), nil
}

// assertionAlg is the algorithm SignClientAssertion uses with key, which
// must be private, have a kid, and be EC P-384 or RSA.
func assertionAlg(key jwk.Key) (jwa.SignatureAlgorithm, error) {
	if key == nil || key.KeyID() == "" {
		return "", errors.New("the key needs a kid, which the client's JWKS names")
	}
	switch k := key.(type) {
	case jwk.ECDSAPrivateKey:
		if k.Crv() != jwa.P384 {
			return "", errors.New("an EC key must be on P-384 for ES384")
		}
		return jwa.ES384, nil
	case jwk.RSAPrivateKey:
		return jwa.RS384, nil
	}
	return "", errors.New("the key must be a private EC P-384 or RSA key")
}

// AssertionVerifier checks client assertions sent to one token endpoint and
// remembers the jti of each accepted one until it expires, so that an
// assertion is good once. It is safe for concurrent use. The memory is this
// process's: it serves the development authorization server, which runs in
// one process.
type AssertionVerifier struct {
	tokenURL string
	now      func() time.Time
	mu       sync.Mutex
	seen     map[string]time.Time // client id + " " + jti -> when it may be forgotten
}

// NewAssertionVerifier checks assertions whose aud must be tokenURL, on the
// clock now (time.Now when nil).
func NewAssertionVerifier(tokenURL string, now func() time.Time) *AssertionVerifier {
	if now == nil {
		now = time.Now
	}
	return &AssertionVerifier{tokenURL: tokenURL, now: now, seen: map[string]time.Time{}}
}

// AssertedClient reads, without verifying anything, the client an assertion
// claims to come from (its iss), so that the token endpoint can find the
// keys to verify it with when the request carries no client_id.
func AssertedClient(assertion string) (string, error) {
	if err := compactJWS(assertion); err != nil {
		return "", err
	}
	tok, err := jwt.Parse([]byte(assertion), jwt.WithVerify(false), jwt.WithValidate(false))
	if err != nil || tok.Issuer() == "" {
		return "", fmt.Errorf("%w: it names no client (iss)", ErrBadAssertion)
	}
	return tok.Issuer(), nil
}

// VerifyClientAssertion checks that assertion authenticates clientID, whose
// public keys are keys: a compact JWS signed with RS384 or ES384 by the key
// its kid names (of the type the algorithm needs, and whose own alg, if
// any, is the same); iss and sub clientID; aud this verifier's token URL;
// exp present, not passed and at most MaxAssertionLifetime ahead; a jti not
// seen before. Every refusal wraps ErrBadAssertion, with a reason that
// quotes nothing of the assertion.
func (v *AssertionVerifier) VerifyClientAssertion(assertion, clientID string, keys jwk.Set) error {
	if err := compactJWS(assertion); err != nil {
		return err
	}
	if clientID == "" || keys == nil {
		return fmt.Errorf("%w: the client is not registered", ErrBadAssertion)
	}
	now := v.now()
	kp := &assertionKeys{set: keys}
	tok, err := jwt.Parse([]byte(assertion),
		jwt.WithKeyProvider(kp),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now })),
		jwt.WithAcceptableSkew(assertionSkew),
		jwt.WithIssuer(clientID),
		jwt.WithSubject(clientID),
		jwt.WithAudience(v.tokenURL),
		jwt.WithValidator(jwt.ValidatorFunc(checkAssertionClaims)),
	)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrBadAssertion, assertionReason(err, kp))
	}
	return v.remember(clientID, tok.JwtID(), tok.Expiration(), now)
}

// remember records a jti until its assertion expires, refusing one seen
// before. Expired entries are dropped as new ones come.
func (v *AssertionVerifier) remember(clientID, jti string, exp, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for k, until := range v.seen {
		if now.After(until) {
			delete(v.seen, k)
		}
	}
	key := clientID + " " + jti
	if _, ok := v.seen[key]; ok {
		return fmt.Errorf("%w: its jti was used before (an assertion is good once)", ErrBadAssertion)
	}
	v.seen[key] = exp.Add(assertionSkew)
	return nil
}

// Reasons an assertion's claims are refused, beyond jwx's own.
var (
	errAssertionNoExp   = errors.New("it has no expiry (exp)")
	errAssertionLongExp = errors.New("its expiry (exp) is more than five minutes ahead")
	errAssertionNoJTI   = errors.New("it has no jti")
)

// checkAssertionClaims is the validator of what jwx leaves out: exp and jti
// are required and exp is at most MaxAssertionLifetime ahead.
func checkAssertionClaims(ctx context.Context, tok jwt.Token) jwt.ValidationError {
	if _, ok := tok.Get(jwt.ExpirationKey); !ok {
		return jwt.NewValidationError(errAssertionNoExp)
	}
	now := jwt.ValidationCtxClock(ctx).Now()
	if !now.Before(tok.Expiration().Add(assertionSkew)) {
		return jwt.ErrTokenExpired()
	}
	if tok.Expiration().Sub(now) > MaxAssertionLifetime+assertionSkew {
		return jwt.NewValidationError(errAssertionLongExp)
	}
	if tok.JwtID() == "" {
		return jwt.NewValidationError(errAssertionNoJTI)
	}
	return nil
}

// assertionReason words a failure of VerifyClientAssertion's parse.
func assertionReason(err error, kp *assertionKeys) string {
	for _, r := range []error{errAssertionNoExp, errAssertionLongExp, errAssertionNoJTI,
		errAssertionAlg, errNoKid, errAssertionUnknownKid, errAlgMismatch, errCritical, errKeyNotForSigning} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	switch {
	case errors.Is(err, jwt.ErrTokenExpired()):
		return "it has expired (exp)"
	case errors.Is(err, jwt.ErrTokenNotYetValid()):
		return "it is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrInvalidIssuedAt()):
		return "it was issued in the future (iat)"
	case errors.Is(err, jwt.ErrInvalidIssuer()):
		return "its iss is not the client id"
	case errors.Is(err, jwt.ErrInvalidAudience()):
		return "its aud is not this token endpoint's URL"
	case jwt.IsValidationError(err) && strings.Contains(err.Error(), `"sub"`):
		return "its sub is not the client id"
	case kp.offered && jws.IsVerificationError(err):
		return "its signature does not verify with the client's key"
	}
	return "it is not a well-formed signed JWT"
}

// Reasons an assertion's key cannot be used.
var (
	errAssertionAlg        = errors.New("it is not signed with RS384 or ES384")
	errAssertionUnknownKid = errors.New("its kid names none of the client's registered keys")
)

// assertionKeys offers jws the one key of the client's set that the kid
// names, for RS384 or ES384 only and of the type the algorithm needs.
type assertionKeys struct {
	set     jwk.Set
	offered bool
}

// FetchKeys implements jws.KeyProvider.
func (kp *assertionKeys) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	h := sig.ProtectedHeaders()
	alg := h.Algorithm()
	kty, ok := assertionAlgs[alg]
	switch {
	case !ok:
		return errAssertionAlg
	case len(h.Critical()) > 0:
		return errCritical
	case h.KeyID() == "":
		return errNoKid
	}
	key, found := kp.set.LookupKeyID(h.KeyID())
	if !found {
		return errAssertionUnknownKid
	}
	if u := key.KeyUsage(); u != "" && u != string(jwk.ForSignature) {
		return errKeyNotForSigning
	}
	if ka := key.Algorithm().String(); key.KeyType() != kty || (ka != "" && ka != alg.String()) {
		return errAlgMismatch
	}
	if ec, isEC := key.(jwk.ECDSAPublicKey); isEC && ec.Crv() != jwa.P384 {
		return errAlgMismatch
	}
	kp.offered = true
	sink.Key(alg, key)
	return nil
}

// compactJWS lets through only what may be a compact JWS of bounded size.
func compactJWS(s string) error {
	if len(s) > maxTokenBytes {
		return fmt.Errorf("%w: it is too long", ErrBadAssertion)
	}
	if checkCompact(s) != nil {
		return fmt.Errorf("%w: it is not a signed JWT in compact form", ErrBadAssertion)
	}
	return nil
}
