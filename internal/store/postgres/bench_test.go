package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// benchPlans is how many plans the benchmarks' database holds: the number
// shown in England once the display windows are counted (CPIS.md section 7).
const benchPlans = 280_000

// benchNHS returns the i-th valid NHS number of the 999 range (about
// 900,000 of them).
func benchNHS(i int) cpis.NHSNumber { return validNHS()[i] }

var validNHS = sync.OnceValue(func() []cpis.NHSNumber {
	var all []cpis.NHSNumber
	for n := range 1_000_000 {
		nine := fmt.Sprintf("999%06d", n)
		sum := 0
		for j := range 9 {
			sum += int(nine[j]-'0') * (10 - j)
		}
		if check := (11 - sum%11) % 11; check != 10 {
			all = append(all, cpis.NHSNumber(fmt.Sprintf("%s%d", nine, check)))
		}
	}
	return all
})

// seedPlans loads n plans straight into the tables, as a bulk upload would.
func seedPlans(tb testing.TB, s *postgres.Store, n int) {
	tb.Helper()
	ctx := context.Background()
	cols := []string{"id", "version", "nhs_number", "plan_type", "start_date", "end_date", "la_code", "la_name",
		"emergency_phone", "office_phone", "birth_date", "entered_in_error", "last_updated", "display_until"}
	start := cpis.MustDate("2025-01-01")
	rows := make([][]any, n)
	for i := range rows {
		p := cpis.Plan{ID: uuid.NewString(), Version: 1, NHSNumber: benchNHS(i), Type: cpis.CPP,
			Start: start, End: start.AddDays(300), LA: cpis.TrustDirectory()[i%6].LocalAuthority,
			EmergencyPhone: "020 7946 0101", OfficePhone: "020 7946 0102", BirthDate: start.AddYears(-8),
			LastUpdated: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
		rows[i] = postgres.PlanArgs(p)
	}
	for _, table := range []string{"plans", "plan_versions"} {
		if _, err := s.Pool().CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
			tb.Fatalf("seeding %s: %v", table, err)
		}
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE"); err != nil {
		tb.Fatalf("ANALYZE: %v", err)
	}
}

// benchRecord is the audit record of one health user's search.
func benchRecord(nhs cpis.NHSNumber, now time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID: uuid.NewString(), Recorded: now, Action: cpis.ActionExecute, Interaction: "search-type",
		Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000001", Name: "Test Practitioner",
			RoleProfileID: "555021935107", RoleCode: "S8001:G8005:R8000", RoleName: "Clinical Practitioner Access Role",
			OrgCode: "RXX01", OrgName: "Test Hospital", Activities: []string{cpis.ActivityUnscheduledView}},
		Patient: nhs, PlanIDs: []string{uuid.NewString()}, Query: "/Flag?patient=" + string(nhs),
		RequestID: uuid.NewString(), Access: true, Unscheduled: true, LACodes: []string{"ZLA01"},
	}
}

// appendFunc is one way of storing a batch of audit records atomically.
type appendFunc func(ctx context.Context, s *postgres.Store, recs []cpis.AuditRecord) error

// appendWays are the candidates for AppendAudit: the store's own (COPY),
// a pipelined batch of single-row INSERTs in one transaction, and one
// multi-row INSERT.
var appendWays = []struct {
	name string
	f    appendFunc
}{
	{"copy", func(ctx context.Context, s *postgres.Store, recs []cpis.AuditRecord) error {
		return s.AppendAudit(ctx, recs)
	}},
	{"batch", appendBatch},
	{"multirow", appendMultiRow},
}

func appendBatch(ctx context.Context, s *postgres.Store, recs []cpis.AuditRecord) error {
	sql := "INSERT INTO audit_events (" + strings.Join(postgres.AuditColumns, ", ") + ") VALUES (" + params(0, len(postgres.AuditColumns)) + ")"
	b := &pgx.Batch{}
	for _, r := range recs {
		b.Queue(sql, postgres.AuditArgs(r)...)
	}
	return s.Pool().SendBatch(ctx, b).Close()
}

func appendMultiRow(ctx context.Context, s *postgres.Store, recs []cpis.AuditRecord) error {
	n := len(postgres.AuditColumns)
	var values []string
	var args []any
	for i, r := range recs {
		values = append(values, "("+params(i*n, n)+")")
		args = append(args, postgres.AuditArgs(r)...)
	}
	sql := "INSERT INTO audit_events (" + strings.Join(postgres.AuditColumns, ", ") + ") VALUES " + strings.Join(values, ", ")
	_, err := s.Pool().Exec(ctx, sql, args...)
	return err
}

func params(from, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprintf("$%d", from+i+1)
	}
	return strings.Join(ps, ", ")
}

// BenchmarkAppendAudit compares the ways of storing a batch of audit records.
func BenchmarkAppendAudit(b *testing.B) {
	s := open(b, pgtest.MigratedURL(b))
	defer s.Close()
	now := time.Now()
	for _, size := range []int{1, 8, 32, 128} {
		for _, way := range appendWays {
			b.Run(fmt.Sprintf("%d/%s", size, way.name), func(b *testing.B) {
				recs := make([]cpis.AuditRecord, size)
				for b.Loop() {
					for i := range recs {
						recs[i] = benchRecord(benchNHS(i), now)
					}
					if err := way.f(b.Context(), s, recs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// auditWriters is how many batches commit at once, as cmd/cpisd configures
// the audit recorder for PostgreSQL.
const auditWriters = 4

// groupCommitter batches the audit records of concurrent requests into one
// AppendAudit, as the audit writer does: each request waits until the
// batch holding its record is committed.
type groupCommitter struct {
	s    *postgres.Store
	f    appendFunc
	reqs chan auditReq
}

type auditReq struct {
	rec  cpis.AuditRecord
	done chan error
}

func (g *groupCommitter) run(ctx context.Context) {
	for {
		var batch []auditReq
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	more:
		for len(batch) < 256 {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		recs := make([]cpis.AuditRecord, len(batch))
		for i, r := range batch {
			recs[i] = r.rec
		}
		err := g.f(ctx, g.s, recs)
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (g *groupCommitter) append(rec cpis.AuditRecord) error {
	done := make(chan error, 1)
	g.reqs <- auditReq{rec, done}
	return <-done
}

// BenchmarkAuditedSearch measures the hot path of the service: a health
// user's search by NHS number, answered only once its audit record is
// committed, with 32 concurrent clients against benchPlans plans. It
// reports throughput and latency percentiles for each way of appending and
// several pool sizes. Run it without -race:
//
//	go test -run '^$' -bench AuditedSearch -benchtime 5s ./internal/store/postgres/
func BenchmarkAuditedSearch(b *testing.B) {
	url := pgtest.MigratedURL(b)
	seed := open(b, url)
	seedPlans(b, seed, benchPlans)
	seed.Close()
	for _, conns := range []int32{4, 8, 16} {
		for _, way := range appendWays {
			b.Run(fmt.Sprintf("conns=%d/%s", conns, way.name), func(b *testing.B) {
				benchAuditedSearch(b, open(b, url, postgres.WithMaxConns(conns)), way.f)
			})
		}
	}
}

func benchAuditedSearch(b *testing.B, s *postgres.Store, f appendFunc) {
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g := &groupCommitter{s: s, f: f, reqs: make(chan auditReq, 64)}
	for range auditWriters {
		go g.run(ctx)
	}
	today := cpis.MustDate("2025-06-15")
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0))) // 32 clients
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		i := rand.IntN(benchPlans) // clients look up different children
		for pb.Next() {
			i = (i + 7919) % benchPlans
			t0 := time.Now()
			nhs := benchNHS(i)
			page, err := s.SearchPlans(ctx, store.PlanQuery{NHSNumber: nhs, VisibleOn: today, Limit: 100})
			if err != nil || len(page.Plans) != 1 {
				b.Errorf("SearchPlans: %d plans, error %v", len(page.Plans), err)
				return
			}
			if err := g.append(benchRecord(nhs, t0)); err != nil {
				b.Errorf("append: %v", err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "searches/s")
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
