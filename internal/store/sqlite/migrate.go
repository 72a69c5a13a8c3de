package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/migrations"
)

// migrate applies the migrations db lacks, each in its own transaction
// together with its schema_migrations row, so that a failure leaves the
// schema at the last complete version. BEGIN IMMEDIATE (set on the writer's
// connections) makes a second process opening the same file wait, and the
// re-check inside the transaction makes it skip what the first applied.
func migrate(ctx context.Context, db *sql.DB) error {
	const op = "sqlite.migrate"
	ms, err := migrations.List(migrations.SQLite)
	if err != nil {
		return cpis.E(op, err)
	}
	const bookkeeping = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		-- microseconds since the Unix epoch, UTC, from the database's clock:
		-- bookkeeping for operators, not a time the service reasons about
		applied_at INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000000 AS INTEGER))
	) STRICT`
	if _, err := db.ExecContext(ctx, bookkeeping); err != nil {
		return fail(op, err)
	}
	have, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if have > len(ms) {
		return cpis.E(op, fmt.Sprintf("the database is at schema version %d, newer than this program's %d", have, len(ms)))
	}
	for _, m := range ms[have:] {
		if err := apply(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

// apply runs one migration unless another process already has.
func apply(ctx context.Context, db *sql.DB, m migrations.Migration) error {
	op := fmt.Sprintf("sqlite.migrate %04d_%s", m.Version, m.Name)
	tx, err := begin(ctx, db)
	if err != nil {
		return fail(op, err)
	}
	defer tx.Rollback()
	var done int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&done); err != nil {
		return fail(op, err)
	}
	if done > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fail(op, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.Version, m.Name)
	if err != nil {
		return fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(op, err)
	}
	return nil
}

// schemaVersion returns the newest migration recorded in db, 0 for none.
func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fail("sqlite.SchemaVersion", err)
	}
	return v, nil
}
