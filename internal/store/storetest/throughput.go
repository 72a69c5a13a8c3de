package storetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// ThroughputPlans is the number of plans WriteThroughput writes: the
// environment's CPIS_WRITE_THROUGHPUT_PLANS, or def. The figures reported in
// the store's commits come from 100,000 plans without the race detector:
//
//	CPIS_WRITE_THROUGHPUT_PLANS=100000 go test -count=1 -run TestWriteThroughput -v ./internal/store/sqlite/
func ThroughputPlans(tb testing.TB, def int) int {
	tb.Helper()
	v := os.Getenv("CPIS_WRITE_THROUGHPUT_PLANS")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 800_000 {
		tb.Fatalf("CPIS_WRITE_THROUGHPUT_PLANS=%q: want a number of plans from 1 to 800,000", v)
	}
	return n
}

// throughputChunk is how many plans an upload handles at a time.
const throughputChunk = 1_000

// WriteThroughput writes n plans of one LA into the empty store s as a bulk
// upload would, and logs how fast: one write transaction that, a chunk of
// 1,000 plans at a time, asks which of the chunk's lines wrote a plan as it
// is (ByDigest: none), looks the chunk's references and children up
// (ByReference, ChildPlans) and Puts the chunk's new plans, each with its
// line's digest and an audit record; then a second that uploads them all
// again changed, as new versions; then a third that sends the second's
// lines again, unchanged, which ByDigest finds, so it reads and writes
// nothing more. It checks what was stored, not the time taken: the figures
// depend on the machine, and under the race detector mean little.
func WriteThroughput(t *testing.T, s store.Store, n int) {
	ctx := t.Context()
	mem := sampleMemory()
	plans := throughputPlans(t, n)
	run := func(p uploadPass) {
		start := time.Now()
		timing := uploadAll(t, ctx, s, plans, p)
		total := time.Since(start)
		t.Logf("%s: %d plans in %v: %.0f plans/s (ByDigest %v, other reads %v, Put %v, Commit %v)", p.name, n,
			total.Round(time.Millisecond), float64(n)/total.Seconds(), timing.digests.Round(time.Millisecond),
			timing.reads.Round(time.Millisecond), timing.put.Round(time.Millisecond), timing.commit.Round(time.Millisecond))
	}
	run(uploadPass{name: "new plans", f: func(p cpis.Plan) cpis.Plan { return p }})
	run(uploadPass{name: "new versions", held: true, f: func(p cpis.Plan) cpis.Plan {
		return next(p, p.LastUpdated.Add(time.Hour), func(p *cpis.Plan) { p.End = p.End.AddDays(-1) })
	}})
	run(uploadPass{name: "unchanged lines", held: true, unchanged: true, f: func(p cpis.Plan) cpis.Plan { return p }})
	heap, sys := mem.stop()
	hwm, _ := procStatusKiB("VmHWM")
	t.Logf("memory: peak heap in use %.0f MiB, peak obtained from the OS (MemStats.Sys) %.0f MiB, peak RSS of the test process (VmHWM) %.0f MiB",
		mib(heap), mib(sys), float64(hwm)/1024)
	for _, i := range []int{0, n / 2, n - 1} {
		got, err := s.Plan(ctx, plans[i].ID)
		if err != nil || got.Version != 2 {
			t.Fatalf("plan %d after the uploads: version %d, %v; want version 2", i, got.Version, err)
		}
	}
}

// uploadPass is one upload of WriteThroughput.
type uploadPass struct {
	name string
	f    func(cpis.Plan) cpis.Plan // the plan each line of the upload holds
	held bool                      // the lines' references and children are held already
	// unchanged: every line is the one that wrote its plan's current
	// version, so ByDigest finds them all and nothing else is read or put.
	unchanged bool
}

// uploadTiming is where an upload's time went.
type uploadTiming struct{ digests, reads, put, commit time.Duration }

// lineDigest stands for the digest of the line an upload sends for p: the
// same for the same version of a plan, and different for any other.
func lineDigest(p cpis.Plan) string { return digestOf(p.ID + "/" + strconv.Itoa(p.Version)) }

// uploadAll uploads pass.f of each plan in one write transaction, a chunk
// at a time, checking what the chunk's reads find against pass, and keeps
// what it stored in plans.
func uploadAll(t *testing.T, ctx context.Context, s store.Store, plans []cpis.Plan, pass uploadPass) uploadTiming {
	var timing uploadTiming
	laCode := plans[0].LA.Code
	tx, err := s.BeginWrite(ctx, laCode)
	if err != nil {
		t.Fatalf("BeginWrite: %v", err)
	}
	defer tx.Rollback(ctx)
	refs, nhs := make([]string, 0, throughputChunk), make([]cpis.NHSNumber, 0, throughputChunk)
	lines, digests := make([]cpis.Plan, 0, throughputChunk), make([]string, 0, throughputChunk)
	vs, recs := make([]store.Version, 0, throughputChunk), make([]cpis.AuditRecord, 0, throughputChunk)
	for from := 0; from < len(plans); from += throughputChunk {
		chunk := plans[from:min(from+throughputChunk, len(plans))]
		refs, nhs, lines, digests, vs, recs = refs[:0], nhs[:0], lines[:0], digests[:0], vs[:0], recs[:0]
		for _, p := range chunk {
			line := pass.f(p)
			lines, digests = append(lines, line), append(digests, lineDigest(line))
			refs, nhs = append(refs, line.Reference), append(nhs, line.NHSNumber)
		}
		start := time.Now()
		unchanged, err := tx.ByDigest(ctx, digests)
		if err != nil {
			t.Fatalf("ByDigest: %v", err)
		}
		timing.digests += time.Since(start)
		wantUnchanged(t, from, chunk, digests, unchanged, pass.unchanged)
		if pass.unchanged {
			continue
		}
		start = time.Now()
		held, err := tx.ByReference(ctx, refs)
		if err != nil {
			t.Fatalf("ByReference: %v", err)
		}
		children, err := tx.ChildPlans(ctx, nhs)
		if err != nil {
			t.Fatalf("ChildPlans: %v", err)
		}
		if found := len(held) == len(chunk) && len(children) == len(chunk); found != pass.held {
			t.Fatalf("the chunk at %d: %d held by reference and %d on its children, want all %v", from, len(held), len(children), pass.held)
		}
		timing.reads += time.Since(start)
		for i, p := range lines {
			chunk[i] = p
			vs = append(vs, store.Version{Plan: p, RequestID: uuid.NewString(), Digest: digests[i]})
			recs = append(recs, writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated))
		}
		start = time.Now()
		if err := tx.Put(ctx, vs, recs); err != nil {
			t.Fatalf("Put: %v", err)
		}
		timing.put += time.Since(start)
	}
	start := time.Now()
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	timing.commit = time.Since(start)
	return timing
}

// wantUnchanged checks what ByDigest found of a chunk's lines: each line's
// plan, all of them (want), or none.
func wantUnchanged(t *testing.T, from int, chunk []cpis.Plan, digests []string, found map[string]cpis.Plan, want bool) {
	t.Helper()
	if !want {
		if len(found) > 0 {
			t.Fatalf("the chunk at %d: ByDigest found %d of its new lines, want none", from, len(found))
		}
		return
	}
	for i, d := range digests {
		if p, ok := found[d]; !ok || p.ID != chunk[i].ID || p.Version != chunk[i].Version {
			t.Fatalf("the chunk at %d: ByDigest found %+v for line %d, want %s version %d", from, p, i, chunk[i].ID, chunk[i].Version)
		}
	}
}

// throughputPlans returns n new plans of one LA, each on its own child and
// with its own reference, of every type, most of them current.
func throughputPlans(tb testing.TB, n int) []cpis.Plan {
	plans := make([]cpis.Plan, n)
	start := cpis.MustDate("2025-01-01")
	candidate := 0
	for i := range plans {
		var nhs cpis.NHSNumber
		for nhs == "" {
			if candidate >= 1_000_000 {
				tb.Fatal("the 999 range holds too few NHS numbers for this many plans")
			}
			nhs = checked(fmt.Sprintf("999%06d", candidate))
			candidate++
		}
		from := start.AddDays(i % 200)
		p := newPlan(nhs, la(3), cpis.PlanTypes[i%3], from.String(), from.AddDays(250).String(),
			baseTime().Add(time.Duration(i)*time.Microsecond))
		p.Version, p.Reference = 1, fmt.Sprintf("LA-%07d", i)
		plans[i] = p
	}
	return plans
}

// checked returns nine digits with their Modulus 11 check digit as an NHS
// number, or "" when they have none.
func checked(nine string) cpis.NHSNumber {
	sum := 0
	for j := range 9 {
		sum += int(nine[j]-'0') * (10 - j)
	}
	check := (11 - sum%11) % 11
	if check == 10 {
		return ""
	}
	nhs, err := cpis.ParseNHSNumber(nine + strconv.Itoa(check))
	if err != nil {
		return ""
	}
	return nhs
}

// memorySampler keeps the highest heap in use and memory obtained from the
// OS that the Go runtime reports, sampled every 50 ms.
type memorySampler struct {
	mu        sync.Mutex
	heap, sys uint64
	done      chan struct{}
	wg        sync.WaitGroup
}

func sampleMemory() *memorySampler {
	m := &memorySampler{done: make(chan struct{})}
	m.wg.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			m.sample()
			select {
			case <-m.done:
				return
			case <-tick.C:
			}
		}
	})
	return m
}

func (m *memorySampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.mu.Lock()
	m.heap, m.sys = max(m.heap, ms.HeapInuse), max(m.sys, ms.Sys)
	m.mu.Unlock()
}

// stop ends the sampling and returns the peaks, in bytes.
func (m *memorySampler) stop() (heap, sys uint64) {
	close(m.done)
	m.wg.Wait()
	m.sample()
	return m.heap, m.sys
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// procStatusKiB reads one "Vm...: 123 kB" field of /proc/self/status (Linux
// only; an error elsewhere).
func procStatusKiB(field string) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/self/status has no %s", field)
}
