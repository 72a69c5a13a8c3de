package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// faultCreates counts the plans calls creates, each a week of its own.
var faultCreates atomic.Int64

// faultTime stamps what the fault tests write: a fixed instant, inside the
// partitions pgtest.MigratedURL makes, whatever the day the tests run.
var faultTime = time.Date(2026, time.November, 20, 9, 0, 0, 0, time.UTC)

// calls are store operations that fail Unavailable, never Other, when the
// database goes away, and succeed again once it is back.
func calls(s *postgres.Store) map[string]func(ctx context.Context) error {
	nhs, la := testNHS(42), cpis.TrustDirectory()[0].Code
	return map[string]func(ctx context.Context) error{
		"Ping": s.Ping,
		"SearchPlans": func(ctx context.Context) error {
			_, err := s.SearchPlans(ctx, store.PlanQuery{NHSNumber: nhs, Limit: 10})
			return err
		},
		"AppendAudit": func(ctx context.Context) error {
			return s.AppendAudit(ctx, []cpis.AuditRecord{record(nhs, faultTime)})
		},
		"WriteTx": func(ctx context.Context) error {
			start := cpis.MustDate("2025-01-01").AddDays(7 * int(faultCreates.Add(1)))
			p := cpis.Plan{ID: uuid.NewString(), Version: 1, NHSNumber: nhs, Type: cpis.UCPP, Start: start,
				End: start.AddDays(6), LA: cpis.TrustDirectory()[0].LocalAuthority,
				EmergencyPhone: "020 7946 0101", LastUpdated: faultTime}
			return putPlans(ctx, s, p.LA.Code, []store.Version{{Plan: p}}, record(nhs, faultTime))
		},
		"AppendAudit with ASNs": func(ctx context.Context) error {
			return s.AppendAudit(ctx, []cpis.AuditRecord{withASN(record(nhs, faultTime), la)})
		},
		"AppendAudit with ASNs, by COPY": func(ctx context.Context) error {
			recs := make([]cpis.AuditRecord, 20)
			for i := range recs {
				recs[i] = withASN(record(nhs, faultTime), la)
			}
			return s.AppendAudit(ctx, recs)
		},
		"Events": func(ctx context.Context) error {
			_, err := s.Events(ctx, store.EventQuery{LACode: la, Limit: 10})
			return err
		},
		"DeleteEventsBefore": func(ctx context.Context) error {
			_, err := s.DeleteEventsBefore(ctx, faultTime.AddDate(-1, 0, 0))
			return err
		},
		"AccessHistory": func(ctx context.Context) error {
			_, err := s.AccessHistory(ctx, store.AccessQuery{NHSNumber: nhs, Limit: 25})
			return err
		},
	}
}

// wantUpOrUnavailable fails if err is neither nil nor Unavailable.
func wantUpOrUnavailable(t *testing.T, name string, err error) {
	t.Helper()
	if err != nil && cpis.KindOf(err) != cpis.Unavailable {
		t.Errorf("%s: %v (kind %q), want success or Unavailable", name, err, cpis.KindOf(err))
	}
}

// waitUp fails unless every call succeeds within a few seconds.
func waitUp(t *testing.T, s *postgres.Store) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for name, call := range calls(s) {
		for {
			err := call(t.Context())
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still fails after the database came back: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestTerminatedConnections kills every connection of the store's pool, as
// a failover or an operator would, while requests run.
func TestTerminatedConnections(t *testing.T) {
	u := pgtest.MigratedURL(t)
	app := "cpistest-" + randomName(t)
	s := open(t, u, postgres.WithApplicationName(app), postgres.WithMaxConns(4))
	defer s.Close()
	admin := connect(t, u)
	for round := range 3 {
		warm(t, s)
		var killed int
		err := admin.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1`, app).Scan(&killed)
		if err != nil || killed == 0 {
			t.Fatalf("round %d: terminated %d backends (%v), want some", round, killed, err)
		}
		var wg sync.WaitGroup
		for name, call := range calls(s) {
			wg.Go(func() { wantUpOrUnavailable(t, name, call(t.Context())) })
		}
		wg.Wait()
		waitUp(t, s)
	}
}

// warm runs calls in parallel, so that the pool holds several connections,
// used less than a second ago (so that the pool will not ping them first).
func warm(t *testing.T, s *postgres.Store) {
	t.Helper()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := s.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
		})
	}
	wg.Wait()
}

// TestDatabaseDown cuts the network between the store and the database
// with a proxy, then restores it: calls fail Unavailable while it is down
// and the same store recovers, without reopening, once it is back.
func TestDatabaseDown(t *testing.T) {
	u := pgtest.MigratedURL(t)
	p := pgtest.StartProxy(t, u)
	s := open(t, p.URL)
	defer s.Close()
	waitUp(t, s)
	p.Stop()
	for name, call := range calls(s) {
		if err := call(t.Context()); cpis.KindOf(err) != cpis.Unavailable {
			t.Errorf("%s while down: %v, want Unavailable", name, err)
		}
	}
	if _, err := postgres.Open(t.Context(), p.URL); cpis.KindOf(err) != cpis.Unavailable {
		t.Errorf("Open while down: %v, want Unavailable", err)
	}
	p.Start(t)
	waitUp(t, s)
}

func randomName(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
