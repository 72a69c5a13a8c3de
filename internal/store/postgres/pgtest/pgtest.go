// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database named by CPIS_TEST_DATABASE_URL, dropped when the
// test ends. Tests in different packages run in parallel against one server
// without ever seeing each other's rows.
//
// When no PostgreSQL answers, tests skip, except with CI=true, where a
// missing database fails them: CI must never pass by skipping.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres"
)

// DefaultURL is the database tests use when CPIS_TEST_DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// connectTimeout bounds the check that the database answers, so that a
// machine without PostgreSQL skips quickly instead of hanging.
const connectTimeout = 3 * time.Second

// URL returns a connection URL for a new, empty schema of the test
// database; every connection made with it has that schema as its
// search_path. The schema is dropped, with everything in it, when tb ends.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("CPIS_TEST_DATABASE_URL")
	if base == "" {
		base = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unavailable(tb, err)
	}
	defer conn.Close(context.Background())
	schema := "cpistest_" + randomHex(tb)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("pgtest: creating schema %s: %v", schema, err)
	}
	tb.Cleanup(func() { dropSchema(tb, base, schema) })
	return withSearchPath(tb, base, schema)
}

// migrationTime is the instant MigratedURL migrates at. It is fixed, so that
// which audit partitions a test starts with never depends on the day it runs.
var migrationTime = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// MigratedURL is URL with the schema migrated to the latest version, audit
// partitions included: those of November 2026 and the
// postgres.DefaultAuditMonthsAhead months after, whatever the date
// (MigratedURLAt chooses another month).
func MigratedURL(tb testing.TB) string {
	tb.Helper()
	return MigratedURLAt(tb, migrationTime)
}

// MigratedURLAt is MigratedURL migrating at now, as `cpisctl migrate` does
// with its clock: the audit partitions are those of now's month and the
// postgres.DefaultAuditMonthsAhead after it.
func MigratedURLAt(tb testing.TB, now time.Time) string {
	tb.Helper()
	u := URL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := postgres.Migrate(ctx, u, now); err != nil {
		tb.Fatalf("pgtest: migrating: %v", err)
	}
	return u
}

// unavailable ends the test when the database does not answer.
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("pgtest: PostgreSQL does not answer (CI=true, so this is a failure): %v", err)
	}
	tb.Skipf("pgtest: skipping, PostgreSQL does not answer (set CPIS_TEST_DATABASE_URL, default %s): %v", DefaultURL, err)
}

// withSearchPath adds search_path to the connection string. pgx sends
// parameters it does not know itself to the server as run-time settings, so
// the setting holds on every connection, pooled ones included.
func withSearchPath(tb testing.TB, base, schema string) string {
	tb.Helper()
	if !strings.HasPrefix(base, "postgres://") && !strings.HasPrefix(base, "postgresql://") {
		return base + " search_path=" + schema // key=value form
	}
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("pgtest: CPIS_TEST_DATABASE_URL is not a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// dropSchema removes the test's schema and everything in it.
func dropSchema(tb testing.TB, base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Errorf("pgtest: dropping schema %s: %v", schema, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		tb.Errorf("pgtest: dropping schema %s: %v", schema, err)
	}
}

// randomHex is 16 random hex digits: a schema name no other test will pick.
func randomHex(tb testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return hex.EncodeToString(b)
}
