package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// report is everything one run measured, printed at the end.
type report struct {
	cfg        config
	d          *dataset
	machine    machine
	started    time.Time
	stores     []*storeResult
	pgbench    []pgbenchRun
	pgbenchErr error
	dropErr    error // dropping the read benchmark's database
	files      *uploadFiles
	uploads    []*uploadResult
}

// machine describes where the figures were taken.
type machine struct {
	cpus      int
	goVersion string
	pgVersion string
	loadavg   string // at the start: other work on the machine shows here
	// loadavgEnd is the load average when the report is printed.
	loadavgEnd string
}

func machineInfo(ctx context.Context, cfg config) machine {
	m := machine{cpus: runtime.NumCPU(), goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, pgVersion: "-"}
	m.loadavg = loadavg()
	if !slices.Contains(cfg.stores, "postgres") {
		return m
	}
	if conn, err := pgx.Connect(ctx, cfg.databaseURL); err == nil {
		_ = conn.QueryRow(ctx, `SELECT current_setting('server_version')`).Scan(&m.pgVersion)
		conn.Close(context.Background())
	}
	return m
}

// target is a figure the issue asks this machine to reach.
type target struct {
	store   string
	clients int
	minRate float64 // audited searches per second
	maxP99  float64 // ms; 0: none
}

var targets = []target{{"postgres", 32, 3000, 25}, {"sqlite", 32, 2000, 0}}

// loadavg is the machine's 1, 5 and 15 minute load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "-"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func (r *report) print(w io.Writer) {
	what := "audited-read benchmark"
	switch {
	case r.cfg.asnOnly:
		what = "ASN cost benchmark"
	case r.cfg.deliveryOnly:
		what = "subscription delivery benchmark"
	case r.cfg.uploadOnly:
		what = "upload benchmark"
	case r.cfg.upload:
		what = "audited-read and upload benchmark"
	}
	fmt.Fprintf(w, "\nCP-IS %s (cmd/cpisbench), %s\n", what, r.started.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "machine:  %d CPUs, %s, PostgreSQL %s; load average at start %s, at end %s\n",
		r.machine.cpus, r.machine.goVersion, r.machine.pgVersion, r.machine.loadavg, r.machine.loadavgEnd)
	r.printDataset(w)
	if !r.cfg.uploadOnly {
		fmt.Fprintf(w, "workload: GET %s<nhs>, 1 in %d for an NHS number with a plan; bearer tokens of %s, alternately (ASNs from the first's reads); %s warm-up, then %s measured per row\n",
			searchPath, r.cfg.planOneIn, names(standardMix), r.cfg.warmup, r.cfg.duration)
		r.printLoads(w)
		for _, s := range r.stores {
			r.printStore(w, s)
			r.printASNCost(w, s)
			printServer(w, s)
			r.printDelivery(w, s)
		}
		if !r.cfg.asnOnly && !r.cfg.deliveryOnly {
			r.printPgbench(w)
		}
	}
	r.printUploads(w)
	r.printTargets(w)
}

func (r *report) printDataset(w io.Writer) {
	d := r.d
	types := map[cpis.PlanType]int{}
	active, twoPlans := 0, 0
	for i, p := range d.plans {
		types[p.Type]++
		if p.StatusOn(d.today) == cpis.Active {
			active++
		}
		if i > 0 && d.plans[i-1].NHSNumber == p.NHSNumber {
			twoPlans++
		}
	}
	n := float64(len(d.plans))
	fmt.Fprintf(w, "data set: %s plans on %s people over %d LAs (ZLB001..ZLB%03d): CLA %.1f%%, CPP %.1f%%, UCPP %.1f%%; active %.1f%%, ended within the display window %.1f%%; %s children with two plans\n",
		thousands(len(d.plans)), thousands(len(d.withPlan)), len(d.las), len(d.las),
		pct(types[cpis.CLA], n), pct(types[cpis.CPP], n), pct(types[cpis.UCPP], n), pct(active, n), 100-pct(active, n), thousands(twoPlans))
	if r.cfg.uploadOnly {
		return
	}
	fmt.Fprintf(w, "          %s prior AuditEvents over the last 12 months (%.0f%% accesses), by %s practitioners of %d organisations\n",
		thousands(r.cfg.audits), 100*shareAccess, thousands(healthOrgs*usersPerOrg), healthOrgs)
}

func (r *report) printLoads(w io.Writer) {
	fmt.Fprintln(w, "load:")
	for _, s := range r.stores {
		var parts []string
		for _, st := range s.l.steps {
			part := fmt.Sprintf("%s %.1f s", st.what, st.took.Seconds())
			if st.rows > 0 && st.what != "audit partitions" {
				part = fmt.Sprintf("%s %s in %.1f s (%s/s)", st.what, thousands(st.rows), st.took.Seconds(), thousands(int(float64(st.rows)/st.took.Seconds())))
			}
			parts = append(parts, part)
		}
		if s.l.reused {
			parts = append(parts, "kept database reused")
		}
		fmt.Fprintf(w, "  %-9s %s; database %.2f GiB\n", s.l.name, strings.Join(parts, "; "), float64(s.l.size)/(1<<30))
	}
}

const tableHead = "clients |   req/s | p50 ms | p95 ms | p99 ms |  max ms | errors | peak RSS MiB | audit check | pgbench tps | ours/pgbench"

func (r *report) printStore(w io.Writer, s *storeResult) {
	fmt.Fprintf(w, "\n%s: cpisd on the %s store\n", s.l.name, s.l.name)
	if len(s.runs) > 0 {
		fmt.Fprintln(w, tableHead)
	}
	for _, run := range s.runs {
		check := equality(run.auditEqual())
		pgTPS, ratio := "-", "-"
		if pb, ok := r.pgbenchAt(run.clients); ok {
			pgTPS, ratio = fmt.Sprintf("%.0f", pb.tps), fmt.Sprintf("%.2f", run.rate()/pb.tps)
		}
		fmt.Fprintf(w, "%7d | %7.0f | %6.2f | %6.2f | %6.2f | %7.2f | %6d | %12.1f | %-11s | %11s | %12s\n",
			run.clients, run.rate(), run.percentile(0.50), run.percentile(0.95), run.percentile(0.99), run.percentile(1),
			run.errors, run.peakRSS, check, pgTPS, ratio)
	}
	for _, run := range s.runs {
		fmt.Fprintf(w, "  audit, %d clients: %d written, %d reads served: %s\n", run.clients, run.written, run.served, equality(run.auditEqual()))
		fmt.Fprintf(w, "  asn, %d clients: %s\n", run.clients, asnCheck(run))
		fmt.Fprintf(w, "  reads, %d clients: %d served (%.1f%% found plans), %d wrong answers, %d warm-up errors%s\n",
			run.clients, run.served, pct(int(run.found), float64(run.served)), run.wrong, run.warmErrors, errorKinds(run.errKinds))
		fmt.Fprintf(w, "  cpu, %d clients: %s; server CPU per read %d µs\n", run.clients, run.cpu, run.cpuPerRead().Microseconds())
	}
}

// printServer ends a store's part: its ASNs against every read of all its
// runs, and how the server did over them.
func printServer(w io.Writer, s *storeResult) {
	exit := "0"
	if s.exit != nil {
		exit = s.exit.Error()
	}
	printASNTally(w, s.asn)
	fmt.Fprintf(w, "  server: VmHWM %.1f MiB; exit status after SIGTERM: %s\n", s.hwm, exit)
}

func (r *report) pgbenchAt(clients int) (pgbenchRun, bool) {
	i := slices.IndexFunc(r.pgbench, func(p pgbenchRun) bool { return p.clients == clients })
	if i < 0 {
		return pgbenchRun{}, false
	}
	return r.pgbench[i], true
}

func (r *report) printPgbench(w io.Writer) {
	if r.store("postgres") == nil {
		return
	}
	fmt.Fprintf(w, "\npgbench: PostgreSQL alone on the same database, server stopped; per transaction one indexed SELECT of plans by NHS number and one INSERT of an audit row (-M prepared, -j 2, %s)\n", r.cfg.duration)
	if r.pgbenchErr != nil {
		fmt.Fprintf(w, "  not measured: %v\n", r.pgbenchErr)
	}
	if len(r.pgbench) > 0 {
		fmt.Fprintln(w, "clients |     tps | latency avg ms | failed")
	}
	for _, p := range r.pgbench {
		fmt.Fprintf(w, "%7d | %7.0f | %14.2f | %6d\n", p.clients, p.tps, p.latency, p.failed)
	}
}

func (r *report) printTargets(w io.Writer) {
	fmt.Fprintf(w, "\ntargets (%d CPUs shared by server, database and load generator", r.machine.cpus)
	if r.cfg.plans != 300_000 || !r.cfg.uploadOnly && r.cfg.audits != 5_000_000 {
		fmt.Fprint(w, "; set for the default data set, not this one")
	}
	fmt.Fprintln(w, "):")
	for _, t := range targets {
		s := r.store(t.store)
		if s == nil {
			continue
		}
		i := slices.IndexFunc(s.runs, func(run storeRun) bool { return run.clients == t.clients })
		if i < 0 {
			fmt.Fprintf(w, "  %s, %d clients: not measured\n", t.store, t.clients)
			continue
		}
		run := s.runs[i]
		line := fmt.Sprintf("  %s, %d clients: >= %.0f audited searches/s: %s (%.0f)", t.store, t.clients, t.minRate, verdict(run.rate() >= t.minRate), run.rate())
		if t.maxP99 > 0 {
			p99 := run.percentile(0.99)
			line += fmt.Sprintf("; p99 < %.0f ms: %s (%.2f ms)", t.maxP99, verdict(p99 < t.maxP99), p99)
		}
		fmt.Fprintln(w, line)
	}
	r.printASNTargets(w)
	r.printDeliveryTargets(w)
	r.printUploadTargets(w)
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func errorKinds(kinds map[string]int) string {
	if len(kinds) == 0 {
		return ""
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	slices.Sort(parts)
	return "; errors (" + strings.Join(parts, ", ") + ")"
}

func pct(n int, of float64) float64 {
	if of == 0 {
		return math.NaN()
	}
	return 100 * float64(n) / of
}

// thousands formats n with commas.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
