package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// maxPage is the largest page the contract lets a caller ask for.
const maxPage = 1000

// SearchPlans runs q as one query: for a patient it is an index lookup on
// nhs_number returning a handful of rows, sorted; for an LA, a walk of
// plans_la_code_idx in the query's order from the After key. One row beyond
// the page is fetched to tell whether there are more.
func (s *Store) SearchPlans(ctx context.Context, q store.PlanQuery) (store.PlanPage, error) {
	const op = "postgres.SearchPlans"
	sql, args, err := PlanSearchSQL(q)
	if err != nil {
		return store.PlanPage{}, cpis.E(op, err)
	}
	plans, err := queryAll(ctx, s, scanPlan, sql, args...)
	if err != nil {
		return store.PlanPage{}, dbError(op, err)
	}
	page := store.PlanPage{Plans: plans}
	if len(plans) > q.Limit {
		page.Plans, page.More = plans[:q.Limit], true
	}
	return page, nil
}

// PlanSearchSQL builds the query SearchPlans runs for q. It is exported so
// that a test can check, with EXPLAIN, that a page reads no more than it
// needs.
//
// With AsOf, a plan's version as of then is its current row when that row
// was written at or before AsOf, which is true of all but the few plans
// changed since: so the query is the first rows of the page among the
// current rows written by AsOf (read in index order, as without AsOf),
// sorted together with the versions as of AsOf of the plans changed since,
// each found by its primary key in plan_versions.
func PlanSearchSQL(q store.PlanQuery) (string, []any, error) {
	const op = "postgres.PlanSearchSQL"
	if err := checkPage(q.Limit, q.After != nil && q.After.ID == ""); err != nil {
		return "", nil, err
	}
	order := " ORDER BY last_updated DESC, id DESC"
	if q.Order == store.OldestFirst {
		order = " ORDER BY last_updated, id"
	}
	var w where
	if err := w.plan("", q); err != nil {
		return "", nil, cpis.E(op, err)
	}
	if q.AsOf.IsZero() {
		return `SELECT ` + planColumns + ` FROM plans` + w.sql() + order + w.page(q.Limit+1), w.args, nil
	}
	w.add("last_updated <= " + w.arg(q.AsOf))
	// The unchanged arm has its own order and limit: PostgreSQL 15 merges
	// the arms of a union in order only when an index leads with the sort
	// key, and plans_la_code_idx leads with la_code.
	unchanged := `(SELECT ` + planColumns + ` FROM plans` + w.sql() + order + w.page(q.Limit+1) + `)`
	w.conds = nil
	if err := w.plan("v.", q); err != nil {
		return "", nil, cpis.E(op, err)
	}
	w.current("c.", q)
	w.add("c.last_updated > " + w.arg(q.AsOf))
	// The lateral subquery is a probe of plan_versions_pkey for each plan
	// changed since AsOf, never a scan of plan_versions.
	asOf := `(SELECT x.* FROM plan_versions x WHERE x.id = c.id AND x.last_updated <= ` + w.arg(q.AsOf) +
		` ORDER BY x.version DESC LIMIT 1)`
	sql := `SELECT ` + planColumns + ` FROM (` + unchanged +
		` UNION ALL SELECT ` + qualified("v.", planColumns) + ` FROM plans c CROSS JOIN LATERAL ` + asOf + ` v` + w.sql() +
		`) s` + order + w.page(q.Limit+1)
	return sql, w.args, nil
}

// plan adds the conditions of q on the plan version whose columns are
// prefixed t: every field but AsOf.
func (w *where) plan(t string, q store.PlanQuery) error {
	if q.NHSNumber != "" {
		w.add(t + "nhs_number = " + w.arg(string(q.NHSNumber)))
	}
	if q.LACode != "" {
		w.add(t + "la_code = " + w.arg(q.LACode))
	}
	if len(q.Types) > 0 {
		types := make([]string, len(q.Types))
		for i, typ := range q.Types {
			types[i] = string(typ)
		}
		w.add(t + "plan_type = ANY(" + w.arg(types) + ")")
	}
	if len(q.Statuses) > 0 {
		cond, err := w.statuses(t, q.Statuses, q.Today)
		if err != nil {
			return err
		}
		w.add(cond)
	}
	w.visible(t, q.VisibleOn)
	if !q.UpdatedFrom.IsZero() {
		w.add(t + "last_updated >= " + w.arg(q.UpdatedFrom))
	}
	if !q.UpdatedBefore.IsZero() {
		w.add(t + "last_updated < " + w.arg(q.UpdatedBefore))
	}
	if q.After != nil {
		// The row comparison is the keyset; the plain bound lets an index
		// on last_updated alone (or after la_code) start at the key.
		cmp, bound := "<", "<="
		if q.Order == store.OldestFirst {
			cmp, bound = ">", ">="
		}
		at := w.arg(q.After.LastUpdated)
		w.add(t + "last_updated " + bound + " " + at + " AND (" + t + "last_updated, " + t + "id) " + cmp + " (" + at + ", " + w.arg(q.After.ID) + ")")
	}
	return nil
}

// current adds the conditions of q that must hold for the plan's current
// version too when the search runs as of an earlier instant: who the plan
// is about and belongs to, and whether health users may see it now.
func (w *where) current(t string, q store.PlanQuery) {
	if q.NHSNumber != "" {
		w.add(t + "nhs_number = " + w.arg(string(q.NHSNumber)))
	}
	if q.LACode != "" {
		w.add(t + "la_code = " + w.arg(q.LACode))
	}
	w.visible(t, q.VisibleOn)
}

// visible adds "health users may see the plan on day", when day is set.
func (w *where) visible(t string, day cpis.Date) {
	if !day.IsZero() {
		w.add("NOT " + t + "entered_in_error AND " + t + "display_until >= " + w.arg(pgDate(day)))
	}
}

// qualified prefixes every column of a column list with t.
func qualified(t, columns string) string {
	cols := splitColumns(columns)
	for i, c := range cols {
		cols[i] = t + c
	}
	return strings.Join(cols, ", ")
}

// statuses is the condition "the plan's status on today is one of sts",
// computed from the dates as cpis.Plan.StatusOn does.
func (w *where) statuses(t string, sts []cpis.Status, today cpis.Date) (string, error) {
	if today.IsZero() {
		return "", cpis.E("postgres.statuses", cpis.Invalid, "a search by status needs the day to judge it on")
	}
	day := ""
	var conds []string
	for _, st := range sts {
		if st != cpis.EnteredInError && day == "" {
			day = w.arg(pgDate(today))
		}
		switch st {
		case cpis.Active:
			conds = append(conds, "(NOT "+t+"entered_in_error AND "+t+"start_date <= "+day+" AND "+t+"end_date >= "+day+")")
		case cpis.Inactive:
			conds = append(conds, "(NOT "+t+"entered_in_error AND ("+t+"start_date > "+day+" OR "+t+"end_date < "+day+"))")
		case cpis.EnteredInError:
			conds = append(conds, t+"entered_in_error")
		default:
			return "", cpis.E("postgres.statuses", cpis.Invalid, "a plan status that does not exist")
		}
	}
	return "(" + strings.Join(conds, " OR ") + ")", nil
}

// checkPage refuses paging the contract does not allow, rather than
// silently returning everything or nothing: a limit outside 1..1000, or a
// keyset without an id.
func checkPage(limit int, emptyKey bool) error {
	const op = "postgres.checkPage"
	switch {
	case limit < 1 || limit > maxPage:
		return cpis.E(op, cpis.Invalid, "a page is 1 to 1000 results")
	case emptyKey:
		return cpis.E(op, cpis.Invalid, "a page that starts after a key needs the key's id")
	}
	return nil
}

// where collects the conditions and parameters of a query.
type where struct {
	conds []string
	args  []any
}

// arg adds a parameter and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// add adds a condition, ANDed with the others.
func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

// sql is the WHERE clause, or nothing.
func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page is the LIMIT clause.
func (w *where) page(limit int) string { return " LIMIT " + w.arg(limit) }
