package auth

// SMARTConfig is the SMART App Launch discovery document served at
// /.well-known/smart-configuration.
type SMARTConfig struct {
	Issuer                            string   `json:"issuer"`
	JWKSURI                           string   `json:"jwks_uri"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Capabilities                      []string `json:"capabilities"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
}

// SMARTConfiguration describes how to get a token this server accepts.
//
// It claims only what is true of this server: it enforces SMART v1 and v2
// scopes at user level (health users) and system level (LA systems
// authenticating with private_key_jwt, the backend services pattern). It
// does not offer an authorization endpoint of its own, so no launch
// capability and no authorization_code grant are advertised; health users
// arrive with a token from CIS2 through their EPR.
func SMARTConfiguration(issuer, tokenEndpoint, jwksURI string) SMARTConfig {
	return SMARTConfig{
		Issuer:                            issuer,
		JWKSURI:                           jwksURI,
		TokenEndpoint:                     tokenEndpoint,
		GrantTypesSupported:               []string{"client_credentials"},
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"},
		ScopesSupported:                   SupportedScopes(),
		Capabilities:                      []string{"client-confidential-asymmetric", "permission-v1", "permission-v2", "permission-user"},
		CodeChallengeMethodsSupported:     []string{"S256"},
	}
}

// SupportedScopes are the scopes this server gives meaning to, v1 form then v2.
func SupportedScopes() []string {
	return []string{
		"openid", "profile",
		"user/Flag.read", "user/Flag.rs",
		"user/AuditEvent.read", "user/AuditEvent.rs",
		"system/Flag.read", "system/Flag.rs",
		"system/Flag.write", "system/Flag.cud",
	}
}
