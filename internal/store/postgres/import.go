package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

var _ store.Importer = (*Store)(nil)

// importColumns are the columns ImportPlans copies into both plans and
// plan_versions, in planArgs order; plan_versions.request_id stays NULL.
var importColumns = append(splitColumns(planColumns), "display_until")

// splitColumns turns a column list as written in SQL into names.
func splitColumns(list string) []string {
	cols := strings.Split(list, ",")
	for i, c := range cols {
		cols[i] = strings.TrimSpace(c)
	}
	return cols
}

// ImportPlans stores plans as version 1 each with two COPYs, into
// plan_versions and plans, and logs their events with one statement, in
// one transaction. The events' statement takes the event log's lock, so
// it comes last: other writers of events wait for it and the commit only.
func (s *Store) ImportPlans(ctx context.Context, plans []cpis.Plan) error {
	const op = "postgres.ImportPlans"
	if err := store.CheckImport(op, plans); err != nil {
		return err
	}
	if len(plans) == 0 {
		return nil
	}
	rows := func() pgx.CopyFromSource {
		return pgx.CopyFromSlice(len(plans), func(i int) ([]any, error) {
			p := plans[i]
			p.Version = 1
			return planArgs(p), nil
		})
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, table := range []string{"plan_versions", "plans"} {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, importColumns, rows()); err != nil {
				return err
			}
		}
		var events planEvents
		for _, p := range plans {
			p.Version = 1
			events.add(p)
		}
		_, err := tx.Exec(ctx, appendPlanEvents, events.args()...)
		return err
	})
	switch {
	case uniqueViolation(err, versionsPKey):
		return cpis.E(op, cpis.Conflict, "a plan with this id already exists")
	case uniqueViolation(err, referenceIndex):
		return cpis.E(op, cpis.Conflict, "two of a local authority's plans not entered in error would hold one reference")
	}
	return dbError(op, err)
}
