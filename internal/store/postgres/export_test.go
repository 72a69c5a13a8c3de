package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// Internals that the external tests (package postgres_test, which may
// import pgtest without an import cycle) need to see.
var (
	AuditColumns = auditColumns
	AuditArgs    = auditArgs
	DriverKind   = driverKind
	LockKey      = lockKey
)

// Pool returns the store's connection pool, for tests that look under it.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// PlanArgs are a plan's values for the plans table's columns, for seeding.
var PlanArgs = planArgs

// The look-ups of a write transaction, for EXPLAIN.
const (
	TxByReference = txByReference
	TxByDigest    = txByDigest
	TxChildPlans  = txChildPlans
	TxRemove      = txRemove
	WriteSettings = writeSettings
)

// SetBeforeCommit sets the function WriteTx.Commit calls between logging
// the transaction's events and committing, while it holds the event log's
// lock. Set it before the store is used.
func (s *Store) SetBeforeCommit(f func()) { s.beforeCommit = f }

// AppendASNs is the statement that logs ASNs, for EXPLAIN.
var AppendASNs = appendASNs
