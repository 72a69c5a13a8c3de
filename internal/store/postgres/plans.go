package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Constraints the store reacts to when a write violates them.
const (
	requestIndex = "plan_versions_request_idx" // a request id already used by the LA: a replay
	versionsPKey = "plan_versions_pkey"        // a plan id already used
)

// The statements of plan writes and reads.
const (
	insertVersion = `INSERT INTO plan_versions (` + planColumns + `, display_until, request_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`
	upsertCurrent = `INSERT INTO plans (` + planColumns + `, display_until)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (id) DO UPDATE SET
			version = EXCLUDED.version, nhs_number = EXCLUDED.nhs_number, plan_type = EXCLUDED.plan_type,
			start_date = EXCLUDED.start_date, end_date = EXCLUDED.end_date, la_code = EXCLUDED.la_code,
			la_name = EXCLUDED.la_name, emergency_phone = EXCLUDED.emergency_phone,
			office_phone = EXCLUDED.office_phone, birth_date = EXCLUDED.birth_date,
			entered_in_error = EXCLUDED.entered_in_error, last_updated = EXCLUDED.last_updated,
			display_until = EXCLUDED.display_until
		RETURNING ` + planColumns
	lockCurrent    = `SELECT ` + planColumns + ` FROM plans WHERE id = $1 FOR UPDATE`
	selectReplay   = `SELECT ` + planColumns + ` FROM plan_versions WHERE la_code = $1 AND request_id = $2`
	selectCurrent  = `SELECT ` + planColumns + ` FROM plans WHERE id = $1`
	selectVersion  = `SELECT ` + planColumns + ` FROM plan_versions WHERE id = $1 AND version = $2`
	selectVersions = `SELECT ` + planColumns + ` FROM plan_versions WHERE id = $1 ORDER BY version DESC`
	selectHeld     = `SELECT ` + planColumns + ` FROM plans WHERE nhs_number = $1 ORDER BY id`
	lockAdvisory   = `SELECT pg_advisory_xact_lock($1, $2)`
)

// CreatePlan stores p as version 1 with its audit record, answers a
// replayed request id with the version its first write stored, or refuses
// a plan that overlaps one its LA holds. The child's plans are locked first
// (lockChild), so that of two replicas creating the same plan at once the
// second waits, then finds the first's plan: as a replay if the request id
// is the same, else as an overlap. Two concurrent requests with one request
// id on different NHS numbers cannot both write either: the second fails on
// the request-id index and is answered as a replay.
func (s *Store) CreatePlan(ctx context.Context, p cpis.Plan, rec cpis.AuditRecord) (cpis.Plan, bool, error) {
	const op = "postgres.CreatePlan"
	p.Version = 1
	var stored cpis.Plan
	replayed := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.lockChild(ctx, tx, p.NHSNumber); err != nil {
			return err
		}
		var err error
		if stored, replayed, err = replay(ctx, tx, p.LA.Code, rec.RequestID); err != nil || replayed {
			return err
		}
		if err := checkOverlap(ctx, tx, op, p); err != nil {
			return err
		}
		stored, err = writeVersion(ctx, tx, p, rec.RequestID, rec)
		return err
	})
	return s.written(ctx, op, p.LA.Code, rec.RequestID, stored, replayed, err)
}

// UpdatePlan stores p as version expectVersion+1. The child's plans are
// locked first, as in CreatePlan, then the current row, so concurrent
// writers of one plan queue: the first wins and the others then see a
// version other than the one they expect. Every write takes the locks in
// that order (DeletePlan only the row's), so they cannot deadlock.
func (s *Store) UpdatePlan(ctx context.Context, p cpis.Plan, expectVersion int, rec cpis.AuditRecord) (cpis.Plan, bool, error) {
	const op = "postgres.UpdatePlan"
	var stored cpis.Plan
	replayed := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.lockChild(ctx, tx, p.NHSNumber); err != nil {
			return err
		}
		cur, found, err := lockPlan(ctx, tx, p.ID)
		if err != nil {
			return err
		}
		// A replay is answered before the version check: the retry of an
		// update that succeeded still carries the old If-Match.
		if stored, replayed, err = replay(ctx, tx, p.LA.Code, rec.RequestID); err != nil || replayed {
			return err
		}
		if err := checkWrite(op, cur, found, p.LA.Code, expectVersion); err != nil {
			return err
		}
		if err := checkOverlap(ctx, tx, op, p); err != nil {
			return err
		}
		p.Version = cur.Version + 1
		stored, err = writeVersion(ctx, tx, p, rec.RequestID, rec)
		return err
	})
	return s.written(ctx, op, p.LA.Code, rec.RequestID, stored, replayed, err)
}

// DeletePlan stores the current version of plan id, marked entered in error,
// as a new version. Deleting a deleted plan returns it unchanged, whatever
// version the caller expects, and stores only rec (the LA did ask): that is
// what makes a retried delete succeed, so deletes need no request-id replay
// and record none, as in the SQLite store.
func (s *Store) DeletePlan(ctx context.Context, id, laCode string, expectVersion int, at time.Time, rec cpis.AuditRecord) (cpis.Plan, error) {
	const op = "postgres.DeletePlan"
	var stored cpis.Plan
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, found, err := lockPlan(ctx, tx, id)
		if err != nil {
			return err
		}
		if found && cur.LA.Code == laCode && cur.EnteredInError {
			stored = cur
			_, err := tx.Exec(ctx, insertAudit, auditArgs(rec)...)
			return err
		}
		if expectVersion == 0 {
			expectVersion = cur.Version
		}
		if err := checkWrite(op, cur, found, laCode, expectVersion); err != nil {
			return err
		}
		cur.Version, cur.EnteredInError, cur.LastUpdated = cur.Version+1, true, at
		stored, err = writeVersion(ctx, tx, cur, "", rec)
		return err
	})
	if err != nil {
		return cpis.Plan{}, dbError(op, err)
	}
	return stored, nil
}

// written finishes a write: a request-id clash with a write committed
// meanwhile is answered as a replay; other errors are translated.
func (s *Store) written(ctx context.Context, op, laCode, requestID string, stored cpis.Plan, replayed bool, err error) (cpis.Plan, bool, error) {
	switch {
	case err == nil:
		return stored, replayed, nil
	case uniqueViolation(err, requestIndex):
		prev, ok, rerr := replay(ctx, s.pool, laCode, requestID)
		if rerr == nil && !ok {
			rerr = errors.New("the write that used this request id cannot be found")
		}
		if rerr != nil {
			return cpis.Plan{}, false, dbError(op, rerr)
		}
		return prev, true, nil
	case uniqueViolation(err, versionsPKey):
		return cpis.Plan{}, false, cpis.E(op, cpis.Conflict, "a plan with this id already exists")
	}
	return cpis.Plan{}, false, dbError(op, err)
}

// writeVersion stores p as a new version and as the current one, with its
// audit record, in tx, and returns p as stored. requestID, when not empty,
// marks the version as written by that request, for replays.
func writeVersion(ctx context.Context, tx pgx.Tx, p cpis.Plan, requestID string, rec cpis.AuditRecord) (cpis.Plan, error) {
	var rid *string
	if requestID != "" {
		rid = &requestID
	}
	args := planArgs(p)
	if _, err := tx.Exec(ctx, insertVersion, append(args, rid)...); err != nil {
		return cpis.Plan{}, err
	}
	stored, err := scanPlan(tx.QueryRow(ctx, upsertCurrent, args...))
	if err != nil {
		return cpis.Plan{}, err
	}
	_, err = tx.Exec(ctx, insertAudit, auditArgs(rec)...)
	return stored, err
}

// lockChild serializes, across every process sharing the schema, the
// writes that may add a plan to one NHS number, until tx ends: the overlap
// check that follows then sees every plan committed on that NHS number and
// none can be committed until tx ends. It is a transaction-scoped advisory
// lock keyed by a hash of the schema and the NHS number (lockKey), not a
// constraint: an EXCLUDE constraint on the period would need the btree_gist
// extension, would fail to apply to a database already holding duplicates,
// and would state the rule a second time, in SQL. A hash collision only
// makes writes on two children queue for each other.
func (s *Store) lockChild(ctx context.Context, tx pgx.Tx, nhs cpis.NHSNumber) error {
	_, err := tx.Exec(ctx, lockAdvisory, lockClass, lockKey(childLock+"\x00"+string(nhs), s.schema))
	return err
}

// checkOverlap refuses p if its LA already holds a plan p overlaps
// (store.CheckOverlap). It runs under lockChild.
func checkOverlap(ctx context.Context, tx pgx.Tx, op string, p cpis.Plan) error {
	rows, err := tx.Query(ctx, selectHeld, string(p.NHSNumber))
	if err != nil {
		return err
	}
	held, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cpis.Plan, error) { return scanPlan(r) })
	if err != nil {
		return err
	}
	return store.CheckOverlap(op, p, held)
}

// lockPlan reads the current version of plan id and locks it until tx ends.
func lockPlan(ctx context.Context, tx pgx.Tx, id string) (cpis.Plan, bool, error) {
	p, err := scanPlan(tx.QueryRow(ctx, lockCurrent, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.Plan{}, false, nil
	}
	return p, err == nil, err
}

// replay returns the version stored by the LA's earlier write with this
// request id, if there was one.
func replay(ctx context.Context, q querier, laCode, requestID string) (cpis.Plan, bool, error) {
	if requestID == "" {
		return cpis.Plan{}, false, nil
	}
	p, err := scanPlan(q.QueryRow(ctx, selectReplay, laCode, requestID))
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.Plan{}, false, nil
	}
	return p, err == nil, err
}

// checkWrite applies the contract's refusals, in its order.
func checkWrite(op string, cur cpis.Plan, found bool, laCode string, expectVersion int) error {
	switch {
	case !found:
		return cpis.E(op, cpis.NotFound, "no plan has this id")
	case cur.LA.Code != laCode:
		return cpis.E(op, cpis.ForbiddenUpdate, "only the local authority responsible for the plan may change it")
	case cur.Version != expectVersion:
		return cpis.E(op, cpis.PreconditionFailed, "the plan is not at the version the request expects")
	}
	return nil
}

// Plan returns the current version of plan id.
func (s *Store) Plan(ctx context.Context, id string) (cpis.Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, selectCurrent, id))
	return p, readError("postgres.Plan", err)
}

// PlanVersion returns version v of plan id.
func (s *Store) PlanVersion(ctx context.Context, id string, v int) (cpis.Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, selectVersion, id, v))
	return p, readError("postgres.PlanVersion", err)
}

// PlanHistory returns every version of plan id, newest first.
func (s *Store) PlanHistory(ctx context.Context, id string) ([]cpis.Plan, error) {
	const op = "postgres.PlanHistory"
	plans, err := queryAll(ctx, s, scanPlan, selectVersions, id)
	if err != nil {
		return nil, dbError(op, err)
	}
	if len(plans) == 0 {
		return nil, cpis.E(op, cpis.NotFound, "no plan has this id")
	}
	return plans, nil
}

// readError translates the error of a single-row read: no row is NotFound.
func readError(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.E(op, cpis.NotFound, "no such plan or version")
	}
	return dbError(op, err)
}
