package sqlite

import (
	"context"
	"slices"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// pageLimit ends a paged query. "? + 0" rather than "?": SQLite reads a bare
// LIMIT parameter when planning, so binding a new value would make it
// re-prepare the statement on every run (measured: 53 against 20 µs a search).
const pageLimit = ` LIMIT ? + 0`

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

// SearchPlans returns a page of the plans matching q.
func (s *Store) SearchPlans(ctx context.Context, q store.PlanQuery) (store.PlanPage, error) {
	const op = "sqlite.SearchPlans"
	if err := checkPage(op, q.Limit, q.After != nil && q.After.ID == ""); err != nil {
		return store.PlanPage{}, err
	}
	query, args, ok, err := planSearchSQL(op, q)
	if err != nil {
		return store.PlanPage{}, err
	}
	if !ok { // asks only for types no plan can have
		return store.PlanPage{Plans: []cpis.Plan{}}, nil
	}
	// One row more than the page tells whether there is a next page.
	plans, err := queryAll(ctx, s, scanPlan, query, append(args, q.Limit+1)...)
	if err != nil {
		return store.PlanPage{}, fail(op, err)
	}
	page := store.PlanPage{Plans: plans, More: len(plans) > q.Limit}
	if page.More {
		page.Plans = plans[:q.Limit]
	}
	return page, nil
}

// planSearchSQL builds the query for q, without its LIMIT argument. ok is false when q asks only for types that do not exist.
//
// With AsOf, a plan's version as of then is its current row when that row
// was written at or before AsOf, which is true of all but the few plans
// changed since: so the query is the current rows written by AsOf merged
// with the versions as of AsOf of the plans changed since, each found by
// its primary key in plan_versions. SQLite runs an ORDER BY on a compound
// SELECT as a merge of its arms, each in its own order.
func planSearchSQL(op string, q store.PlanQuery) (query string, args []any, ok bool, err error) {
	order := " ORDER BY last_updated DESC, id DESC"
	if q.Order == store.OldestFirst {
		order = " ORDER BY last_updated ASC, id ASC"
	}
	var w where
	if ok, err := w.plan(op, "", q); !ok || err != nil {
		return "", nil, ok, err
	}
	if q.AsOf.IsZero() {
		return `SELECT ` + planCols + ` FROM plans` + w.String() + order + pageLimit, w.args, true, nil
	}
	w.add("last_updated <= ?", micros(q.AsOf))
	var c where
	c.plan(op, "v.", q) // cannot fail where the first arm did not
	c.current("c.", q)
	c.add("c.last_updated > ?", micros(q.AsOf))
	c.add("v.version = (SELECT MAX(x.version) FROM plan_versions x WHERE x.id = c.id AND x.last_updated <= ?)", micros(q.AsOf))
	query = `SELECT ` + planCols + ` FROM plans` + w.String() +
		` UNION ALL SELECT ` + qualified("v.", planCols) + ` FROM plans c JOIN plan_versions v ON v.id = c.id` + c.String() +
		order + pageLimit
	return query, append(w.args, c.args...), true, nil
}

// checkPage refuses paging the contract does not allow: a limit outside
// 1..1000, or a key without an id.
func checkPage(op string, limit int, emptyKey bool) error {
	switch {
	case limit < 1 || limit > maxPage:
		return cpis.E(op, cpis.Invalid, "a page needs a limit from 1 to 1000")
	case emptyKey:
		return cpis.E(op, cpis.Invalid, "a page that starts after a key needs the key's id")
	}
	return nil
}

// plan adds the conditions of q, but AsOf, on the plan version whose
// columns are prefixed t. The SQL text depends only on which fields are set
// (and which of the few types and statuses are asked for), so its prepared
// statements are few and reused. ok is false when q asks only for types
// that do not exist; a status that does not exist is Invalid.
func (w *where) plan(op, t string, q store.PlanQuery) (ok bool, err error) {
	if q.NHSNumber != "" {
		w.add(t+"nhs_number = ?", string(q.NHSNumber))
	}
	if q.LACode != "" {
		w.add(t+"la_code = ?", q.LACode)
	}
	if len(q.Types) > 0 {
		var types []any
		for _, typ := range cpis.PlanTypes { // a fixed order keeps the SQL text canonical
			if slices.Contains(q.Types, typ) {
				types = append(types, string(typ))
			}
		}
		if len(types) == 0 {
			return false, nil
		}
		w.add(t+"plan_type IN (?"+strings.Repeat(", ?", len(types)-1)+")", types...)
	}
	if len(q.Statuses) > 0 {
		if q.Today.IsZero() {
			return false, cpis.E(op, cpis.Invalid, "a search by status needs the day it is judged on")
		}
		for _, st := range q.Statuses {
			if st != cpis.Active && st != cpis.Inactive && st != cpis.EnteredInError {
				return false, cpis.E(op, cpis.Invalid, "a plan status that does not exist")
			}
		}
		w.statuses(t, q.Statuses, q.Today.String())
	}
	w.visible(t, q.VisibleOn)
	if !q.UpdatedFrom.IsZero() {
		w.add(t+"last_updated >= ?", micros(q.UpdatedFrom))
	}
	if !q.UpdatedBefore.IsZero() {
		w.add(t+"last_updated < ?", micros(q.UpdatedBefore))
	}
	if q.After != nil {
		// The row value is the keyset; the plain bound lets the planner
		// start an index on last_updated at the key.
		cmp, bound := "<", "<="
		if q.Order == store.OldestFirst {
			cmp, bound = ">", ">="
		}
		at := micros(q.After.LastUpdated)
		w.add(t+"last_updated "+bound+" ? AND ("+t+"last_updated, "+t+"id) "+cmp+" (?, ?)", at, at, q.After.ID)
	}
	return true, nil
}

// current adds the conditions of q that must hold for the plan's current
// version too when the search runs as of an earlier instant: who the plan
// is about and belongs to, and whether health users may see it now.
func (w *where) current(t string, q store.PlanQuery) {
	if q.NHSNumber != "" {
		w.add(t+"nhs_number = ?", string(q.NHSNumber))
	}
	if q.LACode != "" {
		w.add(t+"la_code = ?", q.LACode)
	}
	w.visible(t, q.VisibleOn)
}

// visible adds "health users may see the plan on day", when day is set.
func (w *where) visible(t string, day cpis.Date) {
	if !day.IsZero() {
		w.add(t+"entered_in_error = 0 AND "+t+"display_until >= ?", day.String())
	}
}

// qualified prefixes every column of a column list with t.
func qualified(t, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = t + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// statuses adds the condition for plans whose status on today is one of
// statuses, computed from the dates (cpis.Plan.StatusOn): a status is never
// stored, because it changes with the day. Every one of statuses exists
// (plan checked).
func (w *where) statuses(t string, statuses []cpis.Status, today string) {
	var ors []string
	var args []any
	if slices.Contains(statuses, cpis.Active) {
		ors = append(ors, "("+t+"entered_in_error = 0 AND "+t+"start_date <= ? AND "+t+"end_date >= ?)")
		args = append(args, today, today)
	}
	if slices.Contains(statuses, cpis.Inactive) {
		ors = append(ors, "("+t+"entered_in_error = 0 AND ("+t+"start_date > ? OR "+t+"end_date < ?))")
		args = append(args, today, today)
	}
	if slices.Contains(statuses, cpis.EnteredInError) {
		ors = append(ors, t+"entered_in_error = 1")
	}
	w.add("("+strings.Join(ors, " OR ")+")", args...)
}

// SearchAudit returns the audit records matching q, newest first.
func (s *Store) SearchAudit(ctx context.Context, q store.AuditQuery) ([]cpis.AuditRecord, error) {
	const op = "sqlite.SearchAudit"
	if err := checkPage(op, q.Limit, q.Before != nil && q.Before.ID == ""); err != nil {
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
	if q.Before != nil {
		// The plain bound lets the planner start an index on recorded at the key.
		at := micros(q.Before.Recorded)
		w.add("recorded <= ? AND (recorded, id) < (?, ?)", at, at, q.Before.ID)
	}
	query := `SELECT ` + auditCols + ` FROM audit_events` + w.String() +
		` ORDER BY recorded DESC, id DESC` + pageLimit
	recs, err := queryAll(ctx, s, scanAudit, query, append(w.args, q.Limit)...)
	if err != nil {
		return nil, fail(op, err)
	}
	return recs, nil
}
