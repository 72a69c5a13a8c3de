// Command cpisbench is the audited-read and upload benchmark behind `make
// bench`.
//
// It builds a data set at national scale (plans over 153 local authorities,
// millions of prior AuditEvents), loads it into a fresh database for each
// store, starts the real server (cmd/cpisd) on it as a child process, and
// drives audited Flag searches for random NHS numbers at several
// concurrencies with real bearer tokens. Then, with the server stopped, it
// measures what PostgreSQL alone does for the same work with pgbench. Then
// it uploads the same plans as each LA's NDJSON file through the server's
// Flag/$import on an empty database of each store: all new, all unchanged,
// and a full import that ends the plans left out. It prints one report:
// throughput, latency percentiles, errors, the server's memory, a check that
// every read served left exactly one AuditEvent and that the unscheduled-care
// reads that returned plans sent exactly the ASNs they should, what ASNs
// cost on PostgreSQL (the same load with and without them, in interleaved
// rounds), how fast and how completely subscriptions deliver the ASNs of
// the same reads to the LAs' endpoints and what that costs the reads, and
// the counts each import answered against those its files imply.
//
// Benchmarks in this project are commands that print a report, never timed
// tests; see README.md for how to read it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // "today" is a UK date wherever the command runs
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cpisbench:", err)
		os.Exit(1)
	}
}
