// Package storetest is the behaviour of the store.Store contract, written once
// and run against every backend, so that the embedded and the production
// stores cannot drift apart. A backend's test calls Run with a constructor of
// empty stores.
//
// Times: stores keep instants at microsecond precision and return them in
// UTC. The suite builds every input time in UTC, truncated to microseconds,
// and checks that what comes back is equal and in UTC.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Run runs the whole conformance suite. newStore must return a new, empty
// store each time it is called; Run closes it (checking that Close succeeds)
// when the subtest that asked for it ends, so newStore should only register
// cleanups for what lies under the store (files, databases).
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	t.Run("Ping", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	t.Run("Put", func(t *testing.T) { testPut(t, open) })
	t.Run("PutRefused", func(t *testing.T) { testPutRefused(t, open) })
	t.Run("Replay", func(t *testing.T) { testReplay(t, open) })
	t.Run("WriteTx", func(t *testing.T) { testWriteTx(t, open) })
	t.Run("WriteTxReads", func(t *testing.T) { testWriteTxReads(t, open) })
	t.Run("References", func(t *testing.T) { testReferences(t, open) })
	t.Run("Digests", func(t *testing.T) { testDigests(t, open) })
	t.Run("Serialization", func(t *testing.T) {
		testSerialization(t, func(t *testing.T) (store.Store, store.Store) { s := open(t); return s, s }, false)
	})
	t.Run("Reads", func(t *testing.T) { testReads(t, open) })
	t.Run("SearchPlans", func(t *testing.T) { testSearchPlans(t, open) })
	t.Run("Refusals", func(t *testing.T) { testRefusals(t, open) })
	t.Run("AsOf", func(t *testing.T) { testAsOf(t, open) })
	t.Run("PlanTraversal", func(t *testing.T) { testPlanTraversal(t, open) })
	t.Run("AuditTraversal", func(t *testing.T) { testAuditTraversal(t, open) })
	t.Run("AppendAudit", func(t *testing.T) { testAppendAudit(t, open) })
	t.Run("AccessHistory", func(t *testing.T) { testAccessHistory(t, open) })
	t.Run("SearchAudit", func(t *testing.T) { testSearchAudit(t, open) })
	t.Run("WriteAudit", func(t *testing.T) { testWriteAudit(t, open) })
	t.Run("ImportPlans", func(t *testing.T) { testImportPlans(t, open) })
	t.Run("ImportAllOrNothing", func(t *testing.T) { testImportAllOrNothing(t, open) })
	t.Run("Events", func(t *testing.T) { testEvents(t, open) })
	t.Run("Subscriptions", func(t *testing.T) { testSubscriptions(t, open) })
	t.Run("Discrepancies", func(t *testing.T) { testDiscrepancies(t, open) })
}

// opener gives a subtest its own fresh store.
type opener func(t *testing.T) store.Store

// baseTime is the instant fixtures count from: in UTC, with microseconds, so
// that precision loss beyond microseconds would show.
func baseTime() time.Time { return time.Date(2025, 6, 15, 9, 30, 0, 123456000, time.UTC) }

// nhsNumber returns the n-th test NHS number, a valid one in the 999 range.
// It searches from 999 followed by n*10 for nine digits that have a check
// digit; at most two in any ten consecutive ones have none, so different n
// never give the same number.
func nhsNumber(tb testing.TB, n int) cpis.NHSNumber {
	tb.Helper()
	for i := n * 10; ; i++ {
		nine := fmt.Sprintf("999%06d", i)
		sum := 0
		for j := 0; j < 9; j++ {
			sum += int(nine[j]-'0') * (10 - j)
		}
		check := (11 - sum%11) % 11
		if check == 10 {
			continue
		}
		nhs, err := cpis.ParseNHSNumber(fmt.Sprintf("%s%d", nine, check))
		if err != nil {
			tb.Fatalf("building a test NHS number: %v", err)
		}
		return nhs
	}
}

// la returns one of the Trust's local authorities by index (0..5).
func la(i int) cpis.LocalAuthority { return cpis.TrustDirectory()[i].LocalAuthority }

// newPlan returns a valid plan of type typ on nhs, uploaded by authority,
// running from start to end (YYYY-MM-DD), last updated at.
func newPlan(nhs cpis.NHSNumber, authority cpis.LocalAuthority, typ cpis.PlanType, start, end string, at time.Time) cpis.Plan {
	p := cpis.Plan{
		ID:             uuid.NewString(),
		NHSNumber:      nhs,
		Type:           typ,
		Start:          cpis.MustDate(start),
		End:            cpis.MustDate(end),
		LA:             authority,
		EmergencyPhone: "020 7946 0101",
		OfficePhone:    "020 7946 0102",
		LastUpdated:    at,
	}
	if typ != cpis.UCPP {
		p.BirthDate = p.Start.AddYears(-10)
	}
	return p
}

// writeRecord returns the audit record an LA system's write of p would carry.
func writeRecord(p cpis.Plan, action cpis.AuditAction, interaction string, at time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID:          uuid.NewString(),
		Recorded:    at,
		Action:      action,
		Interaction: interaction,
		Outcome:     cpis.OutcomeSuccess,
		Actor: cpis.Actor{
			Kind:    cpis.LASystem,
			UserID:  "client-" + p.LA.Code,
			Name:    "Case management system",
			OrgCode: p.LA.Code,
			OrgName: p.LA.Name,
		},
		Patient: p.NHSNumber,
		PlanIDs: []string{p.ID},
		LACodes: []string{p.LA.Code},
	}
}

// put stores versions and recs in one write transaction of laCode, and
// commits it.
func put(tb testing.TB, ctx context.Context, s store.Store, laCode string, versions []store.Version, recs ...cpis.AuditRecord) {
	tb.Helper()
	if err := tryPut(ctx, s, laCode, versions, recs...); err != nil {
		tb.Fatalf("a write transaction: %v", err)
	}
}

// tryPut is put, returning the first error of BeginWrite, Put or Commit.
func tryPut(ctx context.Context, s store.Store, laCode string, versions []store.Version, recs ...cpis.AuditRecord) error {
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

// create stores p as version 1 with its audit record, and returns it as
// stored.
func create(tb testing.TB, ctx context.Context, s store.Store, p cpis.Plan) cpis.Plan {
	tb.Helper()
	p.Version = 1
	put(tb, ctx, s, p.LA.Code, []store.Version{{Plan: p}}, writeRecord(p, cpis.ActionCreate, "create", p.LastUpdated))
	return p
}

// update stores p as the version after expect, and returns it as stored.
func update(tb testing.TB, ctx context.Context, s store.Store, p cpis.Plan, expect int) cpis.Plan {
	tb.Helper()
	p.Version = expect + 1
	put(tb, ctx, s, p.LA.Code, []store.Version{{Plan: p}}, writeRecord(p, cpis.ActionUpdate, "update", p.LastUpdated))
	return p
}

// withdraw stores the current version of p, entered in error, as its next
// version, written at at, and returns it.
func withdraw(tb testing.TB, ctx context.Context, s store.Store, p cpis.Plan, at time.Time) cpis.Plan {
	tb.Helper()
	cur, err := s.Plan(ctx, p.ID)
	if err != nil {
		tb.Fatalf("Plan: %v", err)
	}
	cur.Version, cur.EnteredInError, cur.LastUpdated = cur.Version+1, true, at
	put(tb, ctx, s, cur.LA.Code, []store.Version{{Plan: cur}}, writeRecord(cur, cpis.ActionDelete, "delete", at))
	return cur
}

// next returns p as its next version, changed by f and written at at.
func next(p cpis.Plan, at time.Time, f func(*cpis.Plan)) cpis.Plan {
	p.Version, p.LastUpdated = p.Version+1, at
	if f != nil {
		f(&p)
	}
	return p
}

// versions wraps plans as versions without request ids.
func versions(plans ...cpis.Plan) []store.Version {
	out := make([]store.Version, len(plans))
	for i, p := range plans {
		out[i] = store.Version{Plan: p}
	}
	return out
}

// wantKind fails unless err is a *cpis.Error of kind k.
func wantKind(tb testing.TB, op string, err error, k cpis.Kind) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("%s: got no error, want kind %q", op, k)
	}
	var e *cpis.Error
	if !errors.As(err, &e) {
		tb.Fatalf("%s: error %v (%T) is not a *cpis.Error", op, err, err)
	}
	if got := cpis.KindOf(err); got != k {
		tb.Fatalf("%s: error kind %q (%v), want %q", op, got, err, k)
	}
}

// wantPlan compares a plan the store returned with the expected one,
// including that its time is in UTC.
func wantPlan(tb testing.TB, what string, got, want cpis.Plan) {
	tb.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
	wantUTC(tb, what+".LastUpdated", got.LastUpdated)
}

// wantPlans compares lists of plans as wantPlan does.
func wantPlans(tb testing.TB, what string, got, want []cpis.Plan) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
	for i, p := range got {
		wantUTC(tb, fmt.Sprintf("%s[%d].LastUpdated", what, i), p.LastUpdated)
	}
}

// wantUTC checks a returned instant is in UTC: cmp compares times with
// time.Time.Equal, which ignores the location.
func wantUTC(tb testing.TB, what string, t time.Time) {
	tb.Helper()
	if t.Location() != time.UTC {
		tb.Errorf("%s is in location %q, want UTC", what, t.Location())
	}
}

// snapshot is everything a failed write must leave as it was.
type snapshot struct {
	Current cpis.Plan
	History []cpis.Plan
}

func snap(tb testing.TB, ctx context.Context, s store.Store, id string) snapshot {
	tb.Helper()
	cur, err := s.Plan(ctx, id)
	if err != nil {
		tb.Fatalf("Plan: %v", err)
	}
	hist, err := s.PlanHistory(ctx, id)
	if err != nil {
		tb.Fatalf("PlanHistory: %v", err)
	}
	return snapshot{cur, hist}
}

// unchanged fails if the plan's current version or history moved since before.
func unchanged(tb testing.TB, ctx context.Context, s store.Store, id string, before snapshot) {
	tb.Helper()
	if diff := cmp.Diff(before, snap(tb, ctx, s, id)); diff != "" {
		tb.Errorf("a failed write changed the plan (-before +after):\n%s", diff)
	}
}
