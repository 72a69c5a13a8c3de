package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
	"github.com/cpis-fhir/cpis/internal/store/storetest"
)

// TestStore runs the store contract's conformance suite. Each subtest gets
// a store on an empty, migrated schema of its own; schemas are reused,
// emptied, once the subtest that had one ends, because migrating a fresh
// schema for each of the suite's hundred-odd subtests takes most of a minute.
func TestStore(t *testing.T) {
	schemas := &schemaPool{top: t}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, schemas.get(t)) })
}

// schemaPool hands out migrated schemas, each to one test at a time.
type schemaPool struct {
	top  *testing.T // owns the schemas: they are dropped when it ends
	mu   sync.Mutex
	free []string
}

// get returns the URL of an empty migrated schema, t's until t ends.
func (p *schemaPool) get(t *testing.T) string {
	t.Helper()
	p.mu.Lock()
	var url string
	if n := len(p.free); n > 0 {
		url, p.free = p.free[n-1], p.free[:n-1]
	}
	p.mu.Unlock()
	if url == "" {
		url = pgtest.MigratedURL(cleanupBy{t, p.top})
	} else {
		exec(t, connect(t, url), `DELETE FROM discrepancies; DELETE FROM subscriptions; DELETE FROM plans; DELETE FROM plan_versions; DELETE FROM audit_events;
			DELETE FROM event_log; UPDATE event_head SET position = 0, stamp = NULL`)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		p.free = append(p.free, url)
		p.mu.Unlock()
	})
	return url
}

// cleanupBy is a test whose cleanups are another's: a subtest that makes
// something which must outlive it.
type cleanupBy struct {
	testing.TB
	owner testing.TB
}

func (c cleanupBy) Cleanup(f func()) { c.owner.Cleanup(f) }

// open opens a store on url; the caller closes it (storetest.Run does).
func open(tb testing.TB, url string, opts ...postgres.Option) *postgres.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url, opts...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}
