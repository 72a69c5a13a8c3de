package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres"
)

// uploadPhase is one pass of every LA's file through the server.
type uploadPhase struct {
	name  string
	known bool // the server holds every plan of the files already, as they are
	full  bool // send the full files (less the missing plans) with mode=full
}

// uploadPhases are the upload run, in order, on one fresh database: every
// plan new, then every plan unchanged, then a full import that ends the
// missing plans.
var uploadPhases = []uploadPhase{
	{"first import (delta: all new)", false, false},
	{"same files again (delta: all unchanged)", true, false},
	{"full import, 1% of plans missing", true, true},
}

// expect is what the phase sends and what the server must answer: each
// line created, or each unchanged, and in a full import each missing
// plan ended.
func (ph uploadPhase) expect(files *uploadFiles) (lines int, want importCounts) {
	lines = files.lines
	if ph.full {
		lines, want.ended = files.fullLines(), files.missing
	}
	if ph.known {
		want.unchanged = lines
	} else {
		want.created = lines
	}
	return lines, want
}

// uploadResult is the upload run on one store.
type uploadResult struct {
	name    string
	runs    []uploadRun
	hwm     float64 // the server's VmHWM at the end, MiB: its peak over all the phases
	exit    error   // how the server exited after SIGTERM
	dbSize  int64   // bytes on disk after the last phase
	dropErr error   // dropping the PostgreSQL database after
}

// uploadAll writes the files once and runs the phases on each store, each
// on a fresh, empty database with a server that trusts the benchmark's own
// token issuer (production mode, the data set's 153 LAs as its register).
func uploadAll(ctx context.Context, cfg config, d *dataset, bin string, progress io.Writer) (*uploadFiles, []*uploadResult, error) {
	start := time.Now()
	files, err := makeUploadFiles(d, filepath.Join(cfg.dir, "upload"))
	if err != nil {
		return nil, nil, fmt.Errorf("upload files: %w", err)
	}
	fmt.Fprintf(progress, "upload: %d files, %s plans, %.1f MB written in %.1f s\n",
		len(files.las), thousands(files.lines), float64(files.size)/1e6, time.Since(start).Seconds())
	iss, err := startIssuer()
	if err != nil {
		return nil, nil, fmt.Errorf("token issuer: %w", err)
	}
	defer iss.close()
	var out []*uploadResult
	for _, name := range cfg.stores {
		res, err := uploadStore(ctx, cfg, files, iss, bin, name, progress)
		if err != nil {
			return files, out, fmt.Errorf("upload, %s: %w", name, err)
		}
		out = append(out, res)
	}
	return files, out, nil
}

// uploadStore runs the phases on one store, from an empty database.
func uploadStore(ctx context.Context, cfg config, files *uploadFiles, iss *issuer, bin, name string, progress io.Writer) (*uploadResult, error) {
	l, drop, err := emptyStore(ctx, cfg, name)
	if err != nil {
		return nil, err
	}
	env := withEnv(cfg.serverEnv, "CPIS_OIDC_ISSUER", iss.url)
	env = withEnv(env, "CPIS_AUDIENCE", benchAudience)
	env = withEnv(env, "CPIS_LA_REGISTER_FILE", files.register)
	srv, err := startServer(ctx, bin, l, env, false, filepath.Join(cfg.dir, "cpisd-upload-"+name+".log"))
	if err != nil {
		return nil, errors.Join(err, drop())
	}
	res := &uploadResult{name: name}
	for _, ph := range uploadPhases {
		if err := settle(ctx, l.dbURL); err != nil {
			srv.kill()
			return nil, errors.Join(err, drop())
		}
		r := sendFiles(ctx, srv, iss, files, ph, cfg.uploadClients)
		if err := ctx.Err(); err != nil {
			srv.kill()
			return nil, errors.Join(err, drop())
		}
		fmt.Fprintf(progress, "upload, %s, %s: %s plans in %.1f s (%.0f/s), %s, %d errors, peak RSS %.1f MiB\n",
			name, ph.name, thousands(r.lines), r.wall.Seconds(), r.rate(), r.got, r.errors, r.peakRSS)
		res.runs = append(res.runs, r)
	}
	if kb, err := procStatus(srv.pid(), "VmHWM"); err == nil {
		res.hwm = float64(kb) / 1024
	}
	res.exit = srv.stop()
	res.dbSize = l.sizeNow(ctx)
	res.dropErr = drop()
	return res, nil
}

// emptyStore makes an empty database for the server: a fresh data
// directory for SQLite (the server creates the database), a fresh,
// migrated database beside the benchmark's for PostgreSQL. drop removes it,
// unless it is to be kept.
func emptyStore(ctx context.Context, cfg config, name string) (*loaded, func() error, error) {
	l := &loaded{name: name, dataDir: filepath.Join(cfg.dir, "upload-"+name)}
	if err := os.RemoveAll(l.dataDir); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(l.dataDir, 0o700); err != nil {
		return nil, nil, err
	}
	if name != "postgres" {
		return l, func() error { return nil }, nil
	}
	db := cfg.database + uploadDatabaseSuffix
	var err error
	if l.dbURL, err = withDatabase(cfg.databaseURL, db); err != nil {
		return nil, nil, err
	}
	if err := adminExec(ctx, cfg.databaseURL, `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`, `CREATE DATABASE `+db); err != nil {
		return nil, nil, err
	}
	drop := func() error {
		if cfg.keep {
			return nil
		}
		return adminExec(context.Background(), cfg.databaseURL, `DROP DATABASE IF EXISTS `+db+` WITH (FORCE)`)
	}
	if _, err := postgres.Migrate(ctx, l.dbURL, time.Now()); err != nil {
		return nil, nil, errors.Join(err, drop())
	}
	return l, drop, nil
}

// uploadDatabaseSuffix names the upload run's PostgreSQL database after the
// benchmark's: cpis_bench_upload.
const uploadDatabaseSuffix = "_upload"

// sizeNow is the database's size on disk.
func (l *loaded) sizeNow(ctx context.Context) int64 {
	if l.dbURL == "" {
		p := filepath.Join(l.dataDir, "cpis.db")
		return fileSizes(p, p+"-wal")
	}
	conn, err := pgx.Connect(ctx, l.dbURL)
	if err != nil {
		return 0
	}
	defer conn.Close(context.Background())
	var n int64
	_ = conn.QueryRow(ctx, `SELECT pg_database_size(current_database())`).Scan(&n)
	return n
}

// sendFiles sends every LA's file once, clients at a time, largest first,
// and measures the whole: wall time from the first request to the last
// answer, the server's memory and CPU meanwhile, and what it answered.
func sendFiles(ctx context.Context, srv *server, iss *issuer, files *uploadFiles, ph uploadPhase, clients int) uploadRun {
	r := uploadRun{phase: ph.name}
	r.lines, r.want = ph.expect(files)
	rss := sampleRSS(srv.pid())
	cpu0 := sampleCPU(srv.pid())
	start := time.Now()
	answers := uploadEach(ctx, srv.url, iss, files.las, ph.full, clients)
	r.wall = time.Since(start)
	cpu1 := sampleCPU(srv.pid())
	r.peakRSS = rss.finish()
	r.cpu, r.serverCPU = cpuBetween(cpu0, cpu1, runtime.NumCPU()), cpu1.server-cpu0.server
	r.add(answers)
	return r
}
