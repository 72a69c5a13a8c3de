// Package sqlite is the embedded store: one SQLite file, in pure Go
// (modernc.org/sqlite, no cgo), so that the server runs with no external
// service. It migrates its own schema on Open.
//
// Durability: every write transaction commits with synchronous=FULL in WAL
// mode, so a commit is on disk before the call returns. NORMAL would be
// faster but can lose the last commits on power failure, and an audit record
// must be durable before the response that it describes leaves the server.
//
// Concurrency: SQLite allows one writer at a time, so writes go through a
// pool of exactly one connection, queueing in Go instead of spinning on
// SQLITE_BUSY, and open their transactions with BEGIN IMMEDIATE so that a
// second process on the same file (cpisctl) waits instead of deadlocking.
// Reads use a separate pool of query-only connections, which WAL lets run
// alongside the writer. A write transaction (BeginWrite) holds the writer
// until it ends, so a bulk upload's transaction, tens of seconds for a
// large LA's caseload, holds up every other write of the process meanwhile,
// the audit records of reads included: hence its statements are prepared
// on Open and each look-up is a probe of an index per key.
//
// Event log (events.go): the one writer is also what puts the log in
// commit order. A transaction that writes events advances event_head and
// inserts them after it within itself, just before it commits: nothing
// else can commit in between. AppendAudit without ASNs never touches it.
//
// Precision: instants are stored as microseconds since the Unix epoch and
// returned in UTC; dates as TEXT YYYY-MM-DD.
//
// Throughput: every commit waits for an fsync, so audited reads scale with
// how many records share a commit. AppendAudit commits what it is given as
// one transaction through one prepared insert; internal/audit is expected to
// gather the records of concurrent requests into one call (cmd/cpisbench
// measures the whole audited read on this store).
package sqlite

import (
	"context"
	"database/sql"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Store is a store.Store in one SQLite database file. It is safe for
// concurrent use.
type Store struct {
	w, r   *sql.DB    // the writer (one connection) and the readers
	ws, rs *stmtCache // statements prepared on w and r
}

var _ store.Store = (*Store)(nil)

// Waiting for another process's lock (cpisctl writing to the same file).
// SQLite's busy wait does not see the request's context, so the writer
// waits in short tries and begin repeats them until the context ends, up
// to lockTries in all; then the write fails as Unavailable. Readers in WAL
// mode wait only while a crashed writer's log is recovered.
const (
	lockTryMS    = "100"
	lockTries    = 100 // 10 s
	readerBusyMS = "1000"
)

// readers is the size of the read pool. With the store's audited-search
// benchmark (since replaced by cmd/cpisbench) on 2 cores, 1, 2 and 4 readers
// gave the same throughput and 8 less; 4 lets a slow audit query run
// without holding up health users' searches.
const readers = 4

// dsn builds a data source name for the modernc driver: the path, then its
// own parameters, which it strips before opening the file.
//
// The writer's page cache (64 MiB, from 2) keeps the audit indexes' pages
// at hand, and checkpoints run every 10,000 WAL pages (from 1,000), so a
// page that many commits change is copied to the database file once: both
// measured with the store's append benchmark (since replaced by
// cmd/cpisbench), 15-20% less CPU per record. Its temporary storage is in
// memory, statement journals included: otherwise, once one statement of a
// transaction has journaled 64 KiB, SQLite moves the statement journal to
// a temporary file for the rest of the transaction, and every page a later
// statement changes costs system calls (with the digest index, 100,000 new
// versions in WriteThroughput spent a fifth of their CPU time there).
func dsn(path string, writer bool) string {
	if writer {
		return path + "?_pragma=busy_timeout(" + lockTryMS + ")&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)" +
			"&_pragma=cache_size(-65536)&_pragma=temp_store(memory)&_pragma=wal_autocheckpoint(10000)&_txlock=immediate"
	}
	return path + "?_pragma=busy_timeout(" + readerBusyMS + ")&_pragma=query_only(1)"
}

// Open opens the database file at path, creating it if needed, and applies
// any migrations it lacks: the embedded store needs no setup step.
func Open(ctx context.Context, path string) (*Store, error) {
	const op = "sqlite.Open"
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, cpis.E(op, cpis.Invalid, "the database path must be a file name without '?'")
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fail(op, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		w.Close()
		return nil, fail(op, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxLifetime(0)
	s := &Store{w: w, r: r, ws: newStmtCache(w), rs: newStmtCache(r)}
	if err := s.prepareWrites(ctx); err != nil {
		s.Close()
		return nil, fail(op, err)
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the statements and both pools. The last connection to
// close checkpoints the write-ahead log into the database file.
func (s *Store) Close() error {
	errs := []error{s.rs.close(), s.ws.close(), s.r.Close(), s.w.Close()}
	for _, err := range errs {
		if err != nil {
			return fail("sqlite.Close", err)
		}
	}
	return nil
}

// Ping reads the schema bookkeeping through the read pool: it fails if the
// file has gone or cannot be read.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := schemaVersion(ctx, s.r); err != nil {
		return cpis.E("sqlite.Ping", cpis.Unavailable, err)
	}
	return nil
}

// SchemaVersion returns the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return schemaVersion(ctx, s.r)
}

// writeSQL is every statement a write transaction runs. They are prepared
// on Open: preparing later, on the writer's single connection, would wait
// for that connection while a transaction holds it.
var writeSQL = []string{sqlPlan, sqlByReference, sqlByDigest, sqlChildPlans, sqlCurrent, sqlReplay,
	sqlInsertVersion, sqlInsertCurrent, sqlUpdateCurrent, sqlMoveCurrent, sqlInsertAudit,
	sqlAdvanceHead, sqlInsertPlanEvents, sqlInsertASNEvent, sqlCoalesces}

func (s *Store) prepareWrites(ctx context.Context) error {
	for _, q := range writeSQL {
		if _, err := s.ws.get(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// txStmt returns the statement prepared on Open for query, bound to tx. It
// is only called with the texts of writeSQL.
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) *sql.Stmt {
	st, ok := s.ws.prepared(query)
	if !ok {
		panic("sqlite: a write statement was not prepared on Open: " + query)
	}
	return tx.StmtContext(ctx, st)
}

// boundTo returns the statements prepared on Open bound to tx, each bound
// once however often it is asked for.
func (s *Store) boundTo(ctx context.Context, tx *sql.Tx) stmtFor {
	bound := map[string]*sql.Stmt{}
	return func(query string) *sql.Stmt {
		st, ok := bound[query]
		if !ok {
			st = s.txStmt(ctx, tx, query)
			bound[query] = st
		}
		return st
	}
}

// write runs f in one write transaction and commits it, translating every
// error f returns that is not already a *cpis.Error.
func (s *Store) write(ctx context.Context, op string, f func(*sql.Tx) error) error {
	tx, err := begin(ctx, s.w)
	if err != nil {
		return fail(op, err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(op, err)
	}
	return nil
}

// begin starts a write transaction (BEGIN IMMEDIATE: it takes the write
// lock at once), trying again while another process holds the lock.
func begin(ctx context.Context, w *sql.DB) (*sql.Tx, error) {
	for try := 1; ; try++ {
		tx, err := w.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) || try == lockTries || ctx.Err() != nil {
			return tx, err
		}
	}
}
