package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// The proof that the event log's feed never misses a commit (issue 9,
// item 7). Writers on two replicas (two stores on one schema) commit plan
// writes of several LAs and audit records sending ASNs, at once, each
// delayed at random where it hurts most: between its writes and its
// Commit, and inside Commit between logging its events and COMMIT, while
// it holds the log's lock. Some roll back, and some AppendAudit calls fail.
// Their writers' clocks disagree by up to a minute either way. Meanwhile
// two pollers follow the feed oldest first, one page after another: one
// with After the last event it saw, the other asking from the previous
// Horizon whenever it has caught up. At the end each must have seen every
// committed change exactly once, nothing that did not commit, and in
// commit order: whenever one transaction's Commit returned before
// another's was called, the first comes first in the feed.
func TestFeedNeverMissesACommit(t *testing.T) {
	url := pgtest.MigratedURL(t)
	delay := func() { time.Sleep(rand.N(20 * time.Millisecond)) }
	var stores []*postgres.Store
	for range 2 {
		s := open(t, url, postgres.WithMaxConns(16))
		s.SetBeforeCommit(delay)
		defer s.Close()
		stores = append(stores, s)
	}
	ctx := t.Context()
	var l ledger
	var done atomic.Bool
	feeds := make([][]store.Event, 2)
	var pollers sync.WaitGroup
	pollers.Go(func() { feeds[0] = follow(t, &done, stores[0], false) })
	pollers.Go(func() { feeds[1] = follow(t, &done, stores[1], true) })

	const (
		perLA        = 3  // plan writers of each LA
		las          = 4  // LAs written to
		asnWriters   = 4  // writers of audit records sending ASNs
		transactions = 20 // of each writer
	)
	var writers sync.WaitGroup
	for w := range las * perLA {
		s, la := stores[w%2], cpis.TrustDirectory()[w%las].LocalAuthority
		writers.Go(func() { writePlans(ctx, t, s, la, transactions, delay, &l) })
	}
	for w := range asnWriters {
		writers.Go(func() { sendASNs(ctx, t, stores[w%2], w, transactions, delay, &l) })
	}
	writers.Wait()
	done.Store(true)
	pollers.Wait()

	commits, rolledBack := l.committed, l.rolledBack
	t.Logf("%d transactions committed, %d events; %d events rolled back or refused",
		len(commits), countKeys(commits), len(rolledBack))
	for i, name := range []string{"following After", "polling from the Horizon"} {
		for _, p := range checkFeed(commits, rolledBack, keysOf(feeds[i])) {
			t.Errorf("the poller %s: %s", name, p)
		}
		checkInOrder(t, name, feeds[i])
	}
}

// ledger is what the writers did: the transactions that committed, with
// the keys (eventKey) of the events they logged, and the keys of those
// whose transaction rolled back or failed.
type ledger struct {
	mu         sync.Mutex
	committed  []commit
	rolledBack []string
}

// commit is one committed transaction: its events, and the wall time just
// before its Commit (or AppendAudit) was called and just after it returned.
type commit struct {
	keys             []string
	called, returned time.Time
}

func (l *ledger) commit(keys []string, called, returned time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed = append(l.committed, commit{keys, called, returned})
}

func (l *ledger) rollBack(keys []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rolledBack = append(l.rolledBack, keys...)
}

// eventKey names the change an event records: a plan version, or an ASN.
func eventKey(e store.Event) string {
	if e.Kind == store.ASNSent {
		return "ASN " + e.ASN.ID
	}
	return planKey(e.Plan)
}

func planKey(p cpis.Plan) string { return "plan " + p.ID + " version " + strconv.Itoa(p.Version) }

func keysOf(events []store.Event) []string {
	keys := make([]string, len(events))
	for i, e := range events {
		keys[i] = eventKey(e)
	}
	return keys
}

func countKeys(commits []commit) int {
	n := 0
	for _, c := range commits {
		n += len(c.keys)
	}
	return n
}

// writeTime is a writer's clock: within a minute either way of one
// instant, so that the writers' times follow neither each other nor the
// order of their commits.
func writeTime() time.Time {
	return faultTime.Add(time.Duration(rand.IntN(120_000)-60_000) * time.Millisecond)
}

// writePlans runs n write transactions of la's plans: each creates a plan
// and updates the plan the last committed one created; one in five rolls
// back instead of committing.
func writePlans(ctx context.Context, t *testing.T, s store.Store, la cpis.LocalAuthority, n int, delay func(), l *ledger) {
	var last *cpis.Plan
	for i := range n {
		p := plan(testNHS(rand.IntN(1000)))
		p.LA, p.Version, p.LastUpdated = la, 1, writeTime()
		vs := []store.Version{{Plan: p}}
		if last != nil {
			u := *last
			u.Version, u.LastUpdated, u.OfficePhone = u.Version+1, writeTime(), "020 7946 0"+strconv.Itoa(100+i)
			vs = append(vs, store.Version{Plan: u})
		}
		keys := make([]string, len(vs))
		for j, v := range vs {
			keys[j] = planKey(v.Plan)
		}
		tx, err := s.BeginWrite(ctx, la.Code)
		if err != nil {
			t.Errorf("BeginWrite: %v", err)
			return
		}
		if err := tx.Put(ctx, vs, []cpis.AuditRecord{writeRec(p, "")}); err != nil {
			tx.Rollback(ctx)
			t.Errorf("Put: %v", err)
			return
		}
		delay()
		if rand.IntN(5) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("Rollback: %v", err)
			}
			l.rollBack(keys)
			last = nil // so that no version is both rolled back and committed
			continue
		}
		called := time.Now()
		err = tx.Commit(ctx)
		returned := time.Now()
		if err != nil {
			t.Errorf("Commit: %v", err)
			return
		}
		l.commit(keys, called, returned)
		last = &p
	}
}

// sendASNs makes n AppendAudit calls, as the audit recorder's batches
// would: a few records or, one in four, more than a WriteTx inserts one by
// one (copyAudits), each access sending an ASN to one or two of the LAs,
// with no coalescing (so every ASN is logged). One call in six fails, on a
// record PostgreSQL refuses, after the records before it were written.
func sendASNs(ctx context.Context, t *testing.T, s store.Store, w, n int, delay func(), l *ledger) {
	las := cpis.TrustDirectory()
	for i := range n {
		size := 1 + rand.IntN(4)
		if rand.IntN(4) == 0 {
			size = 20
		}
		var recs []cpis.AuditRecord
		var keys []string
		for j := range size {
			r := record(testNHS(w*1000+i*20+j), writeTime())
			for k := range 1 + rand.IntN(2) {
				la := las[(w+k)%len(las)].Code
				a := cpis.ASN{ID: uuid.NewString(), AuditID: r.ID, Sent: r.Recorded, NHSNumber: r.Patient, LACode: la,
					PlanIDs: r.PlanIDs, OrgCode: r.Actor.OrgCode, OrgName: r.Actor.OrgName, UserName: r.Actor.Name,
					RoleName: r.Actor.RoleName}
				r.ASNs = append(r.ASNs, a)
				keys = append(keys, "ASN "+a.ID)
			}
			recs = append(recs, r)
		}
		poisoned := rand.IntN(6) == 0
		if poisoned {
			recs[len(recs)-1].Query = "no NUL\x00 in PostgreSQL text"
		}
		delay()
		called := time.Now()
		err := s.AppendAudit(ctx, recs)
		returned := time.Now()
		switch {
		case poisoned && err == nil:
			t.Errorf("AppendAudit of a record with a NUL byte succeeded")
		case poisoned:
			l.rollBack(keys)
		case err != nil:
			t.Errorf("AppendAudit: %v", err)
			return
		default:
			l.commit(keys, called, returned)
		}
	}
}

// follow reads the feed, oldest first, a few events a page, until the
// writers are done and it has caught up since, and returns what it read.
// It asks for the next page with After the last event it read, or, with
// fromHorizon, once it has caught up (a page with More false), from that
// page's Horizon with no After.
func follow(t *testing.T, done *atomic.Bool, s store.Store, fromHorizon bool) []store.Event {
	var seen []store.Event
	q := store.EventQuery{Order: store.OldestFirst}
	for {
		// Read before the page: if the writers were done then, a page with
		// More false has everything.
		finished := done.Load()
		q.Limit = 1 + rand.IntN(8)
		page, err := s.Events(t.Context(), q)
		if err != nil {
			t.Errorf("Events: %v", err)
			return seen
		}
		seen = append(seen, page.Events...)
		if len(page.Events) > 0 {
			q.After = store.EventKeyOf(page.Events[len(page.Events)-1])
		}
		if page.More {
			continue
		}
		if finished {
			return seen
		}
		if fromHorizon {
			q.From, q.After = page.Horizon, nil
		}
		time.Sleep(time.Millisecond)
	}
}

// checkFeed compares a feed, the keys of the events a poller read in order,
// with what the writers did, and returns the problems: a change read twice,
// or never though it committed, or read though it did not commit; and a
// change read after one whose transaction's Commit was called only after
// its own had returned.
func checkFeed(commits []commit, rolledBack []string, feed []string) []string {
	var problems []string
	of := map[string]*commit{}
	for i := range commits {
		for _, k := range commits[i].keys {
			of[k] = &commits[i]
		}
	}
	notCommitted := map[string]bool{}
	for _, k := range rolledBack {
		notCommitted[k] = true
	}
	read := map[string]bool{}
	var latest *commit // of the transactions read so far, the one whose Commit was called last
	var latestKey string
	for _, k := range feed {
		c, ok := of[k]
		switch {
		case read[k]:
			problems = append(problems, k+" was read twice")
		case notCommitted[k]:
			problems = append(problems, k+" was read, but its transaction did not commit")
		case !ok:
			problems = append(problems, k+" was read, but no writer wrote it")
		case latest != nil && c.returned.Before(latest.called):
			problems = append(problems, fmt.Sprintf("%s was read after %s, but its Commit returned %v before that one's was called",
				k, latestKey, latest.called.Sub(c.returned)))
		}
		read[k] = true
		if ok && (latest == nil || c.called.After(latest.called)) {
			latest, latestKey = c, k
		}
	}
	missed := 0
	for k := range of {
		if !read[k] {
			missed++
		}
	}
	if missed > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d committed changes were never read", missed, len(of)))
	}
	return problems
}

// checkInOrder checks a feed's positions increase and its stamps never
// decrease.
func checkInOrder(t *testing.T, name string, feed []store.Event) {
	t.Helper()
	for i := 1; i < len(feed); i++ {
		if a, b := feed[i-1], feed[i]; b.Position <= a.Position || b.Stamp.Before(a.Stamp) {
			t.Errorf("the poller %s read position %d (stamp %v) after %d (stamp %v)",
				name, b.Position, b.Stamp, a.Position, a.Stamp)
		}
	}
}

// TestNaiveFeedMissesCommits runs the same writers, delays, poller and
// check on the naive design: a position taken from a sequence when the
// change is written, before its transaction commits. The check must find
// it wrong; this shows the check can fail, and what the store's design
// prevents. A transaction that takes a position and then waits to commit
// is passed by a later one; the poller reads the later one's position and
// moves on, and the first is committed behind it, never to be read.
func TestNaiveFeedMissesCommits(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t), postgres.WithMaxConns(16))
	defer s.Close()
	ctx := t.Context()
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE naive_log (position BIGSERIAL PRIMARY KEY, key TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	var l ledger
	var done atomic.Bool
	var feed []string
	var poller sync.WaitGroup
	poller.Go(func() { feed = followNaive(t, &done, s) })
	var writers sync.WaitGroup
	for range 8 {
		writers.Go(func() {
			for range 16 {
				key := uuid.NewString()
				err := naiveWrite(ctx, s, key, &l)
				if err != nil {
					t.Errorf("a naive write: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	done.Store(true)
	poller.Wait()
	problems := checkFeed(l.committed, nil, feed)
	if len(problems) == 0 {
		t.Fatalf("the check found nothing wrong with a feed by positions taken before commit, over %d commits", len(l.committed))
	}
	t.Logf("as it should, the check finds the naive feed wrong: %d problems, the first %q and the last %q",
		len(problems), problems[0], problems[len(problems)-1])
}

// naiveWrite logs key in naive_log, which gives it its position, waits,
// and commits.
func naiveWrite(ctx context.Context, s *postgres.Store, key string, l *ledger) error {
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO naive_log (key) VALUES ($1)`, key); err != nil {
		return err
	}
	time.Sleep(rand.N(20 * time.Millisecond))
	called := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	l.commit([]string{key}, called, time.Now())
	return nil
}

// followNaive reads naive_log by position, a few rows at a time, as follow
// reads the event log.
func followNaive(t *testing.T, done *atomic.Bool, s *postgres.Store) []string {
	var seen []string
	var after int64
	for {
		finished := done.Load()
		limit := 1 + rand.IntN(8)
		rows, _ := s.Pool().Query(t.Context(), `SELECT position, key FROM naive_log WHERE position > $1 ORDER BY position LIMIT $2`, after, limit)
		n := 0
		var key string
		_, err := pgx.ForEachRow(rows, []any{&after, &key}, func() error {
			seen, n = append(seen, key), n+1
			return nil
		})
		if err != nil {
			t.Errorf("reading naive_log: %v", err)
			return seen
		}
		if n == limit {
			continue
		}
		if finished {
			return seen
		}
		time.Sleep(time.Millisecond)
	}
}
