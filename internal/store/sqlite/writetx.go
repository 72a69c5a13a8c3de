package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// The statements of a write transaction, prepared on Open. Lists of values
// travel as one JSON array (json_each), so a look-up of a thousand keys is
// one statement; each key is then a probe of an index: ByReference of the
// partial plans_la_reference_idx and ByDigest of the partial
// plans_la_digest_idx (their predicates are repeated so that the planner
// may use them), ChildPlans of the primary key, which leads with the
// NHS number, Replay of plan_versions_request_idx. The store keeps no
// planner statistics, so ChildPlans's "+la_code" keeps the planner off
// plans_la_code_idx, which would read the LA's whole register for each
// chunk of an upload: TestWriteStatementsUseIndexes pins every plan.
const (
	sqlByReference = `SELECT ` + planCols + ` FROM plans
		WHERE la_code = ? AND la_reference IN (SELECT value FROM json_each(?))
			AND la_reference <> '' AND entered_in_error = 0`
	sqlByDigest = `SELECT source_digest, ` + planCols + ` FROM plans
		WHERE la_code = ? AND source_digest IN (SELECT value FROM json_each(?))
			AND source_digest <> '' AND entered_in_error = 0`
	sqlChildPlans = `SELECT ` + planCols + ` FROM plans
		WHERE nhs_number IN (SELECT value FROM json_each(?)) AND +la_code = ? AND entered_in_error = 0`
	sqlCurrent = `SELECT ` + planCols + ` FROM plans
		WHERE la_code = ? AND entered_in_error = 0 AND end_date >= ?`
	sqlReplay        = `SELECT ` + planCols + ` FROM plan_versions WHERE la_code = ? AND request_id = ?`
	sqlInsertVersion = `INSERT INTO plan_versions (` + planCols + `, display_until, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertCurrent = `INSERT INTO plans (` + planCols + `, display_until, source_digest)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// A new version replaces the current row only if that row is the
	// version it follows, and the LA's: otherwise no row changes, and Put
	// says why. sqlUpdateCurrent finds the row by its primary key and leaves
	// the key's columns (and the id's index) alone, which is every update
	// but one correcting the NHS number; sqlMoveCurrent does that one. Only
	// the current row carries the digest.
	sqlUpdateCurrent = `UPDATE plans SET (version, plan_type, start_date, end_date, la_name, emergency_phone,
			office_phone, birth_date, entered_in_error, last_updated, la_reference, display_until, source_digest)
		= (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		WHERE nhs_number = ? AND id = ? AND version = ? AND la_code = ?`
	sqlMoveCurrent = `UPDATE plans SET (` + planCols + `, display_until, source_digest)
		= (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		WHERE id = ? AND version = ? AND la_code = ?`
)

// BeginWrite starts a write transaction on the writer, the one connection:
// it waits, bounded by ctx, for the transaction or AppendAudit using it, and
// (BEGIN IMMEDIATE) for another process's writer. Until it ends, every
// other write of this process waits for it, whatever the LA.
func (s *Store) BeginWrite(ctx context.Context, laCode string) (store.WriteTx, error) {
	const op = "sqlite.BeginWrite"
	if laCode == "" {
		return nil, cpis.E(op, cpis.Invalid, "a write transaction is on one local authority's plans: it needs the LA code")
	}
	tx, err := begin(ctx, s.w)
	if err != nil {
		return nil, fail(op, err)
	}
	return &writeTx{s: s, tx: tx, la: laCode, stmts: map[string]*sql.Stmt{}}, nil
}

// writeTx is a store.WriteTx on the writer connection.
type writeTx struct {
	s     *Store
	tx    *sql.Tx
	la    string
	stmts map[string]*sql.Stmt // the prepared statements bound to tx, closed with it
	// logged are the versions Put stored, logged by Commit: their
	// positions are the commit's to give (events.go).
	logged pendingPlans
	store.TxState
}

var _ store.WriteTx = (*writeTx)(nil)

// stmt returns the statement prepared on Open for query, bound to the
// transaction once.
func (w *writeTx) stmt(ctx context.Context, query string) *sql.Stmt {
	st, ok := w.stmts[query]
	if !ok {
		st = w.s.txStmt(ctx, w.tx, query)
		w.stmts[query] = st
	}
	return st
}

// fail records err, a driver error or a *cpis.Error, as the transaction's
// first error and returns it translated.
func (w *writeTx) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	return w.Failed(writeError(op, err))
}

// Plan returns the current version of plan id, whichever LA's.
func (w *writeTx) Plan(ctx context.Context, id string) (cpis.Plan, error) {
	const op = "sqlite.WriteTx.Plan"
	if err := w.Usable(op); err != nil {
		return cpis.Plan{}, err
	}
	p, err := scanPlan(w.stmt(ctx, sqlPlan).QueryRowContext(ctx, id))
	if err == sql.ErrNoRows {
		return cpis.Plan{}, cpis.E(op, cpis.NotFound, "no plan has this id")
	}
	return p, w.fail(op, err)
}

// ByReference returns the LA's live plans holding any of refs.
func (w *writeTx) ByReference(ctx context.Context, refs []string) (map[string]cpis.Plan, error) {
	const op = "sqlite.WriteTx.ByReference"
	if err := w.Usable(op); err != nil {
		return nil, err
	}
	out := map[string]cpis.Plan{}
	if len(refs) == 0 {
		return out, nil
	}
	list, err := json.Marshal(refs)
	if err != nil {
		return nil, w.fail(op, err)
	}
	err = w.each(ctx, func(p cpis.Plan) error { out[p.Reference] = p; return nil }, sqlByReference, w.la, string(list))
	if err != nil {
		return nil, w.fail(op, err)
	}
	return out, nil
}

// ByDigest returns the LA's live plans whose current row holds any of
// digests.
func (w *writeTx) ByDigest(ctx context.Context, digests []string) (map[string]cpis.Plan, error) {
	const op = "sqlite.WriteTx.ByDigest"
	if err := w.Usable(op); err != nil {
		return nil, err
	}
	out := map[string]cpis.Plan{}
	if len(digests) == 0 {
		return out, nil
	}
	list, err := json.Marshal(digests)
	if err != nil {
		return nil, w.fail(op, err)
	}
	rows, err := w.stmt(ctx, sqlByDigest).QueryContext(ctx, w.la, string(list))
	if err != nil {
		return nil, w.fail(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var digest string
		p, err := scanPlanAfter(rows, &digest)
		if err != nil {
			return nil, w.fail(op, err)
		}
		if held, ok := out[digest]; !ok || p.ID < held.ID {
			out[digest] = p
		}
	}
	if err := rows.Err(); err != nil {
		return nil, w.fail(op, err)
	}
	return out, nil
}

// ChildPlans returns the LA's live plans on any of the NHS numbers.
func (w *writeTx) ChildPlans(ctx context.Context, nhs []cpis.NHSNumber) ([]cpis.Plan, error) {
	const op = "sqlite.WriteTx.ChildPlans"
	if err := w.Usable(op); err != nil {
		return nil, err
	}
	if len(nhs) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(nhs)
	if err != nil {
		return nil, w.fail(op, err)
	}
	var out []cpis.Plan
	err = w.each(ctx, func(p cpis.Plan) error { out = append(out, p); return nil }, sqlChildPlans, string(list), w.la)
	if err != nil {
		return nil, w.fail(op, err)
	}
	return out, nil
}

// Current streams the LA's live plans ending on or after day. fn's error
// is returned as it is and leaves the transaction usable.
func (w *writeTx) Current(ctx context.Context, day cpis.Date, fn func(cpis.Plan) error) error {
	const op = "sqlite.WriteTx.Current"
	if err := w.Usable(op); err != nil {
		return err
	}
	from := day.String() // "" for the zero day: every date sorts after it
	var fnErr error
	err := w.each(ctx, func(p cpis.Plan) error {
		fnErr = fn(p)
		return fnErr
	}, sqlCurrent, w.la, from)
	if fnErr != nil {
		return fnErr
	}
	return w.fail(op, err)
}

// each runs a read statement in the transaction and calls f with each plan
// it returns, stopping at f's first error.
func (w *writeTx) each(ctx context.Context, f func(cpis.Plan) error, query string, args ...any) error {
	rows, err := w.stmt(ctx, query).QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return err
		}
		if err := f(p); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Replay returns the version the LA's write with requestID stored.
func (w *writeTx) Replay(ctx context.Context, requestID string) (cpis.Plan, bool, error) {
	const op = "sqlite.WriteTx.Replay"
	if err := w.Usable(op); err != nil {
		return cpis.Plan{}, false, err
	}
	if requestID == "" {
		return cpis.Plan{}, false, nil
	}
	p, err := scanPlan(w.stmt(ctx, sqlReplay).QueryRowContext(ctx, w.la, requestID))
	switch {
	case err == sql.ErrNoRows:
		return cpis.Plan{}, false, nil
	case err != nil:
		return cpis.Plan{}, false, w.fail(op, err)
	}
	return p, true, nil
}

// Put stores each version, one at a time in order, through the prepared
// statements, then recs. Within one transaction a statement costs a call
// through database/sql and the driver, not a commit.
func (w *writeTx) Put(ctx context.Context, versions []store.Version, recs []cpis.AuditRecord) error {
	const op = "sqlite.WriteTx.Put"
	if err := w.Usable(op); err != nil {
		return err
	}
	if err := store.CheckVersions(op, w.la, versions); err != nil {
		return w.fail(op, err)
	}
	insVersion, insCurrent := w.stmt(ctx, sqlInsertVersion), w.stmt(ctx, sqlInsertCurrent)
	args := make([]any, 0, 19)
	for _, v := range versions {
		p := v.Plan
		var rid any // NULL: no replay key
		if v.RequestID != "" {
			rid = v.RequestID
		}
		args = append(appendPlanArgs(args[:0], p), rid)
		if _, err := insVersion.ExecContext(ctx, args...); err != nil {
			return w.fail(op, err)
		}
		args[len(args)-1] = v.Digest // the current row's last column
		if p.Version == 1 {
			if _, err := insCurrent.ExecContext(ctx, args...); err != nil {
				return w.fail(op, err)
			}
			continue
		}
		if err := w.replaceCurrent(ctx, op, p, args); err != nil {
			return w.fail(op, err)
		}
	}
	for _, v := range versions {
		w.logged.add(v.Plan)
	}
	return w.fail(op, w.insertAudits(ctx, recs))
}

// replaceCurrent makes p, whose planArgs followed by its digest are args,
// its plan's current row in place of the version it follows.
func (w *writeTx) replaceCurrent(ctx context.Context, op string, p cpis.Plan, args []any) error {
	// args in planCols order: id, version, nhs_number, plan_type, start_date,
	// end_date, la_code, la_name, emergency_phone, office_phone, birth_date,
	// entered_in_error, last_updated, la_reference, then display_until and
	// source_digest.
	res, err := w.stmt(ctx, sqlUpdateCurrent).ExecContext(ctx, append(append([]any{args[1], args[3], args[4], args[5]}, args[7:]...),
		args[2], p.ID, p.Version-1, w.la)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	res, err = w.stmt(ctx, sqlMoveCurrent).ExecContext(ctx, append(args, p.ID, p.Version-1, w.la)...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return w.whyNotFollowing(ctx, op, p)
}

// whyNotFollowing says why version p did not replace its plan's current
// row: the plan is not stored, is another LA's, or is at another version.
func (w *writeTx) whyNotFollowing(ctx context.Context, op string, p cpis.Plan) error {
	cur, err := scanPlan(w.stmt(ctx, sqlPlan).QueryRowContext(ctx, p.ID))
	switch {
	case err == sql.ErrNoRows:
		return cpis.E(op, cpis.Conflict, "a version above 1 of a plan that is not stored")
	case err != nil:
		return err
	case cur.LA.Code != w.la:
		return cpis.E(op, cpis.Invalid, "a write transaction changes only its own local authority's plans")
	}
	return cpis.E(op, cpis.Conflict, "a version that does not follow the plan's current one: the reads it was made from are stale")
}

// insertAudits adds recs through the prepared insert.
func (w *writeTx) insertAudits(ctx context.Context, recs []cpis.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	st := w.stmt(ctx, sqlInsertAudit)
	for _, r := range recs {
		args, err := auditArgs(r)
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// Commit logs the versions Put stored, then commits, unless an earlier
// call failed: then it rolls back.
func (w *writeTx) Commit(ctx context.Context) error {
	const op = "sqlite.WriteTx.Commit"
	if err := w.Usable(op); err != nil {
		w.Rollback(ctx) // does nothing once ended
		return err
	}
	w.End()
	err := logPlans(ctx, func(query string) *sql.Stmt { return w.stmt(ctx, query) }, w.logged)
	if err == nil {
		err = w.tx.Commit()
	}
	if err != nil {
		w.tx.Rollback() // the writer is free again whatever Commit left
		return cpis.E(op, cpis.Unavailable, "the write could not be committed; nothing was stored", err)
	}
	return nil
}

// Rollback ends the transaction, discarding its writes; after the end it
// does nothing.
func (w *writeTx) Rollback(context.Context) error {
	if w.End() {
		return nil
	}
	if err := w.tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return fail("sqlite.WriteTx.Rollback", err)
	}
	return nil
}

// writeError translates an error of a write transaction: a key the write
// would duplicate is Conflict, saying which.
func writeError(op string, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_CONSTRAINT {
		return fail(op, err)
	}
	msg := se.Error()
	switch {
	case strings.Contains(msg, "plan_versions.id, plan_versions.version"):
		return cpis.E(op, cpis.Conflict, "the plan version is already stored: a new plan's id is taken, or the version does not follow the current one")
	case strings.Contains(msg, "plans.id"):
		return cpis.E(op, cpis.Conflict, "a plan with this id is already stored")
	case strings.Contains(msg, "plan_versions_request_idx"):
		return cpis.E(op, cpis.Conflict, "the local authority has already used this request id for another write")
	case strings.Contains(msg, "plans_la_reference_idx"):
		return cpis.E(op, cpis.Conflict, "the local authority already holds a plan, not entered in error, with this reference")
	}
	return fail(op, err)
}
