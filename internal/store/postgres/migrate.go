package postgres

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/migrations"
)

// dialect names this store's migrations in package migrations.
const dialect = "postgres"

// lockClass is the first half of every advisory lock key this package
// takes ("CPIS" in ASCII), so that its locks cannot collide with another
// application's single-key locks on the same database.
const lockClass int32 = 0x43504953

// Lock purposes: the second half of a key is a hash of the purpose and the
// schema (see lockKey).
const (
	migrateLock    = "migrate"
	partitionsLock = "audit-partitions"
	laPlansLock    = "la-plans" // followed by an LA code: see Store.BeginWrite
)

// lockKey is the second half of the advisory lock key for purpose in
// schema. Advisory locks are database-wide; keying them by schema as well
// lets deployments (and tests) that share a database in separate schemas
// migrate at once without waiting for each other, while processes sharing
// one schema still serialize. A hash collision only makes two schemas wait
// for each other, which is harmless.
func lockKey(purpose, schema string) int32 {
	h := fnv.New32a()
	h.Write([]byte(purpose + "\x00" + schema))
	return int32(h.Sum32())
}

// createBookkeeping creates the table recording applied migrations. It runs
// under the migration lock, so concurrent migrators cannot race on it.
const createBookkeeping = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)`

// Migrate applies the migrations the database at url has not had yet, each
// in its own transaction, in version order, then creates the audit
// partitions of now's month (UTC) and the DefaultAuditMonthsAhead after it.
// now is the caller's clock, which should be the one its servers stamp
// records with: the database's clock may disagree with it (and does in
// tests), and partitions made for another month than the servers' would
// leave their records in the default partition. Migrate holds a
// session-level advisory lock throughout, so several processes migrating at
// once apply each migration exactly once: the first does the work and the
// others, when they get the lock, find nothing left to do. It returns the
// migrations it applied, also when a later one failed.
func Migrate(ctx context.Context, url string, now time.Time) ([]migrations.Migration, error) {
	const op = "postgres.Migrate"
	all, err := migrations.List(dialect)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	slices.SortFunc(all, func(a, b migrations.Migration) int { return cmp.Compare(a.Version, b.Version) })
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, dbError(op, redacted(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	schema, err := currentSchema(ctx, conn)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	key := lockKey(migrateLock, schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClass, key); err != nil {
		return nil, dbError(op, err)
	}
	// Closing the session would release the lock too; unlocking says so.
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, lockClass, key)
	applied, err := applyPending(ctx, conn, all)
	if err != nil {
		return applied, cpis.E(op, err)
	}
	if err := ensurePartitions(ctx, conn, now, DefaultAuditMonthsAhead); err != nil {
		return applied, dbError(op, err)
	}
	return applied, nil
}

// currentSchema is the schema unqualified names are created in: the first
// existing schema of the search_path.
func currentSchema(ctx context.Context, q querier) (string, error) {
	const op = "postgres.currentSchema"
	var schema *string
	if err := q.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", dbError(op, err)
	}
	if schema == nil {
		return "", cpis.E(op, "no schema of the search_path exists: create it, or fix search_path")
	}
	return *schema, nil
}

// applyPending applies, in order, each migration of all not yet recorded in
// schema_migrations, recording it in the same transaction.
func applyPending(ctx context.Context, conn *pgx.Conn, all []migrations.Migration) ([]migrations.Migration, error) {
	const op = "postgres.applyPending"
	if _, err := conn.Exec(ctx, createBookkeeping); err != nil {
		return nil, dbError(op, err)
	}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, dbError(op, err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, dbError(op, err)
	}
	applied := []migrations.Migration{}
	for _, m := range all {
		if slices.Contains(done, m.Version) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, dbError(op, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err))
		}
		applied = append(applied, m)
	}
	return applied, nil
}
