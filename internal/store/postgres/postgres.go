// Package postgres is the production store.Store, on PostgreSQL through a
// pgx v5 connection pool.
//
// The schema is created and changed only by Migrate (run by `cpisctl
// migrate`), never by Open: several server processes may share one database,
// and a schema change is an operator's decision. Open refuses a schema that is
// behind the migrations this binary carries.
//
// Every error is a *cpis.Error; driver errors are translated to the store
// contract's kinds here, so that the layers above never see pgx.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/migrations"
)

// Store is a store.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	schema string // the schema the pool's connections use, which keys its advisory locks
	// lockWait bounds how long BeginWrite waits for another transaction
	// writing the same LA's plans (lock_timeout).
	lockWait time.Duration
	// beforeCommit, when set (by tests only), is called by WriteTx.Commit
	// between logging the transaction's events and committing, while it
	// holds the event log's lock: a test delays commits with it.
	beforeCommit func()
}

var _ store.Store = (*Store)(nil)

// DefaultApplicationName is the application_name the store's connections
// report to PostgreSQL (pg_stat_activity) unless the URL or an option sets one.
const DefaultApplicationName = "cpis"

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	maxConns int32
	appName  string
	lockWait time.Duration
}

// DefaultWriteLockTimeout is how long BeginWrite waits, unless an option
// says otherwise, for another transaction writing the same LA's plans: an
// LA's single write waits out most of a chunk of its own bulk upload, but
// not a whole 300,000-plan import (about a minute), which it had better
// retry after, answered as Unavailable.
const DefaultWriteLockTimeout = 10 * time.Second

// WithWriteLockTimeout sets how long BeginWrite waits for another
// transaction writing the same LA's plans before it fails Unavailable
// (at least a millisecond; the request's context may end the wait sooner).
func WithWriteLockTimeout(d time.Duration) Option {
	return func(o *options) { o.lockWait = max(d, time.Millisecond) }
}

// WithMaxConns sets the size of the connection pool, overriding the default
// and any pool_max_conns in the URL.
func WithMaxConns(n int32) Option { return func(o *options) { o.maxConns = n } }

// WithApplicationName sets the application_name of the store's connections,
// overriding any in the URL. Operators use it to tell processes apart in
// pg_stat_activity.
func WithApplicationName(name string) Option { return func(o *options) { o.appName = name } }

// defaultMaxConns sizes the pool when neither the URL (pool_max_conns) nor an
// option does: two connections per core, at least four. The work is short
// queries whose time is mostly round trips and commit waits, so a few
// connections per core keep the cores busy; more only add contention inside
// PostgreSQL. Measured with cmd/cpisbench (32 clients, 300,000 plans, 5
// million prior AuditEvents, server, PostgreSQL and load on 2 cores, one
// audit writer), three interleaved rounds each: 4 connections gave 4,268 to
// 4,365 audited searches/s with p99 18.4 to 21.6 ms; 8 gave 4,152 to 4,352
// with p99 22.4 to 23.4 ms. On a database with more cores, raise it with
// pool_max_conns.
func defaultMaxConns() int32 { return int32(max(4, 2*runtime.GOMAXPROCS(0))) }

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string; pool_* parameters of pgxpool are honoured) and checks
// that its schema is at the version this binary needs. It does not migrate.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	const op = "postgres.Open"
	o := options{lockWait: DefaultWriteLockTimeout}
	for _, f := range opts {
		f(&o)
	}
	cfg, err := poolConfig(url, o)
	if err != nil {
		return nil, cpis.E(op, cpis.Invalid, "the database URL cannot be used", redacted(err))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError(op, err)
	}
	if err := checkSchema(ctx, pool); err != nil {
		pool.Close()
		return nil, cpis.E(op, err)
	}
	schema, err := currentSchema(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, cpis.E(op, err)
	}
	return &Store{pool: pool, schema: schema, lockWait: o.lockWait}, nil
}

func poolConfig(url string, o options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	switch {
	case o.maxConns > 0:
		cfg.MaxConns = o.maxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = defaultMaxConns()
	}
	switch {
	case o.appName != "":
		cfg.ConnConfig.RuntimeParams["application_name"] = o.appName
	case cfg.ConnConfig.RuntimeParams["application_name"] == "":
		cfg.ConnConfig.RuntimeParams["application_name"] = DefaultApplicationName
	}
	return cfg, nil
}

// redacted keeps a connection string's parse error from carrying the
// password into logs: pgconn masks what it recognises, but only best-effort.
func redacted(err error) error {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return errors.New("the connection string could not be parsed")
	}
	return err
}

// querier is what both a pool and a transaction offer, so that helpers can
// run inside or outside one.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// schemaVersion returns the highest migration version applied to the
// database, 0 when none has been.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return 0, nil
	}
	return v, err
}

// latestVersion is the version of the newest migration this binary carries.
func latestVersion() (int, error) {
	ms, err := migrations.List(dialect)
	if err != nil {
		return 0, err
	}
	v := 0
	for _, m := range ms {
		v = max(v, m.Version)
	}
	return v, nil
}

// checkSchema refuses a database whose schema is behind this binary. A schema
// ahead of it is accepted: during a rolling upgrade the old servers keep
// running on the new schema, which migrations keep backward compatible.
func checkSchema(ctx context.Context, q querier) error {
	const op = "postgres.checkSchema"
	want, err := latestVersion()
	if err != nil {
		return cpis.E(op, err)
	}
	got, err := schemaVersion(ctx, q)
	if err != nil {
		return dbError(op, err)
	}
	if got < want {
		return cpis.E(op, fmt.Sprintf("database schema is at version %d but this server needs %d: "+
			"run `go run ./cmd/cpisctl migrate` (or `cpisctl migrate`)", got, want))
	}
	return nil
}

// Ping reports whether the database answers now: Unavailable if not.
func (s *Store) Ping(ctx context.Context) error {
	return dbError("postgres.Ping", s.pool.Ping(ctx))
}

// Close closes every connection of the pool, waiting for those in use to be
// released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
