package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// planColumns are the columns of plans and plan_versions that make a
// cpis.Plan, in the order of planArgs and scanPlan.
const planColumns = `id, version, nhs_number, plan_type, start_date, end_date, la_code, la_name,
	emergency_phone, office_phone, birth_date, entered_in_error, last_updated, la_reference`

// planArgs are p's values for planColumns followed by display_until.
func planArgs(p cpis.Plan) []any {
	return []any{
		p.ID, p.Version, string(p.NHSNumber), string(p.Type), pgDate(p.Start), pgDate(p.End),
		p.LA.Code, p.LA.Name, p.EmergencyPhone, p.OfficePhone, pgDate(p.BirthDate),
		p.EnteredInError, p.LastUpdated, p.Reference, pgDate(p.DisplayUntil()),
	}
}

// scanPlan reads one row of planColumns.
func scanPlan(row pgx.Row) (cpis.Plan, error) { return scanPlanAfter(row) }

// scanPlanAfter reads one row of planColumns after the columns that lead
// are the destinations of.
func scanPlanAfter(row pgx.Row, lead ...any) (cpis.Plan, error) {
	var (
		p                 cpis.Plan
		nhs, typ          string
		start, end, birth pgtype.Date
		updated           time.Time
	)
	err := row.Scan(append(lead, &p.ID, &p.Version, &nhs, &typ, &start, &end, &p.LA.Code, &p.LA.Name,
		&p.EmergencyPhone, &p.OfficePhone, &birth, &p.EnteredInError, &updated, &p.Reference)...)
	if err != nil {
		return cpis.Plan{}, err
	}
	p.NHSNumber, p.Type = cpis.NHSNumber(nhs), cpis.PlanType(typ)
	p.Start, p.End, p.BirthDate = fromPgDate(start), fromPgDate(end), fromPgDate(birth)
	p.LastUpdated = updated.UTC()
	return p, nil
}

// queryAll runs a query and scans every row with scan; never nil.
func queryAll[T any](ctx context.Context, s *Store, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if out == nil {
		out = []T{}
	}
	return out, err
}

// pgDate is d as a DATE parameter; the zero Date is NULL.
func pgDate(d cpis.Date) pgtype.Date {
	if d.IsZero() {
		return pgtype.Date{}
	}
	return pgtype.Date{Time: time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC), Valid: true}
}

// fromPgDate is the calendar date of a DATE value; NULL is the zero Date.
func fromPgDate(d pgtype.Date) cpis.Date {
	if !d.Valid {
		return cpis.Date{}
	}
	return cpis.DateOf(d.Time)
}

// auditColumnList is the columns of audit_events, in the order of auditArgs
// and scanAudit.
const auditColumnList = "id, recorded, action, interaction, outcome, " +
	"actor_kind, actor_user_id, actor_name, actor_role_profile_id, actor_role_code, " +
	"actor_role_name, actor_org_code, actor_org_name, actor_activities, " +
	"nhs_number, plan_ids, query, request_id, access, unscheduled, la_codes, source, trace_id"

// auditColumns is auditColumnList as COPY wants it.
var auditColumns = strings.Split(auditColumnList, ", ")

// auditArgs are r's values for auditColumns. Nil slices become NULL and empty
// ones empty arrays, so that a record reads back exactly as written.
func auditArgs(r cpis.AuditRecord) []any {
	a := r.Actor
	return []any{
		r.ID, r.Recorded, string(r.Action), r.Interaction, r.Outcome,
		string(a.Kind), a.UserID, a.Name, a.RoleProfileID, a.RoleCode,
		a.RoleName, a.OrgCode, a.OrgName, a.Activities,
		string(r.Patient), r.PlanIDs, r.Query, r.RequestID, r.Access, r.Unscheduled, r.LACodes, r.Source,
		r.TraceID,
	}
}

// scanAudit reads one row of auditColumns.
func scanAudit(row pgx.Row) (cpis.AuditRecord, error) {
	var (
		r                 cpis.AuditRecord
		action, kind, nhs string
		recorded          time.Time
	)
	a := &r.Actor
	err := row.Scan(&r.ID, &recorded, &action, &r.Interaction, &r.Outcome,
		&kind, &a.UserID, &a.Name, &a.RoleProfileID, &a.RoleCode,
		&a.RoleName, &a.OrgCode, &a.OrgName, &a.Activities,
		&nhs, &r.PlanIDs, &r.Query, &r.RequestID, &r.Access, &r.Unscheduled, &r.LACodes, &r.Source,
		&r.TraceID)
	if err != nil {
		return cpis.AuditRecord{}, err
	}
	r.Recorded = recorded.UTC()
	r.Action, a.Kind, r.Patient = cpis.AuditAction(action), cpis.ActorKind(kind), cpis.NHSNumber(nhs)
	return r, nil
}
