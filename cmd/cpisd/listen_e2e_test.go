package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, as PEM files,
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cpisd test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		// Valid on any day the test may run: crypto/tls checks the real clock.
		NotBefore:   time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:    time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write := func(path, typ string, b []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(certFile, "CERTIFICATE", der)
	write(keyFile, "EC PRIVATE KEY", kb)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServesTLSWhenGivenACertificate(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	ts := newTestServer(t, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	if !strings.HasPrefix(ts.URL, "https://") {
		t.Fatalf("base URL %s, want https", ts.URL)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := client.Get(ts.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil {
		t.Fatalf("status %d, TLS %v", res.StatusCode, res.TLS != nil)
	}
	// Plain HTTP to the TLS port gets no FHIR answer.
	plain, err := http.Get("http" + strings.TrimPrefix(ts.URL, "https") + "/metadata")
	if err == nil {
		plain.Body.Close()
		if plain.StatusCode == http.StatusOK {
			t.Error("plain HTTP was served on the TLS port")
		}
	}
}

func TestTLSConfigurationNeedsBothFiles(t *testing.T) {
	for _, env := range []map[string]string{{"CPIS_TLS_CERT_FILE": "c.pem"}, {"CPIS_TLS_KEY_FILE": "k.pem"}} {
		if _, err := loadConfig(nil, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: accepted", env)
		}
	}
	certFile, _, _ := selfSigned(t)
	if _, _, err := listen(Config{Addr: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: certFile}); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}

func TestConnectionsAreCapped(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxConnections = 2 })
	addr := strings.TrimPrefix(ts.URL, "http://")
	var held []net.Conn
	for range 2 { // two clients that connect and say nothing hold both slots
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if res, err := client.Get(ts.URL + "/healthz"); err == nil {
		res.Body.Close()
		t.Fatal("a third connection was served while two were held")
	}
	held[0].Close()
	client.Timeout = 5 * time.Second
	res, err := client.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatalf("once a slot was free: %v", err)
	}
	res.Body.Close()
	held[1].Close()
}

func TestConfigDefaultsAndLimits(t *testing.T) {
	cfg, err := loadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnections != defaultMaxConnections || cfg.MaxTokenLifetime != 0 {
		t.Errorf("defaults: %d connections, token lifetime %v", cfg.MaxConnections, cfg.MaxTokenLifetime)
	}
	env := map[string]string{"CPIS_MAX_TOKEN_LIFETIME": "8h", "CPIS_MAX_CONNECTIONS": "64"}
	if cfg, err = loadConfig(nil, func(k string) string { return env[k] }); err != nil || cfg.MaxTokenLifetime != 8*time.Hour || cfg.MaxConnections != 64 {
		t.Errorf("set: %v, %v, %d", err, cfg.MaxTokenLifetime, cfg.MaxConnections)
	}
	for _, bad := range []map[string]string{{"CPIS_MAX_TOKEN_LIFETIME": "forever"}, {"CPIS_MAX_TOKEN_LIFETIME": "-1h"}, {"CPIS_MAX_CONNECTIONS": "-1"}} {
		if _, err := loadConfig(nil, func(k string) string { return bad[k] }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// A configured limit reaches token verification: a token living longer
	// than the limit (dev tokens live an hour) is refused.
	ts := newTestServer(t, func(c *Config) { c.MaxTokenLifetime = 30 * time.Minute })
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag?patient=9000000009", nil), http.StatusUnauthorized)
}
