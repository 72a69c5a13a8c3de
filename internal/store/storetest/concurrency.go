package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// RunReplicas runs the concurrency cases of write transactions through two
// stores sharing one database, as two server processes (replicas) would:
// an LA's write transactions serialize across them, and two LAs' run at
// once; subscriptions are leased once and their events numbered once. newPair must return two stores on one new, empty database, and
// close them when the test ends. Run covers a backend whose writes all
// serialize in one process (SQLite) with one store used twice.
func RunReplicas(t *testing.T, newPair func(t *testing.T) (store.Store, store.Store)) {
	testSerialization(t, newPair, true)
	t.Run("claims never lease a subscription twice", func(t *testing.T) {
		a, b := newPair(t)
		testConcurrentClaims(t, a, b)
	})
	t.Run("matching numbers each event once", func(t *testing.T) {
		a, b := newPair(t)
		testConcurrentMatching(t, a, b)
	})
}

// waitLong bounds the waits of the concurrency cases that must end: far
// longer than any of them takes, so that only a deadlock reaches it.
const waitLong = 20 * time.Second

// waitShort is how long a write transaction is watched to wait: if it
// began within this, it did not wait.
const waitShort = 300 * time.Millisecond

// testSerialization: write transactions of one LA, through a and b, run one
// after the other; with parallelLAs, two LAs' run at once.
func testSerialization(t *testing.T, pair func(t *testing.T) (store.Store, store.Store), parallelLAs bool) {
	t.Run("the second waits for the first, then sees its writes", func(t *testing.T) {
		a, b := pair(t)
		testWaits(t, a, b)
	})
	t.Run("a wait ends with its context", func(t *testing.T) {
		a, b := pair(t)
		ctx := t.Context()
		first := begin(t, ctx, a, la(0).Code)
		short, cancel := context.WithTimeout(ctx, waitShort)
		defer cancel()
		start := time.Now()
		tx, err := b.BeginWrite(short, la(0).Code)
		if err == nil {
			tx.Rollback(ctx)
		}
		wantKind(t, "BeginWrite while the LA's plans are held", err, cpis.Unavailable)
		if waited := time.Since(start); waited > waitLong/2 {
			t.Errorf("BeginWrite waited %v, past its context's end", waited)
		}
		if err := first.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("read, check and put is race-free", func(t *testing.T) {
		a, b := pair(t)
		testCheckedPuts(t, a, b)
	})
	if parallelLAs {
		t.Run("two LAs do not wait for each other", func(t *testing.T) {
			a, b := pair(t)
			testLAsInParallel(t, a, b)
		})
	}
}

// testWaits holds an LA's plans in a transaction through a, and begins
// another through b: it must begin only once the first commits, and then
// read what the first stored.
func testWaits(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	first := begin(t, ctx, a, la(0).Code)
	p := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
	p.Version, p.Reference = 1, "WAIT"
	putIn(t, ctx, first, versions(p))
	began := make(chan struct{})
	seen := make(chan map[string]cpis.Plan, 1)
	errs := make(chan error, 1)
	go func() {
		second, err := b.BeginWrite(ctx, la(0).Code)
		close(began)
		if err != nil {
			errs <- err
			return
		}
		defer second.Rollback(ctx)
		got, err := second.ByReference(ctx, []string{"WAIT"})
		if err != nil {
			errs <- err
			return
		}
		seen <- got
	}()
	select {
	case <-began:
		t.Fatal("a second write transaction of the LA began while the first was open")
	case <-time.After(waitShort):
	}
	commit(t, ctx, first)
	select {
	case got := <-seen:
		if q, ok := got["WAIT"]; !ok || q.ID != p.ID {
			t.Errorf("the second transaction read %v by reference, want the first's plan", got)
		}
	case err := <-errs:
		t.Fatalf("the second transaction: %v", err)
	case <-time.After(waitLong):
		t.Fatal("the second write transaction never began")
	}
}

// testCheckedPuts has writers store the same plan at once, through both
// stores, each applying the rules to what it reads, as the register does:
// the overlap rule to ChildPlans, and the reference to ByReference. With
// the LA's writes serialized, one stores it and every other is refused by
// what it read; none trips over the reference index, and no two overlapping
// plans are stored, which no index would stop.
func testCheckedPuts(t *testing.T, a, b store.Store) {
	const writers = 8
	ctx := t.Context()
	nhs := nhsNumber(t, 1)
	stored := make([]bool, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		s := []store.Store{a, b}[i%2]
		wg.Go(func() {
			p := newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime().Add(time.Duration(i)*time.Second))
			// The same reference for half of the writers, so that the others
			// meet only the overlap rule.
			p.Version, p.Reference = 1, fmt.Sprintf("SAME-%d", i%2)
			stored[i], errs[i] = checkedPut(ctx, s, p)
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v, want its write stored or refused by what it read", i, err)
		}
		if stored[i] {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d writers stored the plan, want exactly 1", won)
	}
	page, err := a.SearchPlans(ctx, store.PlanQuery{NHSNumber: nhs, Limit: 10})
	if err != nil || len(page.Plans) != 1 {
		t.Errorf("SearchPlans: %d plans (%v), want 1", len(page.Plans), err)
	}
}

// checkedPut stores p unless the LA holds a plan p overlaps or one with its
// reference: stored false, with no error, when refused.
func checkedPut(ctx context.Context, s store.Store, p cpis.Plan) (stored bool, err error) {
	tx, err := s.BeginWrite(ctx, p.LA.Code)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(ctx)
	held, err := tx.ChildPlans(ctx, []cpis.NHSNumber{p.NHSNumber})
	if err != nil {
		return false, err
	}
	for _, h := range held {
		if p.Overlaps(h) {
			return false, nil
		}
	}
	refs, err := tx.ByReference(ctx, []string{p.Reference})
	if err != nil || len(refs) > 0 {
		return false, err
	}
	time.Sleep(time.Millisecond) // a window for another writer, were there no lock
	if err := tx.Put(ctx, versions(p), nil); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// testLAsInParallel holds one LA's plans through a, and writes another's
// through b meanwhile.
func testLAsInParallel(t *testing.T, a, b store.Store) {
	ctx := t.Context()
	first := begin(t, ctx, a, la(0).Code)
	p := newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
	p.Version = 1
	putIn(t, ctx, first, versions(p))
	short, cancel := context.WithTimeout(ctx, waitLong/4)
	defer cancel()
	start := time.Now()
	q := newPlan(nhsNumber(t, 1), la(1), cpis.CPP, "2025-01-01", "2025-12-31", baseTime())
	q.Version = 1
	if err := tryPut(short, b, la(1).Code, versions(q)); err != nil {
		t.Fatalf("another LA's write while the first LA's plans are held: %v", err)
	}
	if waited := time.Since(start); waited > waitLong/8 {
		t.Errorf("another LA's write took %v while the first LA's plans were held", waited)
	}
	commit(t, ctx, first)
	wantCurrent(t, ctx, a, p)
	wantCurrent(t, ctx, a, q)
}
