package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// ClientKind says what a registered client is, and so which grant it uses
// and how its tokens are shaped.
type ClientKind string

// Kinds of registered client.
const (
	// ClientLASystem is a local authority's case-management system (SMART
	// Backend Services); its tokens are shaped as an LA system's.
	ClientLASystem ClientKind = "la-system"
	// ClientHealthSystem is a health organisation's system, such as the
	// Trust's interface engine (SMART Backend Services).
	ClientHealthSystem ClientKind = "health-system"
	// ClientApp is a SMART app, launched by a user (authorization code).
	ClientApp ClientKind = "app"
)

// Client is a client registered with the development authorization server:
// who it is, what it may ask for, and the public keys it signs its client
// assertions with.
type Client struct {
	ID   string     `json:"client_id"`
	Kind ClientKind `json:"kind"`
	// Name is how the audit trail names a system, and how the authorize
	// page names an app; the client id when empty.
	Name string `json:"name,omitempty"`
	// OrgCode and OrgName are the LA (la-system) or the health
	// organisation's ODS code (health-system). Not for apps.
	OrgCode string `json:"org_code,omitempty"`
	OrgName string `json:"org_name,omitempty"`
	// Activities are the NHS activities a health system's owner granted
	// it (B0107, B0170); none for the others.
	Activities []string `json:"activities,omitempty"`
	// Scopes are all the client may be granted, whoever signs in to an
	// app: system/ scopes for a system, user/ and patient/ scopes for an
	// app. A context scope (launch, launch/patient, openid, fhirUser,
	// profile) is granted only to a client that lists it here.
	Scopes []string `json:"scopes"`
	// JWKS holds the client's public keys (RS384 with at least 2048 bits,
	// or ES384 on P-384), each with a kid. Required, except for public apps.
	JWKS jwk.Set `json:"-"`
	// RedirectURIs are an app's redirect URIs, compared exactly.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// LaunchURL is where an EHR launches an app (GET /dev/launch).
	LaunchURL string `json:"launch_url,omitempty"`
	// Public marks an app that cannot keep a secret (runs in a browser or
	// on a device): it authenticates with nothing but PKCE.
	Public bool `json:"public,omitempty"`
}

// clientFile is the registered clients file: {"clients": [...]}.
type clientFile struct {
	Clients []clientEntry `json:"clients"`
}

// clientEntry is a Client as the file writes it, its JWKS still raw.
type clientEntry struct {
	Client
	JWKS json.RawMessage `json:"jwks,omitempty"`
}

// clientIDPattern is what a client id may be: it reaches the audit trail
// and log lines, so it is short and plain.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// Clients is the set of registered clients, by client id. It is safe for
// concurrent use.
type Clients struct {
	mu   sync.RWMutex
	byID map[string]Client
	ids  []string // in registration order
}

// NewClients is an empty set.
func NewClients() *Clients { return &Clients{byID: map[string]Client{}} }

// ReadClients reads a registered clients file: JSON {"clients": [...]},
// each entry with client_id, kind (la-system, health-system or app),
// org_code, org_name, activities, scopes and jwks (a JWK set of public
// keys), and for apps redirect_uris, launch_url and public. Unknown fields,
// private keys, duplicate client ids and anything Add refuses are errors of
// kind Invalid that say which client is at fault.
func ReadClients(r io.Reader) (*Clients, error) {
	const op = "auth.ReadClients"
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var f clientFile
	if err := dec.Decode(&f); err != nil {
		return nil, cpis.E(op, cpis.Invalid, "the clients file is not JSON of the expected shape", err)
	}
	if dec.More() {
		return nil, cpis.E(op, cpis.Invalid, "the clients file holds more than one JSON value")
	}
	cs := NewClients()
	for i, e := range f.Clients {
		c := e.Client
		if len(e.JWKS) > 0 && !bytes.Equal(bytes.TrimSpace(e.JWKS), []byte("null")) {
			set, err := jwk.Parse(e.JWKS)
			if err != nil {
				return nil, cpis.E(op, cpis.Invalid, fmt.Sprintf("client %d (%s): jwks is not a JWK set", i+1, c.ID), err)
			}
			c.JWKS = set
		}
		if err := cs.Add(c); err != nil {
			return nil, cpis.E(op, cpis.Invalid, fmt.Sprintf("client %d", i+1), err)
		}
	}
	return cs, nil
}

// Add registers c after checking it: a plain client id not yet taken; for
// systems an organisation, system scopes and keys; for apps exact redirect
// URIs, user, patient or context scopes, and keys unless public. Every key
// must be public, with a kid, for RS384 (at least 2048 bits) or ES384.
func (cs *Clients) Add(c Client) error {
	if err := c.validate(); err != nil {
		return cpis.E("auth.Clients.Add", cpis.Invalid, err.Error())
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if _, dup := cs.byID[c.ID]; dup {
		return cpis.E("auth.Clients.Add", cpis.Invalid, "client "+c.ID+" is registered twice")
	}
	c.Activities, c.Scopes, c.RedirectURIs = slices.Clone(c.Activities), slices.Clone(c.Scopes), slices.Clone(c.RedirectURIs)
	cs.byID[c.ID] = c
	cs.ids = append(cs.ids, c.ID)
	return nil
}

// Lookup returns the client registered as id.
func (cs *Clients) Lookup(id string) (Client, bool) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	c, ok := cs.byID[id]
	return c, ok
}

// All lists the registered clients in registration order.
func (cs *Clients) All() []Client {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]Client, 0, len(cs.ids))
	for _, id := range cs.ids {
		out = append(out, cs.byID[id])
	}
	return out
}

// appByLaunchURL finds the app an EHR launches at u.
func (cs *Clients) appByLaunchURL(u string) (Client, bool) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	for _, id := range cs.ids {
		if c := cs.byID[id]; c.Kind == ClientApp && c.LaunchURL != "" && c.LaunchURL == u {
			return c, true
		}
	}
	return Client{}, false
}

// validate checks c as Add says.
func (c Client) validate() error {
	if !clientIDPattern.MatchString(c.ID) {
		return fmt.Errorf("client_id %q must be 1 to 64 of A-Z a-z 0-9 . _ : -", c.ID)
	}
	var err error
	switch c.Kind {
	case ClientLASystem, ClientHealthSystem:
		err = c.validateSystem()
	case ClientApp:
		err = c.validateApp()
	default:
		err = errors.New("kind must be la-system, health-system or app")
	}
	if err == nil {
		err = c.validateKeys()
	}
	if err != nil {
		return fmt.Errorf("client %s: %w", c.ID, err)
	}
	return nil
}

func (c Client) validateSystem() error {
	switch {
	case c.OrgCode == "" || c.OrgName == "":
		return errors.New("a system needs org_code and org_name")
	case len(c.RedirectURIs) > 0 || c.LaunchURL != "" || c.Public:
		return errors.New("redirect_uris, launch_url and public are for apps only")
	case c.Kind == ClientLASystem && len(c.Activities) > 0:
		return errors.New("an LA system holds no NHS activities")
	case c.JWKS == nil:
		return errors.New("a system needs jwks: it authenticates with a signed assertion")
	}
	for _, a := range c.Activities {
		if a != cpis.ActivityUnscheduledView && a != cpis.ActivityScheduledView {
			return fmt.Errorf("activity %q is not one of B0107, B0170", a)
		}
	}
	return checkScopes(c.Scopes, func(s smartScope) bool { return s.level == "system" })
}

func (c Client) validateApp() error {
	switch {
	case c.OrgCode != "" || c.OrgName != "" || len(c.Activities) > 0:
		return errors.New("org_code, org_name and activities are for systems: an app acts for its user")
	case len(c.RedirectURIs) == 0:
		return errors.New("an app needs redirect_uris")
	case !c.Public && c.JWKS == nil:
		return errors.New("a confidential app needs jwks (or set public)")
	case c.Public && c.JWKS != nil:
		return errors.New("a public app has no keys")
	}
	for _, u := range append(slices.Clone(c.RedirectURIs), c.LaunchURL) {
		if u != "" && !absoluteURL(u) {
			return fmt.Errorf("%q is not an absolute http(s) URL without fragment", u)
		}
	}
	return checkScopes(c.Scopes, func(s smartScope) bool { return s.level != "system" })
}

// checkScopes requires at least one scope, each a context scope or a
// resource scope that ok accepts.
func checkScopes(scopes []string, ok func(smartScope) bool) error {
	if len(scopes) == 0 {
		return errors.New("scopes must list what the client may be granted")
	}
	for _, s := range scopes {
		if contextScope(s) {
			continue
		}
		if sc, parsed := parseScope(s); !parsed || !ok(sc) {
			return fmt.Errorf("scope %q is not one this kind of client may hold", s)
		}
	}
	return nil
}

// validateKeys requires public keys with a kid each, RSA of at least
// MinRSABits or EC P-384, and an alg, when given, of RS384 or ES384 to
// match.
func (c Client) validateKeys() error {
	if c.JWKS == nil {
		return nil
	}
	if c.JWKS.Len() == 0 {
		return errors.New("jwks holds no key")
	}
	for i := 0; i < c.JWKS.Len(); i++ {
		k, _ := c.JWKS.Key(i)
		if err := checkClientKey(k); err != nil {
			return fmt.Errorf("jwks key %d: %w", i+1, err)
		}
	}
	return nil
}

// MinRSABits is the smallest RSA modulus a client may register: shorter
// keys can be factored by a determined attacker (NIST SP 800-131A
// disallows them for signatures), and a forged assertion would sign in as
// the client.
const MinRSABits = 2048

func checkClientKey(k jwk.Key) error {
	if k.KeyID() == "" {
		return errors.New("every key needs a kid")
	}
	alg := k.Algorithm().String()
	switch key := k.(type) {
	case jwk.RSAPublicKey:
		if bits := new(big.Int).SetBytes(key.N()).BitLen(); bits < MinRSABits {
			return fmt.Errorf("an RSA key needs at least %d bits, not %d", MinRSABits, bits)
		}
		if alg != "" && alg != jwa.RS384.String() {
			return errors.New("an RSA key's alg must be RS384")
		}
	case jwk.ECDSAPublicKey:
		if key.Crv() != jwa.P384 || (alg != "" && alg != jwa.ES384.String()) {
			return errors.New("an EC key must be on P-384, for ES384")
		}
	default:
		return errors.New("keys must be public RSA or EC P-384 keys: never register a private key")
	}
	return nil
}

// absoluteURL reports whether u is an absolute http or https URL without
// fragment or user info, as redirect and launch URLs must be.
func absoluteURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" &&
		p.Fragment == "" && p.User == nil
}

// contextScopes are scopes that ask for launch context or identity, not
// for access to resources: granted when the client registered them
// (grantedScopes), whatever the persona holds.
var contextScopes = []string{"launch", "launch/patient", "openid", "fhirUser", "profile"}

func contextScope(s string) bool { return slices.Contains(contextScopes, s) }
