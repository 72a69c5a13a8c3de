package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// defaultDatabaseURL is the PostgreSQL server used when neither
// --database-url nor CPIS_TEST_DATABASE_URL says otherwise, as in the tests.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// config is the whole configuration of one benchmark run, from flags.
type config struct {
	stores      []string          // "sqlite", "postgres", in the order run
	plans       int               // plans in the data set
	audits      int               // prior AuditEvents in the data set
	clients     []int             // concurrencies, each a run per store
	duration    time.Duration     // measured time of one run
	warmup      time.Duration     // unmeasured time before it (its reads are audited and checked too)
	databaseURL string            // a PostgreSQL database to connect to; the bench database is made beside it
	database    string            // the bench database's name; dropped and made afresh
	dir         string            // where the SQLite database, server logs and scripts go
	keep        bool              // keep dir and the database, and reuse them when they hold the same data set
	seed        uint64            // the data set's seed
	profile     string            // if set, a directory for CPU profiles of the server, one per run
	pgbench     bool              // measure PostgreSQL alone with pgbench, when PostgreSQL is benchmarked
	serverEnv   map[string]string // extra environment for the server (GOMAXPROCS, GOGC ...), passed through
	// planOneIn is how many searches there are for each one that finds a
	// plan (1: every search finds one): 20 by default, for at a real front
	// door most children are not known to social care.
	planOneIn int
	// The cost of ASNs on PostgreSQL: the standard mix against scheduled
	// care only, at asnClients, in interleaved rounds.
	asn         bool
	asnOnly     bool          // run only it, after one standard run at asnClients: no SQLite, pgbench or upload
	asnRounds   int           // rounds, each measuring both loads once
	asnDuration time.Duration // measured time of each load in a round
	asnWorst    bool          // also every search finding a plan, the worst case
	// The upload run: each LA's file of plans through POST /Flag/$import.
	upload        bool // run it, after the reads
	uploadOnly    bool // run only it: no prior audit trail, reads or pgbench
	uploadClients int  // files sent at once
	// The subscription delivery run on each store: the standard mix at
	// deliveryClients without subscriptions and with every LA subscribed
	// to its ASNs, in interleaved rounds (delivery.go).
	delivery         bool
	deliveryOnly     bool                // run only it, after one standard run at deliveryClients: no pgbench, ASN cost or upload
	deliveryRounds   int                 // rounds, each measuring both loads once
	deliveryDuration time.Duration       // measured time of each load in a round
	deliveryDrain    time.Duration       // how long to wait for the handshakes, and for the events after the load
	deliveryContent  cpis.PayloadContent // the subscriptions' payload content
}

// Limits of the data set: the 999 test range holds about 909,000 valid NHS
// numbers, and searches need numbers without a plan as well as with one.
const (
	maxPlans   = 400_000
	maxClients = 1024
	// maxUploadClients bounds the files sent at once: an import holds its
	// LA's write lock, and a few are what LAs' overnight jobs would overlap.
	maxUploadClients = 64
)

// databaseName must be a plain identifier: it goes into DROP DATABASE.
var databaseName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// helpRequested is parseConfig's answer to -h or --help: the flags' usage,
// which run prints as its output, not as an error.
type helpRequested struct{ usage string }

func (h helpRequested) Error() string { return "help requested" }

// parseConfig reads the flags; getenv supplies the defaults that come from
// the environment.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	c := config{serverEnv: map[string]string{}}
	fs := flag.NewFlagSet("cpisbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stores := fs.String("stores", "sqlite,postgres", "stores to benchmark, in order")
	clients := fs.String("clients", "8,32,64", "concurrent clients, one run each")
	fs.IntVar(&c.plans, "plans", 300_000, "plans in the data set")
	fs.IntVar(&c.audits, "audits", 5_000_000, "prior AuditEvents in the data set")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measured time per store and concurrency")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "warm-up before each measured run")
	fs.StringVar(&c.databaseURL, "database-url", or(getenv("CPIS_TEST_DATABASE_URL"), defaultDatabaseURL), "PostgreSQL to benchmark on")
	fs.StringVar(&c.database, "database-name", "cpis_bench", "name of the benchmark database (dropped and created)")
	fs.StringVar(&c.dir, "dir", "", "working directory (default: a temporary one; with --keep, $TMPDIR/cpisbench)")
	fs.BoolVar(&c.keep, "keep", false, "keep the data directory and database, and reuse them on the next run")
	fs.Uint64Var(&c.seed, "seed", 1, "seed of the data set")
	fs.StringVar(&c.profile, "profile", "", "write a CPU profile of the server for each run into this directory")
	fs.BoolVar(&c.pgbench, "pgbench", true, "measure PostgreSQL alone with pgbench (when postgres is among --stores)")
	fs.BoolVar(&c.upload, "upload", true, "after the reads, upload every LA's file of plans through Flag/$import on a fresh database of each store")
	fs.BoolVar(&c.uploadOnly, "upload-only", false, "run only the upload (no prior audit trail, reads or pgbench)")
	fs.IntVar(&c.uploadClients, "upload-clients", 4, "LA files sent at once in the upload")
	fs.IntVar(&c.planOneIn, "plan-one-in", 20, "searches for each one that finds a plan (1: every search finds one)")
	fs.BoolVar(&c.asn, "asn", true, fmt.Sprintf("measure the cost of ASNs on PostgreSQL: the standard mix against scheduled care only, %d clients, interleaved rounds", asnClients))
	fs.BoolVar(&c.asnOnly, "asn-only", false, fmt.Sprintf("run only the ASN cost measurement on PostgreSQL, after one standard run at %d clients that warms the caches (no SQLite, pgbench or upload)", asnClients))
	fs.IntVar(&c.asnRounds, "asn-rounds", 6, "rounds of the ASN cost measurement, each running both loads (even: each goes first as often)")
	fs.DurationVar(&c.asnDuration, "asn-duration", 5*time.Second, "measured time of each load in a round of the ASN cost measurement")
	fs.BoolVar(&c.asnWorst, "asn-worst", true, "also measure the ASN cost when every search finds a plan")
	fs.BoolVar(&c.delivery, "delivery", true, fmt.Sprintf("measure subscription delivery on each store: %d clients reading, without subscriptions and with every LA subscribed to its ASNs, interleaved rounds", deliveryClients))
	fs.BoolVar(&c.deliveryOnly, "delivery-only", false, fmt.Sprintf("run only the delivery measurement, after one standard run at %d clients on each store that warms the caches (no pgbench, ASN cost or upload)", deliveryClients))
	fs.IntVar(&c.deliveryRounds, "delivery-rounds", 2, "rounds of the delivery measurement, each running the load without and with subscriptions (even: each goes first as often)")
	fs.DurationVar(&c.deliveryDuration, "delivery-duration", 10*time.Second, "measured time of each load in a round of the delivery measurement")
	fs.DurationVar(&c.deliveryDrain, "delivery-drain", time.Minute, "how long the delivery measurement waits for the handshakes, and for every event after the load")
	content := fs.String("delivery-content", string(cpis.ContentFullResource), "payload content of the delivery measurement's subscriptions: full-resource or id-only")
	if err := fs.Parse(args); err != nil {
		var usage strings.Builder
		fs.SetOutput(&usage)
		fs.PrintDefaults()
		if errors.Is(err, flag.ErrHelp) {
			return c, helpRequested{usage.String()}
		}
		return c, fmt.Errorf("flags: %w\n%s", err, usage.String())
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.stores, err = parseStores(*stores); err != nil {
		return c, err
	}
	if c.clients, err = parseClients(*clients); err != nil {
		return c, err
	}
	for _, name := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "CPIS_LOG_LEVEL"} {
		if v := getenv(name); v != "" {
			c.serverEnv[name] = v
		}
	}
	if c.asnOnly {
		if !slices.Contains(c.stores, "postgres") {
			return c, errors.New("--asn-only measures PostgreSQL, which --stores leaves out")
		}
		// The standard run before the measurement warms the database's
		// caches, as the standard runs at every concurrency do in a whole
		// run: right after loading, the first rounds would be slower
		// than the last, whichever load they ran.
		c.stores, c.clients, c.upload, c.pgbench = []string{"postgres"}, []int{asnClients}, false, false
		c.delivery = c.deliveryOnly // false, unless contradicted: validate says so
	}
	c.deliveryContent = cpis.PayloadContent(*content)
	if c.deliveryOnly {
		c.clients, c.upload, c.pgbench, c.asn = []int{deliveryClients}, false, false, false
	}
	if c.keep && c.dir == "" {
		c.dir = filepath.Join(or(getenv("TMPDIR"), "/tmp"), "cpisbench")
	}
	return c, c.validate()
}

func (c config) validate() error {
	switch {
	case c.deliveryOnly && (c.asnOnly || c.uploadOnly || !c.delivery):
		return errors.New("--delivery-only contradicts --asn-only, --upload-only and --delivery=false")
	case c.asnOnly && !c.asn:
		return errors.New("--asn-only and --asn=false contradict each other")
	case c.asnOnly && c.uploadOnly:
		return errors.New("--asn-only and --upload-only contradict each other")
	case c.plans < 20 || c.plans > maxPlans:
		return fmt.Errorf("--plans must be from 20 to %d", maxPlans)
	case c.audits < 0:
		return errors.New("--audits must not be negative")
	case c.duration < time.Second:
		return errors.New("--duration must be at least 1s")
	case c.warmup < 0:
		return errors.New("--warmup must not be negative")
	case !databaseName.MatchString(c.database) || c.database == "postgres":
		return errors.New("--database-name must be a lower-case identifier other than postgres")
	case len(c.database)+len(uploadDatabaseSuffix) > 63:
		return fmt.Errorf("--database-name must be at most %d characters: the upload's database is named after it with %s", 63-len(uploadDatabaseSuffix), uploadDatabaseSuffix)
	case c.uploadOnly && !c.upload:
		return errors.New("--upload-only and --upload=false contradict each other")
	case c.uploadClients < 1 || c.uploadClients > maxUploadClients:
		return fmt.Errorf("--upload-clients must be from 1 to %d", maxUploadClients)
	case c.planOneIn < 1 || c.planOneIn > 1000:
		return errors.New("--plan-one-in must be from 1 to 1000")
	case c.asnRounds < 1 || c.asnRounds > 100:
		return errors.New("--asn-rounds must be from 1 to 100")
	case c.asnDuration < time.Second:
		return errors.New("--asn-duration must be at least 1s")
	case c.deliveryRounds < 1 || c.deliveryRounds > 100:
		return errors.New("--delivery-rounds must be from 1 to 100")
	case c.deliveryDuration < time.Second:
		return errors.New("--delivery-duration must be at least 1s")
	case c.deliveryDrain < time.Second:
		return errors.New("--delivery-drain must be at least 1s")
	case c.deliveryContent != cpis.ContentFullResource && c.deliveryContent != cpis.ContentIDOnly:
		return errors.New("--delivery-content must be full-resource or id-only")
	}
	return nil
}

func parseStores(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name != "sqlite" && name != "postgres" {
			return nil, fmt.Errorf("--stores: unknown store %q (sqlite, postgres)", name)
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

func parseClients(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxClients {
			return nil, fmt.Errorf("--clients: %q is not a number of clients from 1 to %d", f, maxClients)
		}
		out = append(out, n)
	}
	return out, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
