package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/auth"
)

func devServer(t *testing.T) http.Handler {
	t.Helper()
	dev, err := auth.LoadOrCreateDevIssuer(t.TempDir(), "http://127.0.0.1:8080/dev", "cpis", nil)
	if err != nil {
		t.Fatal(err)
	}
	return New(Deps{Logger: slog.New(slog.NewJSONHandler(&logBuffer{}, nil)), Now: time.Now, NewID: uuid.NewString, Dev: dev})
}

func postToken(h http.Handler, contentType, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/dev/token", strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestDevTokenForm: the dev token endpoint answers a standard OAuth 2.0
// client_credentials request as RFC 6749 sections 5.1 and 5.2 say.
func TestDevTokenForm(t *testing.T) {
	h := devServer(t)
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name        string
		contentType string
		body        url.Values
		raw         string // the body as sent, when it is not body encoded
		status      int
		want        map[string]any // the answer, access_token aside
	}{
		{"persona's scopes", form, url.Values{"grant_type": {"client_credentials"}, "client_id": {"ed-clinician"}}, "", 200,
			map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "scope": "openid profile user/Flag.read"}},
		{"v2 subset", form + "; charset=UTF-8", url.Values{"grant_type": {"client_credentials"}, "client_id": {"la:ZLA01"}, "scope": {"system/Flag.rs"}}, "", 200,
			map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "scope": "system/Flag.rs"}},
		{"no grant_type", form, url.Values{"client_id": {"ed-clinician"}}, "", 400, oauthErr("invalid_request")},
		{"grant_type twice", form, url.Values{"grant_type": {"client_credentials", "client_credentials"}, "client_id": {"ed-clinician"}}, "", 400, oauthErr("invalid_request")},
		{"bad encoding", form, nil, "grant_type=client_credentials&client_id=%zz", 400, oauthErr("invalid_request")},
		{"password grant", form, url.Values{"grant_type": {"password"}, "client_id": {"ed-clinician"}}, "", 400, oauthErr("unsupported_grant_type")},
		{"authorization_code grant", form, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, "", 400, oauthErr("unsupported_grant_type")},
		{"no client_id", form, url.Values{"grant_type": {"client_credentials"}}, "", 401, oauthErr("invalid_client")},
		{"unknown client_id", form, url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}}, "", 401, oauthErr("invalid_client")},
		{"scope beyond the persona's", form, url.Values{"grant_type": {"client_credentials"}, "client_id": {"ed-clinician"}, "scope": {"user/AuditEvent.read"}}, "", 400, oauthErr("invalid_scope")},
		{"JSON persona, as before", "application/json", nil, `{"persona":"la:ZLA01"}`, 200,
			map[string]any{"token_type": "Bearer", "expires_in": 3600.0, "scope": "system/Flag.write system/Flag.read system/Communication.read system/Subscription.cruds"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.raw
			if tt.body != nil {
				body = tt.body.Encode()
			}
			rec := postToken(h, tt.contentType, body)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if cc, p := rec.Header().Get("Cache-Control"), rec.Header().Get("Pragma"); cc != "no-store" || p != "no-cache" {
				t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache", cc, p)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if tt.status == 200 {
				if tok, _ := got["access_token"].(string); strings.Count(tok, ".") != 2 {
					t.Errorf("access_token %v is not a JWT", got["access_token"])
				}
				delete(got, "access_token")
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreMapEntries(func(k string, _ any) bool { return k == "error_description" })); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if d, ok := got["error_description"].(string); tt.status != 200 && (!ok || strings.ContainsAny(d, "\"\\")) {
				t.Errorf("error_description %q: want one without quote or backslash (RFC 6749 section 5.2)", d)
			}
		})
	}
}

func oauthErr(code string) map[string]any { return map[string]any{"error": code} }

// TestDevTokenFormIsLoopbackOnly: the form is no way around the guard.
func TestDevTokenFormIsLoopbackOnly(t *testing.T) {
	h := devServer(t)
	req := httptest.NewRequest(http.MethodPost, "/dev/token", strings.NewReader("grant_type=client_credentials&client_id=ed-clinician"))
	req.RemoteAddr = "10.0.0.7:40000"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "access_token") {
		t.Errorf("from 10.0.0.7: %d %s; want 403 and no token", rec.Code, rec.Body)
	}
}
