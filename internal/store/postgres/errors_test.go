package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
)

// TestDriverKind checks the translation of driver errors to kinds, for
// errors that are hard to provoke from a live server.
func TestDriverKind(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code} }
	tests := []struct {
		name string
		err  error
		want cpis.Kind
	}{
		{"admin shutdown", pg("57P01"), cpis.Unavailable},
		{"crash shutdown", pg("57P02"), cpis.Unavailable},
		{"cannot connect now", pg("57P03"), cpis.Unavailable},
		{"too many connections", pg("53300"), cpis.Unavailable},
		{"out of memory", pg("53200"), cpis.Unavailable},
		{"connection failure", pg("08006"), cpis.Unavailable},
		{"serialization failure", pg("40001"), cpis.Unavailable},
		{"deadlock", pg("40P01"), cpis.Unavailable},
		{"lock timeout", pg("55P03"), cpis.Unavailable},
		{"statement timeout", pg("57014"), cpis.Unavailable},
		{"read-only standby", pg("25006"), cpis.Unavailable},
		{"wrapped", fmt.Errorf("begin: %w", pg("57P01")), cpis.Unavailable},
		{"unique violation", pg("23505"), cpis.Other},
		{"undefined table", pg("42P01"), cpis.Other},
		{"syntax error", pg("42601"), cpis.Other},
		{"no code", pg(""), cpis.Other},
		{"deadline", context.DeadlineExceeded, cpis.Unavailable},
		{"cancelled", fmt.Errorf("query: %w", context.Canceled), cpis.Unavailable},
		{"closed conn", fmt.Errorf("x: %w", pgconn.ErrConnClosed), cpis.Unavailable},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), cpis.Unavailable},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, cpis.Unavailable},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), cpis.Unavailable},
		{"a bug", errors.New("cannot scan NULL into *string"), cpis.Other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := postgres.DriverKind(tt.err); got != tt.want {
				t.Errorf("DriverKind(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}
