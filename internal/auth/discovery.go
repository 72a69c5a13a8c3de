package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// maxDiscoveryBytes bounds the discovery document read; real ones are a few KB.
const maxDiscoveryBytes = 1 << 20

// newRemoteKeys finds the issuer's JWKS and fetches it once now. Later
// fetches happen on use (see remoteKeys).
func newRemoteKeys(ctx context.Context, cfg Config, now func() time.Time) (*remoteKeys, error) {
	const op = "auth.newRemoteKeys"
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	jwksURL := cfg.JWKSURL
	if jwksURL == "" {
		u, err := discoverJWKS(ctx, client, cfg.Issuer)
		if err != nil {
			return nil, err
		}
		jwksURL = u
	}
	if err := checkFetchURL(jwksURL); err != nil {
		return nil, cpis.E(op, err)
	}
	set, err := fetchJWKS(ctx, client, jwksURL)
	if err != nil {
		return nil, cpis.E(op, cpis.Unavailable, fmt.Sprintf("cannot fetch the token issuer's keys from %s", jwksURL), err)
	}
	t := now()
	return &remoteKeys{
		url: jwksURL, client: client, now: now,
		keys:      keySet{set: set, refreshAt: t.Add(keyRefreshInterval)},
		fetchedAt: t, lastAttempt: t,
	}, nil
}

// maxJWKSBytes bounds the key set read; real ones hold a handful of keys.
const maxJWKSBytes = 1 << 20

// fetchJWKS gets and parses the key set at jwksURL.
func fetchJWKS(ctx context.Context, client *http.Client, jwksURL string) (jwk.Set, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", jwksURL, res.Status)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("the key set at %s is larger than %d bytes", jwksURL, maxJWKSBytes)
	}
	return jwk.Parse(b)
}

// Discovery is what this server uses of its token issuer's OpenID Connect
// discovery document (OpenID Connect Discovery 1.0, section 3): where its
// keys are, and the endpoints and methods it offers clients, which the SMART
// configuration passes on.
type Discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	// GrantTypesSupported and TokenEndpointAuthMethodsSupported are as
	// published: absent (nil) means the defaults of section 3, which
	// SMARTFromDiscovery applies.
	GrantTypesSupported               []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	// CodeChallengeMethodsSupported is from RFC 8414, section 2: the PKCE
	// methods the authorization endpoint accepts. Absent means none is known.
	CodeChallengeMethodsSupported []string `json:"code_challenge_methods_supported"`
}

// Discover reads the discovery document of issuer, at issuer +
// "/.well-known/openid-configuration". The document must name the same
// issuer (section 4.3), so that a misconfigured URL cannot lend us another
// issuer's keys or endpoints. client nil means a client with a 10 s timeout.
// Errors are Unavailable when the document cannot be had, Invalid when it is
// not one.
func Discover(ctx context.Context, client *http.Client, issuer string) (Discovery, error) {
	const op = "auth.Discover"
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	docURL := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	if err := checkFetchURL(docURL); err != nil {
		return Discovery{}, cpis.E(op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return Discovery{}, cpis.E(op, cpis.InvalidValue, "the issuer is not a usable URL", err)
	}
	req.Header.Set("Accept", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return Discovery{}, cpis.E(op, cpis.Unavailable, "cannot fetch "+docURL, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return Discovery{}, cpis.E(op, cpis.Unavailable, fmt.Sprintf("%s answered %s", docURL, res.Status))
	}
	var doc Discovery
	if err := json.NewDecoder(io.LimitReader(res.Body, maxDiscoveryBytes)).Decode(&doc); err != nil {
		return Discovery{}, cpis.E(op, cpis.Invalid, docURL+" is not a discovery document", err)
	}
	if doc.Issuer != issuer {
		return Discovery{}, cpis.E(op, cpis.Invalid, fmt.Sprintf("the discovery document names issuer %q, not the configured %q", doc.Issuer, issuer))
	}
	return doc, nil
}

// discoverJWKS reads jwks_uri from the issuer's discovery document.
func discoverJWKS(ctx context.Context, client *http.Client, issuer string) (string, error) {
	doc, err := Discover(ctx, client, issuer)
	if err != nil {
		return "", cpis.E("auth.discoverJWKS", err)
	}
	if doc.JWKSURI == "" {
		return "", cpis.E("auth.discoverJWKS", cpis.Invalid, "the issuer's discovery document has no jwks_uri")
	}
	return doc.JWKSURI, nil
}

// checkFetchURL insists on https for keys fetched over the network: a key
// set read in clear text could be replaced in transit. Loopback addresses
// are exempt, for local issuers and tests.
func checkFetchURL(raw string) error {
	const op = "auth.checkFetchURL"
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return cpis.E(op, cpis.InvalidValue, fmt.Sprintf("%q is not an absolute URL", raw))
	}
	if u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil
	}
	return cpis.E(op, cpis.InvalidValue, fmt.Sprintf("%s must use https (http is allowed only for localhost)", raw))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
