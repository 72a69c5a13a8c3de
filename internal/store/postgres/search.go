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
// nhs_number returning a handful of rows, sorted. One row beyond the page is
// fetched to tell whether there are more.
func (s *Store) SearchPlans(ctx context.Context, q store.PlanQuery) (store.PlanPage, error) {
	const op = "postgres.SearchPlans"
	sql, args, err := planSearchSQL(q)
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

// planSearchSQL builds the query for q.
func planSearchSQL(q store.PlanQuery) (string, []any, error) {
	const op = "postgres.planSearchSQL"
	if err := checkPage(q.Offset, q.Limit); err != nil {
		return "", nil, err
	}
	var w where
	if q.NHSNumber != "" {
		w.add("nhs_number = " + w.arg(string(q.NHSNumber)))
	}
	if q.LACode != "" {
		w.add("la_code = " + w.arg(q.LACode))
	}
	if len(q.Types) > 0 {
		types := make([]string, len(q.Types))
		for i, t := range q.Types {
			types[i] = string(t)
		}
		w.add("plan_type = ANY(" + w.arg(types) + ")")
	}
	if len(q.Statuses) > 0 {
		cond, err := w.statuses(q.Statuses, q.Today)
		if err != nil {
			return "", nil, cpis.E(op, err)
		}
		w.add(cond)
	}
	if !q.VisibleOn.IsZero() {
		w.add("NOT entered_in_error AND display_until >= " + w.arg(pgDate(q.VisibleOn)))
	}
	if !q.UpdatedFrom.IsZero() {
		w.add("last_updated >= " + w.arg(q.UpdatedFrom))
	}
	if !q.UpdatedBefore.IsZero() {
		w.add("last_updated < " + w.arg(q.UpdatedBefore))
	}
	order := " ORDER BY last_updated DESC, id DESC"
	if q.Order == store.OldestFirst {
		order = " ORDER BY last_updated, id"
	}
	return `SELECT ` + planColumns + ` FROM plans` + w.sql() + order + w.page(q.Offset, q.Limit+1), w.args, nil
}

// statuses is the condition "the plan's status on today is one of sts",
// computed from the dates as cpis.Plan.StatusOn does.
func (w *where) statuses(sts []cpis.Status, today cpis.Date) (string, error) {
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
			conds = append(conds, "(NOT entered_in_error AND start_date <= "+day+" AND end_date >= "+day+")")
		case cpis.Inactive:
			conds = append(conds, "(NOT entered_in_error AND (start_date > "+day+" OR end_date < "+day+"))")
		case cpis.EnteredInError:
			conds = append(conds, "entered_in_error")
		default:
			return "", cpis.E("postgres.statuses", cpis.Invalid, "a plan status that does not exist")
		}
	}
	return "(" + strings.Join(conds, " OR ") + ")", nil
}

// checkPage refuses paging the contract does not allow, rather than
// silently returning everything or nothing.
func checkPage(offset, limit int) error {
	if offset < 0 || limit < 1 || limit > maxPage {
		return cpis.E("postgres.checkPage", cpis.Invalid, "a page is 1 to 1000 results from a non-negative offset")
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

// page is the LIMIT and OFFSET clause.
func (w *where) page(offset, limit int) string {
	s := " LIMIT " + w.arg(limit)
	if offset > 0 {
		s += " OFFSET " + w.arg(offset)
	}
	return s
}
