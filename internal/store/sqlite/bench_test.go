package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// cpuMeter reports the process's CPU time per operation, which, unlike
// ns/op, does not depend on what else the machine is running: capacity on
// c cores is c / (cpu-s/op).
type cpuMeter struct{ start time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{cpuTime()} }

func (m cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64((cpuTime()-m.start).Microseconds())/float64(b.N), "cpu-us/op")
}

// seedPlans stores n plans on n/2 patients in one transaction, much faster
// than n audited CreatePlan calls, and returns the patients' NHS numbers.
func seedPlans(tb testing.TB, s *Store, n int) []cpis.NHSNumber {
	tb.Helper()
	ctx := tb.Context()
	nhs := testNHSNumbers(n / 2)
	start := cpis.MustDate("2025-01-01")
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	err := s.write(ctx, "seed", func(tx *sql.Tx) error {
		for i := range n {
			p := cpis.Plan{
				ID: uuid.NewString(), Version: 1, NHSNumber: nhs[i%len(nhs)], Type: cpis.CPP,
				Start: start.AddDays(i % 300), End: start.AddDays(i%300 + 400), LA: cpis.TrustDirectory()[i%6].LocalAuthority,
				EmergencyPhone: "020 7946 0101", BirthDate: start.AddYears(-5), LastUpdated: at.Add(time.Duration(i) * time.Second),
			}
			if _, err := s.txStmt(ctx, tx, sqlInsertVersion).ExecContext(ctx, append(planArgs(p), nil)...); err != nil {
				return err
			}
			if _, err := s.txStmt(ctx, tx, sqlPutCurrent).ExecContext(ctx, planArgs(p)...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seeding: %v", err)
	}
	return nhs
}

// testNHSNumbers returns n valid NHS numbers of the 999 test range.
func testNHSNumbers(n int) []cpis.NHSNumber {
	var out []cpis.NHSNumber
	for i := 0; len(out) < n; i++ {
		if nhs, err := cpis.ParseNHSNumber(withCheckDigit(fmt.Sprintf("999%06d", i))); err == nil {
			out = append(out, nhs)
		}
	}
	return out
}

// withCheckDigit appends the Modulus 11 check digit to nine digits (an
// invalid one, 'X', when there is none).
func withCheckDigit(nine string) string {
	sum := 0
	for i := range 9 {
		sum += int(nine[i]-'0') * (10 - i)
	}
	check := (11 - sum%11) % 11
	if check == 10 {
		return nine + "X"
	}
	return nine + string(rune('0'+check))
}

// accessRecord is the audit record of a health user's search of nhs that
// returned plans.
func accessRecord(nhs cpis.NHSNumber, plans []cpis.Plan) cpis.AuditRecord {
	// Users and organisations at the scale of the national service: over
	// 1,200 unscheduled care settings.
	user, org := 555000000000+rand.IntN(20000), rand.IntN(1500)
	rec := cpis.AuditRecord{ID: uuid.NewString(), Recorded: time.Now().UTC(), Action: cpis.ActionExecute,
		Interaction: "search-type", Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: strconv.Itoa(user), Name: "Test Practitioner",
			RoleProfileID: "555021935107", RoleCode: "S8001:G8005:R8000", OrgCode: fmt.Sprintf("R%04d", org), OrgName: "Test Hospital",
			Activities: []string{cpis.ActivityUnscheduledView}}, Patient: nhs, Access: true, Unscheduled: true,
		Query: "/Flag?patient=" + nhs.String(), RequestID: uuid.NewString()}
	for _, p := range plans {
		rec.PlanIDs, rec.LACodes = append(rec.PlanIDs, p.ID), append(rec.LACodes, p.LA.Code)
	}
	return rec
}

// benchPlans is the number of plans benchmarks search: the national count
// shown to health users (CPIS.md section 7).
const benchPlans = 300000

// BenchmarkSearchPlans is a health user's search by NHS number, alone.
func BenchmarkSearchPlans(b *testing.B) {
	s := openTemp(b)
	nhs := seedPlans(b, s, benchPlans)
	today := cpis.MustDate("2025-06-15")
	b.ResetTimer()
	defer startCPU().report(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, err := s.SearchPlans(context.Background(), store.PlanQuery{NHSNumber: nhs[rand.IntN(len(nhs))], VisibleOn: today, Limit: 100})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAppendAudit is the cost of a commit of audit batches of several
// sizes; ns/op is per batch.
func BenchmarkAppendAudit(b *testing.B) {
	for _, size := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openTemp(b)
			nhs := testNHSNumbers(1000)
			defer startCPU().report(b)
			for b.Loop() {
				batch := make([]cpis.AuditRecord, size)
				for i := range batch {
					batch[i] = accessRecord(nhs[rand.IntN(len(nhs))], nil)
				}
				if err := s.AppendAudit(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuditedSearch is the read path of a health user: search one
// patient's visible plans, then wait until the access is recorded, with 16
// requests in flight per CPU. Records of concurrent requests are committed
// together, as internal/audit batches them; "perreq" commits each request's
// record alone.
func BenchmarkAuditedSearch(b *testing.B) {
	s := openTemp(b)
	nhs := seedPlans(b, s, benchPlans)
	today := cpis.MustDate("2025-06-15")
	for _, mode := range []string{"batched", "perreq"} {
		b.Run(mode, func(b *testing.B) {
			record := s.AppendAudit
			if mode == "batched" {
				g := newGroupCommit(s)
				defer g.stop()
				record = g.append
			}
			defer startCPU().report(b)
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					n := nhs[rand.IntN(len(nhs))]
					page, err := s.SearchPlans(ctx, store.PlanQuery{NHSNumber: n, VisibleOn: today, Limit: 100})
					if err != nil {
						b.Fatal(err)
					}
					if err := record(ctx, []cpis.AuditRecord{accessRecord(n, page.Plans)}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// groupCommit stands in for internal/audit: it commits the records of all
// requests waiting at once in one AppendAudit.
type groupCommit struct {
	s    *Store
	reqs chan groupReq
	done chan struct{}
}

type groupReq struct {
	recs []cpis.AuditRecord
	errc chan error
}

func newGroupCommit(s *Store) *groupCommit {
	g := &groupCommit{s: s, reqs: make(chan groupReq, 1024), done: make(chan struct{})}
	go g.run()
	return g
}

func (g *groupCommit) append(ctx context.Context, recs []cpis.AuditRecord) error {
	errc := make(chan error, 1)
	g.reqs <- groupReq{recs, errc}
	return <-errc
}

func (g *groupCommit) run() {
	defer close(g.done)
	for first := range g.reqs {
		batch := []groupReq{first}
		for more := true; more && len(batch) < 256; {
			select {
			case r, ok := <-g.reqs:
				if !ok {
					more = false
					break
				}
				batch = append(batch, r)
			default:
				more = false
			}
		}
		var all []cpis.AuditRecord
		for _, r := range batch {
			all = append(all, r.recs...)
		}
		err := g.s.AppendAudit(context.Background(), all)
		for _, r := range batch {
			r.errc <- err
		}
	}
}

func (g *groupCommit) stop() { close(g.reqs); <-g.done }
