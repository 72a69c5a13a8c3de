package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// TestURL checks that connections made with the URL live in a schema of
// their own, that two tests get different schemas, and that the schema is
// gone when its test ends.
func TestURL(t *testing.T) {
	ctx := t.Context()
	var first, second string
	t.Run("inner", func(t *testing.T) {
		first = schemaOf(t, pgtest.URL(t))
		second = schemaOf(t, pgtest.URL(t))
		if !strings.HasPrefix(first, "cpistest_") || first == second {
			t.Fatalf("schemas %q and %q: want two distinct cpistest_ schemas", first, second)
		}
		conn := connect(t, pgtest.URL(t))
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("CREATE TABLE: %v", err)
		}
		var where string
		if err := conn.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 't'").Scan(&where); err != nil || !strings.HasPrefix(where, "cpistest_") {
			t.Fatalf("the table went to schema %q (%v), want the test's", where, err)
		}
	})
	conn := connect(t, pgtest.URL(t))
	for _, s := range []string{first, second} {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", s).Scan(&n); err != nil || n != 0 {
			t.Errorf("schema %s: %d left after its test (%v), want 0", s, n, err)
		}
	}
}

// TestMigratedURL checks the schema is ready for a store, with the audit
// partitions of the instant it was migrated at, never of today.
func TestMigratedURL(t *testing.T) {
	tests := []struct {
		name string
		url  func(tb testing.TB) string
		want []string
	}{
		{"fixed", pgtest.MigratedURL, []string{"audit_events_default",
			"audit_events_y2026m11", "audit_events_y2026m12", "audit_events_y2027m01", "audit_events_y2027m02"}},
		{"at", func(tb testing.TB) string {
			return pgtest.MigratedURLAt(tb, time.Date(2028, time.February, 29, 23, 59, 59, 0, time.UTC))
		}, []string{"audit_events_default",
			"audit_events_y2028m02", "audit_events_y2028m03", "audit_events_y2028m04", "audit_events_y2028m05"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := connect(t, tt.url(t))
			var v int
			if err := conn.QueryRow(t.Context(), "SELECT max(version) FROM schema_migrations").Scan(&v); err != nil || v < 2 {
				t.Fatalf("schema version %d (%v), want at least 2", v, err)
			}
			rows, err := conn.Query(t.Context(), `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
				WHERE i.inhparent = 'audit_events'::regclass ORDER BY 1`)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("audit partitions %v (%v), want %v", got, err, tt.want)
			}
		})
	}
}

func schemaOf(tb testing.TB, url string) string {
	tb.Helper()
	var s string
	if err := connect(tb, url).QueryRow(context.Background(), "SELECT current_schema()").Scan(&s); err != nil {
		tb.Fatalf("current_schema: %v", err)
	}
	return s
}

func connect(tb testing.TB, url string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestNoDatabase checks what a test does when PostgreSQL does not answer:
// skip locally, fail under CI. It runs TestDeadDatabase in a child process
// with the environment set, and reads the verdict.
func TestNoDatabase(t *testing.T) {
	tests := []struct {
		ci   string
		want string
	}{
		{"", "--- SKIP: TestDeadDatabase"},
		{"false", "--- SKIP: TestDeadDatabase"},
		{"true", "--- FAIL: TestDeadDatabase"},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestDeadDatabase$", "-test.v")
			cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", "CI="+tt.ci,
				"CPIS_TEST_DATABASE_URL=postgres://postgres:secret@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=1")
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("child output does not contain %q:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), "secret") {
				t.Errorf("child output shows the password:\n%s", out)
			}
		})
	}
}

// TestDeadDatabase is TestNoDatabase's child; it does nothing on its own.
func TestDeadDatabase(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") != "1" {
		t.Skip("run by TestNoDatabase")
	}
	pgtest.URL(t)
	t.Fatal("URL returned without a database")
}
