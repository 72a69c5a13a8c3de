package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
	"github.com/cpis-fhir/cpis/internal/store/storetest"
)

// plan returns a valid CPP on nhs, uploaded by the first Trust LA.
func plan(nhs cpis.NHSNumber) cpis.Plan {
	start := cpis.MustDate("2025-01-01")
	return cpis.Plan{ID: uuid.NewString(), NHSNumber: nhs, Type: cpis.CPP, Start: start, End: start.AddDays(200),
		LA: cpis.TrustDirectory()[0].LocalAuthority, EmergencyPhone: "020 7946 0101", BirthDate: start.AddYears(-5),
		LastUpdated: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// writeRec is the audit record of an LA's write.
func writeRec(p cpis.Plan, requestID string) cpis.AuditRecord {
	return cpis.AuditRecord{ID: uuid.NewString(), Recorded: p.LastUpdated, Action: cpis.ActionUpdate, Interaction: "update",
		Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "client", OrgCode: p.LA.Code}, Patient: p.NHSNumber,
		PlanIDs: []string{p.ID}, RequestID: requestID}
}

// putPlans stores versions, with recs, in one write transaction of their LA.
func putPlans(ctx context.Context, s store.Store, laCode string, versions []store.Version, recs ...cpis.AuditRecord) error {
	tx, err := s.BeginWrite(ctx, laCode)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := tx.Put(ctx, versions, recs); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// TestReplicas runs the contract's concurrency cases through two stores on
// one schema: two server processes.
func TestReplicas(t *testing.T) {
	storetest.RunReplicas(t, func(t *testing.T) (store.Store, store.Store) {
		u := pgtest.MigratedURL(t)
		a, b := open(t, u), open(t, u)
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	})
}

// TestWriteLockTimeout: a write transaction waits for another of the same
// LA's for the lock timeout at most, then fails Unavailable, even with a
// context that never ends; the store works again once the first ends.
func TestWriteLockTimeout(t *testing.T) {
	u := pgtest.MigratedURL(t)
	a := open(t, u)
	defer a.Close()
	b := open(t, u, postgres.WithWriteLockTimeout(200*time.Millisecond))
	defer b.Close()
	ctx := context.Background()
	la := cpis.TrustDirectory()[0].Code
	first, err := a.BeginWrite(ctx, la)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tx, err := b.BeginWrite(ctx, la)
	if err == nil {
		tx.Rollback(ctx)
	}
	if cpis.KindOf(err) != cpis.Unavailable {
		t.Errorf("BeginWrite while another transaction holds the LA: %v, want Unavailable", err)
	}
	if waited := time.Since(start); waited < 150*time.Millisecond || waited > 5*time.Second {
		t.Errorf("BeginWrite gave up after %v, want about the 200 ms lock timeout", waited)
	}
	if err := first.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	p := plan(testNHS(1))
	p.Version = 1
	if err := putPlans(ctx, b, la, []store.Version{{Plan: p}}); err != nil {
		t.Fatalf("a write once the lock is free: %v", err)
	}
}

// TestWriteLockIsPerSchema: deployments (and tests) sharing one database in
// separate schemas never wait for each other's write transactions.
func TestWriteLockIsPerSchema(t *testing.T) {
	a := open(t, pgtest.MigratedURL(t))
	defer a.Close()
	b := open(t, pgtest.MigratedURL(t), postgres.WithWriteLockTimeout(time.Second))
	defer b.Close()
	ctx := t.Context()
	la := cpis.TrustDirectory()[0].Code
	first, err := a.BeginWrite(ctx, la)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	second, err := b.BeginWrite(ctx, la)
	if err != nil {
		t.Fatalf("BeginWrite in another schema: %v", err)
	}
	second.Rollback(ctx)
}

// TestRequestIDAcrossProcesses writes one request id many times at once
// through two pools, each write as its own new plan: one is stored, and
// every other transaction finds it by Replay (the register answers those
// as replays), or, had it not looked, is refused Conflict.
func TestRequestIDAcrossProcesses(t *testing.T) {
	u := pgtest.MigratedURL(t)
	servers := [2]*postgres.Store{open(t, u), open(t, u)}
	defer servers[0].Close()
	defer servers[1].Close()
	ctx := t.Context()
	la, requestID := cpis.TrustDirectory()[0].Code, uuid.NewString()
	const tries = 8
	replayed := make([]bool, tries)
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			tx, err := servers[i%2].BeginWrite(ctx, la)
			if err != nil {
				errs[i] = err
				return
			}
			defer tx.Rollback(ctx)
			if _, replayed[i], errs[i] = tx.Replay(ctx, requestID); errs[i] != nil || replayed[i] {
				return
			}
			p := plan(testNHS(2 + i))
			p.Version = 1
			if errs[i] = tx.Put(ctx, []store.Version{{Plan: p, RequestID: requestID}}, []cpis.AuditRecord{writeRec(p, requestID)}); errs[i] == nil {
				errs[i] = tx.Commit(ctx)
			}
		})
	}
	wg.Wait()
	firsts := 0
	for i := range tries {
		if errs[i] != nil {
			t.Errorf("try %d: %v", i, errs[i])
		}
		if !replayed[i] {
			firsts++
		}
	}
	if firsts != 1 {
		t.Errorf("%d tries stored a plan, want 1", firsts)
	}
	recs, err := servers[1].SearchAudit(ctx, store.AuditQuery{OrgCode: la, Limit: 10})
	if err != nil || len(recs) != 1 {
		t.Errorf("SearchAudit: %d records (%v), want 1", len(recs), err)
	}
}

// TestWriteThroughput logs how fast a bulk upload writes through one
// write transaction (storetest.WriteThroughput); set
// CPIS_WRITE_THROUGHPUT_PLANS=100000, without -race, to measure.
func TestWriteThroughput(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	storetest.WriteThroughput(t, s, storetest.ThroughputPlans(t, 2_000))
}
