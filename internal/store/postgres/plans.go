package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// The statements of plan reads outside a write transaction.
const (
	selectCurrent  = `SELECT ` + planColumns + ` FROM plans WHERE id = $1`
	selectVersion  = `SELECT ` + planColumns + ` FROM plan_versions WHERE id = $1 AND version = $2`
	selectVersions = `SELECT ` + planColumns + ` FROM plan_versions WHERE id = $1 ORDER BY version DESC`
)

// Plan returns the current version of plan id.
func (s *Store) Plan(ctx context.Context, id string) (cpis.Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, selectCurrent, id))
	return p, readError("postgres.Plan", err)
}

// PlanVersion returns version v of plan id.
func (s *Store) PlanVersion(ctx context.Context, id string, v int) (cpis.Plan, error) {
	p, err := scanPlan(s.pool.QueryRow(ctx, selectVersion, id, v))
	return p, readError("postgres.PlanVersion", err)
}

// PlanHistory returns every version of plan id, newest first.
func (s *Store) PlanHistory(ctx context.Context, id string) ([]cpis.Plan, error) {
	const op = "postgres.PlanHistory"
	plans, err := queryAll(ctx, s, scanPlan, selectVersions, id)
	if err != nil {
		return nil, dbError(op, err)
	}
	if len(plans) == 0 {
		return nil, cpis.E(op, cpis.NotFound, "no plan has this id")
	}
	return plans, nil
}

// readError translates the error of a single-row read: no row is NotFound.
func readError(op string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cpis.E(op, cpis.NotFound, "no such plan or version")
	}
	return dbError(op, err)
}
