package auth

import (
	"errors"
	"slices"
	"strings"
	"time"
)

// Reasons DevIssuer.Grant refuses, as RFC 6749 section 5.2 names them.
var (
	// ErrInvalidClient: no client_id, or one that names no persona.
	ErrInvalidClient = errors.New("client_id must name a development persona (GET /dev/personas lists them)")
	// ErrInvalidScope: a scope the persona does not hold.
	ErrInvalidScope = errors.New("scope asks for more than the persona holds (GET /dev/personas lists its scopes)")
)

// DevGrant is a development token and what it grants.
type DevGrant struct {
	Token     string
	ExpiresIn time.Duration
	Scope     string // the granted scopes, space-separated
}

// Grant answers the client_credentials grant of the development token
// endpoint: clientID is a persona's name, scope what the client asks for
// (space-separated; empty: all the persona's scopes). Each scope asked for
// must be one of the persona's, or a resource scope that one of them covers:
// user/Flag.rs or user/Flag.r for a persona holding user/Flag.read. The
// token carries exactly the scopes asked for. Errors are ErrInvalidClient
// and ErrInvalidScope.
func (d *DevIssuer) Grant(clientID, scope string) (DevGrant, error) {
	p, ok := d.persona(clientID)
	if clientID == "" || !ok {
		return DevGrant{}, ErrInvalidClient
	}
	if asked := strings.Fields(scope); len(asked) > 0 {
		var granted []string
		for _, s := range asked {
			if !covered(s, p.Scopes) {
				return DevGrant{}, ErrInvalidScope
			}
			if !slices.Contains(granted, s) {
				granted = append(granted, s)
			}
		}
		p.Scopes = granted
	}
	// A copy of d that knows only the persona as granted mints its token,
	// so that the claims are built exactly as for Token.
	narrowed := *d
	narrowed.personas = []Persona{p}
	tok, ttl, err := narrowed.Token(p.Name)
	if err != nil {
		return DevGrant{}, err
	}
	return DevGrant{Token: tok, ExpiresIn: ttl, Scope: strings.Join(p.Scopes, " ")}, nil
}

// covered reports whether scope s is one of held, or a resource scope that
// one of held allows entirely (same context and resource, no permission
// more).
func covered(s string, held []string) bool {
	if slices.Contains(held, s) {
		return true
	}
	want, ok := parseScope(s)
	if !ok {
		return false
	}
	for _, h := range held {
		if hs, ok := parseScope(h); ok && hs.allows(want.level, want.resource, want.perms) {
			return true
		}
	}
	return false
}
