package auth

import (
	"slices"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// SMARTConfig is the SMART App Launch discovery document served at
// /.well-known/smart-configuration (SMART App Launch 2, Conformance). Every
// field holds only what a client can rely on: the fields the specification
// requires (token_endpoint, grant_types_supported, capabilities,
// code_challenge_methods_supported) are always written, the others only
// when they are true. issuer is left out on purpose: the specification
// wants it only with the sso-openid-connect capability, which needs a
// fhirUser claim that neither CIS2 nor the development issuer provide.
type SMARTConfig struct {
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Capabilities                      []string `json:"capabilities"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	// Description is not a SMART field: it tells people reading the
	// development server's document what its token endpoint is.
	Description string `json:"description,omitempty"`
}

// resourceServerCapabilities are true of this server whatever the issuer:
// it enforces SMART v1 (user/Flag.read) and v2 (user/Flag.rs) scopes, at
// user level (health users) and system level (LA systems; SMART defines no
// capability for that: backend services are told by client_credentials in
// grant_types_supported).
var resourceServerCapabilities = []string{"permission-v1", "permission-v2", "permission-user"}

// SMARTFromDiscovery is the SMART configuration of this server when it
// trusts the issuer described by d, whose keys are at jwksURI. It passes on
// the issuer's endpoints and claims a capability only when the issuer
// offers what it needs:
//
//   - client_credentials when the issuer offers that grant (SMART Backend
//     Services), and client-confidential-asymmetric when it takes
//     private_key_jwt;
//   - a launch (authorization_endpoint, the authorization_code grant,
//     launch-standalone) only when the issuer has an authorization endpoint,
//     the authorization_code grant and S256 PKCE, as SMART 2 requires; then
//     client-public if it takes public clients (auth method "none") and
//     client-confidential-symmetric if it takes client_secret_basic.
//
// launch-ehr is never claimed: it needs the issuer to resolve SMART launch
// contexts, which an OpenID Connect discovery document cannot tell.
// The error (kind Invalid) says why no truthful document can be made: the
// issuer publishes no usable token endpoint, or offers neither grant.
func SMARTFromDiscovery(d Discovery, jwksURI string) (SMARTConfig, error) {
	const op = "auth.SMARTFromDiscovery"
	if d.TokenEndpoint == "" {
		return SMARTConfig{}, cpis.E(op, cpis.Invalid, "the issuer's discovery document has no token_endpoint")
	}
	if err := checkFetchURL(d.TokenEndpoint); err != nil {
		return SMARTConfig{}, cpis.E(op, cpis.Invalid, "the issuer's token_endpoint is not usable", err)
	}
	grants := orDefault(d.GrantTypesSupported, "authorization_code", "implicit") // OIDC Discovery 1.0, section 3
	methods := orDefault(d.TokenEndpointAuthMethodsSupported, "client_secret_basic")
	pkce := slices.DeleteFunc(slices.Clone(d.CodeChallengeMethodsSupported), func(m string) bool { return m == "plain" })
	c := SMARTConfig{
		JWKSURI:                           jwksURI,
		TokenEndpoint:                     d.TokenEndpoint,
		GrantTypesSupported:               []string{},
		TokenEndpointAuthMethodsSupported: filter(methods, "none", "client_secret_basic", "client_secret_post", "private_key_jwt"),
		ScopesSupported:                   SupportedScopes(),
		Capabilities:                      slices.Clone(resourceServerCapabilities),
		CodeChallengeMethodsSupported:     filter(pkce, "S256"),
	}
	if canLaunch(d, grants, pkce) {
		c.AuthorizationEndpoint = d.AuthorizationEndpoint
		c.GrantTypesSupported = append(c.GrantTypesSupported, "authorization_code")
		c.Capabilities = append(c.Capabilities, "launch-standalone")
		if slices.Contains(methods, "none") {
			c.Capabilities = append(c.Capabilities, "client-public")
		}
		if slices.Contains(methods, "client_secret_basic") {
			c.Capabilities = append(c.Capabilities, "client-confidential-symmetric")
		}
	}
	if slices.Contains(grants, "client_credentials") {
		c.GrantTypesSupported = append(c.GrantTypesSupported, "client_credentials")
	}
	if len(c.GrantTypesSupported) == 0 {
		return SMARTConfig{}, cpis.E(op, cpis.Invalid, "the issuer offers neither client_credentials nor a SMART launch (an authorization endpoint with authorization_code and S256 PKCE)")
	}
	if slices.Contains(methods, "private_key_jwt") {
		c.Capabilities = append(c.Capabilities, "client-confidential-asymmetric")
	}
	return c, nil
}

// canLaunch reports whether the issuer offers what a SMART 2 launch needs.
func canLaunch(d Discovery, grants, pkce []string) bool {
	return d.AuthorizationEndpoint != "" && checkFetchURL(d.AuthorizationEndpoint) == nil &&
		slices.Contains(grants, "authorization_code") && slices.Contains(pkce, "S256")
}

// DevSMARTConfiguration is the SMART configuration of dev mode, whose
// server at baseURL is its own authorization server (DevAuthServer): the
// authorization code grant with S256 PKCE for apps, public or confidential
// with a client assertion, launched by the EHR (GET /dev/launch) or
// standalone, with a patient in context either way; and client_credentials,
// for registered systems with a client assertion (SMART Backend Services)
// and for personas with no client authentication (the quick start).
// permission-patient is not claimed: patient/ scopes are not enforced.
func DevSMARTConfiguration(baseURL string) SMARTConfig {
	return SMARTConfig{
		JWKSURI:                           baseURL + DevJWKSPath,
		AuthorizationEndpoint:             baseURL + DevAuthorizePath,
		TokenEndpoint:                     baseURL + DevTokenPath,
		GrantTypesSupported:               []string{"authorization_code", "client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"none", "private_key_jwt"},
		ScopesSupported:                   append([]string{"launch", "launch/patient"}, SupportedScopes()...),
		Capabilities: append(slices.Clone(resourceServerCapabilities),
			"launch-ehr", "launch-standalone", "client-public", "client-confidential-asymmetric",
			"context-ehr-patient", "context-standalone-patient"),
		CodeChallengeMethodsSupported: []string{"S256"},
		Description: "Development mode only: every endpoint answers callers on this machine only. " +
			"The authorization endpoint lets you sign in as a persona (GET /dev/personas lists them); " +
			"the token endpoint also takes grant_type=client_credentials with client_id set to a persona's name " +
			"and no client authentication, for quick starts.",
	}
}

// SupportedScopes are the scopes this server gives meaning to, v1 form then
// v2. openid and profile are the issuer's business, not this server's.
func SupportedScopes() []string {
	return []string{
		"user/Flag.read", "user/Flag.rs",
		"user/AuditEvent.read", "user/AuditEvent.rs", "user/Communication.read", "user/Communication.rs",
		"system/Flag.read", "system/Flag.rs",
		"system/Flag.write", "system/Flag.cud",
		"system/Communication.read", "system/Communication.rs",
		"system/Subscription.read", "system/Subscription.write", "system/Subscription.cruds",
	}
}

// orDefault is list, or def when list is absent.
func orDefault(list []string, def ...string) []string {
	if list == nil {
		return def
	}
	return list
}

// filter keeps the items of list that are among known, in list's order,
// once each; never nil.
func filter(list []string, known ...string) []string {
	out := []string{}
	for _, s := range list {
		if slices.Contains(known, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
