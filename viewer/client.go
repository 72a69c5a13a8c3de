package viewer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
)

// DefaultClientID is the viewer's client id at the development
// authorization server, where cpisd registers it at startup.
const DefaultClientID = "cpis-viewer"

// Scopes are all the scopes the viewer asks for, in a standalone or an EHR
// launch: what its registration must allow.
func Scopes() []string {
	out := slices.Clone(standaloneScopes)
	for _, s := range ehrScopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// NewKey makes a fresh ES384 signing key for the viewer's client
// assertions (dev mode: kept in memory only, registered at startup, so
// that no private key of the viewer is ever written down).
func NewKey() (jwk.Key, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("viewer key: %w", err)
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, fmt.Errorf("viewer key: %w", err)
	}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("viewer key: %w", err)
	}
	if err := errors.Join(
		key.Set(jwk.KeyIDKey, fmt.Sprintf("viewer-%x", thumb[:8])),
		key.Set(jwk.AlgorithmKey, jwa.ES384),
		key.Set(jwk.KeyUsageKey, jwk.ForSignature),
	); err != nil {
		return nil, fmt.Errorf("viewer key: %w", err)
	}
	return key, nil
}

// ParseKey reads the viewer's private signing key, a JWK (JSON): EC P-384
// (ES384) or RSA (RS384), with a kid, which its registration's JWKS names.
func ParseKey(b []byte) (jwk.Key, error) {
	key, err := jwk.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("not a JWK: %w", err)
	}
	switch k := key.(type) {
	case jwk.ECDSAPrivateKey:
		if k.Crv() != jwa.P384 {
			return nil, errors.New("an EC key must be on P-384, for ES384")
		}
	case jwk.RSAPrivateKey:
	default:
		return nil, errors.New("the key must be a private EC P-384 or RSA key")
	}
	if key.KeyID() == "" {
		return nil, errors.New("the key needs a kid, as registered with the authorization server")
	}
	return key, nil
}

// PublicKeys is the JWKS to register for key.
func PublicKeys(key jwk.Key) (jwk.Set, error) {
	pub, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("viewer key: %w", err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, fmt.Errorf("viewer key: %w", err)
	}
	return set, nil
}
