package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Discrepancy reports (store/discrepancies.go, migration 0009). Writes run
// on the one writer, so resolving reads and changes a report with nothing
// in between.

// The columns of a cpis.Discrepancy: the report, in discrepancyArgs'
// order, then its resolution.
const (
	reportCols = `id, nhs_number, reason, note, org_code, reporter_kind, reporter_user_id, reporter_name,
	reporter_role_profile_id, reporter_role_code, reporter_role_name, reporter_org_code, reporter_org_name,
	reporter_activities, reported_at`
	resolutionCols = `resolver_kind, resolver_user_id, resolver_name, resolver_role_profile_id,
	resolver_role_code, resolver_role_name, resolver_org_code, resolver_org_name, resolver_activities, resolved_at`
	discrepancyCols = reportCols + ", " + resolutionCols
)

const (
	sqlInsertDiscrepancy = `INSERT INTO discrepancies (` + reportCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlDiscrepancy = `SELECT ` + discrepancyCols + ` FROM discrepancies WHERE id = ?`
	// sqlDiscrepancies: the organisation, open only, resolved only, the
	// limit. The order is the index's (migration 0009).
	sqlDiscrepancies = `SELECT ` + discrepancyCols + ` FROM discrepancies
		WHERE org_code = ?1 AND (NOT ?2 OR resolved_at IS NULL) AND (NOT ?3 OR resolved_at IS NOT NULL)
		ORDER BY resolved_at IS NOT NULL, reported_at DESC, id DESC LIMIT ?4`
	// sqlResolveDiscrepancy resolves an open report: the resolver, the
	// time, then the id. A resolved report is left as it is.
	sqlResolveDiscrepancy = `UPDATE discrepancies SET resolver_kind = ?, resolver_user_id = ?, resolver_name = ?,
			resolver_role_profile_id = ?, resolver_role_code = ?, resolver_role_name = ?, resolver_org_code = ?,
			resolver_org_name = ?, resolver_activities = ?, resolved_at = ?
		WHERE id = ? AND resolved_at IS NULL
		RETURNING ` + discrepancyCols
)

// errNoDiscrepancy is the NotFound of a call naming no report.
func errNoDiscrepancy(op string) error {
	return cpis.E(op, cpis.NotFound, "no discrepancy report has this id")
}

// CreateDiscrepancy stores a new, open report.
func (s *Store) CreateDiscrepancy(ctx context.Context, d cpis.Discrepancy) error {
	const op = "sqlite.CreateDiscrepancy"
	if err := store.CheckDiscrepancy(op, d); err != nil {
		return err
	}
	a := d.ReportedBy
	acts, err := jsonList(a.Activities)
	if err != nil {
		return fail(op, err)
	}
	return s.write(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, sqlInsertDiscrepancy, d.ID, string(d.NHSNumber), string(d.Reason), d.Note,
			d.OrgCode, string(a.Kind), a.UserID, a.Name, a.RoleProfileID, a.RoleCode, a.RoleName, a.OrgCode,
			a.OrgName, acts, micros(d.ReportedAt))
		if kindOf(err) == cpis.Conflict { // the primary key: nothing else can be violated
			return cpis.E(op, cpis.Conflict, "a discrepancy report with this id is already stored")
		}
		return err
	})
}

// Discrepancy returns report id.
func (s *Store) Discrepancy(ctx context.Context, id string) (cpis.Discrepancy, error) {
	const op = "sqlite.Discrepancy"
	st, err := s.rs.get(ctx, sqlDiscrepancy)
	if err != nil {
		return cpis.Discrepancy{}, fail(op, err)
	}
	d, err := scanDiscrepancy(st.QueryRowContext(ctx, id))
	return d, discrepancyError(op, err)
}

// Discrepancies returns the organisation's reports, open ones first.
func (s *Store) Discrepancies(ctx context.Context, q store.DiscrepancyQuery) ([]cpis.Discrepancy, error) {
	const op = "sqlite.Discrepancies"
	if err := store.CheckDiscrepancyQuery(op, q); err != nil {
		return nil, err
	}
	ds, err := queryAll(ctx, s, scanDiscrepancy, sqlDiscrepancies, q.OrgCode, boolInt(q.Open), boolInt(q.Resolved), q.Limit)
	if err != nil {
		return nil, fail(op, err)
	}
	return ds, nil
}

// ResolveDiscrepancy resolves report id, or returns it as it is if it
// already was.
func (s *Store) ResolveDiscrepancy(ctx context.Context, id string, by cpis.Actor, at time.Time) (cpis.Discrepancy, error) {
	const op = "sqlite.ResolveDiscrepancy"
	if err := store.CheckResolution(op, by, at); err != nil {
		return cpis.Discrepancy{}, err
	}
	acts, err := jsonList(by.Activities)
	if err != nil {
		return cpis.Discrepancy{}, fail(op, err)
	}
	var d cpis.Discrepancy
	err = s.write(ctx, op, func(tx *sql.Tx) error {
		var err error
		d, err = scanDiscrepancy(tx.QueryRowContext(ctx, sqlResolveDiscrepancy, string(by.Kind), by.UserID, by.Name,
			by.RoleProfileID, by.RoleCode, by.RoleName, by.OrgCode, by.OrgName, acts, micros(at), id))
		if errors.Is(err, sql.ErrNoRows) {
			d, err = scanDiscrepancy(tx.QueryRowContext(ctx, sqlDiscrepancy, id))
		}
		return discrepancyError(op, err)
	})
	return d, err
}

// discrepancyError translates the error of a read or write of one report:
// no row is NotFound.
func discrepancyError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return errNoDiscrepancy(op)
	}
	return fail(op, err)
}

// scanDiscrepancy reads one row of discrepancyCols.
func scanDiscrepancy(sc scanner) (cpis.Discrepancy, error) {
	var (
		d                 cpis.Discrepancy
		nhs, reason, kind string
		acts              sql.NullString
		reported          int64
		res               resolverRow
		a                 = &d.ReportedBy
	)
	err := sc.Scan(append([]any{&d.ID, &nhs, &reason, &d.Note, &d.OrgCode, &kind, &a.UserID, &a.Name,
		&a.RoleProfileID, &a.RoleCode, &a.RoleName, &a.OrgCode, &a.OrgName, &acts, &reported}, res.dest()...)...)
	if err != nil {
		return cpis.Discrepancy{}, err
	}
	d.NHSNumber, d.Reason, d.ReportedAt = cpis.NHSNumber(nhs), cpis.DiscrepancyReason(reason), fromMicros(reported)
	a.Kind = cpis.ActorKind(kind)
	if err := unjsonList(acts, &a.Activities); err != nil {
		return cpis.Discrepancy{}, err
	}
	d.ResolvedBy, d.ResolvedAt, err = res.resolution()
	return d, err
}

// resolverRow is a row of resolutionCols as it is scanned: NULL while the
// report is open.
type resolverRow struct {
	kind, userID, name, roleProfileID, roleCode, roleName, orgCode, orgName, activities sql.NullString
	at                                                                                  sql.NullInt64
}

func (r *resolverRow) dest() []any {
	return []any{&r.kind, &r.userID, &r.name, &r.roleProfileID, &r.roleCode, &r.roleName, &r.orgCode, &r.orgName,
		&r.activities, &r.at}
}

// resolution is the resolver and the time, or nil and zero for an open report.
func (r *resolverRow) resolution() (*cpis.Actor, time.Time, error) {
	if !r.at.Valid {
		return nil, time.Time{}, nil
	}
	a := &cpis.Actor{Kind: cpis.ActorKind(r.kind.String), UserID: r.userID.String, Name: r.name.String,
		RoleProfileID: r.roleProfileID.String, RoleCode: r.roleCode.String, RoleName: r.roleName.String,
		OrgCode: r.orgCode.String, OrgName: r.orgName.String}
	return a, fromMicros(r.at.Int64), unjsonList(r.activities, &a.Activities)
}
