package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/api"
	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/viewer"
)

// viewerApp builds the clinician's web viewer (deps.App, served at /app),
// a SMART app of this server: in dev mode with a key made now and
// registered with the dev authorization server; otherwise with the
// configured client id and key, at the issuer's endpoints from its
// discovery. Without those the viewer is not served, and the log says why.
func (s *server) viewerApp(deps *api.Deps, now func() time.Time) error {
	dir, err := s.cfg.directory()
	if err != nil {
		return err
	}
	vc := viewer.Config{
		BaseURL: s.URL, FHIRBase: s.URL, Verifier: deps.Verifier, Register: deps.Register, Directory: dir,
		Now: now, NewID: uuid.NewString, Logger: s.log, SecureCookies: secureCookies(s.cfg.DevMode(), s.URL),
	}
	if deps.DevAuth != nil {
		if err := s.registerDevViewer(deps.DevAuth, &vc); err != nil {
			return err
		}
		deps.App = viewer.New(vc)
		return nil
	}
	switch {
	case s.cfg.ViewerClientID == "":
		s.log.Info("the web viewer is not served (/app answers 404): set CPIS_VIEWER_CLIENT_ID and CPIS_VIEWER_KEY_FILE to serve it")
		return nil
	case deps.SMART == nil || deps.SMART.AuthorizationEndpoint == "":
		s.log.Warn("the web viewer is not served (/app answers 404): the issuer's discovery document offers no authorization endpoint")
		return nil
	}
	key, err := readViewerKey(s.cfg.ViewerKeyFile)
	if err != nil {
		return err
	}
	vc.AuthorizeURL, vc.TokenURL = deps.SMART.AuthorizationEndpoint, deps.SMART.TokenEndpoint
	vc.ClientID, vc.Key = s.cfg.ViewerClientID, key
	deps.App = viewer.New(vc)
	s.log.Info("web viewer", slog.String("url", s.URL+"/app/"), slog.String("authorization_endpoint", vc.AuthorizeURL))
	return nil
}

// registerDevViewer gives the viewer a fresh key, held in memory only,
// and registers it with the dev authorization server as a confidential
// app with its redirect and launch URLs.
func (s *server) registerDevViewer(da *auth.DevAuthServer, vc *viewer.Config) error {
	key, err := viewer.NewKey()
	if err != nil {
		return err
	}
	keys, err := viewer.PublicKeys(key)
	if err != nil {
		return err
	}
	err = da.RegisterApp(auth.Client{
		ID: viewer.DefaultClientID, Kind: auth.ClientApp, Name: "CP-IS web viewer", Scopes: viewer.Scopes(), JWKS: keys,
		RedirectURIs: []string{s.URL + "/app/callback"}, LaunchURL: s.URL + "/app/launch",
	})
	if err != nil {
		return fmt.Errorf("registering the web viewer with the dev authorization server: %w", err)
	}
	vc.AuthorizeURL, vc.TokenURL, vc.ClientID, vc.Key = da.AuthorizeURL(), da.TokenURL(), viewer.DefaultClientID, key
	return nil
}

// readViewerKey reads CPIS_VIEWER_KEY_FILE.
func readViewerKey(path string) (jwk.Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CPIS_VIEWER_KEY_FILE: %w", err)
	}
	key, err := viewer.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("CPIS_VIEWER_KEY_FILE %s: %w", path, err)
	}
	return key, nil
}

// secureCookies reports whether the viewer's cookies must be Secure:
// always, but in dev mode on a loopback address over plain HTTP, where a
// browser would not send a Secure cookie back.
func secureCookies(devMode bool, base string) bool {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || !devMode {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback())
}
