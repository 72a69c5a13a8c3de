package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgbenchScript is PostgreSQL's share of one audited search, as the server
// runs it (internal/store/postgres: planSearchSQL for a health user's
// search by NHS number, with the default page of 20 and one row more; then
// an audit row with the columns of audit_events), with the NHS number
// drawn from a lookup table holding the same mix as our clients (1 in
// --plan-one-in with a plan).
// pgbench takes :name anywhere for a variable, so values with colons come
// in as variables (pgbenchVars), which -M prepared sends as parameters, as
// the server does; casts are written CAST(... AS ...).
const pgbenchScript = `\set i random(1, :rows)
SELECT id, version, nhs_number, plan_type, start_date, end_date, la_code, la_name, emergency_phone, office_phone, birth_date, entered_in_error, last_updated FROM plans WHERE nhs_number = (SELECT nhs FROM bench_lookup WHERE i = :i) AND NOT entered_in_error AND display_until >= current_date ORDER BY last_updated DESC, id DESC LIMIT 21;
INSERT INTO audit_events (id, recorded, action, interaction, outcome, actor_kind, actor_user_id, actor_name, actor_role_profile_id, actor_role_code, actor_role_name, actor_org_code, actor_org_name, actor_activities, nhs_number, plan_ids, query, request_id, access, unscheduled, la_codes, source) SELECT CAST(gen_random_uuid() AS text), now(), 'E', 'search-type', 0, 'health-user', '555000000001', 'Dr Ada Testwell', '555000000101', :role_code, 'Clinical Practitioner Access Role', 'ZZT01', 'Fictional Community and Acute NHS Trust', '{B0107}', nhs, NULL, :query || nhs, CAST(gen_random_uuid() AS text), false, true, NULL, :source FROM bench_lookup WHERE i = :i;
`

// pgbenchVars are the script's constant values that hold colons.
var pgbenchVars = []string{
	"role_code=S8000:G8000:R8000",
	"query=" + searchPath,
	"source=http://127.0.0.1:8080",
}

// pgbenchRun is what pgbench reported for one concurrency.
type pgbenchRun struct {
	clients int
	tps     float64 // without initial connection time
	latency float64 // average, ms
	failed  int
}

// findPgbench looks in PATH, then where Debian installs PostgreSQL.
func findPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pgbench")
	if len(found) == 0 {
		return "", errors.New("pgbench not found in PATH or /usr/lib/postgresql/*/bin")
	}
	slices.Sort(found)
	return found[len(found)-1], nil
}

// prepareLookup fills bench_lookup with oneIn rows for each plan: NHS
// numbers with a plan one time in oneIn, without one otherwise. It returns
// its size.
func prepareLookup(ctx context.Context, dbURL string, d *dataset, oneIn int) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	rows := oneIn * len(d.plans)
	for _, s := range []string{`DROP TABLE IF EXISTS bench_lookup`,
		`CREATE TABLE bench_lookup (i integer PRIMARY KEY, nhs text COLLATE "C" NOT NULL)`} {
		if _, err := conn.Exec(ctx, s); err != nil {
			return 0, err
		}
	}
	r := rand.New(rand.NewPCG(d.seed, uint64(oneIn)))
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == rows {
			return nil, nil
		}
		i++
		if r.IntN(oneIn) == 0 {
			return []any{i, string(d.withPlan[r.IntN(len(d.withPlan))])}, nil
		}
		return []any{i, string(d.without[r.IntN(len(d.without))])}, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"bench_lookup"}, []string{"i", "nhs"}, src); err != nil {
		return 0, err
	}
	_, err = conn.Exec(ctx, `VACUUM (ANALYZE) bench_lookup`)
	return rows, err
}

// runPgbench runs the script with clients connections for duration.
func runPgbench(ctx context.Context, bin, dbURL, script string, rows, clients int, duration time.Duration) (pgbenchRun, error) {
	secs := max(1, int(duration.Round(time.Second).Seconds()))
	args := []string{"-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(2, clients)),
		"-T", strconv.Itoa(secs), "-D", "rows=" + strconv.Itoa(rows), "-f", script}
	for _, v := range pgbenchVars {
		args = append(args, "-D", v)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, dbURL)...)
	cmd.Env = append(os.Environ(), "PGAPPNAME=cpisbench-pgbench")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgbenchRun{}, fmt.Errorf("pgbench -c %d: %w\n%s", clients, err, out)
	}
	return parsePgbench(clients, out)
}

var (
	tpsLine     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	latencyLine = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
	failedLine  = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
)

// parsePgbench reads pgbench's summary.
func parsePgbench(clients int, out []byte) (pgbenchRun, error) {
	r := pgbenchRun{clients: clients}
	tps, lat := tpsLine.FindSubmatch(out), latencyLine.FindSubmatch(out)
	if tps == nil || lat == nil {
		return r, fmt.Errorf("pgbench output without tps or latency:\n%s", out)
	}
	r.tps, _ = strconv.ParseFloat(string(tps[1]), 64)
	r.latency, _ = strconv.ParseFloat(string(lat[1]), 64)
	if f := failedLine.FindSubmatch(out); f != nil {
		r.failed, _ = strconv.Atoi(string(f[1]))
	}
	return r, nil
}

// pgbenchAll measures PostgreSQL alone at each concurrency, on the
// benchmark database, with the server stopped.
func pgbenchAll(ctx context.Context, cfg config, d *dataset, dbURL string, progress io.Writer) ([]pgbenchRun, error) {
	bin, err := findPgbench()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "pgbench: filling bench_lookup (%d rows)\n", cfg.planOneIn*len(d.plans))
	rows, err := prepareLookup(ctx, dbURL, d, cfg.planOneIn)
	if err == nil {
		err = settle(ctx, dbURL)
	}
	if err != nil {
		return nil, fmt.Errorf("bench_lookup: %w", err)
	}
	script := filepath.Join(cfg.dir, "pgbench.sql")
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o600); err != nil {
		return nil, err
	}
	var runs []pgbenchRun
	for _, c := range cfg.clients {
		r, err := runPgbench(ctx, bin, dbURL, script, rows, c, cfg.duration)
		if err != nil {
			return runs, err
		}
		fmt.Fprintf(progress, "pgbench, %d clients: %.0f tps, latency average %.2f ms\n", c, r.tps, r.latency)
		runs = append(runs, r)
	}
	return runs, nil
}
