package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// dbError wraps err, a driver error or a *cpis.Error, as a *cpis.Error of op,
// choosing its kind by what the caller can do about it. It returns nil for nil.
func dbError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ce *cpis.Error
	if errors.As(err, &ce) {
		return cpis.E(op, err)
	}
	k := driverKind(err)
	if k == cpis.Unavailable {
		return cpis.E(op, k, "the database is unavailable; retry later", err)
	}
	return cpis.E(op, k, err)
}

// driverKind classifies a pgx error. Unavailable is for failures that say
// nothing about the request and may pass on retry: the connection broke or
// could not be made, the server is shutting down, starting or out of
// resources, a timeout or cancellation, or the transaction lost a
// serialization race or a race with the creation of an audit partition.
// Everything else is Other: a bug, or a schema mismatch.
func driverKind(err error) cpis.Kind {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if auditPartitionRace(pgErr) {
			return cpis.Unavailable
		}
		return sqlStateKind(pgErr.Code)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connErr), errors.As(err, &netErr),
		pgconn.Timeout(err), pgconn.SafeToRetry(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE):
		return cpis.Unavailable
	}
	return cpis.Other
}

// unavailableStates are the SQLSTATEs outside the classes below that mean
// "not now" rather than "not this".
var unavailableStates = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"55P03": true, // lock_not_available (lock_timeout)
	"57014": true, // query_canceled (statement_timeout, or cancellation)
	"57P01": true, // admin_shutdown (also pg_terminate_backend)
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now (starting up, in recovery)
	"57P05": true, // idle_session_timeout
	"25006": true, // read_only_sql_transaction: connected to a standby after failover
}

// sqlStateKind classifies a server error by its SQLSTATE.
func sqlStateKind(code string) cpis.Kind {
	if unavailableStates[code] {
		return cpis.Unavailable
	}
	if len(code) < 2 {
		return cpis.Other
	}
	switch code[:2] {
	case "08", // connection_exception
		"53": // insufficient_resources: too_many_connections, disk_full, out_of_memory
		return cpis.Unavailable
	}
	return cpis.Other
}

// auditPartitionRace reports whether e is a row of audit_events failing
// its partition's constraint: PostgreSQL reports check_violation on the
// partition, naming no constraint (a CHECK constraint would be named). It
// happens when a statement routed the row with a partition map that changed
// under it, which createPartition's lock rules out for partitions this
// store makes; should anything else change the map (an operator's ALTER
// TABLE), the same statement run again routes the row afresh and succeeds,
// so it is a reason to retry, not a bug in the request.
func auditPartitionRace(e *pgconn.PgError) bool {
	return e.Code == "23514" && e.ConstraintName == "" &&
		(e.TableName == "audit_events_default" || partitionPattern.MatchString(e.TableName))
}

// uniqueViolation reports whether err is a unique violation of the named
// constraint or index.
func uniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == constraint
}
