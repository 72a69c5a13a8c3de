package viewer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"
)

// pendingLogin is a sign-in under way: what the callback must find. It
// travels sealed in the cpis_login cookie rather than being kept on the
// server, so that GET /app/login and /app/launch, which need no
// credentials, cost the server no memory however often they are called.
type pendingLogin struct {
	State    string `json:"s"`           // the OAuth state the callback must bring back
	Verifier string `json:"v"`           // the PKCE verifier
	Launch   string `json:"l,omitempty"` // the EHR's launch id; "" for a standalone launch
	Expiry   int64  `json:"e"`           // Unix seconds, by the injected clock
}

// maxLoginCookie bounds the sealed value opened: a launch id of
// maxLaunchID bytes and two tokens, base64, fit well within it.
const maxLoginCookie = 2048

// loginSeal is the additional data of every seal: a value sealed for
// another purpose under the same key does not open as a login.
var loginSeal = []byte(loginCookie)

// sealer seals sign-ins under way with AES-256-GCM under a key made when
// the viewer starts and never written down: a cookie can be neither read
// nor changed by the browser, and opens only in the process that sealed
// it (see the package doc about replicas).
type sealer struct{ aead cipher.AEAD }

// newSealer makes a fresh random key. The nonces are random too (96
// bits, cipher.NewGCMWithRandomNonce), safe for far more seals than one
// process makes.
func newSealer() *sealer {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic(err)
	}
	return &sealer{aead: aead}
}

// seal is p as a cookie value.
func (s *sealer) seal(p pendingLogin) string {
	b, err := json.Marshal(p)
	if err != nil {
		panic(err) // strings and an integer always marshal
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nil, nil, b, loginSeal))
}

// open is the sign-in a cookie value seals, if it was sealed by this
// process, unchanged, and has not expired at now.
func (s *sealer) open(v string, now time.Time) (pendingLogin, bool) {
	if v == "" || len(v) > maxLoginCookie {
		return pendingLogin{}, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return pendingLogin{}, false
	}
	b, err := s.aead.Open(nil, nil, sealed, loginSeal)
	if err != nil {
		return pendingLogin{}, false
	}
	var p pendingLogin
	if err := json.Unmarshal(b, &p); err != nil || p.State == "" || now.Unix() > p.Expiry {
		return pendingLogin{}, false
	}
	return p, true
}
