package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// auditCols are the columns a cpis.AuditRecord is read from, in scanAudit's order.
const auditCols = `id, recorded, action, interaction, outcome, actor_kind, actor_user_id, actor_name,
	actor_role_profile_id, actor_role_code, actor_role_name, actor_org_code, actor_org_name,
	actor_activities, nhs_number, plan_ids, query, request_id, access, unscheduled, la_codes, source, trace_id`

const (
	sqlInsertAudit = `INSERT INTO audit_events (` + auditCols + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// audit_events_patient_idx answers this in index order; each access is
	// checked against the plans it returned (a JSON array) by the unique
	// index on plans.id, until the limit is reached. Parameters: the NHS
	// number, the reading LA's code twice (empty for health readers), the
	// limit. "? + 0": see pageLimit.
	sqlAccessHistory = `SELECT ` + auditCols + ` FROM audit_events a
		WHERE a.nhs_number = ? AND a.access = 1
			AND EXISTS (SELECT 1 FROM json_each(a.plan_ids) j JOIN plans p ON p.id = j.value
				WHERE p.entered_in_error = 0 AND (? = '' OR p.la_code = ?))
		ORDER BY a.recorded DESC, a.id DESC LIMIT ? + 0`
)

// AppendAudit stores recs in one transaction, through one prepared insert,
// and then sends their ASNs (sendASNs), if they carry any.
func (s *Store) AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error {
	if len(recs) == 0 {
		return nil
	}
	return s.write(ctx, "sqlite.AppendAudit", func(tx *sql.Tx) error {
		if err := s.insertAudit(ctx, tx, recs); err != nil {
			return err
		}
		return sendASNs(ctx, s.boundTo(ctx, tx), recs)
	})
}

// insertAudit adds recs inside a write transaction.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, recs []cpis.AuditRecord) error {
	st := s.txStmt(ctx, tx, sqlInsertAudit)
	defer st.Close() // releases the transaction's binding, not the prepared statement
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

func auditArgs(r cpis.AuditRecord) ([]any, error) {
	acts, err1 := jsonList(r.Actor.Activities)
	plans, err2 := jsonList(r.PlanIDs)
	las, err3 := jsonList(r.LACodes)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	a := r.Actor
	return []any{r.ID, micros(r.Recorded), string(r.Action), r.Interaction, r.Outcome,
		string(a.Kind), a.UserID, a.Name, a.RoleProfileID, a.RoleCode, a.RoleName, a.OrgCode, a.OrgName,
		acts, string(r.Patient), plans, r.Query, r.RequestID, boolInt(r.Access), boolInt(r.Unscheduled), las, r.Source,
		r.TraceID}, nil
}

// jsonList encodes a list as a JSON array, or NULL when it is empty.
func jsonList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func scanAudit(sc scanner) (cpis.AuditRecord, error) {
	var (
		r                   cpis.AuditRecord
		recorded            int64
		action, kind, nhs   string
		acts, plans, las    sql.NullString
		access, unscheduled int
	)
	a := &r.Actor
	err := sc.Scan(&r.ID, &recorded, &action, &r.Interaction, &r.Outcome,
		&kind, &a.UserID, &a.Name, &a.RoleProfileID, &a.RoleCode, &a.RoleName, &a.OrgCode, &a.OrgName,
		&acts, &nhs, &plans, &r.Query, &r.RequestID, &access, &unscheduled, &las, &r.Source, &r.TraceID)
	if err != nil {
		return r, err
	}
	r.Recorded, r.Action, a.Kind, r.Patient = fromMicros(recorded), cpis.AuditAction(action), cpis.ActorKind(kind), cpis.NHSNumber(nhs)
	r.Access, r.Unscheduled = access == 1, unscheduled == 1
	err = errors.Join(unjsonList(acts, &a.Activities), unjsonList(plans, &r.PlanIDs), unjsonList(las, &r.LACodes))
	return r, err
}

func unjsonList(s sql.NullString, l *[]string) error {
	if !s.Valid {
		return nil
	}
	return json.Unmarshal([]byte(s.String), l)
}

// AccessHistory returns up to q.Limit accesses to the NHS number that
// returned a plan the reader may still see, newest first.
func (s *Store) AccessHistory(ctx context.Context, q store.AccessQuery) ([]cpis.AuditRecord, error) {
	const op = "sqlite.AccessHistory"
	if err := store.CheckAccessQuery(op, q); err != nil {
		return nil, err
	}
	recs, err := queryAll(ctx, s, scanAudit, sqlAccessHistory, string(q.NHSNumber), q.LACode, q.LACode, q.Limit)
	if err != nil {
		return nil, fail(op, err)
	}
	return recs, nil
}
