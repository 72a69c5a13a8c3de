package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

var _ store.Importer = (*Store)(nil)

// importChunk is how many plans one INSERT carries. A statement per row
// costs a call through database/sql and the driver each; 500 rows of 16
// parameters stay well under SQLite's limit of 32,766 parameters.
const importChunk = 500

// ImportPlans stores plans as version 1 each, in one transaction, through
// multi-row inserts prepared once per transaction, and logs them in the
// order given.
func (s *Store) ImportPlans(ctx context.Context, plans []cpis.Plan) error {
	const op = "sqlite.ImportPlans"
	if err := store.CheckImport(op, plans); err != nil {
		return err
	}
	if len(plans) == 0 {
		return nil
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		// Versions first: plans(id, version) references them.
		if err := importRows(ctx, tx, "plan_versions", planCols+`, display_until, request_id`, 16, plans, versionArgs); err != nil {
			return err
		}
		if err := importRows(ctx, tx, "plans", planCols+`, display_until`, 15, plans, planArgs); err != nil {
			return err
		}
		var logged pendingPlans
		for _, p := range plans {
			p.Version = 1
			logged.add(p)
		}
		return logPlans(ctx, s.boundTo(ctx, tx), logged)
	})
}

// versionArgs are p's values for plan_versions: no request id.
func versionArgs(p cpis.Plan) []any { return append(planArgs(p), nil) }

// importRows inserts one row per plan into table, importChunk rows a
// statement. The full-size statement is prepared once; the last, shorter
// chunk gets its own.
func importRows(ctx context.Context, tx *sql.Tx, table, cols string, width int, plans []cpis.Plan, args func(cpis.Plan) []any) error {
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	vals := make([]any, 0, importChunk*width)
	for start := 0; start < len(plans); start += importChunk {
		chunk := plans[start:min(start+importChunk, len(plans))]
		vals = vals[:0]
		for _, p := range chunk {
			p.Version = 1
			vals = append(vals, args(p)...)
		}
		st, err := chunkStmt(ctx, tx, &full, table, cols, width, len(chunk))
		if err != nil {
			return err
		}
		_, err = st.ExecContext(ctx, vals...)
		if st != full {
			st.Close()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// chunkStmt returns the insert of n rows: the cached full-size statement,
// preparing it on first use, or a one-off for a shorter last chunk.
func chunkStmt(ctx context.Context, tx *sql.Tx, full **sql.Stmt, table, cols string, width, n int) (*sql.Stmt, error) {
	if n == importChunk && *full != nil {
		return *full, nil
	}
	row := "(?" + strings.Repeat(", ?", width-1) + ")"
	query := `INSERT INTO ` + table + ` (` + cols + `) VALUES ` + row + strings.Repeat(", "+row, n-1)
	st, err := tx.PrepareContext(ctx, query)
	if err == nil && n == importChunk {
		*full = st
	}
	return st, err
}
