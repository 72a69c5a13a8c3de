package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
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
		{"audit row routed to the default partition by a stale map", partitionCheck("audit_events_default", ""), cpis.Unavailable},
		{"audit row routed to a month by a stale map", partitionCheck("audit_events_y2026m11", ""), cpis.Unavailable},
		{"wrapped partition race", fmt.Errorf("copy: %w", partitionCheck("audit_events_default", "")), cpis.Unavailable},
		{"a named CHECK constraint of an audit partition", partitionCheck("audit_events_default", "audit_events_outcome_check"), cpis.Other},
		{"the partition constraint of another table", partitionCheck("plans_default", ""), cpis.Other},
		{"a table named like a partition", partitionCheck("audit_events_y2026m11_old", ""), cpis.Other},
		{"check violation", pg("23514"), cpis.Other},
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

// partitionCheck is the error PostgreSQL reports for a row that fails a
// table's constraint: its partition constraint when constraint is "".
func partitionCheck(table, constraint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: "23514", SchemaName: "cpis", TableName: table, ConstraintName: constraint,
		Message: `new row for relation "` + table + `" violates partition constraint`}
}

// TestPartitionConstraintIsUnavailable provokes a real partition constraint
// violation, a row of a month that has its partition inserted straight into
// the default partition, and checks the server's error carries what
// DriverKind looks at: it is the error a COPY whose partition map went stale
// gets.
func TestPartitionConstraintIsUnavailable(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	at := time.Date(2035, time.May, 17, 12, 0, 0, 0, time.UTC)
	if err := s.EnsureAuditPartitions(t.Context(), at, 0); err != nil {
		t.Fatal(err)
	}
	cols := postgres.AuditColumns
	params := make([]string, len(cols))
	for i := range params {
		params[i] = fmt.Sprintf("$%d", i+1)
	}
	sql := `INSERT INTO audit_events_default (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(params, ", ") + `)`
	_, err := s.Pool().Exec(t.Context(), sql, postgres.AuditArgs(record(testNHS(5), at))...)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("insert into the default partition: %v, want a server error", err)
	}
	if pgErr.Code != "23514" || pgErr.TableName != "audit_events_default" || pgErr.ConstraintName != "" {
		t.Errorf("code %s, table %q, constraint %q: want 23514 on audit_events_default, no constraint (%v)",
			pgErr.Code, pgErr.TableName, pgErr.ConstraintName, err)
	}
	if got := postgres.DriverKind(err); got != cpis.Unavailable {
		t.Errorf("DriverKind = %q, want %q", got, cpis.Unavailable)
	}
}
