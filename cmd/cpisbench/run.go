package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"
)

// run is the whole benchmark: data set, each store in turn, pgbench, the
// upload, the report. It fails, after printing the report, if a check
// failed: an audit count that differs from the reads served, a wrong
// answer, an upload whose counts are not those of its files, or a server
// that did not exit cleanly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv)
	if h, ok := errors.AsType[helpRequested](err); ok {
		_, err := fmt.Fprint(stdout, "usage: cpisbench [flags]\n", h.usage)
		return err
	}
	if err != nil {
		return err
	}
	cleanup, err := workDir(&cfg, getenv)
	if err != nil {
		return err
	}
	defer cleanup()
	rep := &report{cfg: cfg, machine: machineInfo(ctx, cfg), started: time.Now()}
	if cfg.uploadOnly {
		fmt.Fprintf(stdout, "cpisbench: making the data set (%d plans) and building cpisd in %s\n", cfg.plans, cfg.dir)
	} else {
		fmt.Fprintf(stdout, "cpisbench: making the data set (%d plans, %d prior AuditEvents) and building cpisd in %s\n", cfg.plans, cfg.audits, cfg.dir)
	}
	if rep.d, err = newDataset(cfg.seed, cfg.plans, time.Now()); err != nil {
		return err
	}
	bin, err := buildServer(ctx, cfg.dir)
	if err != nil {
		return err
	}
	if !cfg.uploadOnly {
		if err := rep.reads(ctx, bin, stdout); err != nil {
			return err
		}
	}
	if cfg.upload {
		if rep.files, rep.uploads, err = uploadAll(ctx, cfg, rep.d, bin, stdout); err != nil {
			return err
		}
	}
	rep.machine.loadavgEnd = loadavg()
	rep.print(stdout)
	return errors.Join(rep.dropErr, rep.verdict())
}

// reads is the audited-read benchmark: each store in turn, then pgbench on
// PostgreSQL's database, which is dropped after unless it is to be kept.
func (rep *report) reads(ctx context.Context, bin string, progress io.Writer) error {
	cfg := rep.cfg
	for _, name := range cfg.stores {
		res, err := benchStore(ctx, cfg, rep.d, bin, name, progress)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rep.stores = append(rep.stores, res)
	}
	if pg := rep.store("postgres"); pg != nil {
		if cfg.pgbench {
			rep.pgbench, rep.pgbenchErr = pgbenchAll(ctx, cfg, rep.d, pg.l.dbURL, progress)
		} else {
			rep.pgbenchErr = errors.New("--pgbench=false")
		}
		if !cfg.keep {
			rep.dropErr = dropDatabase(context.Background(), cfg)
		}
	}
	return nil
}

// workDir makes the working directory; the returned func removes it unless
// it is to be kept.
func workDir(cfg *config, getenv func(string) string) (func(), error) {
	if cfg.dir == "" {
		dir, err := os.MkdirTemp(getenv("TMPDIR"), "cpisbench-")
		if err != nil {
			return nil, err
		}
		cfg.dir = dir
	}
	if err := os.MkdirAll(cfg.dir, 0o700); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.dir)
	if err != nil {
		return nil, err
	}
	cfg.dir = abs
	if cfg.keep {
		return func() {}, nil
	}
	return func() { os.RemoveAll(abs) }, nil
}

// storeResult is everything measured on one store.
type storeResult struct {
	l    *loaded
	runs []storeRun
	hwm  float64 // the server's VmHWM at the end, MiB
	exit error   // how the server exited after SIGTERM
}

// storeRun is one concurrency on one store.
type storeRun struct {
	*load
	peakRSS   float64       // MiB
	written   int64         // AuditEvents added during the run, warm-up included
	cpu       cpuUse        // over the run, warm-up included
	serverCPU time.Duration // the server's CPU time over the run
}

// cpuPerRead is the server's CPU time per read served.
func (r storeRun) cpuPerRead() time.Duration {
	if r.served == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.served)
}

// auditEqual reports whether every read served left exactly one AuditEvent.
func (r storeRun) auditEqual() bool { return r.written == r.served }

// benchStore loads a fresh database for the store, starts the server on it
// and measures each concurrency in turn.
func benchStore(ctx context.Context, cfg config, d *dataset, bin, name string, progress io.Writer) (*storeResult, error) {
	fmt.Fprintf(progress, "%s: loading\n", name)
	loadStore := loadSQLite
	if name == "postgres" {
		loadStore = loadPostgres
	}
	l, err := loadStore(ctx, cfg, d, progress)
	if err != nil {
		return nil, err
	}
	defer l.close()
	srv, err := startServer(ctx, bin, l, cfg.serverEnv, cfg.profile != "", filepath.Join(cfg.dir, "cpisd-"+name+".log"))
	if err != nil {
		return nil, err
	}
	res := &storeResult{l: l}
	for _, n := range cfg.clients {
		r, err := measure(ctx, cfg, d, srv, l, n)
		if err != nil {
			srv.kill()
			return nil, err
		}
		fmt.Fprintf(progress, "%s, %d clients: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d, audit %d written for %d served\n",
			name, n, r.rate(), r.percentile(0.50), r.percentile(0.99), r.errors, r.written, r.served)
		res.runs = append(res.runs, r)
	}
	if kb, err := procStatus(srv.pid(), "VmHWM"); err == nil {
		res.hwm = float64(kb) / 1024
	}
	res.exit = srv.stop()
	return res, nil
}

// measure runs the load generator once at n clients, with fresh tokens,
// sampling the server's memory and counting the AuditEvents it wrote.
func measure(ctx context.Context, cfg config, d *dataset, srv *server, l *loaded, n int) (storeRun, error) {
	var tokens []string
	for _, p := range personas {
		tok, err := srv.token(ctx, p)
		if err != nil {
			return storeRun{}, err
		}
		tokens = append(tokens, tok)
	}
	before, err := l.auditRows(ctx)
	if err != nil {
		return storeRun{}, fmt.Errorf("counting AuditEvents: %w", err)
	}
	rss := sampleRSS(srv.pid())
	var prof *profiler
	if cfg.profile != "" {
		path := filepath.Join(cfg.profile, fmt.Sprintf("cpu-%s-%d.pprof", l.name, n))
		prof = profileRun(ctx, srv.pprof, path, cfg.warmup, cfg.duration)
	}
	cpu0 := sampleCPU(srv.pid())
	ld := drive(ctx, srv.url, tokens, d, n, cfg.warmup, cfg.duration)
	cpu1 := sampleCPU(srv.pid())
	peak := rss.finish()
	if err := prof.wait(); err != nil {
		return storeRun{}, fmt.Errorf("CPU profile: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return storeRun{}, err
	}
	after, err := l.auditRows(ctx)
	if err != nil {
		return storeRun{}, fmt.Errorf("counting AuditEvents: %w", err)
	}
	return storeRun{load: ld, peakRSS: peak, written: after - before,
		cpu: cpuBetween(cpu0, cpu1, runtime.NumCPU()), serverCPU: cpu1.server - cpu0.server}, nil
}

// store returns the result of the named store, if it was measured.
func (r *report) store(name string) *storeResult {
	i := slices.IndexFunc(r.stores, func(s *storeResult) bool { return s.l.name == name })
	if i < 0 {
		return nil
	}
	return r.stores[i]
}

// verdict is the run's failure, if a check failed.
func (r *report) verdict() error {
	var errs []error
	for _, s := range r.stores {
		for _, run := range s.runs {
			if !run.auditEqual() {
				errs = append(errs, fmt.Errorf("%s, %d clients: %d AuditEvents written for %d reads served", s.l.name, run.clients, run.written, run.served))
			}
			if run.wrong > 0 {
				errs = append(errs, fmt.Errorf("%s, %d clients: %d wrong answers", s.l.name, run.clients, run.wrong))
			}
		}
		if s.exit != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.l.name, s.exit))
		}
	}
	for _, u := range r.uploads {
		for _, run := range u.runs {
			if !run.ok() {
				errs = append(errs, fmt.Errorf("upload, %s, %s: %s and %d files not imported, want %s and none", u.name, run.phase, run.got, run.errors, run.want))
			}
		}
		if err := errors.Join(u.exit, u.dropErr); err != nil {
			errs = append(errs, fmt.Errorf("upload, %s: %w", u.name, err))
		}
	}
	return errors.Join(errs...)
}
