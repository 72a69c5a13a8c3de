package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// benchAudience is the aud of the benchmark issuer's tokens, and the
// server's CPIS_AUDIENCE when it trusts that issuer.
const benchAudience = "cpis"

// laTokenLifetime is how long an LA token is valid: one is minted for each
// file sent, and the server accepts at most 12 hours.
const laTokenLifetime = time.Hour

// issuer is the benchmark's own OpenID Connect issuer on loopback, as an
// LA's identity provider is in production: it publishes discovery and its
// keys over HTTP, and mints tokens for the case-management system of any
// LA of the data set. The server's dev issuer cannot stand in: it mints
// tokens only for the six LAs of its own directory.
type issuer struct {
	url  string
	key  jwk.Key // private, ES256, with kid
	srv  *http.Server
	done chan struct{}
}

// startIssuer makes a signing key and serves discovery and the JWKS on a
// free loopback port until close.
func startIssuer() (*issuer, error) {
	key, pub, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	iss := &issuer{url: "http://" + ln.Addr().String(), key: key, done: make(chan struct{})}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"issuer": iss.url, "jwks_uri": iss.url + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, set) })
	iss.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(iss.done)
		_ = iss.srv.Serve(ln)
	}()
	return iss, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// newSigningKey makes a P-256 key for ES256 with a kid, and its public half.
func newSigningKey() (private, public jwk.Key, err error) {
	raw, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if private, err = jwk.FromRaw(raw); err != nil {
		return nil, nil, err
	}
	if err := jwk.AssignKeyID(private, jwk.WithThumbprintHash(crypto.SHA256)); err != nil {
		return nil, nil, err
	}
	for k, v := range map[string]any{jwk.AlgorithmKey: jwa.ES256, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := private.Set(k, v); err != nil {
			return nil, nil, err
		}
	}
	public, err = jwk.PublicKeyOf(private)
	return private, public, err
}

// laToken mints a token for la's case-management system, shaped as the
// server reads an LA system's (la_code, la_name, client_id, scope), with
// the scopes an LA's uploads need.
func (iss *issuer) laToken(la cpis.LocalAuthority) (string, error) {
	now := time.Now().Truncate(time.Second)
	client := "la-" + la.Code
	tok, err := jwt.NewBuilder().
		Issuer(iss.url).Audience([]string{benchAudience}).Subject(client).
		IssuedAt(now).NotBefore(now).Expiration(now.Add(laTokenLifetime)).JwtID(uuid.NewString()).
		Claim("la_code", la.Code).Claim("la_name", la.Name).Claim("client_id", client).
		Claim("scope", "system/Flag.write system/Flag.read").
		Build()
	if err != nil {
		return "", err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.ES256, iss.key))
	if err != nil {
		return "", fmt.Errorf("signing a token for %s: %w", la.Code, err)
	}
	return string(signed), nil
}

// close stops serving.
func (iss *issuer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := iss.srv.Shutdown(ctx)
	<-iss.done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
