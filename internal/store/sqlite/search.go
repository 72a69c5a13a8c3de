package sqlite

import (
	"context"
	"slices"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// limitOffset ends a paged query. "? + 0" rather than "?": SQLite reads a
// bare LIMIT parameter when planning, so binding a new value would make it
// re-prepare the statement on every run (measured: 53 against 20 µs a search).
const limitOffset = ` LIMIT ? + 0 OFFSET ? + 0`

// maxPage is the largest page a search returns (store.PlanQuery.Limit).
const maxPage = 1000

// where builds a WHERE clause and its arguments, one condition at a time.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// SearchPlans returns a page of the current plans matching q.
func (s *Store) SearchPlans(ctx context.Context, q store.PlanQuery) (store.PlanPage, error) {
	const op = "sqlite.SearchPlans"
	if err := checkPage(op, q.Offset, q.Limit); err != nil {
		return store.PlanPage{}, err
	}
	w, ok, err := planWhere(op, q)
	if err != nil {
		return store.PlanPage{}, err
	}
	if !ok { // asks only for types no plan can have
		return store.PlanPage{Plans: []cpis.Plan{}}, nil
	}
	order := " ORDER BY last_updated DESC, id DESC"
	if q.Order == store.OldestFirst {
		order = " ORDER BY last_updated ASC, id ASC"
	}
	// One row more than the page tells whether there is a next page.
	query := `SELECT ` + planCols + ` FROM plans` + w.String() + order + limitOffset
	plans, err := queryAll(ctx, s, scanPlan, query, append(w.args, q.Limit+1, q.Offset)...)
	if err != nil {
		return store.PlanPage{}, fail(op, err)
	}
	page := store.PlanPage{Plans: plans, More: len(plans) > q.Limit}
	if page.More {
		page.Plans = plans[:q.Limit]
	}
	return page, nil
}

func checkPage(op string, offset, limit int) error {
	if limit < 1 || limit > maxPage || offset < 0 {
		return cpis.E(op, cpis.Invalid, "a page needs a limit from 1 to 1000 and an offset of 0 or more")
	}
	return nil
}

// planWhere turns q into conditions. The SQL text depends only on which
// fields are set (and which of the few types and statuses are asked for),
// so its prepared statements are few and reused. ok is false when q asks
// only for types that do not exist; a status that does not exist is Invalid.
func planWhere(op string, q store.PlanQuery) (w where, ok bool, err error) {
	if q.NHSNumber != "" {
		w.add("nhs_number = ?", string(q.NHSNumber))
	}
	if q.LACode != "" {
		w.add("la_code = ?", q.LACode)
	}
	if len(q.Types) > 0 {
		var types []any
		for _, t := range cpis.PlanTypes { // a fixed order keeps the SQL text canonical
			if slices.Contains(q.Types, t) {
				types = append(types, string(t))
			}
		}
		if len(types) == 0 {
			return w, false, nil
		}
		w.add("plan_type IN (?"+strings.Repeat(", ?", len(types)-1)+")", types...)
	}
	if len(q.Statuses) > 0 {
		if q.Today.IsZero() {
			return w, false, cpis.E(op, cpis.Invalid, "a search by status needs the day it is judged on")
		}
		for _, st := range q.Statuses {
			if st != cpis.Active && st != cpis.Inactive && st != cpis.EnteredInError {
				return w, false, cpis.E(op, cpis.Invalid, "a plan status that does not exist")
			}
		}
		statusWhere(&w, q.Statuses, q.Today.String())
	}
	if !q.VisibleOn.IsZero() {
		w.add("entered_in_error = 0 AND display_until >= ?", q.VisibleOn.String())
	}
	if !q.UpdatedFrom.IsZero() {
		w.add("last_updated >= ?", micros(q.UpdatedFrom))
	}
	if !q.UpdatedBefore.IsZero() {
		w.add("last_updated < ?", micros(q.UpdatedBefore))
	}
	return w, true, nil
}

// statusWhere adds the condition for plans whose status on today is one of
// statuses, computed from the dates (cpis.Plan.StatusOn): a status is never
// stored, because it changes with the day. Every one of statuses exists
// (planWhere checked).
func statusWhere(w *where, statuses []cpis.Status, today string) {
	var ors []string
	var args []any
	if slices.Contains(statuses, cpis.Active) {
		ors = append(ors, "(entered_in_error = 0 AND start_date <= ? AND end_date >= ?)")
		args = append(args, today, today)
	}
	if slices.Contains(statuses, cpis.Inactive) {
		ors = append(ors, "(entered_in_error = 0 AND (start_date > ? OR end_date < ?))")
		args = append(args, today, today)
	}
	if slices.Contains(statuses, cpis.EnteredInError) {
		ors = append(ors, "entered_in_error = 1")
	}
	w.add("("+strings.Join(ors, " OR ")+")", args...)
}

// SearchAudit returns the audit records matching q, newest first.
func (s *Store) SearchAudit(ctx context.Context, q store.AuditQuery) ([]cpis.AuditRecord, error) {
	const op = "sqlite.SearchAudit"
	if err := checkPage(op, q.Offset, q.Limit); err != nil {
		return nil, err
	}
	var w where
	if q.Patient != "" {
		w.add("nhs_number = ?", string(q.Patient))
	}
	if q.OrgCode != "" {
		w.add("actor_org_code = ?", q.OrgCode)
	}
	if q.ActorUserID != "" {
		w.add("actor_user_id = ?", q.ActorUserID)
	}
	if !q.RecordedFrom.IsZero() {
		w.add("recorded >= ?", micros(q.RecordedFrom))
	}
	if !q.RecordedBefore.IsZero() {
		w.add("recorded < ?", micros(q.RecordedBefore))
	}
	if q.AccessOnly {
		w.add("access = 1")
	}
	query := `SELECT ` + auditCols + ` FROM audit_events` + w.String() +
		` ORDER BY recorded DESC, id DESC` + limitOffset
	recs, err := queryAll(ctx, s, scanAudit, query, append(w.args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, fail(op, err)
	}
	return recs, nil
}
