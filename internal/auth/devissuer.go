package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// DevKeyFile is the name, inside the data directory, of the development
// issuer's private signing key (a JWK, file mode 0600).
const DevKeyFile = "dev-signing-key.jwk.json"

// DevTokenLifetime is how long a development token is valid.
const DevTokenLifetime = time.Hour

// DevIssuer mints tokens for fictional personas when no real issuer is
// configured, so the server can be tried end to end on one machine. Its key
// is kept in the data directory so that tokens survive a restart.
type DevIssuer struct {
	key      jwk.Key // private, ES256, with kid
	public   jwk.Set
	issuer   string
	audience string
	now      func() time.Time
	personas []Persona
}

// LoadOrCreateDevIssuer loads the signing key from dataDir, creating it (and
// dataDir) on first use. issuerURL and audience go into every token's iss
// and aud; now is the clock, time.Now when nil.
func LoadOrCreateDevIssuer(dataDir string, issuerURL, audience string, now func() time.Time) (*DevIssuer, error) {
	const op = "auth.LoadOrCreateDevIssuer"
	if issuerURL == "" || audience == "" {
		return nil, cpis.E(op, cpis.MissingValue, "the development issuer needs an issuer URL and an audience")
	}
	if now == nil {
		now = time.Now
	}
	key, err := loadOrCreateKey(filepath.Join(dataDir, DevKeyFile))
	if err != nil {
		return nil, cpis.E(op, err)
	}
	pub, err := jwk.PublicKeyOf(key)
	if err != nil {
		return nil, cpis.E(op, "cannot derive the public key", err)
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, cpis.E(op, err)
	}
	return &DevIssuer{key: key, public: set, issuer: issuerURL, audience: audience, now: now, personas: devPersonas()}, nil
}

// loadOrCreateKey reads the key at path, or makes one if there is none. A
// new key is written to a temporary file and linked into place, so that two
// servers starting together on one data directory agree on one key and never
// read a half-written file.
func loadOrCreateKey(path string) (jwk.Key, error) {
	const op = "auth.loadOrCreateKey"
	if b, err := os.ReadFile(path); err == nil {
		return parseDevKey(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, cpis.E(op, "cannot read the development signing key", err)
	}
	key, err := newDevKey()
	if err != nil {
		return nil, cpis.E(op, err)
	}
	b, err := json.Marshal(key)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	if err := writeNew(path, b); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadOrCreateKey(path) // another process won the race; use its key
		}
		return nil, cpis.E(op, "cannot store the development signing key", err)
	}
	return key, nil
}

// writeNew creates path with content b and mode 0600, failing with
// fs.ErrExist if path already exists.
func writeNew(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".dev-signing-key-*") // CreateTemp uses mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}

func newDevKey() (jwk.Key, error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, err
	}
	if err := jwk.AssignKeyID(key, jwk.WithThumbprintHash(crypto.SHA256)); err != nil {
		return nil, err
	}
	for k, v := range map[string]any{jwk.AlgorithmKey: jwa.ES256, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := key.Set(k, v); err != nil {
			return nil, err
		}
	}
	return key, nil
}

// parseDevKey accepts only what newDevKey makes: a private P-256 key for
// ES256 with a kid. Anything else is refused rather than silently replaced,
// since replacing it would invalidate every token handed out.
func parseDevKey(b []byte) (jwk.Key, error) {
	const op = "auth.parseDevKey"
	key, err := jwk.ParseKey(b)
	if err != nil {
		return nil, cpis.E(op, cpis.Invalid, "the development signing key file is not a JWK; remove it to make a new key", err)
	}
	ec, ok := key.(jwk.ECDSAPrivateKey)
	if !ok || ec.Crv() != jwa.P256 || key.KeyID() == "" || key.Algorithm().String() != jwa.ES256.String() {
		return nil, cpis.E(op, cpis.Invalid, "the development signing key file is not a private ES256 key with a kid; remove it to make a new key")
	}
	return key, nil
}

// PublicKeys is the issuer's public key set: what /dev/jwks serves and what
// the development Verifier trusts.
func (d *DevIssuer) PublicKeys() jwk.Set { return d.public }

// Issuer is the iss of the tokens this issuer mints.
func (d *DevIssuer) Issuer() string { return d.issuer }

// Audience is the aud of the tokens this issuer mints.
func (d *DevIssuer) Audience() string { return d.audience }

// Personas lists the identities Token can mint, in a stable order.
func (d *DevIssuer) Personas() []Persona {
	out := make([]Persona, len(d.personas))
	for i, p := range d.personas {
		out[i] = p.clone()
	}
	return out
}

// Token mints a signed access token for the named persona, valid for
// DevTokenLifetime from now. An unknown persona is an InvalidValue error.
func (d *DevIssuer) Token(persona string) (token string, expiresIn time.Duration, err error) {
	p, ok := d.persona(persona)
	if !ok {
		return "", 0, cpis.E("auth.DevIssuer.Token", cpis.InvalidValue, "no such development persona; GET /dev/personas lists them")
	}
	return d.mint(p)
}

// LASystemToken mints a token for the case-management system of any LA,
// shaped as the la:<code> personas' are: for a tool that acts for LAs
// outside the dev directory, as the benchmark does for the 153 of its data
// set. It is not served over HTTP.
func (d *DevIssuer) LASystemToken(la cpis.LocalAuthority) (token string, expiresIn time.Duration, err error) {
	return d.mint(laPersona(la))
}

// mint signs a token for p, valid for DevTokenLifetime from now.
func (d *DevIssuer) mint(p Persona) (string, time.Duration, error) {
	return d.mintClaims(p.UserID, p.claims())
}

// mintClaims signs a token for subject with the given private claims,
// valid for DevTokenLifetime from now.
func (d *DevIssuer) mintClaims(subject string, claims map[string]any) (string, time.Duration, error) {
	const op = "auth.DevIssuer.Token"
	now := d.now().Truncate(time.Second)
	b := jwt.NewBuilder().
		Issuer(d.issuer).
		Audience([]string{d.audience}).
		Subject(subject).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(DevTokenLifetime)).
		JwtID(uuid.NewString())
	for k, v := range claims {
		b = b.Claim(k, v)
	}
	tok, err := b.Build()
	if err != nil {
		return "", 0, cpis.E(op, err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, d.key))
	if err != nil {
		return "", 0, cpis.E(op, fmt.Errorf("signing: %w", err))
	}
	return string(signed), DevTokenLifetime, nil
}

func (d *DevIssuer) persona(name string) (Persona, bool) {
	for _, p := range d.personas {
		if p.Name == name {
			return p, true
		}
	}
	return Persona{}, false
}
