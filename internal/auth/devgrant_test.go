package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDevGrant(t *testing.T) {
	d := newDevIssuer(t, t.TempDir(), clockAt(t0))
	v := devVerifier(t, d, clockAt(t0))
	tests := []struct {
		name, client, scope string
		want                string // granted scope
		err                 error
		readPlans           bool // MayReadPlans of the token's principal
	}{
		{"all the persona's scopes", "ed-clinician", "", "openid profile user/Flag.read", nil, true},
		{"blank scope is no scope", "ed-clinician", "  ", "openid profile user/Flag.read", nil, true},
		{"a subset, v1", "ed-clinician", "user/Flag.read", "user/Flag.read", nil, true},
		{"v2 covered by v1", "ed-clinician", "openid user/Flag.rs", "openid user/Flag.rs", nil, true},
		{"read only, no search: the token cannot search", "ed-clinician", "user/Flag.r", "user/Flag.r", nil, false},
		{"repeated scopes once", "ed-clinician", "user/Flag.rs  user/Flag.rs", "user/Flag.rs", nil, true},
		{"LA, v2 for v1", "la:ZLA01", "system/Flag.cud system/Flag.rs", "system/Flag.cud system/Flag.rs", nil, false},
		{"more than held: write", "ed-clinician", "user/Flag.cruds", "", ErrInvalidScope, false},
		{"another level", "ed-clinician", "system/Flag.read", "", ErrInvalidScope, false},
		{"another resource", "ed-clinician", "user/AuditEvent.read", "", ErrInvalidScope, false},
		{"wildcard", "ed-clinician", "user/*.read", "", ErrInvalidScope, false},
		{"v2 restricted by a query", "ed-clinician", "user/Flag.rs?code=CPP", "", ErrInvalidScope, false},
		{"unknown scope", "ed-clinician", "offline_access", "", ErrInvalidScope, false},
		{"no client", "", "", "", ErrInvalidClient, false},
		{"unknown client", "nobody", "", "", ErrInvalidClient, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := d.Grant(tt.client, tt.scope)
			if !errors.Is(err, tt.err) || (err != nil && tt.err == nil) {
				t.Fatalf("Grant error %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if g.Scope != tt.want || g.ExpiresIn != time.Hour {
				t.Errorf("granted %q for %v; want %q for 1h", g.Scope, g.ExpiresIn, tt.want)
			}
			p, err := v.Verify(t.Context(), g.Token)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(strings.Fields(tt.want), p.Scopes); diff != "" {
				t.Errorf("token scopes (-want +got):\n%s", diff)
			}
			if p.MayReadPlans() != tt.readPlans {
				t.Errorf("MayReadPlans %v, want %v", p.MayReadPlans(), tt.readPlans)
			}
		})
	}
}
