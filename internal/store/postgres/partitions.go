package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultAuditMonthsAhead is how many months after the current one Migrate
// creates audit partitions for. The server should call EnsureAuditPartitions
// with it at start and then periodically, so a partition always exists well
// before its month begins.
const DefaultAuditMonthsAhead = 3

// partitionLockTimeout bounds how long partition maintenance waits for a
// table lock. Without it, a lock request queued behind a long audit query
// would hold up every request queued behind it in turn; with it, the
// maintenance fails (Unavailable) and is retried at its next run.
const partitionLockTimeout = "SET LOCAL lock_timeout = '5s'"

// database is a pool or a single connection.
type database interface {
	querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// partitionName is the name of the audit partition of the month starting at m.
func partitionName(m time.Time) string {
	return fmt.Sprintf("audit_events_y%04dm%02d", m.Year(), int(m.Month()))
}

// partitionPattern matches the names partitionName gives.
var partitionPattern = regexp.MustCompile(`^audit_events_y(\d{4})m(\d{2})$`)

// monthStart is the first instant, in UTC, of t's month in UTC. Partitions
// are UTC months, so that their bounds do not move with summer time.
func monthStart(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// EnsureAuditPartitions makes sure the audit partitions of now's month (UTC)
// and the monthsAhead after it exist. It is idempotent and safe to run from
// several processes at once. Records that already landed in the default
// partition for such a month are moved into the new partition.
func (s *Store) EnsureAuditPartitions(ctx context.Context, now time.Time, monthsAhead int) error {
	return dbError("postgres.EnsureAuditPartitions", ensurePartitions(ctx, s.pool, now, monthsAhead))
}

func ensurePartitions(ctx context.Context, db database, now time.Time, monthsAhead int) error {
	existing, err := auditPartitions(ctx, db)
	if err != nil {
		return err
	}
	first := monthStart(now)
	for i := 0; i <= monthsAhead; i++ {
		m := first.AddDate(0, i, 0)
		if _, ok := existing[partitionName(m)]; ok {
			continue
		}
		if err := createPartition(ctx, db, m); err != nil {
			return fmt.Errorf("creating the audit partition of %s: %w", m.Format("2006-01"), err)
		}
	}
	return nil
}

// createPartition creates the partition of the month starting at m, unless
// another process did first. It builds the table apart, moves into it any
// rows of that month from the default partition and attaches it, all in one
// transaction under a SHARE ROW EXCLUSIVE lock on audit_events.
//
// That lock conflicts with the ROW EXCLUSIVE lock every INSERT and COPY into
// audit_events holds, and nothing weaker will do: a COPY routes its rows with
// the partition map it read when it began, so a row of month m it sends to
// the default partition after the move would fail the default partition's
// new constraint (SQLSTATE 23514) once m's partition is attached. ATTACH
// PARTITION's own SHARE UPDATE EXCLUSIVE lock does not wait for such a COPY.
// Under this lock, inserts in flight finish first, and later ones wait for
// the commit and then see the new partition (taking a table lock reads the
// catalog changes committed meanwhile). Their wait is short: the lock is
// held for the move and attach only, which scan the default partition, near
// empty when the partitions are made ahead of time; a wait for the lock
// itself is bounded by partitionLockTimeout. Reads wait only for the
// attach, which locks the default partition exclusively while it checks it.
func createPartition(ctx context.Context, db database, m time.Time) error {
	name := partitionName(m)
	ident := pgx.Identifier{name}.Sanitize()
	lo, hi := timestampLiteral(m), timestampLiteral(m.AddDate(0, 1, 0))
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := lockPartitions(ctx, tx); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ident).Scan(&exists); err != nil || exists {
			return err
		}
		return execAll(ctx, tx,
			`LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE`,
			`CREATE TABLE `+ident+` (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
			`WITH moved AS (DELETE FROM audit_events_default WHERE recorded >= `+lo+` AND recorded < `+hi+` RETURNING *)
				INSERT INTO `+ident+` SELECT * FROM moved`,
			`ALTER TABLE audit_events ATTACH PARTITION `+ident+` FOR VALUES FROM (`+lo+`) TO (`+hi+`)`,
		)
	})
}

// DropAuditPartitionsBefore drops the monthly audit partitions that end on
// or before cutoff, and deletes the default partition's rows older than
// cutoff: the retention of the audit trail. Whatever cutoff says, it never
// touches now's month (UTC) or later, so a wrong argument cannot empty the
// live partition; now is the caller's clock, the one its records are stamped
// with. It returns the names of the partitions dropped, oldest first, also
// when it fails part way.
func (s *Store) DropAuditPartitionsBefore(ctx context.Context, now, cutoff time.Time) ([]string, error) {
	const op = "postgres.DropAuditPartitionsBefore"
	if current := monthStart(now); cutoff.After(current) {
		cutoff = current
	}
	parts, err := auditPartitions(ctx, s.pool)
	if err != nil {
		return nil, dbError(op, err)
	}
	dropped := []string{}
	for _, name := range sortedKeys(parts) {
		if parts[name].AddDate(0, 1, 0).After(cutoff) {
			continue
		}
		if err := dropPartition(ctx, s.pool, name); err != nil {
			return dropped, dbError(op, fmt.Errorf("dropping %s: %w", name, err))
		}
		dropped = append(dropped, name)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM audit_events_default WHERE recorded < $1`, cutoff); err != nil {
		return dropped, dbError(op, err)
	}
	return dropped, nil
}

// dropPartition detaches and drops one partition. DETACH ... CONCURRENTLY
// is not allowed while a default partition exists, so this takes an ACCESS
// EXCLUSIVE lock on audit_events for the moment the catalog change lasts.
func dropPartition(ctx context.Context, db database, name string) error {
	ident := pgx.Identifier{name}.Sanitize()
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if err := lockPartitions(ctx, tx); err != nil {
			return err
		}
		return execAll(ctx, tx,
			`ALTER TABLE audit_events DETACH PARTITION `+ident,
			`DROP TABLE `+ident,
		)
	})
}

// lockPartitions serializes partition maintenance in tx's schema, and bounds
// the transaction's waits for table locks.
func lockPartitions(ctx context.Context, tx pgx.Tx) error {
	schema, err := currentSchema(ctx, tx)
	if err != nil {
		return err
	}
	return execAll(ctx, tx, partitionLockTimeout,
		fmt.Sprintf(`SELECT pg_advisory_xact_lock(%d, %d)`, lockClass, lockKey(partitionsLock, schema)))
}

// auditPartitions returns the monthly partitions of audit_events by name,
// each with the start of its month.
func auditPartitions(ctx context.Context, q querier) (map[string]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events'::regclass`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	parts := map[string]time.Time{}
	for _, n := range names {
		if m := partitionPattern.FindStringSubmatch(n); m != nil {
			y, _ := strconv.Atoi(m[1])
			mo, _ := strconv.Atoi(m[2])
			parts[n] = time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
		}
	}
	return parts, nil
}

// sortedKeys returns the partition names in order, which is month order.
func sortedKeys(parts map[string]time.Time) []string {
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// timestampLiteral is t as an SQL timestamptz literal, for partition bounds,
// which DDL cannot take as parameters. t is always a month start we computed.
func timestampLiteral(t time.Time) string {
	return "'" + t.UTC().Format("2006-01-02 15:04:05") + "+00'"
}

// execAll runs statements in order, stopping at the first error.
func execAll(ctx context.Context, q querier, stmts ...string) error {
	for _, s := range stmts {
		if _, err := q.Exec(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
