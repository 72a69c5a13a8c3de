package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// insertAudit stores one audit record.
var insertAudit = `INSERT INTO audit_events (` + auditColumnList + `) VALUES (` + placeholders(1, len(auditColumns)) + `)`

// AccessHistoryQuery is the SQL of AccessHistory: $1 the NHS number, $2
// the reading LA's code (empty for health readers), $3 the limit. Each access
// in the history is checked against the plans it returned, by the primary
// key of plans. It is exported so that a test can check, with EXPLAIN, that
// the query the store really runs reads every partition through the
// partial index audit_events_access_idx, in index order, without sorting,
// and stops after the limit.
const AccessHistoryQuery = `SELECT ` + auditColumnList + ` FROM audit_events a
	WHERE a.nhs_number = $1 AND a.access
		AND EXISTS (SELECT FROM plans p WHERE p.id = ANY(a.plan_ids)
			AND NOT p.entered_in_error AND ($2 = '' OR p.la_code = $2))
	ORDER BY a.recorded DESC, a.id DESC
	LIMIT $3`

// AppendAudit stores recs with one COPY, which PostgreSQL runs as a single
// statement in its own transaction: all the records or none, one commit, no
// BEGIN round trip. Measured with the store's append and audited-search
// benchmarks (since replaced by cmd/cpisbench), COPY and a multi-row INSERT
// were level within the
// noise and a pipelined batch of INSERTs was clearly slower; COPY won because
// a multi-row INSERT is a different statement for every batch size, each
// prepared and cached on every connection.
//
// Records that send ASNs take another path (appendWithASNs): only they
// touch the event log, so the reads that send none never wait for its lock.
func (s *Store) AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error {
	const op = "postgres.AppendAudit"
	if len(recs) == 0 {
		return nil
	}
	if asns := asnsOf(recs); len(asns) > 0 {
		return asnError(op, s.appendWithASNs(ctx, recs, asns))
	}
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditColumns, auditRows(recs))
	return dbError(op, err)
}

// auditRows are recs as COPY reads them.
func auditRows(recs []cpis.AuditRecord) pgx.CopyFromSource {
	return pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) { return auditArgs(recs[i]), nil })
}

// appendWithASNs stores recs and logs asns, the ASNs they send, in one
// transaction and one round trip: BEGIN, an INSERT per record, the ASNs'
// statements and COMMIT, pipelined. A COPY of the records (the path
// without ASNs) would need round trips of its own before the ASNs could
// follow: with cmd/cpisbench --asn-only (PostgreSQL, 32 clients, 6
// interleaved rounds each), copying the records of batches above 16 gave
// a rate with ASNs of 0.892 of the rate without (0.866 when every search
// found a plan); the one pipeline gave 0.932 (0.932). The log's lock is
// held for the ASNs' two statements and the commit only. A transaction
// that failed is rolled back here, so that its connection goes back to
// the pool.
func (s *Store) appendWithASNs(ctx context.Context, recs []cpis.AuditRecord, asns []cpis.ASN) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	err = appendInTx(ctx, c.Conn(), recs, asns)
	if err != nil && c.Conn().PgConn().TxStatus() != 'I' {
		c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

// appendInTx is appendWithASNs on one connection.
func appendInTx(ctx context.Context, c *pgx.Conn, recs []cpis.AuditRecord, asns []cpis.ASN) error {
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, r := range recs {
		b.Queue(insertAudit, auditArgs(r)...)
	}
	queueASNs(b, asns)
	b.Queue("COMMIT")
	return c.SendBatch(ctx, b).Close()
}

// asnError translates an error of AppendAudit with ASNs: an ASN whose id
// is taken is the caller's Conflict.
func asnError(op string, err error) error {
	if uniqueViolation(err, asnIndex) {
		return cpis.E(op, cpis.Conflict, "an ASN with this id is already stored")
	}
	return dbError(op, err)
}

// AccessHistory returns the newest accesses to the NHS number that returned
// a plan the reader may still see, at most q.Limit.
func (s *Store) AccessHistory(ctx context.Context, q store.AccessQuery) ([]cpis.AuditRecord, error) {
	const op = "postgres.AccessHistory"
	if err := store.CheckAccessQuery(op, q); err != nil {
		return nil, err
	}
	recs, err := queryAll(ctx, s, scanAudit, AccessHistoryQuery, string(q.NHSNumber), q.LACode, q.Limit)
	if err != nil {
		return nil, dbError(op, err)
	}
	return recs, nil
}

// SearchAudit returns the audit records matching q, newest first.
func (s *Store) SearchAudit(ctx context.Context, q store.AuditQuery) ([]cpis.AuditRecord, error) {
	const op = "postgres.SearchAudit"
	sql, args, err := auditSearchSQL(q)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	recs, err := queryAll(ctx, s, scanAudit, sql, args...)
	if err != nil {
		return nil, dbError(op, err)
	}
	return recs, nil
}

// auditSearchSQL builds the query for q.
func auditSearchSQL(q store.AuditQuery) (string, []any, error) {
	if err := checkPage(q.Limit, q.Before != nil && q.Before.ID == ""); err != nil {
		return "", nil, err
	}
	var w where
	if q.Patient != "" {
		w.add("nhs_number = " + w.arg(string(q.Patient)))
	}
	if q.OrgCode != "" {
		w.add("actor_org_code = " + w.arg(q.OrgCode))
	}
	if q.ActorUserID != "" {
		w.add("actor_user_id = " + w.arg(q.ActorUserID))
	}
	if !q.RecordedFrom.IsZero() {
		w.add("recorded >= " + w.arg(q.RecordedFrom))
	}
	if !q.RecordedBefore.IsZero() {
		w.add("recorded < " + w.arg(q.RecordedBefore))
	}
	if q.AccessOnly {
		w.add("access")
	}
	if q.Before != nil {
		// The plain bound lets the indexes on recorded, which lack the id,
		// start at the key, and skips the partitions of later months.
		at := w.arg(q.Before.Recorded)
		w.add("recorded <= " + at + " AND (recorded, id) < (" + at + ", " + w.arg(q.Before.ID) + ")")
	}
	sql := `SELECT ` + auditColumnList + ` FROM audit_events` + w.sql() +
		` ORDER BY recorded DESC, id DESC` + w.page(q.Limit)
	return sql, w.args, nil
}

// placeholders returns "$from, ..., $(from+n-1)".
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}
