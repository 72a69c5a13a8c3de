package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cpis-fhir/cpis/internal/store/postgres"
)

// describe names the database of url for the operator, without its
// password: the URL itself is never printed.
func describe(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return "the database (its URL cannot be parsed)"
	}
	return fmt.Sprintf("database %q on %s:%d as user %q", cfg.Database, cfg.Host, cfg.Port, cfg.User)
}

// migrate applies the pending migrations and says which, then makes the
// audit partitions of the current month by e's clock, the one the servers
// run on, and of the months after.
func migrate(ctx context.Context, e *env, args []string) error {
	if err := flags(e, "migrate", args, func(*flag.FlagSet) {}); err != nil {
		return err
	}
	url, err := databaseURL(e.getenv)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "migrating %s\n", describe(url))
	now := e.now()
	applied, err := postgres.Migrate(ctx, url, now)
	for _, m := range applied {
		fmt.Fprintf(e.stdout, "applied %04d_%s\n", m.Version, m.Name)
	}
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(e.stdout, "nothing to apply: the schema is up to date")
	}
	first := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintf(e.stdout, "audit partitions exist for %s through %s (UTC months)\n",
		first.Format("2006-01"), first.AddDate(0, postgres.DefaultAuditMonthsAhead, 0).Format("2006-01"))
	return nil
}

// minKeepMonths is the shortest retention audit-retention accepts: a year
// of access history, so that the periodic information governance audit
// always has the last twelve months to look at.
const minKeepMonths = 12

// auditRetention drops the audit partitions that end before the start of
// the month keepMonths before the current one (UTC): it keeps the current
// month and the keepMonths whole months before it.
func auditRetention(ctx context.Context, e *env, args []string) error {
	keep := 0
	if err := flags(e, "audit-retention", args, func(fs *flag.FlagSet) {
		fs.IntVar(&keep, "keep-months", 0, "months of audit trail to keep before the current one")
	}); err != nil {
		return err
	}
	if keep < minKeepMonths {
		return &usageError{fmt.Sprintf("audit-retention: --keep-months N is required, N >= %d", minKeepMonths)}
	}
	url, err := databaseURL(e.getenv)
	if err != nil {
		return err
	}
	now := e.now()
	y, m, _ := now.UTC().Date()
	cutoff := time.Date(y, m-time.Month(keep), 1, 0, 0, 0, 0, time.UTC)
	s, err := postgres.Open(ctx, url, postgres.WithMaxConns(2), postgres.WithApplicationName("cpisctl"))
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(e.stdout, "dropping audit partitions of %s that end by %s\n", describe(url), cutoff.Format(time.DateOnly))
	dropped, err := s.DropAuditPartitionsBefore(ctx, now, cutoff)
	for _, name := range dropped {
		fmt.Fprintf(e.stdout, "dropped %s\n", name)
	}
	if err == nil && len(dropped) == 0 {
		fmt.Fprintln(e.stdout, "nothing to drop")
	}
	return err
}
