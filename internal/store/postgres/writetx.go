package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Indexes whose violation by a write is the caller's Conflict.
const (
	versionsPKey   = "plan_versions_pkey"        // a new plan's id taken, or a version already stored
	requestIndex   = "plan_versions_request_idx" // a request id the LA has already used
	referenceIndex = "plans_la_reference_idx"    // a reference another of the LA's live plans holds
	plansPKey      = "plans_pkey"                // a new plan's id taken
)

// The statements of a write transaction. Each reads one LA's plans through
// an index: ByReference the partial plans_la_reference_idx and ByDigest the
// partial plans_la_digest_idx (their predicates are repeated so that the
// planner may use them), ChildPlans plans_nhs_number_idx,
// Replay plan_versions_request_idx; Current reads the LA's whole register.
//
// A bulk upload grows the LA's plans inside its transaction, unseen by any
// statistics, and without them the planner takes "= ANY" of a thousand keys
// to match every row, and scans the table, or the LA's whole register, for
// each chunk: an upload would take time in the square of its size. So the
// look-ups by many keys are a probe per key: a LATERAL subquery, which
// OFFSET 0 keeps from being flattened into a join, is planned as a scan by
// one key's value, which an index answers. In ChildPlans, la_code
// concatenated with an empty string is no column of an index, which leaves
// plans_nhs_number_idx the only one to use. txRemove finds its rows by such
// probes of plans_pkey, then deletes them by their tuple ids (a TID scan):
// a plain "id = ANY" or a join is planned as a scan of the table until it
// holds some hundred thousand rows. TestWriteLookupsUseIndexes pins them.
const (
	txByReference = `SELECT p.* FROM unnest($2::text[]) k(ref) CROSS JOIN LATERAL (
		SELECT ` + planColumns + ` FROM plans
		WHERE la_code = $1 AND la_reference = k.ref AND la_reference <> '' AND NOT entered_in_error
		OFFSET 0) p`
	txByDigest = `SELECT p.* FROM unnest($2::text[]) k(digest) CROSS JOIN LATERAL (
		SELECT source_digest, ` + planColumns + ` FROM plans
		WHERE la_code = $1 AND source_digest = k.digest AND source_digest <> '' AND NOT entered_in_error
		OFFSET 0) p`
	txChildPlans = `SELECT p.* FROM unnest($1::text[]) k(nhs) CROSS JOIN LATERAL (
		SELECT ` + planColumns + ` FROM plans
		WHERE nhs_number = k.nhs AND la_code || '' = $2 AND NOT entered_in_error
		OFFSET 0) p`
	txCurrent = `SELECT ` + planColumns + ` FROM plans
		WHERE la_code = $1 AND NOT entered_in_error AND end_date >= $2`
	txReplay = `SELECT ` + planColumns + ` FROM plan_versions WHERE la_code = $1 AND request_id = $2`
	// txRemove takes the current rows of the plans a run updates out of
	// plans, returning what the versions must follow; txInsert then stores
	// the versions and the new current rows, both from the one set of rows
	// s, of which only the current rows take the digest and only the
	// versions the request id. Removing before inserting frees every
	// reference the run's plans held before any is taken again.
	txRemove = `DELETE FROM plans WHERE ctid = ANY(ARRAY(
		SELECT c.ctid FROM unnest($1::text[]) k(id) CROSS JOIN LATERAL (
			SELECT ctid FROM plans WHERE id = k.id OFFSET 0) c))
		RETURNING id, version, la_code`
	txInsert = `WITH s AS (
		SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::date[], $6::date[],
			$7::text[], $8::text[], $9::text[], $10::text[], $11::date[], $12::bool[],
			$13::timestamptz[], $14::text[], $15::date[], $16::text[], $17::text[])
			AS s(` + planColumns + `, display_until, request_id, source_digest)
	), c AS (
		INSERT INTO plans (` + planColumns + `, display_until, source_digest)
		SELECT ` + planColumns + `, display_until, source_digest FROM s)
		INSERT INTO plan_versions (` + planColumns + `, display_until, request_id)
		SELECT ` + planColumns + `, display_until, request_id FROM s`
)

// writeSettings are the planner settings of a write transaction. Its
// look-ups probe an index once per key (see txByReference), and each probe
// finds a row or two; but without statistics the planner guesses hundreds
// per NHS number, and would answer each probe with a bitmap scan, which
// costs some hundred microseconds to set up: a tenth of a second for a
// chunk's children. No statement of a write transaction gains from a
// bitmap scan.
const writeSettings = "SET LOCAL enable_bitmapscan = off"

// copyAudits is the most audit records Put inserts one by one, in the
// batch of its versions: above it, it copies them. COPY costs two round
// trips more than a batch, and far less server time per row.
const copyAudits = 16

// BeginWrite starts a transaction holding laCode's write lock: a
// transaction-scoped advisory lock keyed by a hash of the LA code and the
// schema (lockKey), so that replicas sharing the schema serialize an LA's
// writes, and two LAs' never wait for each other (but on a hash collision,
// which only makes them queue). lock_timeout bounds the wait, and the
// context may end it sooner; either is Unavailable.
func (s *Store) BeginWrite(ctx context.Context, laCode string) (store.WriteTx, error) {
	const op = "postgres.BeginWrite"
	if laCode == "" {
		return nil, cpis.E(op, cpis.Invalid, "a write transaction is on one local authority's plans: it needs the LA code")
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, dbError(op, err)
	}
	// Without arguments pgx sends this as one simple query: one round trip.
	lock := fmt.Sprintf("SET LOCAL lock_timeout = %d; %s; SELECT pg_advisory_xact_lock(%d, %d)",
		s.lockWait.Milliseconds(), writeSettings, lockClass, lockKey(laPlansLock+"\x00"+laCode, s.schema))
	if _, err := tx.Exec(ctx, lock); err != nil {
		tx.Rollback(ctx)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" || ctx.Err() != nil { // lock_not_available
			return nil, cpis.E(op, cpis.Unavailable, "another write of this local authority's plans holds them; retry later", err)
		}
		return nil, dbError(op, err)
	}
	return &writeTx{tx: tx, la: laCode, beforeCommit: s.beforeCommit}, nil
}

// writeTx is a store.WriteTx on PostgreSQL.
type writeTx struct {
	tx pgx.Tx
	la string
	// events are the plan events of the versions Put stored, logged by
	// Commit (events.go).
	events planEvents
	// beforeCommit is the store's test hook (Store.beforeCommit).
	beforeCommit func()
	store.TxState
}

var _ store.WriteTx = (*writeTx)(nil)

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
	const op = "postgres.WriteTx.Plan"
	if err := w.Usable(op); err != nil {
		return cpis.Plan{}, err
	}
	p, err := scanPlan(w.tx.QueryRow(ctx, selectCurrent, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.Plan{}, cpis.E(op, cpis.NotFound, "no plan has this id")
	}
	return p, w.fail(op, err)
}

// ByReference returns the LA's live plans holding any of refs.
func (w *writeTx) ByReference(ctx context.Context, refs []string) (map[string]cpis.Plan, error) {
	const op = "postgres.WriteTx.ByReference"
	if err := w.Usable(op); err != nil {
		return nil, err
	}
	out := map[string]cpis.Plan{}
	if len(refs) == 0 {
		return out, nil
	}
	err := w.each(ctx, func(p cpis.Plan) error { out[p.Reference] = p; return nil }, txByReference, w.la, refs)
	if err != nil {
		return nil, w.fail(op, err)
	}
	return out, nil
}

// ByDigest returns the LA's live plans whose current row holds any of
// digests.
func (w *writeTx) ByDigest(ctx context.Context, digests []string) (map[string]cpis.Plan, error) {
	const op = "postgres.WriteTx.ByDigest"
	if err := w.Usable(op); err != nil {
		return nil, err
	}
	out := map[string]cpis.Plan{}
	if len(digests) == 0 {
		return out, nil
	}
	rows, err := w.tx.Query(ctx, txByDigest, w.la, digests)
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
	const op = "postgres.WriteTx.ChildPlans"
	if err := w.Usable(op); err != nil {
		return nil, err
	}
	if len(nhs) == 0 {
		return nil, nil
	}
	numbers := make([]string, len(nhs))
	for i, n := range nhs {
		numbers[i] = string(n)
	}
	var out []cpis.Plan
	err := w.each(ctx, func(p cpis.Plan) error { out = append(out, p); return nil }, txChildPlans, numbers, w.la)
	if err != nil {
		return nil, w.fail(op, err)
	}
	return out, nil
}

// Current streams the LA's live plans ending on or after day. fn's error
// is returned as it is and leaves the transaction usable.
func (w *writeTx) Current(ctx context.Context, day cpis.Date, fn func(cpis.Plan) error) error {
	const op = "postgres.WriteTx.Current"
	if err := w.Usable(op); err != nil {
		return err
	}
	if day.IsZero() {
		day = cpis.MustDate("0001-01-01")
	}
	var fnErr error
	err := w.each(ctx, func(p cpis.Plan) error {
		fnErr = fn(p)
		return fnErr
	}, txCurrent, w.la, pgDate(day))
	if fnErr != nil {
		return fnErr
	}
	return w.fail(op, err)
}

// each runs a query in the transaction and calls f with each plan it
// returns, row by row, stopping at f's first error. Closing the rows early
// reads what is left of them off the connection, so the transaction stays
// usable.
func (w *writeTx) each(ctx context.Context, f func(cpis.Plan) error, sql string, args ...any) error {
	rows, err := w.tx.Query(ctx, sql, args...)
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
	const op = "postgres.WriteTx.Replay"
	if err := w.Usable(op); err != nil {
		return cpis.Plan{}, false, err
	}
	if requestID == "" {
		return cpis.Plan{}, false, nil
	}
	p, err := scanPlan(w.tx.QueryRow(ctx, txReplay, w.la, requestID))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return cpis.Plan{}, false, nil
	case err != nil:
		return cpis.Plan{}, false, w.fail(op, err)
	}
	return p, true, nil
}

// Put stores versions, a run at a time, and recs. A run is the longest
// stretch of versions of distinct plans: one pipelined batch removes the
// current rows its updates follow and inserts its versions and new current
// rows, two statements whatever its length. Versions of one plan in a call
// are rare (a Bundle changing a plan twice); each starts a new run.
func (w *writeTx) Put(ctx context.Context, versions []store.Version, recs []cpis.AuditRecord) error {
	const op = "postgres.WriteTx.Put"
	if err := w.Usable(op); err != nil {
		return err
	}
	if err := store.CheckVersions(op, w.la, versions); err != nil {
		return w.fail(op, err)
	}
	for len(versions) > 0 {
		n := distinctRun(versions)
		if err := w.putRun(ctx, op, versions[:n], recs); err != nil {
			return w.fail(op, err)
		}
		for _, v := range versions[:n] {
			w.events.add(v.Plan)
		}
		versions, recs = versions[n:], nil
	}
	if len(recs) > 0 {
		return w.fail(op, w.putAudits(ctx, recs))
	}
	return nil
}

// distinctRun is the length of the longest prefix of versions whose plans
// are all different.
func distinctRun(versions []store.Version) int {
	seen := make(map[string]struct{}, len(versions))
	for i, v := range versions {
		if _, ok := seen[v.Plan.ID]; ok {
			return i
		}
		seen[v.Plan.ID] = struct{}{}
	}
	return len(versions)
}

// putRun stores versions of distinct plans, and recs, in one batch.
func (w *writeTx) putRun(ctx context.Context, op string, versions []store.Version, recs []cpis.AuditRecord) error {
	var updated []string
	for _, v := range versions {
		if v.Plan.Version > 1 {
			updated = append(updated, v.Plan.ID)
		}
	}
	b := &pgx.Batch{}
	var removed map[string]removedRow
	if len(updated) > 0 {
		b.Queue(txRemove, updated).Query(func(rows pgx.Rows) error {
			var err error
			removed, err = collectRemoved(rows)
			return err
		})
	}
	b.Queue(txInsert, versionArrays(versions)...)
	if len(recs) <= copyAudits {
		for _, r := range recs {
			b.Queue(insertAudit, auditArgs(r)...)
		}
	}
	if err := w.tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	if err := w.checkFollows(op, versions, removed); err != nil {
		return err
	}
	if len(recs) > copyAudits {
		return w.putAudits(ctx, recs)
	}
	return nil
}

// removedRow is what a version must follow: its plan's current row.
type removedRow struct {
	version int
	la      string
}

func collectRemoved(rows pgx.Rows) (map[string]removedRow, error) {
	out := map[string]removedRow{}
	for rows.Next() {
		var id string
		var r removedRow
		if err := rows.Scan(&id, &r.version, &r.la); err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

// checkFollows refuses a version above 1 that does not follow its plan's
// current version, or follows another LA's plan.
func (w *writeTx) checkFollows(op string, versions []store.Version, removed map[string]removedRow) error {
	for _, v := range versions {
		if v.Plan.Version == 1 {
			continue
		}
		cur, ok := removed[v.Plan.ID]
		switch {
		case !ok:
			return cpis.E(op, cpis.Conflict, "a version above 1 of a plan that is not stored")
		case cur.la != w.la:
			return cpis.E(op, cpis.Invalid, "a write transaction changes only its own local authority's plans")
		case cur.version != v.Plan.Version-1:
			return cpis.E(op, cpis.Conflict, "a version that does not follow the plan's current one: the reads it was made from are stale")
		}
	}
	return nil
}

// putAudits stores recs: a few in one batch of inserts, more with a COPY.
func (w *writeTx) putAudits(ctx context.Context, recs []cpis.AuditRecord) error {
	if len(recs) <= copyAudits {
		b := &pgx.Batch{}
		for _, r := range recs {
			b.Queue(insertAudit, auditArgs(r)...)
		}
		return w.tx.SendBatch(ctx, b).Close()
	}
	src := pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) { return auditArgs(recs[i]), nil })
	_, err := w.tx.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditColumns, src)
	return err
}

// versionArrays are the parameters of txInsert: one array per column.
func versionArrays(versions []store.Version) []any {
	n := len(versions)
	var (
		ids, nhs, types, laCodes, laNames = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		emergency, office, refs           = make([]string, n), make([]string, n), make([]string, n)
		nums                              = make([]int32, n)
		starts, ends, births, until       = make([]pgtype.Date, n), make([]pgtype.Date, n), make([]pgtype.Date, n), make([]pgtype.Date, n)
		eie                               = make([]bool, n)
		updated                           = make([]time.Time, n)
		requestIDs                        = make([]pgtype.Text, n)
		digests                           = make([]string, n)
	)
	for i, v := range versions {
		p := v.Plan
		ids[i], nums[i], nhs[i], types[i] = p.ID, int32(p.Version), string(p.NHSNumber), string(p.Type)
		starts[i], ends[i], laCodes[i], laNames[i] = pgDate(p.Start), pgDate(p.End), p.LA.Code, p.LA.Name
		emergency[i], office[i], births[i], eie[i] = p.EmergencyPhone, p.OfficePhone, pgDate(p.BirthDate), p.EnteredInError
		updated[i], refs[i], until[i] = p.LastUpdated, p.Reference, pgDate(p.DisplayUntil())
		requestIDs[i], digests[i] = pgtype.Text{String: v.RequestID, Valid: v.RequestID != ""}, v.Digest
	}
	return []any{ids, nums, nhs, types, starts, ends, laCodes, laNames, emergency, office, births, eie,
		updated, refs, until, requestIDs, digests}
}

// Commit logs the events of the versions stored, then commits, unless an
// earlier call failed: then it rolls back. The events are logged by the
// last statement before COMMIT, which takes the event log's lock (see
// events.go): it is held for that statement and the commit, never while
// the transaction's other work runs.
func (w *writeTx) Commit(ctx context.Context) error {
	const op = "postgres.WriteTx.Commit"
	if err := w.Usable(op); err != nil {
		w.Rollback(ctx) // does nothing once ended
		return err
	}
	if len(w.events.ids) > 0 {
		if _, err := w.tx.Exec(ctx, appendPlanEvents, w.events.args()...); err != nil {
			err = w.fail(op, err)
			w.Rollback(ctx)
			return err
		}
		if w.beforeCommit != nil {
			w.beforeCommit()
		}
	}
	w.End()
	if err := w.tx.Commit(ctx); err != nil {
		return cpis.E(op, cpis.Unavailable, "the write could not be committed; nothing was stored", err)
	}
	return nil
}

// Rollback ends the transaction, discarding its writes; after the end it
// does nothing. A rollback that fails closes the connection, which ends the
// transaction and releases its lock all the same.
func (w *writeTx) Rollback(ctx context.Context) error {
	if w.End() {
		return nil
	}
	err := w.tx.Rollback(ctx)
	if err == nil || errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return dbError("postgres.WriteTx.Rollback", err)
}

// writeError translates an error of a write transaction: the violations of
// the indexes that keep plans whole are Conflict, with what the caller did
// wrong.
func writeError(op string, err error) error {
	for _, c := range []struct{ index, msg string }{
		{versionsPKey, "the plan version is already stored: a new plan's id is taken, or the version does not follow the current one"},
		{plansPKey, "a plan with this id is already stored"},
		{requestIndex, "the local authority has already used this request id for another write"},
		{referenceIndex, "the local authority already holds a plan, not entered in error, with this reference"},
	} {
		if uniqueViolation(err, c.index) {
			return cpis.E(op, cpis.Conflict, c.msg)
		}
	}
	return dbError(op, err)
}
