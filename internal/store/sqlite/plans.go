package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// planCols are the columns a cpis.Plan is read from, in scanPlan's order.
const planCols = `id, version, nhs_number, plan_type, start_date, end_date, la_code, la_name,
	emergency_phone, office_phone, birth_date, entered_in_error, last_updated`

// The plan statements. Versions are written to plan_versions, and the
// current one copied whole into plans, in the same transaction.
const (
	sqlPlan          = `SELECT ` + planCols + ` FROM plans WHERE id = ?`
	sqlPlanVersion   = `SELECT ` + planCols + ` FROM plan_versions WHERE id = ? AND version = ?`
	sqlPlanHistory   = `SELECT ` + planCols + ` FROM plan_versions WHERE id = ? ORDER BY version DESC`
	sqlReplay        = `SELECT ` + planCols + ` FROM plan_versions WHERE la_code = ? AND request_id = ?`
	sqlInsertVersion = `INSERT INTO plan_versions (` + planCols + `, display_until, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlPutCurrent = `INSERT OR REPLACE INTO plans (` + planCols + `, display_until)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// One child's plans, in the order of the primary key: a handful of
	// adjacent rows.
	sqlHeld = `SELECT ` + planCols + ` FROM plans WHERE nhs_number = ? ORDER BY id`
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanPlan(sc scanner) (cpis.Plan, error) {
	var (
		p               cpis.Plan
		typ, start, end string
		birth           sql.NullString
		eie             int
		updated         int64
		nhs             string
	)
	err := sc.Scan(&p.ID, &p.Version, &nhs, &typ, &start, &end, &p.LA.Code, &p.LA.Name,
		&p.EmergencyPhone, &p.OfficePhone, &birth, &eie, &updated)
	if err != nil {
		return cpis.Plan{}, err
	}
	p.NHSNumber, p.Type, p.EnteredInError = cpis.NHSNumber(nhs), cpis.PlanType(typ), eie == 1
	p.LastUpdated = fromMicros(updated)
	var ok [3]bool
	p.Start, ok[0] = parseDate(start)
	p.End, ok[1] = parseDate(end)
	p.BirthDate, ok[2] = cpis.Date{}, true
	if birth.Valid {
		p.BirthDate, ok[2] = parseDate(birth.String)
	}
	if !ok[0] || !ok[1] || !ok[2] {
		return cpis.Plan{}, errMalformedDate
	}
	return p, nil
}

// errMalformedDate reports a corrupt row. It is of kind Other, and says
// nothing of the value: a birth date is personal data.
var errMalformedDate = errors.New("a stored date is not YYYY-MM-DD")

// parseDate reads a stored YYYY-MM-DD date.
func parseDate(s string) (cpis.Date, bool) {
	d, err := cpis.ParseDate(s)
	return d, err == nil
}

// planArgs are p's values in planCols order, then its display_until.
func planArgs(p cpis.Plan) []any {
	var birth any // NULL: a UCPP has no date of birth
	if !p.BirthDate.IsZero() {
		birth = p.BirthDate.String()
	}
	return []any{p.ID, p.Version, string(p.NHSNumber), string(p.Type), p.Start.String(), p.End.String(),
		p.LA.Code, p.LA.Name, p.EmergencyPhone, p.OfficePhone, birth, boolInt(p.EnteredInError),
		micros(p.LastUpdated), p.DisplayUntil().String()}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// micros is how instants are stored: microseconds since the epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// CreatePlan stores p as version 1 with rec, or replays an earlier write
// with the same request id by the same LA, or refuses a plan that overlaps
// one its LA holds.
func (s *Store) CreatePlan(ctx context.Context, p cpis.Plan, rec cpis.AuditRecord) (cpis.Plan, bool, error) {
	const op = "sqlite.CreatePlan"
	var stored cpis.Plan
	var replayed bool
	err := s.write(ctx, op, func(tx *sql.Tx) (err error) {
		if stored, replayed, err = s.replay(ctx, tx, p.LA.Code, rec.RequestID); err != nil || replayed {
			return err
		}
		if err := s.checkOverlap(ctx, tx, op, p); err != nil {
			return err
		}
		p.Version = 1
		stored = p
		return s.putVersion(ctx, tx, p, rec.RequestID, rec)
	})
	if err != nil {
		return cpis.Plan{}, false, err
	}
	return stored, replayed, nil
}

// UpdatePlan stores p as version expectVersion+1 with rec, if p's LA owns
// the plan and expectVersion is still current.
func (s *Store) UpdatePlan(ctx context.Context, p cpis.Plan, expectVersion int, rec cpis.AuditRecord) (cpis.Plan, bool, error) {
	const op = "sqlite.UpdatePlan"
	var stored cpis.Plan
	var replayed bool
	err := s.write(ctx, op, func(tx *sql.Tx) (err error) {
		// A retry carries the If-Match of the first attempt, now stale: the
		// replay is answered before the version is checked.
		if stored, replayed, err = s.replay(ctx, tx, p.LA.Code, rec.RequestID); err != nil || replayed {
			return err
		}
		cur, err := s.current(ctx, tx, op, p.ID)
		if err != nil {
			return err
		}
		if err := mayChange(op, cur, p.LA.Code, expectVersion, false); err != nil {
			return err
		}
		if err := s.checkOverlap(ctx, tx, op, p); err != nil {
			return err
		}
		p.Version = cur.Version + 1
		stored = p
		return s.putVersion(ctx, tx, p, rec.RequestID, rec)
	})
	if err != nil {
		return cpis.Plan{}, false, err
	}
	return stored, replayed, nil
}

// DeletePlan marks plan id entered in error as a new version. Deleting a
// deleted plan changes nothing but is still recorded in the audit trail:
// the LA did ask.
func (s *Store) DeletePlan(ctx context.Context, id, laCode string, expectVersion int, at time.Time, rec cpis.AuditRecord) (cpis.Plan, error) {
	const op = "sqlite.DeletePlan"
	var stored cpis.Plan
	err := s.write(ctx, op, func(tx *sql.Tx) error {
		cur, err := s.current(ctx, tx, op, id)
		if err != nil {
			return err
		}
		if cur.EnteredInError && cur.LA.Code == laCode {
			stored = cur
			return s.insertAudit(ctx, tx, []cpis.AuditRecord{rec})
		}
		if err := mayChange(op, cur, laCode, expectVersion, expectVersion == 0); err != nil {
			return err
		}
		cur.Version, cur.EnteredInError, cur.LastUpdated = cur.Version+1, true, at
		stored = cur
		// No replay key: deleting twice is harmless anyway, and a request id
		// reused by a client for a delete must not make it fail.
		return s.putVersion(ctx, tx, cur, "", rec)
	})
	if err != nil {
		return cpis.Plan{}, err
	}
	return stored, nil
}

// mayChange applies the contract's checks, in its order: the plan belongs
// to laCode, then expectVersion is current (unless anyVersion).
func mayChange(op string, cur cpis.Plan, laCode string, expectVersion int, anyVersion bool) error {
	if cur.LA.Code != laCode {
		return cpis.E(op, cpis.ForbiddenUpdate, "only the local authority responsible for the plan may change it")
	}
	if !anyVersion && cur.Version != expectVersion {
		return cpis.E(op, cpis.PreconditionFailed, "the plan has changed since the version given")
	}
	return nil
}

// replay returns the plan version stored by laCode's earlier write with
// requestID, if there was one.
func (s *Store) replay(ctx context.Context, tx *sql.Tx, laCode, requestID string) (cpis.Plan, bool, error) {
	if requestID == "" {
		return cpis.Plan{}, false, nil
	}
	p, err := scanPlan(s.txStmt(ctx, tx, sqlReplay).QueryRowContext(ctx, laCode, requestID))
	switch {
	case err == sql.ErrNoRows:
		return cpis.Plan{}, false, nil
	case err != nil:
		return cpis.Plan{}, false, err
	}
	return p, true, nil
}

// checkOverlap refuses p if its LA already holds a plan p overlaps
// (store.CheckOverlap). The store has one writer, so no other write can
// come between this read and p's.
func (s *Store) checkOverlap(ctx context.Context, tx *sql.Tx, op string, p cpis.Plan) error {
	rows, err := s.txStmt(ctx, tx, sqlHeld).QueryContext(ctx, string(p.NHSNumber))
	if err != nil {
		return err
	}
	defer rows.Close()
	var held []cpis.Plan
	for rows.Next() {
		h, err := scanPlan(rows)
		if err != nil {
			return err
		}
		held = append(held, h)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return store.CheckOverlap(op, p, held)
}

// current reads the current version of plan id inside the write.
func (s *Store) current(ctx context.Context, tx *sql.Tx, op, id string) (cpis.Plan, error) {
	p, err := scanPlan(s.txStmt(ctx, tx, sqlPlan).QueryRowContext(ctx, id))
	if err == sql.ErrNoRows {
		return cpis.Plan{}, cpis.E(op, cpis.NotFound, "no plan with this id")
	}
	return p, err
}

// putVersion writes p as a new version and as the current one, with rec.
func (s *Store) putVersion(ctx context.Context, tx *sql.Tx, p cpis.Plan, requestID string, rec cpis.AuditRecord) error {
	args := planArgs(p)
	var rid any // NULL: no replay key
	if requestID != "" {
		rid = requestID
	}
	if _, err := s.txStmt(ctx, tx, sqlInsertVersion).ExecContext(ctx, append(args, rid)...); err != nil {
		return err
	}
	if _, err := s.txStmt(ctx, tx, sqlPutCurrent).ExecContext(ctx, args...); err != nil {
		return err
	}
	return s.insertAudit(ctx, tx, []cpis.AuditRecord{rec})
}

// Plan returns the current version of plan id.
func (s *Store) Plan(ctx context.Context, id string) (cpis.Plan, error) {
	return s.onePlan(ctx, "sqlite.Plan", sqlPlan, id)
}

// PlanVersion returns version v of plan id.
func (s *Store) PlanVersion(ctx context.Context, id string, v int) (cpis.Plan, error) {
	return s.onePlan(ctx, "sqlite.PlanVersion", sqlPlanVersion, id, v)
}

func (s *Store) onePlan(ctx context.Context, op, query string, args ...any) (cpis.Plan, error) {
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return cpis.Plan{}, fail(op, err)
	}
	p, err := scanPlan(st.QueryRowContext(ctx, args...))
	if err == sql.ErrNoRows {
		return cpis.Plan{}, cpis.E(op, cpis.NotFound, "no such plan or version")
	}
	if err != nil {
		return cpis.Plan{}, fail(op, err)
	}
	return p, nil
}

// PlanHistory returns every version of plan id, newest first.
func (s *Store) PlanHistory(ctx context.Context, id string) ([]cpis.Plan, error) {
	const op = "sqlite.PlanHistory"
	plans, err := queryAll(ctx, s, scanPlan, sqlPlanHistory, id)
	if err != nil {
		return nil, fail(op, err)
	}
	if len(plans) == 0 {
		return nil, cpis.E(op, cpis.NotFound, "no plan with this id")
	}
	return plans, nil
}

// queryAll runs a read statement on the readers and scans every row.
func queryAll[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	st, err := s.rs.get(ctx, query)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
