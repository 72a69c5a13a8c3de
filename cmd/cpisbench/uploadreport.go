package main

import (
	"fmt"
	"io"
	"time"
)

// Targets of the upload (issue 8): every plan loaded within a time per
// store, an unchanged re-import at least twice as fast as the first, and
// the server's peak memory bounded.
var uploadTargets = map[string]time.Duration{"postgres": 60 * time.Second, "sqlite": 120 * time.Second}

const (
	minReimportSpeedup = 2.0
	maxUploadRSS       = 300e6 // bytes: 300 MB
)

const uploadHead = "import                                  |   plans | wall s | plans/s | created | updated | unchanged |  ended | rejected | errors | peak RSS MiB | server CPU µs/plan | check"

func (r *report) printUploads(w io.Writer) {
	if r.files == nil {
		return
	}
	f := r.files
	fmt.Fprintf(w, "\nupload: %d LA files of NDJSON Flags, a plan a line with the LA's reference (%s plans, %.1f MB; the full files leave out %s current plans, %.1f%%), "+
		"each POSTed to %s with a token of its LA from cpisbench's own issuer (the server in production mode, the data set's %d LAs its register), "+
		"%d files at once, largest first; a fresh, empty database per store; before each import PostgreSQL checkpoints and dirty pages are synced\n",
		len(f.las), thousands(f.lines), float64(f.size)/1e6, thousands(f.missing), pct(f.missing, float64(f.lines)),
		importPath, len(r.d.las), r.cfg.uploadClients)
	for _, u := range r.uploads {
		fmt.Fprintf(w, "\n%s: upload through cpisd on the %s store\n%s\n", u.name, u.name, uploadHead)
		for _, run := range u.runs {
			check := "as sent"
			if !run.ok() {
				check = "DIFFER"
			}
			g := run.got
			fmt.Fprintf(w, "%-39s | %7d | %6.1f | %7.0f | %7d | %7d | %9d | %6d | %8d | %6d | %12.1f | %18d | %s\n",
				run.phase, run.lines, run.wall.Seconds(), run.rate(), g.created, g.updated, g.unchanged, g.ended, g.rejected,
				run.errors, run.peakRSS, run.cpuPerLine().Microseconds(), check)
		}
		for _, run := range u.runs {
			printUploadDetail(w, run)
		}
		exit := "0"
		if u.exit != nil {
			exit = u.exit.Error()
		}
		fmt.Fprintf(w, "  server: VmHWM %.1f MiB over the three imports; database %.2f GiB after; exit status after SIGTERM: %s\n", u.hwm, float64(u.dbSize)/(1<<30), exit)
	}
}

func printUploadDetail(w io.Writer, run uploadRun) {
	fmt.Fprintf(w, "  %s: cpu %s; longest request %s, %d plans, %.1f s from sending to the answer\n",
		run.phase, run.cpu, run.slowest.la, run.slowest.lines, run.slowest.took.Seconds())
	if !run.ok() {
		fmt.Fprintf(w, "    want %s, no file refused; got %s, %d files refused\n", run.want, run.got, run.errors)
	}
	if len(run.errKinds) > 0 {
		fmt.Fprintf(w, "    files refused:%s\n", errorKinds(run.errKinds))
	}
	for _, rj := range run.rejections {
		fmt.Fprintf(w, "    rejected: %s\n", rj)
	}
}

func (r *report) printUploadTargets(w io.Writer) {
	for _, u := range r.uploads {
		if len(u.runs) < 2 {
			continue
		}
		first, again := u.runs[0], u.runs[1]
		limit := uploadTargets[u.name]
		fmt.Fprintf(w, "  %s, upload: all %s plans loaded in <= %.0f s: %s (%.1f s, %.0f plans/s)\n", u.name, thousands(first.lines),
			limit.Seconds(), verdict(first.ok() && first.wall <= limit), first.wall.Seconds(), first.rate())
		speedup := first.wall.Seconds() / again.wall.Seconds()
		fmt.Fprintf(w, "  %s, upload: unchanged re-import >= %.0fx as fast as the first: %s (%.2fx: %.1f s against %.1f s)\n", u.name,
			minReimportSpeedup, verdict(again.ok() && speedup >= minReimportSpeedup), speedup, again.wall.Seconds(), first.wall.Seconds())
		hwm := u.hwm * (1 << 20)
		fmt.Fprintf(w, "  %s, upload: server peak RSS (VmHWM) <= %.0f MB: %s (%.0f MB)\n", u.name, maxUploadRSS/1e6, verdict(hwm > 0 && hwm <= maxUploadRSS), hwm/1e6)
	}
}
