package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"regexp"
	"slices"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TokenRequest is a request to the development token endpoint for the
// authorization_code grant (an app, RFC 6749 section 4.1.3 with PKCE) or
// for SMART Backend Services' client_credentials grant (a registered
// system authenticating with a client assertion). The quick-start
// client_credentials grant for personas is DevIssuer.Grant's.
type TokenRequest struct {
	GrantType           string
	Code                string
	RedirectURI         string
	CodeVerifier        string
	ClientID            string
	ClientAssertionType string
	ClientAssertion     string
	Scope               string
}

// TokenGrant is a token the development authorization server issued.
type TokenGrant struct {
	DevGrant
	// Patient is the launch context's patient, from an EHR launch or the
	// authorize page's launch/patient; empty when there is none.
	Patient cpis.NHSNumber
}

// codeVerifierPattern is a PKCE code_verifier (RFC 7636 section 4.1).
var codeVerifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// Token answers a token request. Every refusal is an *OAuthError:
// invalid_client (answered 401) when the client is unknown or fails to
// authenticate (a confidential client must send a client assertion, a
// public one only its client_id); invalid_grant when the code is unknown,
// used, expired, another client's, or its redirect_uri or PKCE verifier do
// not match; unauthorized_client when an app asks for client_credentials
// or a system for a code; invalid_scope when a system asks for no resource
// scope it was registered for; unsupported_grant_type for any other grant.
func (a *DevAuthServer) Token(req TokenRequest) (TokenGrant, error) {
	switch req.GrantType {
	case "authorization_code":
		return a.exchangeCode(req)
	case "client_credentials":
		return a.backendGrant(req)
	case "":
		return TokenGrant{}, oauthErr("invalid_request", "grant_type is required")
	}
	return TokenGrant{}, oauthErr("unsupported_grant_type", "grant_type must be authorization_code or client_credentials")
}

// exchangeCode is the authorization_code grant. The code is used up by the
// first attempt, whether it succeeds or not.
func (a *DevAuthServer) exchangeCode(req TokenRequest) (TokenGrant, error) {
	c, err := a.authenticateClient(req)
	if err != nil {
		return TokenGrant{}, err
	}
	if c.Kind != ClientApp {
		return TokenGrant{}, oauthErr("unauthorized_client", "a system uses client_credentials, not a code")
	}
	code, ok := a.takeCode(req.Code)
	switch {
	case !ok:
		return TokenGrant{}, oauthErr("invalid_grant", "the code is unknown, used or expired")
	case code.clientID != c.ID:
		return TokenGrant{}, oauthErr("invalid_grant", "the code was issued to another client")
	case req.RedirectURI != code.redirectURI:
		return TokenGrant{}, oauthErr("invalid_grant", "redirect_uri is not the one of the authorization request")
	case !pkceMatches(req.CodeVerifier, code.challenge):
		return TokenGrant{}, oauthErr("invalid_grant", "code_verifier does not match the code_challenge (S256)")
	}
	p := code.persona
	p.Scopes = code.scopes
	claims := p.claims()
	claims["client_id"] = c.ID // the app the user signed in to, not the persona's usual EHR
	tok, ttl, err := a.issuer.mintClaims(p.UserID, claims)
	if err != nil {
		return TokenGrant{}, err
	}
	return TokenGrant{DevGrant: DevGrant{Token: tok, ExpiresIn: ttl, Scope: strings.Join(p.Scopes, " ")}, Patient: code.patient}, nil
}

// takeCode removes and returns an unexpired code: one use.
func (a *DevAuthServer) takeCode(code string) (authCode, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.codes[code]
	delete(a.codes, code)
	return c, ok && code != "" && a.now().Before(c.expires)
}

// pkceMatches reports whether BASE64URL(SHA-256(verifier)) is challenge
// (RFC 7636 section 4.6), comparing in constant time.
func pkceMatches(verifier, challenge string) bool {
	if !codeVerifierPattern.MatchString(verifier) {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}

// backendGrant is SMART Backend Services: a registered system proves who
// it is with a client assertion and gets the scopes it asked for that it
// was registered for (all of them when it asks for none); invalid_scope
// when that leaves it no resource scope.
func (a *DevAuthServer) backendGrant(req TokenRequest) (TokenGrant, error) {
	if req.ClientAssertion == "" {
		return TokenGrant{}, oauthErr("invalid_client", "a system authenticates with client_assertion_type "+ClientAssertionType+" and a client_assertion")
	}
	c, err := a.authenticateClient(req)
	if err != nil {
		return TokenGrant{}, err
	}
	if c.Kind == ClientApp {
		return TokenGrant{}, oauthErr("unauthorized_client", "an app is launched (authorization_code); client_credentials is for registered systems")
	}
	scopes := slices.Clone(c.Scopes)
	if asked := strings.Fields(req.Scope); len(asked) > 0 {
		scopes = grantedScopes(asked, c.Scopes, c.Scopes)
		if !hasResourceScope(scopes) {
			return TokenGrant{}, oauthErr("invalid_scope", "none of the scopes asked for is registered for this client")
		}
	}
	tok, ttl, err := a.issuer.mint(c.systemPersona(scopes))
	if err != nil {
		return TokenGrant{}, err
	}
	return TokenGrant{DevGrant: DevGrant{Token: tok, ExpiresIn: ttl, Scope: strings.Join(scopes, " ")}}, nil
}

// authenticateClient finds the client and checks it is who it says: a
// public app by its client_id alone, any other client by a client
// assertion, whose iss names it when the request has no client_id.
func (a *DevAuthServer) authenticateClient(req TokenRequest) (Client, error) {
	id := req.ClientID
	hasAssertion := req.ClientAssertion != "" || req.ClientAssertionType != ""
	if id == "" && hasAssertion {
		id, _ = AssertedClient(req.ClientAssertion)
	}
	c, ok := a.clients.Lookup(id)
	switch {
	case id == "" || !ok:
		return Client{}, oauthErr("invalid_client", "the client is not registered")
	case c.Public && hasAssertion:
		return Client{}, oauthErr("invalid_client", "a public client sends no client assertion")
	case c.Public:
		return c, nil
	case !hasAssertion:
		return Client{}, oauthErr("invalid_client", "a confidential client authenticates with a client assertion (private_key_jwt)")
	case req.ClientAssertionType != ClientAssertionType:
		return Client{}, oauthErr("invalid_client", "client_assertion_type must be "+ClientAssertionType)
	}
	if err := a.assertions.VerifyClientAssertion(req.ClientAssertion, c.ID, c.JWKS); err != nil {
		return Client{}, oauthErr("invalid_client", assertionMessage(err))
	}
	return c, nil
}

// assertionMessage is the reason an assertion was refused, for the client.
func assertionMessage(err error) string {
	if errors.Is(err, ErrBadAssertion) {
		return err.Error()
	}
	return ErrBadAssertion.Error()
}

// systemPersona is the persona a registered system's tokens are minted
// for: shaped as the la:<code> and trust-system personas' tokens, so that
// the Verifier maps them alike, with the client's own id and the scopes
// granted.
func (c Client) systemPersona(scopes []string) Persona {
	p := Persona{
		Name: c.ID, Kind: cpis.LASystem, UserID: c.ID, DisplayName: c.OrgName,
		OrgCode: c.OrgCode, OrgName: c.OrgName, Activities: []string{}, Scopes: slices.Clone(scopes),
	}
	if c.Kind == ClientHealthSystem {
		p.Kind = cpis.HealthSystem
		p.DisplayName = firstNonEmpty(c.Name, c.ID)
		p.Activities = slices.Clone(c.Activities)
	}
	return p
}
