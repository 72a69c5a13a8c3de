package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestLoopbackOnly checks the dev endpoints' guard on the caller's address
// (the TCP peer, never a header a caller can set).
func TestLoopbackOnly(t *testing.T) {
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	for _, tt := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:5000", true},
		{"[::1]:5000", true},
		{"10.0.0.7:5000", false},
		{"192.168.1.20:5000", false},
		{"[2001:db8::1]:443", false},
		{"garbage", false},
	} {
		t.Run(tt.remote, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/dev/token", nil)
			req.RemoteAddr = tt.remote
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			c := echo.New().NewContext(req, httptest.NewRecorder())
			err := loopbackOnly(ok)(c)
			if got := err == nil; got != tt.want {
				t.Fatalf("allowed %v, want %v (err %v)", got, tt.want, err)
			}
			if err != nil && cpis.KindOf(err) != cpis.AccessDenied {
				t.Errorf("kind %v, want AccessDenied", cpis.KindOf(err))
			}
		})
	}
}
