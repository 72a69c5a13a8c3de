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
	l     *loaded
	runs  []storeRun
	costs []asnCost // the cost of ASNs (PostgreSQL): one per share of searches finding a plan
	asn   *asnTally // the ASNs of all the runs above
	// delivery is the subscription delivery run, on a server of its own
	// started after the one above stopped; nil if not run.
	delivery *deliveryResult
	hwm      float64 // the server's VmHWM at the end, MiB
	exit     error   // how the server exited after SIGTERM
}

// storeRun is one concurrency on one store.
type storeRun struct {
	*load
	peakRSS   float64       // MiB
	written   int64         // AuditEvents added during the run, warm-up included
	cpu       cpuUse        // over the run, warm-up included
	serverCPU time.Duration // the server's CPU time over the run
	// asnWritten is the ASNs stored during the run, warm-up included;
	// asnExpected the (NHS number, LA) pairs it read in unscheduled care
	// that no earlier run of the store had (asnTally.add).
	asnWritten, asnExpected int64
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

// asnEqual reports whether the run stored an ASN for each pair it read in
// unscheduled care, not before, and no other.
func (r storeRun) asnEqual() bool { return r.asnWritten == r.asnExpected }

// benchStore loads a fresh database for the store, starts the server on it
// and measures each concurrency in turn, then on PostgreSQL the cost of
// ASNs; it reads back the ASNs stored. Last, the subscription delivery
// run, which starts a server of its own.
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
	res := &storeResult{l: l, asn: newASNTally()}
	if err := res.measureAll(ctx, cfg, d, srv, progress); err != nil {
		srv.kill()
		return nil, err
	}
	if kb, err := procStatus(srv.pid(), "VmHWM"); err == nil {
		res.hwm = float64(kb) / 1024
	}
	res.exit = srv.stop()
	if cfg.delivery {
		if res.delivery, err = measureDelivery(ctx, cfg, d, bin, l, progress); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// measureAll runs the standard load at each concurrency, then on
// PostgreSQL the cost of ASNs, and reads back the ASNs stored. The ASNs of
// earlier runs are cleared first, once the server has migrated the
// database: a kept one may be older than the event log.
func (res *storeResult) measureAll(ctx context.Context, cfg config, d *dataset, srv *server, progress io.Writer) error {
	l := res.l
	if err := l.clearASNs(ctx); err != nil {
		return fmt.Errorf("clearing the ASNs of earlier runs: %w", err)
	}
	for _, n := range cfg.clients {
		w := workload{planOneIn: cfg.planOneIn, clients: n, warmup: cfg.warmup, duration: cfg.duration}
		profile := ""
		if cfg.profile != "" {
			profile = filepath.Join(cfg.profile, fmt.Sprintf("cpu-%s-%d.pprof", l.name, n))
		}
		r, err := measure(ctx, d, srv, l, standardMix, w, profile)
		if err != nil {
			return err
		}
		res.asn.add(&r)
		fmt.Fprintf(progress, "%s, %d clients: %.0f req/s, p50 %.2f ms, p99 %.2f ms, errors %d, audit %d written for %d served, %d ASNs stored (%d expected)\n",
			l.name, n, r.rate(), r.percentile(0.50), r.percentile(0.99), r.errors, r.written, r.served, r.asnWritten, r.asnExpected)
		res.runs = append(res.runs, r)
	}
	if l.name == "postgres" && cfg.asn {
		var err error
		if res.costs, err = measureASNCost(ctx, cfg, d, srv, l, res.asn, progress); err != nil {
			return err
		}
	}
	res.asn.stored, res.asn.err = l.asnPairs(ctx)
	return nil
}

// measure runs the load generator once, w's clients taking ps's tokens,
// fresh ones, in turn; it samples the server's memory, profiles it into
// the file profile (if not empty), and counts the AuditEvents and ASNs it
// wrote.
func measure(ctx context.Context, d *dataset, srv *server, l *loaded, ps []persona, w workload, profile string) (storeRun, error) {
	for _, p := range ps {
		tok, err := srv.token(ctx, p.name)
		if err != nil {
			return storeRun{}, err
		}
		w.sessions = append(w.sessions, session{p, tok})
	}
	before, err := l.auditRows(ctx)
	if err != nil {
		return storeRun{}, fmt.Errorf("counting AuditEvents: %w", err)
	}
	asnBefore, err := l.asnRows(ctx)
	if err != nil {
		return storeRun{}, fmt.Errorf("counting ASNs: %w", err)
	}
	rss := sampleRSS(srv.pid())
	var prof *profiler
	if profile != "" {
		prof = profileRun(ctx, srv.pprof, profile, w.warmup, w.duration)
	}
	cpu0 := sampleCPU(srv.pid())
	ld := drive(ctx, srv.url, d, w)
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
	asnAfter, err := l.asnRows(ctx)
	if err != nil {
		return storeRun{}, fmt.Errorf("counting ASNs: %w", err)
	}
	return storeRun{load: ld, peakRSS: peak, written: after - before, asnWritten: asnAfter - asnBefore,
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

// failures are the checks run failed, named what.
func (run storeRun) failures(what string) []error {
	var errs []error
	if !run.auditEqual() {
		errs = append(errs, fmt.Errorf("%s: %d AuditEvents written for %d reads served", what, run.written, run.served))
	}
	if !run.asnEqual() {
		errs = append(errs, fmt.Errorf("%s: %d ASNs stored for %d (NHS number, LA) newly read in unscheduled care", what, run.asnWritten, run.asnExpected))
	}
	if run.wrong > 0 {
		errs = append(errs, fmt.Errorf("%s: %d wrong answers", what, run.wrong))
	}
	return errs
}

// verdict is the run's failure, if a check failed.
func (r *report) verdict() error {
	var errs []error
	for _, s := range r.stores {
		for _, run := range s.runs {
			errs = append(errs, run.failures(fmt.Sprintf("%s, %d clients", s.l.name, run.clients))...)
		}
		for _, c := range s.costs {
			for i := range c.with {
				errs = append(errs, c.with[i].failures(fmt.Sprintf("%s, ASN cost, 1 in %d, round %d, with ASNs", s.l.name, c.planOneIn, i+1))...)
				errs = append(errs, c.without[i].failures(fmt.Sprintf("%s, ASN cost, 1 in %d, round %d, without", s.l.name, c.planOneIn, i+1))...)
			}
		}
		if s.asn.err != nil {
			errs = append(errs, fmt.Errorf("%s: reading the ASNs stored: %w", s.l.name, s.asn.err))
		} else if d := s.asn.diff(); d != (asnDiff{}) {
			errs = append(errs, fmt.Errorf("%s: of %d (NHS number, LA) read in unscheduled care, %d have no ASN; %d ASNs name a pair never read so, %d pairs have more than one",
				s.l.name, len(s.asn.read), d.missing, d.unread, d.repeated))
		}
		if s.exit != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.l.name, s.exit))
		}
		errs = append(errs, s.delivery.failures(s.l.name)...)
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
