package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
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
)

// CreatePlan stores p as version 1 with its audit record, or answers a
// replayed request id with the version its first write stored. Two
// concurrent requests with one request id cannot both write: the second
// fails on the request-id index and is answered as a replay.
func (s *Store) CreatePlan(ctx context.Context, p cpis.Plan, rec cpis.AuditRecord) (cpis.Plan, bool, error) {
	const op = "postgres.CreatePlan"
	p.Version = 1
	var stored cpis.Plan
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		stored, err = writeVersion(ctx, tx, p, rec.RequestID, rec)
		return err
	})
	return s.written(ctx, op, p.LA.Code, rec.RequestID, stored, false, err)
}

// UpdatePlan stores p as version expectVersion+1. The current row is locked
// first, so concurrent writers of one plan queue: the first wins and the
// others then see a version other than the one they expect.
func (s *Store) UpdatePlan(ctx context.Context, p cpis.Plan, expectVersion int, rec cpis.AuditRecord) (cpis.Plan, bool, error) {
	const op = "postgres.UpdatePlan"
	var stored cpis.Plan
	replayed := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
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
