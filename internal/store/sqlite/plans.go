package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// planCols are the columns a cpis.Plan is read from, in scanPlan's order.
const planCols = `id, version, nhs_number, plan_type, start_date, end_date, la_code, la_name,
	emergency_phone, office_phone, birth_date, entered_in_error, last_updated, la_reference`

// The plan reads outside write transactions.
const (
	sqlPlan        = `SELECT ` + planCols + ` FROM plans WHERE id = ?`
	sqlPlanVersion = `SELECT ` + planCols + ` FROM plan_versions WHERE id = ? AND version = ?`
	sqlPlanHistory = `SELECT ` + planCols + ` FROM plan_versions WHERE id = ? ORDER BY version DESC`
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanPlan reads one row of planCols.
func scanPlan(sc scanner) (cpis.Plan, error) { return scanPlanAfter(sc) }

// scanPlanAfter reads one row of planCols after the columns that lead are
// the destinations of.
func scanPlanAfter(sc scanner, lead ...any) (cpis.Plan, error) {
	var (
		p               cpis.Plan
		typ, start, end string
		birth           sql.NullString
		eie             int
		updated         int64
		nhs             string
	)
	err := sc.Scan(append(lead, &p.ID, &p.Version, &nhs, &typ, &start, &end, &p.LA.Code, &p.LA.Name,
		&p.EmergencyPhone, &p.OfficePhone, &birth, &eie, &updated, &p.Reference)...)
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
func planArgs(p cpis.Plan) []any { return appendPlanArgs(make([]any, 0, 16), p) }

// appendPlanArgs appends planArgs(p) to dst.
func appendPlanArgs(dst []any, p cpis.Plan) []any {
	var birth any // NULL: a UCPP has no date of birth
	if !p.BirthDate.IsZero() {
		birth = p.BirthDate.String()
	}
	return append(dst, p.ID, p.Version, string(p.NHSNumber), string(p.Type), p.Start.String(), p.End.String(),
		p.LA.Code, p.LA.Name, p.EmergencyPhone, p.OfficePhone, birth, boolInt(p.EnteredInError),
		micros(p.LastUpdated), p.Reference, p.DisplayUntil().String())
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
