package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// benchAudience is the aud of the benchmark issuer's tokens, and the
// server's CPIS_AUDIENCE when it trusts that issuer.
const benchAudience = "cpis"

// issuer is the benchmark's own OpenID Connect issuer on loopback, as an
// LA's identity provider is in production: it publishes discovery and its
// keys over HTTP, and mints tokens for the case-management system of any
// LA of the data set. The server's own dev issuer cannot stand in: it hands
// out tokens only for the six LAs of its directory. The signing is the dev
// issuer's (auth.DevIssuer), with a key of its own in a temporary directory.
type issuer struct {
	url  string
	dev  *auth.DevIssuer
	dir  string
	srv  *http.Server
	done chan struct{}
}

// startIssuer makes a signing key and serves discovery and the JWKS on a
// free loopback port until close.
func startIssuer() (_ *issuer, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cpisbench-issuer-")
	if err != nil {
		ln.Close()
		return nil, err
	}
	iss := &issuer{url: "http://" + ln.Addr().String(), dir: dir, done: make(chan struct{})}
	if iss.dev, err = auth.LoadOrCreateDevIssuer(dir, iss.url, benchAudience, time.Now); err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]string{"issuer": iss.url, "jwks_uri": iss.url + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, iss.dev.PublicKeys()) })
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

// laToken mints a token for la's case-management system, with the scopes
// an LA's uploads need (auth.DevIssuer.LASystemToken): one is minted for
// each file sent.
func (iss *issuer) laToken(la cpis.LocalAuthority) (string, error) {
	tok, _, err := iss.dev.LASystemToken(la)
	return tok, err
}

// close stops serving and removes the key.
func (iss *issuer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := iss.srv.Shutdown(ctx)
	<-iss.done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, os.RemoveAll(iss.dir))
}
