package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// loaded is a store's database holding the data set, ready for the server.
type loaded struct {
	name      string
	dataDir   string // the server's CPIS_DATA_DIR
	dbURL     string // the server's CPIS_DATABASE_URL; empty for SQLite
	steps     []step // how long loading took, step by step
	reused    bool   // a kept database with the same data set was used as it was
	size      int64  // bytes on disk
	auditRows func(ctx context.Context) (int64, error)
	// asnRows counts the ASNs stored (event_log rows of kind 'asn'), and
	// asnPairs counts them by (NHS number, LA).
	asnRows  func(ctx context.Context) (int64, error)
	asnPairs func(ctx context.Context) (map[asnPair]int64, error)
	// clearASNs deletes every ASN stored. The benchmark owns its
	// databases, and a kept one holds the ASNs of earlier runs, which
	// would coalesce with this run's reads (for 24 hours, the server's
	// default window): with none stored before a store's runs, the ASNs
	// they leave are exactly the (NHS number, LA) pairs they read in
	// unscheduled care.
	clearASNs func(ctx context.Context) error
	close     func() error
}

// The event log's ASNs (migration 0007), the same statements on both stores.
const (
	countASNs  = `SELECT count(*) FROM event_log WHERE kind = 'asn'`
	asnsByPair = `SELECT nhs_number, la_code, count(*) FROM event_log WHERE kind = 'asn' GROUP BY nhs_number, la_code`
	deleteASNs = `DELETE FROM event_log WHERE kind = 'asn'`
)

// scanPairs reads the rows of asnsByPair.
func scanPairs(next func() bool, scan func(dest ...any) error, rowsErr func() error) (map[asnPair]int64, error) {
	out := map[asnPair]int64{}
	for next() {
		var nhs, la string
		var n int64
		if err := scan(&nhs, &la, &n); err != nil {
			return nil, err
		}
		out[asnPair{cpis.NHSNumber(nhs), la}] = n
	}
	return out, rowsErr()
}

// step is one timed part of loading.
type step struct {
	what string
	rows int
	took time.Duration
}

// generator is the version of the data set's generator: a change to it
// that changes the data set must change this, so that kept databases of the
// old one are not reused.
const generator = 2

// signature names a data set, so that a kept database is reused only for
// the same one: the same generator, sizes and seed, made on the same day
// (dates are relative to it).
func signature(cfg config, d *dataset) string {
	return fmt.Sprintf("cpisbench v%d plans=%d audits=%d seed=%d day=%s", generator, len(d.plans), cfg.audits, d.seed, d.today)
}

// timed runs f and records how long it took.
func timed(steps *[]step, what string, rows int, f func() error) error {
	start := time.Now()
	if err := f(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	*steps = append(*steps, step{what, rows, time.Since(start)})
	return nil
}

// loadSQLite makes the SQLite database the server will open, in its data
// directory.
func loadSQLite(ctx context.Context, cfg config, d *dataset, progress io.Writer) (*loaded, error) {
	l := &loaded{name: "sqlite", dataDir: filepath.Join(cfg.dir, "sqlite")}
	path := filepath.Join(l.dataDir, "cpis.db")
	marker := filepath.Join(l.dataDir, "dataset.txt")
	if b, err := os.ReadFile(marker); cfg.keep && err == nil && string(b) == signature(cfg, d) {
		l.reused = true
		fmt.Fprintf(progress, "sqlite: reusing the kept database %s\n", path)
	} else if err := l.fillSQLite(ctx, cfg, d, path, progress); err != nil {
		return nil, err
	} else if err := os.WriteFile(marker, []byte(signature(cfg, d)), 0o600); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", path+"?_pragma=query_only(1)&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, err
	}
	l.close = db.Close
	l.auditRows = func(ctx context.Context) (n int64, err error) {
		return n, db.QueryRowContext(ctx, `SELECT count(*) FROM audit_events`).Scan(&n)
	}
	l.asnRows = func(ctx context.Context) (n int64, err error) {
		return n, db.QueryRowContext(ctx, countASNs).Scan(&n)
	}
	l.asnPairs = func(ctx context.Context) (map[asnPair]int64, error) {
		rows, err := db.QueryContext(ctx, asnsByPair)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return scanPairs(rows.Next, rows.Scan, rows.Err)
	}
	// The server writes the database too: a connection of its own, which
	// waits for the server's transactions as they wait for each other.
	l.clearASNs = func(ctx context.Context) error {
		w, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			return err
		}
		_, err = w.ExecContext(ctx, deleteASNs)
		return errors.Join(err, w.Close())
	}
	l.size = fileSizes(path, path+"-wal")
	return l, nil
}

func (l *loaded) fillSQLite(ctx context.Context, cfg config, d *dataset, path string, progress io.Writer) error {
	if err := os.RemoveAll(l.dataDir); err != nil {
		return err
	}
	if err := os.MkdirAll(l.dataDir, 0o700); err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	err = fill(ctx, &l.steps, st, cfg, d, progress)
	if err := errors.Join(err, st.Close()); err != nil {
		return err
	}
	return timed(&l.steps, "flush to disk", 0, func() error { return settle(ctx, "") })
}

// settle puts on disk what loading left in memory, before anything is
// measured: gigabytes of dirty pages being written back, and on PostgreSQL
// a checkpoint spread over minutes, would otherwise compete with the
// commits every audited read waits for, and the runs would measure the
// load's aftermath instead of the server. With dbURL, PostgreSQL
// checkpoints first (it needs a superuser, as creating the database does).
func settle(ctx context.Context, dbURL string) error {
	if dbURL != "" {
		if err := adminExec(ctx, dbURL, `CHECKPOINT`); err != nil {
			return err
		}
	}
	syscall.Sync()
	return nil
}

// importer is a store that can also import plans in bulk: both stores.
type importer interface {
	store.Store
	store.Importer
}

// fill imports the plans and appends the prior audit trail.
func fill(ctx context.Context, steps *[]step, st importer, cfg config, d *dataset, progress io.Writer) error {
	fmt.Fprintf(progress, "importing %d plans\n", len(d.plans))
	if err := timed(steps, "plans", len(d.plans), func() error { return st.ImportPlans(ctx, d.plans) }); err != nil {
		return err
	}
	return timed(steps, "audit events", cfg.audits, func() error { return appendAudits(ctx, st, d, cfg.audits, progress) })
}

// appendAudits stores n prior audit records, auditBatch at a time, making
// the next batch while the store commits the last.
func appendAudits(ctx context.Context, st store.Store, d *dataset, n int, progress io.Writer) error {
	batches := (n + auditBatch - 1) / auditBatch
	ready := make(chan []cpis.AuditRecord, 2)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(ready)
		who := actors()
		for b := range batches {
			select {
			case ready <- d.auditBatchOf(b, n, who):
			case <-ctx.Done():
				return
			}
		}
	}()
	start, done := time.Now(), 0
	for recs := range ready {
		if err := st.AppendAudit(ctx, recs); err != nil {
			return err
		}
		done += len(recs)
		if every := max(1, batches/10) * auditBatch; done%every == 0 || done == n {
			fmt.Fprintf(progress, "  audit events: %d of %d (%.0f/s)\n", done, n, float64(done)/time.Since(start).Seconds())
		}
	}
	return ctx.Err()
}

// loadPostgres makes a fresh benchmark database beside the one cfg names,
// migrates it, creates the audit partitions of the last twelve months and
// the next three, loads the data set and analyses it.
func loadPostgres(ctx context.Context, cfg config, d *dataset, progress io.Writer) (*loaded, error) {
	l := &loaded{name: "postgres", dataDir: filepath.Join(cfg.dir, "postgres")}
	var err error
	if l.dbURL, err = withDatabase(cfg.databaseURL, cfg.database); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(l.dataDir, 0o700); err != nil {
		return nil, err
	}
	if kept, err := databaseComment(ctx, cfg); cfg.keep && err == nil && kept == signature(cfg, d) {
		l.reused = true
		fmt.Fprintf(progress, "postgres: reusing the kept database %s\n", cfg.database)
	} else if err := l.fillPostgres(ctx, cfg, d, progress); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, l.dbURL)
	if err != nil {
		return nil, err
	}
	l.close = func() error { return conn.Close(context.Background()) }
	l.auditRows = func(ctx context.Context) (n int64, err error) {
		return n, conn.QueryRow(ctx, `SELECT count(*) FROM audit_events`).Scan(&n)
	}
	l.asnRows = func(ctx context.Context) (n int64, err error) {
		return n, conn.QueryRow(ctx, countASNs).Scan(&n)
	}
	l.asnPairs = func(ctx context.Context) (map[asnPair]int64, error) {
		rows, err := conn.Query(ctx, asnsByPair)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return scanPairs(rows.Next, rows.Scan, rows.Err)
	}
	// The vacuum leaves the log of a kept database as loading leaves a
	// fresh one: no dead ASNs for the server's index scans to step over,
	// and statistics that count no ASNs, so that the server plans its
	// statements alike on both.
	l.clearASNs = func(ctx context.Context) error {
		if _, err := conn.Exec(ctx, deleteASNs); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, `VACUUM (ANALYZE) event_log`)
		return err
	}
	err = conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&l.size)
	return l, err
}

func (l *loaded) fillPostgres(ctx context.Context, cfg config, d *dataset, progress io.Writer) error {
	fmt.Fprintf(progress, "postgres: creating database %s\n", cfg.database)
	if err := adminExec(ctx, cfg.databaseURL,
		`DROP DATABASE IF EXISTS `+cfg.database+` WITH (FORCE)`, `CREATE DATABASE `+cfg.database); err != nil {
		return err
	}
	if _, err := postgres.Migrate(ctx, l.dbURL, d.now); err != nil {
		return err
	}
	st, err := postgres.Open(ctx, l.dbURL)
	if err != nil {
		return err
	}
	err = timed(&l.steps, "audit partitions", 16, func() error {
		return st.EnsureAuditPartitions(ctx, d.now.AddDate(0, -12, 0), 15)
	})
	if err == nil {
		err = fill(ctx, &l.steps, st, cfg, d, progress)
	}
	if err := errors.Join(err, st.Close()); err != nil {
		return err
	}
	fmt.Fprintln(progress, "postgres: VACUUM ANALYZE")
	err = timed(&l.steps, "VACUUM ANALYZE", 0, func() error { return adminExec(ctx, l.dbURL, `VACUUM (ANALYZE)`) })
	if err == nil {
		err = timed(&l.steps, "flush to disk", 0, func() error { return settle(ctx, l.dbURL) })
	}
	if err != nil {
		return err
	}
	return adminExec(ctx, cfg.databaseURL, `COMMENT ON DATABASE `+cfg.database+` IS '`+signature(cfg, d)+`'`)
}

// databaseComment is the signature a kept benchmark database was left with.
func databaseComment(ctx context.Context, cfg config) (string, error) {
	conn, err := pgx.Connect(ctx, cfg.databaseURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var c *string
	err = conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1`, cfg.database).Scan(&c)
	if err != nil || c == nil {
		return "", errors.Join(err, errors.New("no comment"))
	}
	return *c, nil
}

// dropDatabase removes the benchmark database.
func dropDatabase(ctx context.Context, cfg config) error {
	return adminExec(ctx, cfg.databaseURL, `DROP DATABASE IF EXISTS `+cfg.database+` WITH (FORCE)`)
}

// adminExec runs statements, each on its own, on a connection to dbURL.
func adminExec(ctx context.Context, dbURL string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(s)[0], err)
		}
	}
	return nil
}

// withDatabase is dbURL (a postgres:// URL or key=value connection string)
// naming another database on the same server.
func withDatabase(dbURL, name string) (string, error) {
	if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
		return dbURL + " dbname=" + name, nil
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", errors.New("--database-url is not a valid URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// fileSizes is the total size of the files that exist among paths.
func fileSizes(paths ...string) int64 {
	var n int64
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
