package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Discrepancy reports (store/discrepancies.go, migration 0009). Each call
// is one statement, but for ResolveDiscrepancy of a report already
// resolved, which reads it back in a second statement: under READ
// COMMITTED that one sees the resolution that won.

// discrepanciesPKey is the index a taken report id violates.
const discrepanciesPKey = "discrepancies_pkey"

// discrepancyColumns are the columns of a cpis.Discrepancy, in the order
// of discrepancyArgs (the report) and scanDiscrepancy (all of them).
const (
	reportColumns = `id, nhs_number, reason, note, org_code, reporter_kind, reporter_user_id, reporter_name,
	reporter_role_profile_id, reporter_role_code, reporter_role_name, reporter_org_code, reporter_org_name,
	reporter_activities, reported_at`
	resolutionColumns = `resolver_kind, resolver_user_id, resolver_name, resolver_role_profile_id,
	resolver_role_code, resolver_role_name, resolver_org_code, resolver_org_name, resolver_activities, resolved_at`
	discrepancyColumns = reportColumns + ", " + resolutionColumns
)

const (
	insertDiscrepancy = `INSERT INTO discrepancies (` + reportColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`
	selectDiscrepancy = `SELECT ` + discrepancyColumns + ` FROM discrepancies WHERE id = $1`
	// listDiscrepancies: $1 the organisation, $2 open only, $3 resolved
	// only, $4 the limit. The order is the index's (migration 0009).
	listDiscrepancies = `SELECT ` + discrepancyColumns + ` FROM discrepancies
		WHERE org_code = $1 AND (NOT $2 OR resolved_at IS NULL) AND (NOT $3 OR resolved_at IS NOT NULL)
		ORDER BY resolved_at IS NOT NULL, reported_at DESC, id DESC LIMIT $4`
	// resolveDiscrepancy resolves an open report: $1 the id, $2 to $10 the
	// resolver, $11 the time. A resolved report is left as it is.
	resolveDiscrepancy = `UPDATE discrepancies SET resolver_kind = $2, resolver_user_id = $3, resolver_name = $4,
			resolver_role_profile_id = $5, resolver_role_code = $6, resolver_role_name = $7, resolver_org_code = $8,
			resolver_org_name = $9, resolver_activities = $10, resolved_at = $11
		WHERE id = $1 AND resolved_at IS NULL
		RETURNING ` + discrepancyColumns
)

// CreateDiscrepancy stores a new, open report.
func (s *Store) CreateDiscrepancy(ctx context.Context, d cpis.Discrepancy) error {
	const op = "postgres.CreateDiscrepancy"
	if err := store.CheckDiscrepancy(op, d); err != nil {
		return err
	}
	a := d.ReportedBy
	_, err := s.pool.Exec(ctx, insertDiscrepancy, d.ID, string(d.NHSNumber), string(d.Reason), d.Note, d.OrgCode,
		string(a.Kind), a.UserID, a.Name, a.RoleProfileID, a.RoleCode, a.RoleName, a.OrgCode, a.OrgName,
		nonEmpty(a.Activities), d.ReportedAt)
	if uniqueViolation(err, discrepanciesPKey) {
		return cpis.E(op, cpis.Conflict, "a discrepancy report with this id is already stored")
	}
	return dbError(op, err)
}

// Discrepancy returns report id.
func (s *Store) Discrepancy(ctx context.Context, id string) (cpis.Discrepancy, error) {
	const op = "postgres.Discrepancy"
	d, err := scanDiscrepancy(s.pool.QueryRow(ctx, selectDiscrepancy, id))
	return d, discrepancyError(op, err)
}

// Discrepancies returns the organisation's reports, open ones first.
func (s *Store) Discrepancies(ctx context.Context, q store.DiscrepancyQuery) ([]cpis.Discrepancy, error) {
	const op = "postgres.Discrepancies"
	if err := store.CheckDiscrepancyQuery(op, q); err != nil {
		return nil, err
	}
	ds, err := queryAll(ctx, s, scanDiscrepancy, listDiscrepancies, q.OrgCode, q.Open, q.Resolved, q.Limit)
	if err != nil {
		return nil, dbError(op, err)
	}
	return ds, nil
}

// ResolveDiscrepancy resolves report id, or returns it as it is if it
// already was.
func (s *Store) ResolveDiscrepancy(ctx context.Context, id string, by cpis.Actor, at time.Time) (cpis.Discrepancy, error) {
	const op = "postgres.ResolveDiscrepancy"
	if err := store.CheckResolution(op, by, at); err != nil {
		return cpis.Discrepancy{}, err
	}
	d, err := scanDiscrepancy(s.pool.QueryRow(ctx, resolveDiscrepancy, id, string(by.Kind), by.UserID, by.Name,
		by.RoleProfileID, by.RoleCode, by.RoleName, by.OrgCode, by.OrgName, nonEmpty(by.Activities), at))
	if errors.Is(err, pgx.ErrNoRows) {
		return s.Discrepancy(ctx, id)
	}
	return d, discrepancyError(op, err)
}

// discrepancyError translates the error of a read or write of one report:
// no row is NotFound.
func discrepancyError(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.E(op, cpis.NotFound, "no discrepancy report has this id")
	}
	return dbError(op, err)
}

// scanDiscrepancy reads one row of discrepancyColumns.
func scanDiscrepancy(row pgx.Row) (cpis.Discrepancy, error) {
	var (
		d                 cpis.Discrepancy
		nhs, reason, kind string
		reported          time.Time
		res               resolverRow
		a                 = &d.ReportedBy
	)
	err := row.Scan(append([]any{&d.ID, &nhs, &reason, &d.Note, &d.OrgCode, &kind, &a.UserID, &a.Name,
		&a.RoleProfileID, &a.RoleCode, &a.RoleName, &a.OrgCode, &a.OrgName, &a.Activities, &reported},
		res.dest()...)...)
	if err != nil {
		return cpis.Discrepancy{}, err
	}
	d.NHSNumber, d.Reason, d.ReportedAt = cpis.NHSNumber(nhs), cpis.DiscrepancyReason(reason), reported.UTC()
	a.Kind, a.Activities = cpis.ActorKind(kind), nonEmpty(a.Activities)
	d.ResolvedBy, d.ResolvedAt = res.resolution()
	return d, nil
}

// resolverRow is a row of resolutionColumns as it is scanned: NULL while
// the report is open.
type resolverRow struct {
	kind, userID, name, roleProfileID, roleCode, roleName, orgCode, orgName pgtype.Text
	activities                                                              []string
	at                                                                      pgtype.Timestamptz
}

func (r *resolverRow) dest() []any {
	return []any{&r.kind, &r.userID, &r.name, &r.roleProfileID, &r.roleCode, &r.roleName, &r.orgCode, &r.orgName,
		&r.activities, &r.at}
}

// resolution is the resolver and the time, or nil and zero for an open report.
func (r *resolverRow) resolution() (*cpis.Actor, time.Time) {
	if !r.at.Valid {
		return nil, time.Time{}
	}
	return &cpis.Actor{Kind: cpis.ActorKind(r.kind.String), UserID: r.userID.String, Name: r.name.String,
		RoleProfileID: r.roleProfileID.String, RoleCode: r.roleCode.String, RoleName: r.roleName.String,
		OrgCode: r.orgCode.String, OrgName: r.orgName.String, Activities: nonEmpty(r.activities)}, r.at.Time.UTC()
}
