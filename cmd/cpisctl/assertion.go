package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/cpis-fhir/cpis/internal/auth"
)

const assertionHelp = `client-assertion signs the JWT a registered system sends to a SMART token
endpoint (SMART Backend Services): iss and sub the client id, aud the token
endpoint, valid for five minutes, a fresh jti. It prints the assertion and
nothing else, for a shell to pass on:

  A=$(cpisctl client-assertion --key examples/clients/la-ZLA01.private.jwk.json \
        --client-id la-ZLA01 --token-url http://127.0.0.1:8080/dev/token)
  curl -s http://127.0.0.1:8080/dev/token -d grant_type=client_credentials \
    -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    -d client_assertion="$A"

The key is a private JWK: EC P-384 (signs ES384) or RSA (signs RS384).`

// maxKeyFile bounds what is read of --key: a private JWK is a few KiB.
const maxKeyFile = 64 << 10

// clientAssertion prints a signed client assertion.
func clientAssertion(_ context.Context, e *env, args []string) error {
	var keyFile, clientID, tokenURL string
	err := flags(e, "client-assertion", args, func(fs *flag.FlagSet) {
		fs.StringVar(&keyFile, "key", "", "the `PATH` of the client's private key (a JWK)")
		fs.StringVar(&clientID, "client-id", "", "the client's `ID` as registered")
		fs.StringVar(&tokenURL, "token-url", "", "the token endpoint's `URL` (the assertion's aud)")
	})
	if err != nil {
		return err
	}
	switch {
	case keyFile == "" || clientID == "" || tokenURL == "":
		return &usageError{"client-assertion: --key, --client-id and --token-url are required"}
	case !absoluteURL(tokenURL):
		return &usageError{"client-assertion: --token-url must be an absolute http(s) URL"}
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return err
	}
	a, err := auth.SignClientAssertion(key, clientID, tokenURL, e.now())
	if err != nil {
		return fmt.Errorf("client-assertion: %w", err)
	}
	_, err = fmt.Fprintln(e.stdout, a)
	return err
}

// absoluteURL reports whether s is an absolute http or https URL.
func absoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// readPrivateKey reads a private JWK from path.
func readPrivateKey(path string) (jwk.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	if len(b) > maxKeyFile {
		return nil, errors.New("--key: the file is larger than a key: is it the right file?")
	}
	key, err := jwk.ParseKey(b)
	if err != nil {
		return nil, fmt.Errorf("--key %s: not a JWK: %w", path, err)
	}
	if _, ok := key.(interface{ D() []byte }); !ok {
		return nil, fmt.Errorf("--key %s: not a private key", path)
	}
	return key, nil
}
