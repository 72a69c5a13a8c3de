package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// smokeArgs is a run small enough for a test: the whole pipeline (data
// set, load, server, tokens, load generator, audit check, pgbench, report)
// in seconds. The prior audit trail is small because under the race
// detector the embedded SQLite driver loads about 1,300 records a second.
var smokeArgs = []string{"--plans", "2000", "--audits", "5000", "--duration", "2s", "--warmup", "500ms", "--clients", "4,16",
	"--asn-rounds", "1", "--asn-duration", "1s", "--delivery-rounds", "1", "--delivery-duration", "1s"}

// auditLine is the report's audit check of one run.
var auditLine = regexp.MustCompile(`(?m)^  audit, (\d+) clients: (\d+) written, (\d+) reads served: (\w+)$`)

// asnLine is the report's ASN check of one run: ASNs stored, pairs newly
// read in unscheduled care, reads that found plans; asnAll the store's.
var (
	asnLine = regexp.MustCompile(`(?m)^  asn(?:, (\d+) clients:| cost, 1 in \d+, round \d+, (with ASNs|without): audit \d+ written for \d+ reads served: \w+;) (\d+) ASNs stored for (\d+) \(NHS number, LA\) read in unscheduled care and not before \((\d+) unscheduled reads found plans\): (\w+)`)
	asnAll  = regexp.MustCompile(`(?m)^  asn, all runs: (\d+) stored for (\d+) \(NHS number, LA\) read in unscheduled care; 0 read but not sent, 0 sent but never read, 0 sent more than once: equal$`)
)

// TestSmokeRun runs the benchmark end to end on each store and checks the
// report: a row per concurrency, and AuditEvents written equal to reads
// served, read from the report's own figures; on PostgreSQL the upload
// too (TestUploadOnly runs it on SQLite, which keeps the test time down).
func TestSmokeRun(t *testing.T) {
	t.Parallel() // with TestUploadOnly: much of each is waiting on timers and fsync
	tests := []struct {
		store string
		args  func(t *testing.T) []string
	}{
		{"sqlite", func(t *testing.T) []string { return []string{"--upload=false"} }},
		{"postgres", func(t *testing.T) []string {
			pgtest.URL(t) // skips, or fails with CI=true, when PostgreSQL does not answer
			base := or(os.Getenv("CPIS_TEST_DATABASE_URL"), pgtest.DefaultURL)
			return []string{"--database-url", base, "--database-name", "cpisbench_test_" + randomHex(t)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			args := append([]string{"--stores", tt.store, "--dir", t.TempDir()}, smokeArgs...)
			args = append(args, tt.args(t)...)
			var out bytes.Buffer
			if err := run(t.Context(), args, func(string) string { return "" }, &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			report := out.String()
			t.Log(report)
			checkAudit(t, report, []int{4, 16})
			costRuns := 0
			if tt.store == "postgres" {
				costRuns = 4 // one round of each load, 1 in 20 and 1 in 1 finding a plan
			}
			checkASNs(t, report, []int{4, 16}, costRuns)
			if tt.store == "postgres" {
				checkUpload(t, report, []string{tt.store}, 2000)
			} else if strings.Contains(report, "upload:") {
				t.Errorf("--upload=false, but the report has an upload:\n%s", report)
			}
			for _, want := range []string{"\n      4 | ", "\n     16 | ", "exit status after SIGTERM: 0", "0 wrong answers"} {
				if !strings.Contains(report, want) {
					t.Errorf("the report lacks %q:\n%s", want, report)
				}
			}
			if _, err := findPgbench(); tt.store == "postgres" && err == nil && !strings.Contains(report, "clients |     tps |") {
				t.Errorf("pgbench is installed but the report has no pgbench table:\n%s", report)
			}
		})
	}
}

// TestUploadOnly runs only the upload, on SQLite: no reads, no prior
// audit trail, and the upload's figures in the report.
func TestUploadOnly(t *testing.T) {
	t.Parallel()
	args := []string{"--upload-only", "--stores", "sqlite", "--dir", t.TempDir(), "--plans", "2000", "--audits", "5000"}
	var out bytes.Buffer
	if err := run(t.Context(), args, func(string) string { return "" }, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	t.Log(report)
	checkUpload(t, report, []string{"sqlite"}, 2000)
	for _, unwanted := range []string{tableHead, "prior AuditEvents over", "pgbench"} {
		if strings.Contains(report, unwanted) {
			t.Errorf("an upload-only report holds %q:\n%s", unwanted, report)
		}
	}
}

// TestASNOnly runs only the cost of ASNs on PostgreSQL: one standard run
// at 32 clients, then the paired table and its checks; no pgbench or
// upload.
func TestASNOnly(t *testing.T) {
	t.Parallel()
	pgtest.URL(t)
	base := or(os.Getenv("CPIS_TEST_DATABASE_URL"), pgtest.DefaultURL)
	args := []string{"--asn-only", "--dir", t.TempDir(), "--database-url", base, "--database-name", "cpisbench_test_" + randomHex(t),
		"--plans", "2000", "--audits", "5000", "--duration", "1s", "--warmup", "500ms", "--asn-rounds", "2", "--asn-duration", "1s", "--asn-worst=false"}
	var out bytes.Buffer
	if err := run(t.Context(), args, func(string) string { return "" }, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	report := out.String()
	t.Log(report)
	checkAudit(t, report, []int{32})
	checkASNs(t, report, []int{32}, 4) // two rounds of both loads, 1 in 20 finding a plan only
	rows := regexp.MustCompile(`(?m)^    1 in 20 \| +(\d|all) \|`).FindAllString(report, -1)
	if len(rows) != 3 {
		t.Errorf("%d rows of the ASN cost table, want rounds 1, 2 and all:\n%s", len(rows), report)
	}
	for _, unwanted := range []string{"sqlite", "\npgbench:", "upload", "every search finding a plan"} {
		if strings.Contains(report, unwanted) {
			t.Errorf("an ASN-only report holds %q:\n%s", unwanted, report)
		}
	}
}

// uploadRow is a row of the upload table: the import, plans sent, the
// counts (created, updated, unchanged, ended, rejected), files refused and
// the check.
var uploadRow = regexp.MustCompile(`(?m)^(first import|same files again|full import)[^|]*\| +(\d+) \| +[\d.]+ \| +\d+ \| +(\d+) \| +(\d+) \| +(\d+) \| +(\d+) \| +(\d+) \| +(\d+) \| +[\d.]+ \| +\d+ \| (.+)$`)

// checkUpload reads the upload table of each store from the report: every
// plan created, then every plan unchanged, then the full import ending 1%;
// nothing rejected; and a verdict on each target.
func checkUpload(t *testing.T, report string, stores []string, plans int) {
	t.Helper()
	rows := uploadRow.FindAllStringSubmatch(report, -1)
	if len(rows) != 3*len(stores) {
		t.Fatalf("%d upload rows, want %d:\n%s", len(rows), 3*len(stores), report)
	}
	missing := plans / 100
	for i, m := range rows {
		n := func(k int) int { return atoi(t, m[k]) }
		var want [7]int // sent, created, updated, unchanged, ended, rejected, refused
		switch i % 3 {
		case 0:
			want = [7]int{plans, plans, 0, 0, 0, 0, 0}
		case 1:
			want = [7]int{plans, 0, 0, plans, 0, 0, 0}
		case 2:
			want = [7]int{plans - missing, 0, 0, plans - missing, missing, 0, 0}
		}
		got := [7]int{n(2), n(3), n(4), n(5), n(6), n(7), n(8)}
		if got != want || m[9] != "as sent" {
			t.Errorf("upload row %q: got %v, want %v and as sent", m[0], got, want)
		}
	}
	for _, st := range stores {
		for _, target := range []string{"plans loaded in <=", "unchanged re-import >=", "server peak RSS (VmHWM) <="} {
			if !regexp.MustCompile(`(?m)^  ` + st + `, upload: .*` + regexp.QuoteMeta(target) + `.*: (PASS|MISS) \(`).MatchString(report) {
				t.Errorf("no %s upload target %q with a verdict:\n%s", st, target, report)
			}
		}
		if !strings.Contains(report, "upload through cpisd on the "+st+" store") {
			t.Errorf("no upload table for %s", st)
		}
	}
}

// checkASNs finds the ASN line of each concurrency and of each run of the
// ASN cost measurement, and the store's total: ASNs stored equal to the
// pairs read in unscheduled care, by figures; some ASNs in the standard
// runs, none without unscheduled care; and on PostgreSQL the target line.
func checkASNs(t *testing.T, report string, clients []int, costRuns int) {
	t.Helper()
	lines := asnLine.FindAllStringSubmatch(report, -1)
	if len(lines) != len(clients)+costRuns {
		t.Fatalf("%d ASN lines, want %d:\n%s", len(lines), len(clients)+costRuns, report)
	}
	total := 0
	for i, m := range lines {
		stored, expected, found := atoi(t, m[3]), atoi(t, m[4]), atoi(t, m[5])
		total += stored
		switch {
		case stored != expected || m[6] != "equal":
			t.Errorf("ASN line %q: want stored = expected, equal", m[0])
		case i < len(clients) && (atoi(t, m[1]) != clients[i] || found == 0 || stored == 0 || stored > found):
			t.Errorf("ASN line %q: want %d clients, 0 < ASNs <= unscheduled reads that found plans", m[0], clients[i])
		case m[2] == "without" && (found != 0 || stored != 0):
			t.Errorf("ASN line %q: scheduled care only, yet ASNs", m[0])
		case m[2] == "with ASNs" && found == 0:
			t.Errorf("ASN line %q: no unscheduled read found a plan", m[0])
		}
	}
	all := asnAll.FindStringSubmatch(report)
	if all == nil || atoi(t, all[1]) != total || atoi(t, all[2]) != total {
		t.Errorf("no store total of %d ASNs, equal to the pairs read:\n%s", total, report)
	}
	target := regexp.MustCompile(`(?m)^  ASN cost at 32 clients on PostgreSQL: ratio >= 0\.90: (PASS|MISS) \(`)
	if got := target.MatchString(report); got != (costRuns > 0) {
		t.Errorf("the ASN cost target line: present %v, want %v:\n%s", got, costRuns > 0, report)
	}
}

// checkAudit finds the audit line of each concurrency and checks its
// figures, not just its verdict.
func checkAudit(t *testing.T, report string, clients []int) {
	t.Helper()
	lines := auditLine.FindAllStringSubmatch(report, -1)
	if len(lines) != len(clients) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(clients), report)
	}
	for i, m := range lines {
		n, written, served := atoi(t, m[1]), atoi(t, m[2]), atoi(t, m[3])
		if n != clients[i] || written == 0 || written != served || m[4] != "equal" {
			t.Errorf("audit line %q: want %d clients, written = served > 0, equal", m[0], clients[i])
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestDataset checks the data set's proportions and rules, and that a seed
// makes the same data set every time.
func TestDataset(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the day after 28 February in a common year
	d, err := newDataset(7, 20_000, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.plans) != 20_000 {
		t.Fatalf("%d plans, want 20000", len(d.plans))
	}
	counts := map[string]int{}
	las := map[string]bool{}
	for i, p := range d.plans {
		counts[string(p.Type)]++
		if p.StatusOn(d.today) == cpis.Active {
			counts["active"]++
		}
		if i > 0 && d.plans[i-1].NHSNumber == p.NHSNumber {
			counts["second"]++
		}
		if !p.VisibleToHealth(d.today) || p.LastUpdated.After(now) || p.Start.After(d.today) {
			t.Fatalf("plan %d is not visible today, or is from the future: %+v", i, p)
		}
		las[p.LA.Code] = true
	}
	t.Logf("counts %v over %d LAs", counts, len(las))
	tests := []struct {
		what     string
		got      int
		min, max int
	}{
		{"CLA", counts["CLA"], 10_400, 11_200},
		{"CPP", counts["CPP"], 7_900, 8_700},
		{"UCPP", counts["UCPP"], 750, 1_100},
		{"active", counts["active"], 9_600, 10_400},
		{"second plans of a child", counts["second"], 1_500, 2_100}, // 10% of 19,000 children
		{"LAs with plans", len(las), numLAs, numLAs},
	}
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			if tt.got < tt.min || tt.got > tt.max {
				t.Errorf("%d, want %d to %d", tt.got, tt.min, tt.max)
			}
		})
	}
	again, err := newDataset(7, 20_000, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.plans, again.plans); diff != "" {
		t.Errorf("the same seed made another data set (-first +second):\n%s", diff)
	}
	// Later the same day: the same plans, but for their times of update (a
	// kept database is reused on the day it was made).
	later, err := newDataset(7, 20_000, now.Add(7*time.Hour+time.Second/3))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.plans, later.plans, cmpopts.IgnoreFields(cpis.Plan{}, "LastUpdated")); diff != "" {
		t.Errorf("a data set made later the same day differs (-first +later):\n%s", diff)
	}
}

// TestAuditBatches checks the prior audit trail: in time order over the
// last year, the same for a seed, accesses naming the plans they showed.
func TestAuditBatches(t *testing.T) {
	now := time.Date(2026, 6, 15, 9, 0, 0, 0, time.UTC)
	d, err := newDataset(3, 1_000, now)
	if err != nil {
		t.Fatal(err)
	}
	who := actors()
	const n = 2*auditBatch + 17
	var all []cpis.AuditRecord
	for b := range 3 {
		all = append(all, d.auditBatchOf(b, n, who)...)
	}
	if len(all) != n {
		t.Fatalf("%d records, want %d", len(all), n)
	}
	access := 0
	for i, r := range all {
		if i > 0 && r.Recorded.Before(all[i-1].Recorded) {
			t.Fatalf("record %d is older than the one before", i)
		}
		if r.Recorded.Before(now.Add(-auditHistory)) || r.Recorded.After(now) {
			t.Fatalf("record %d recorded %v, outside the last year", i, r.Recorded)
		}
		if r.Access != (len(r.PlanIDs) > 0) || r.Unscheduled && !r.Access || r.ID == "" || r.Patient == "" {
			t.Fatalf("record %d is inconsistent: %+v", i, r)
		}
		access += int(b2i(r.Access))
	}
	if share := float64(access) / n; share < 0.83 || share > 0.87 {
		t.Errorf("%.3f of records are accesses, want about %.2f", share, shareAccess)
	}
	if diff := cmp.Diff(all[:auditBatch], d.auditBatchOf(0, n, who)); diff != "" {
		t.Errorf("batch 0 differs on a second making (-first +second):\n%s", diff)
	}
}

func TestParsePgbench(t *testing.T) {
	out := []byte(`pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: /tmp/x/pgbench.sql
query mode: prepared
number of clients: 32
number of threads: 2
number of transactions actually processed: 72500
number of failed transactions: 3 (0.004%)
latency average = 8.830 ms
initial connection time = 35.093 ms
tps = 3625.004 (without initial connection time)
`)
	got, err := parsePgbench(32, out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pgbenchRun{clients: 32, tps: 3625.004, latency: 8.83, failed: 3}, got, cmp.AllowUnexported(pgbenchRun{})); diff != "" {
		t.Errorf("parsePgbench (-want +got):\n%s", diff)
	}
	if _, err := parsePgbench(32, []byte("pgbench: error: connection refused\n")); err == nil {
		t.Error("parsePgbench accepted output without figures")
	}
}

func TestPercentile(t *testing.T) {
	l := &load{}
	for i := 1; i <= 200; i++ {
		l.latencies = append(l.latencies, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		q    float64
		want float64
	}{{0.5, 100}, {0.95, 190}, {0.99, 198}, {1, 200}, {0, 1}}
	for _, tt := range tests {
		if got := l.percentile(tt.q); got != tt.want {
			t.Errorf("percentile(%v) = %v ms, want %v", tt.q, got, tt.want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		ok   bool
	}{
		{"defaults", nil, true},
		{"smoke", smokeArgs, true},
		{"unknown store", []string{"--stores", "mysql"}, false},
		{"no clients", []string{"--clients", "0"}, false},
		{"too many plans", []string{"--plans", "500000"}, false},
		{"short duration", []string{"--duration", "10ms"}, false},
		{"database name with a quote", []string{"--database-name", "x'; DROP"}, false},
		{"the maintenance database", []string{"--database-name", "postgres"}, false},
		{"stray argument", []string{"now"}, false},
		{"upload only", []string{"--upload-only", "--plans", "2000"}, true},
		{"upload only without upload", []string{"--upload-only", "--upload=false"}, false},
		{"no upload clients", []string{"--upload-clients", "0"}, false},
		{"database name too long for the upload's", []string{"--database-name", strings.Repeat("a", 60)}, false},
		{"every search finding a plan", []string{"--plan-one-in", "1"}, true},
		{"no search finding a plan", []string{"--plan-one-in", "0"}, false},
		{"ASN only", []string{"--asn-only", "--asn-rounds", "5", "--asn-duration", "5s"}, true},
		{"ASN only without ASNs", []string{"--asn-only", "--asn=false"}, false},
		{"ASN only on SQLite", []string{"--asn-only", "--stores", "sqlite"}, false},
		{"ASN only and upload only", []string{"--asn-only", "--upload-only"}, false},
		{"no ASN rounds", []string{"--asn-rounds", "0"}, false},
		{"short ASN runs", []string{"--asn-duration", "100ms"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, func(string) string { return "" })
			if (err == nil) != tt.ok {
				t.Errorf("parseConfig(%q) error = %v, want ok %v", tt.args, err, tt.ok)
			}
		})
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/cpis_bench?sslmode=disable"},
		{"postgresql://u:p@db/x", "postgresql://u:p@db/cpis_bench"},
		{"host=127.0.0.1 user=postgres", "host=127.0.0.1 user=postgres dbname=cpis_bench"},
	}
	for _, tt := range tests {
		if got, err := withDatabase(tt.in, "cpis_bench"); err != nil || got != tt.want {
			t.Errorf("withDatabase(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 300000: "300,000", 5000000: "5,000,000", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTestNHSNumbers(t *testing.T) {
	all := testNHSNumbers()
	// 1,000,000 candidates, of which those whose check value is 10 have no
	// valid number: about one in eleven.
	if len(all) < 900_000 || len(all) > 920_000 {
		t.Fatalf("%d numbers, want about 909,000", len(all))
	}
	for _, known := range []cpis.NHSNumber{"9990276579"} { // a valid test number (docs/domain.md, NHS numbers)
		if _, found := slices.BinarySearch(all, known); !found {
			t.Errorf("%s is missing", known)
		}
	}
	if !slices.IsSorted(all) || all[0][:3] != "999" || all[len(all)-1][:9] != "999999999" && all[len(all)-1][:6] != "999999" {
		t.Errorf("not the 999 range in order: first %s, last %s", all[0], all[len(all)-1])
	}
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("%s twice", all[i])
		}
	}
}

// TestHelp: --help prints the flags and is not an error.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, func(string) string { return "" }, &out); err != nil {
		t.Fatalf("run --help: %v", err)
	}
	if !strings.Contains(out.String(), "-clients") {
		t.Errorf("--help printed no flags:\n%s", out.String())
	}
	if err := run(t.Context(), []string{"--no-such-flag"}, func(string) string { return "" }, &out); err == nil {
		t.Error("an unknown flag was accepted")
	}
}
