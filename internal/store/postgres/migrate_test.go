package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
	"github.com/cpis-fhir/cpis/migrations"
)

// TestMigrateConcurrently starts several migrators at once on a fresh
// schema, as replicas starting together would: each migration must be
// applied exactly once, and all of them by the end.
func TestMigrateConcurrently(t *testing.T) {
	const migrators = 6
	url := pgtest.URL(t)
	all, err := migrations.List(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	applied := make([][]migrations.Migration, migrators)
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i := range migrators {
		wg.Go(func() { applied[i], errs[i] = postgres.Migrate(t.Context(), url, migrateAt) })
	}
	wg.Wait()
	count := map[int]int{}
	for i := range migrators {
		if errs[i] != nil {
			t.Fatalf("migrator %d: %v", i, errs[i])
		}
		for _, m := range applied[i] {
			count[m.Version]++
		}
	}
	for _, m := range all {
		if count[m.Version] != 1 {
			t.Errorf("migration %d applied %d times, want once", m.Version, count[m.Version])
		}
	}
	var rows, maxVersion int
	q := `SELECT count(*), max(version) FROM schema_migrations`
	if err := connect(t, url).QueryRow(t.Context(), q).Scan(&rows, &maxVersion); err != nil {
		t.Fatal(err)
	}
	if rows != len(all) || maxVersion != all[len(all)-1].Version {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d up to %d", rows, maxVersion, len(all), all[len(all)-1].Version)
	}
}

// TestMigrateAgain checks a migrated schema is left alone.
func TestMigrateAgain(t *testing.T) {
	url := pgtest.MigratedURL(t)
	applied, err := postgres.Migrate(t.Context(), url, migrateAt)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate again applied %d migrations (error %v), want none", len(applied), err)
	}
}

// migrateAt is the instant the tests migrate at, when it does not matter.
var migrateAt = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// TestMigratePartitionsAtCallersClock checks Migrate makes the audit
// partitions of the month its caller's clock is in, in UTC, and of the
// months after, whatever the database's clock says; migrating again later
// adds the partitions of the later months.
func TestMigratePartitionsAtCallersClock(t *testing.T) {
	url := pgtest.URL(t)
	// 23:30 on New Year's Eve one hour west of Greenwich is already January in UTC.
	first := time.Date(2027, time.December, 31, 23, 30, 0, 0, time.FixedZone("-01", -3600))
	if _, err := postgres.Migrate(t.Context(), url, first); err != nil {
		t.Fatal(err)
	}
	s := open(t, url)
	defer s.Close()
	want := []string{"audit_events_default", "audit_events_y2028m01", "audit_events_y2028m02", "audit_events_y2028m03", "audit_events_y2028m04"}
	if got := partitions(t, s); !slices.Equal(got, want) {
		t.Errorf("partitions after migrating at %v: %v, want %v", first, got, want)
	}
	applied, err := postgres.Migrate(t.Context(), url, first.AddDate(0, 2, 0))
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate two months later applied %d migrations (%v), want none", len(applied), err)
	}
	want = append(want, "audit_events_y2028m05", "audit_events_y2028m06")
	if got := partitions(t, s); !slices.Equal(got, want) {
		t.Errorf("partitions after migrating two months later: %v, want %v", got, want)
	}
}

// TestMigrateLockPerSchema checks a migrator does not wait for another
// schema's: it holds the migration lock of one schema and migrates another.
func TestMigrateLockPerSchema(t *testing.T) {
	busy, free := pgtest.URL(t), pgtest.URL(t)
	conn := connect(t, busy)
	var schema string
	if err := conn.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock($1, $2)`, 0x43504953, postgres.LockKey("migrate", schema)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := postgres.Migrate(ctx, free, migrateAt); err != nil {
		t.Fatalf("Migrate of another schema: %v", err)
	}
	// The busy schema's migrator must wait, here until its deadline.
	short, cancel2 := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel2()
	if _, err := postgres.Migrate(short, busy, migrateAt); cpis.KindOf(err) != cpis.Unavailable {
		t.Fatalf("Migrate while another holds the lock: %v, want it to wait and give up Unavailable", err)
	}
}

// TestOpenRefusesOldSchema checks the server will not run on a schema that
// is behind, and says what to run.
func TestOpenRefusesOldSchema(t *testing.T) {
	all, err := migrations.List(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	latest := all[len(all)-1].Version
	tests := []struct {
		name  string
		setup func(t *testing.T, conn *pgx.Conn)
		at    int
	}{
		{"never migrated", func(t *testing.T, conn *pgx.Conn) {}, 0},
		{"one behind", func(t *testing.T, conn *pgx.Conn) {
			exec(t, conn, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
			for _, m := range all[:len(all)-1] {
				exec(t, conn, m.SQL)
				exec(t, conn, fmt.Sprintf(`INSERT INTO schema_migrations (version, name) VALUES (%d, '%s')`, m.Version, m.Name))
			}
		}, latest - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := pgtest.URL(t)
			tt.setup(t, connect(t, url))
			s, err := postgres.Open(t.Context(), url)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded on an old schema")
			}
			want := fmt.Sprintf("database schema is at version %d but this server needs %d: run `go run ./cmd/cpisctl migrate` (or `cpisctl migrate`)", tt.at, latest)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open: %v\nwant the message %q", err, want)
			}
			var e *cpis.Error
			if !errors.As(err, &e) {
				t.Errorf("Open: %T is not a *cpis.Error", err)
			}
		})
	}
}

// TestOpenAcceptsNewerSchema checks a server keeps running on a schema a
// newer release migrated, as during a rolling upgrade.
func TestOpenAcceptsNewerSchema(t *testing.T) {
	url := pgtest.MigratedURL(t)
	exec(t, connect(t, url), `INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')`)
	s := open(t, url)
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func exec(tb testing.TB, conn *pgx.Conn, sql string, args ...any) {
	tb.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
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
