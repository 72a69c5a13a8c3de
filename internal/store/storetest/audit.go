package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// seq returns the n-th of a sequence of record ids that sort in n's order,
// for cases where the id tie-break decides the order.
func seq(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// accessRecord returns a health user's search of nhs, with every field set.
func accessRecord(nhs cpis.NHSNumber, userID, orgCode string, when time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID:          uuid.NewString(),
		Recorded:    when,
		Action:      cpis.ActionExecute,
		Interaction: "search-type",
		Outcome:     cpis.OutcomeSuccess,
		Actor: cpis.Actor{
			Kind:          cpis.HealthUser,
			UserID:        userID,
			Name:          "Test Practitioner",
			RoleProfileID: "555021935107",
			RoleCode:      "S8001:G8005:R8000",
			RoleName:      "Clinical Practitioner Access Role",
			OrgCode:       orgCode,
			OrgName:       "Test Hospital " + orgCode,
			Activities:    []string{cpis.ActivityUnscheduledView, cpis.ActivityScheduledView},
		},
		Patient:     nhs,
		PlanIDs:     []string{uuid.NewString(), uuid.NewString()},
		Query:       "/Flag?patient=" + nhs.String() + "&_count=10",
		RequestID:   uuid.NewString(),
		TraceID:     uuid.NewString(),
		Source:      "https://replica-1.cpis.example.org",
		Access:      true,
		Unscheduled: true,
		LACodes:     []string{la(0).Code, la(1).Code},
	}
}

// wantRecords compares audit records. Empty and nil slices are equal: a
// store need not tell them apart.
func wantRecords(tb testing.TB, what string, got, want []cpis.AuditRecord) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
	for i, r := range got {
		wantUTC(tb, fmt.Sprintf("%s[%d].Recorded", what, i), r.Recorded)
	}
}

func appendAudit(tb testing.TB, ctx context.Context, s store.Store, recs ...cpis.AuditRecord) {
	tb.Helper()
	if err := s.AppendAudit(ctx, recs); err != nil {
		tb.Fatalf("AppendAudit: %v", err)
	}
}

func searchAudit(tb testing.TB, ctx context.Context, s store.Store, q store.AuditQuery) []cpis.AuditRecord {
	tb.Helper()
	got, err := s.SearchAudit(ctx, q)
	if err != nil {
		tb.Fatalf("SearchAudit: %v", err)
	}
	return got
}

// allAudit returns every record matching q, following its pages.
func allAudit(tb testing.TB, ctx context.Context, s store.Store, q store.AuditQuery) []cpis.AuditRecord {
	tb.Helper()
	q.Limit = 1000
	var out []cpis.AuditRecord
	for {
		page := searchAudit(tb, ctx, s, q)
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		q.Before = store.AuditKeyOf(page[len(page)-1])
	}
}

func testAppendAudit(t *testing.T, open opener) {
	t.Run("every field round-trips", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		full := accessRecord(nhsNumber(t, 1), "555000000001", "RXX01", baseTime())
		// An LA system's search of its own plans: no patient, no slices.
		bare := cpis.AuditRecord{
			ID: uuid.NewString(), Recorded: baseTime().Add(time.Second), Action: cpis.ActionExecute,
			Interaction: "search-type", Outcome: cpis.OutcomeMinorFailure,
			Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "client-ZLA01", OrgCode: la(0).Code},
		}
		scheduled := accessRecord(nhsNumber(t, 2), "555000000002", "RXX02", baseTime().Add(2*time.Second))
		scheduled.Unscheduled, scheduled.Action, scheduled.Interaction = false, cpis.ActionRead, "read"
		scheduled.Actor.Activities, scheduled.PlanIDs, scheduled.LACodes = []string{cpis.ActivityScheduledView}, scheduled.PlanIDs[:1], nil
		appendAudit(t, ctx, s, full, bare, scheduled)
		got := searchAudit(t, ctx, s, store.AuditQuery{Limit: 10})
		wantRecords(t, "SearchAudit", got, []cpis.AuditRecord{scheduled, bare, full})
	})
	t.Run("an empty batch", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		if err := s.AppendAudit(ctx, nil); err != nil {
			t.Fatalf("AppendAudit(nil): %v", err)
		}
		wantRecords(t, "SearchAudit", searchAudit(t, ctx, s, store.AuditQuery{Limit: 10}), nil)
	})
	t.Run("batches add up", func(t *testing.T) {
		ctx, s := t.Context(), open(t)
		var all []cpis.AuditRecord // oldest first
		for b := range 3 {
			var batch []cpis.AuditRecord
			for i := range 4 {
				batch = append(batch, accessRecord(nhsNumber(t, i), "555000000001", "RXX01", baseTime().Add(time.Duration(b*4+i)*time.Second)))
			}
			appendAudit(t, ctx, s, batch...)
			all = append(all, batch...)
		}
		wantRecords(t, "SearchAudit", searchAudit(t, ctx, s, store.AuditQuery{Limit: 100}), reversed(all))
	})
	t.Run("a cancelled request stores nothing", func(t *testing.T) {
		// Whether a batch can fail half-way is the backend's own test: here,
		// a request already gone must not leave records behind.
		s := open(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var batch []cpis.AuditRecord
		for i := range 50 {
			batch = append(batch, accessRecord(nhsNumber(t, i), "555000000001", "RXX01", baseTime().Add(time.Duration(i)*time.Second)))
		}
		if err := s.AppendAudit(ctx, batch); err == nil {
			t.Fatal("AppendAudit with a cancelled context succeeded")
		}
		wantRecords(t, "SearchAudit", searchAudit(t, t.Context(), s, store.AuditQuery{Limit: 100}), nil)
	})
}

// reversed returns recs in reverse order, as a new slice.
func reversed(recs []cpis.AuditRecord) []cpis.AuditRecord {
	out := make([]cpis.AuditRecord, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, recs[i])
	}
	return out
}

func testSearchAudit(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	x, y := nhsNumber(t, 1), nhsNumber(t, 2)
	sec := func(n int) time.Time { return baseTime().Add(time.Duration(n) * time.Second) }
	r := []cpis.AuditRecord{
		accessRecord(x, "U1", "RXX01", sec(1)),
		accessRecord(x, "U2", "RXX02", sec(2)),
		accessRecord(y, "U2", "RXX01", sec(3)),
		writeRecord(newPlan(y, la(0), cpis.CPP, "2025-01-01", "2025-12-31", sec(4)), cpis.ActionCreate, "create", sec(4)),
		accessRecord(y, "U1", "RXX02", sec(5)),
		accessRecord(x, "U1", "RXX01", sec(5)),
	}
	r[1].Access, r[1].Outcome = false, cpis.OutcomeMinorFailure
	r[3].Patient = "" // an LA's write, recorded without a patient for this case
	for i := range r {
		r[i].ID = seq(i)
	}
	appendAudit(t, ctx, s, r[3], r[0], r[5])
	appendAudit(t, ctx, s, r[2], r[1], r[4])
	pick := func(idx ...int) []cpis.AuditRecord {
		var out []cpis.AuditRecord
		for _, i := range idx {
			out = append(out, r[i])
		}
		return out
	}
	tests := []struct {
		name string
		q    store.AuditQuery
		want []cpis.AuditRecord
	}{
		{"everything, newest first, ties by id", store.AuditQuery{}, pick(5, 4, 3, 2, 1, 0)},
		{"patient", store.AuditQuery{Patient: x}, pick(5, 1, 0)},
		{"organisation", store.AuditQuery{OrgCode: "RXX01"}, pick(5, 2, 0)},
		{"an LA as organisation", store.AuditQuery{OrgCode: la(0).Code}, pick(3)},
		{"user", store.AuditQuery{ActorUserID: "U2"}, pick(2, 1)},
		{"recorded from, inclusive", store.AuditQuery{RecordedFrom: sec(3)}, pick(5, 4, 3, 2)},
		{"recorded before, exclusive", store.AuditQuery{RecordedBefore: sec(3)}, pick(1, 0)},
		{"recorded between", store.AuditQuery{RecordedFrom: sec(2), RecordedBefore: sec(5)}, pick(3, 2, 1)},
		{"accesses only", store.AuditQuery{AccessOnly: true}, pick(5, 4, 2, 0)},
		{"accesses of a patient", store.AuditQuery{AccessOnly: true, Patient: y}, pick(4, 2)},
		{"every field", store.AuditQuery{Patient: x, OrgCode: "RXX01", ActorUserID: "U1", AccessOnly: true,
			RecordedFrom: sec(1), RecordedBefore: sec(6)}, pick(5, 0)},
		{"a first page", store.AuditQuery{Limit: 2}, pick(5, 4)},
		{"before a key, in a tie", store.AuditQuery{Before: store.AuditKeyOf(r[5]), Limit: 2}, pick(4, 3)},
		{"the last page", store.AuditQuery{Before: store.AuditKeyOf(r[1]), Limit: 2}, pick(0)},
		{"before a key, with a filter", store.AuditQuery{Patient: x, Before: store.AuditKeyOf(r[5])}, pick(1, 0)},
		{"before the oldest", store.AuditQuery{Before: store.AuditKeyOf(r[0])}, nil},
		{"no match", store.AuditQuery{Patient: nhsNumber(t, 3)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.q.Limit == 0 {
				tt.q.Limit = 100
			}
			wantRecords(t, "SearchAudit", searchAudit(t, ctx, s, tt.q), tt.want)
		})
	}
}

// auditedWrite is a write transaction given the probe audit record, which
// must be stored exactly when the transaction commits.
type auditedWrite struct {
	name   string
	write  func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error
	stored bool
}

// testWriteAudit: the audit records of a write transaction are stored with
// its versions, in the same transaction, and rolled back with them.
func testWriteAudit(t *testing.T, open opener) {
	for _, tt := range auditedWrites() {
		t.Run(tt.name, func(t *testing.T) {
			ctx, s := t.Context(), open(t)
			v1 := create(t, ctx, s, newPlan(nhsNumber(t, 1), la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
			v2 := next(v1, baseTime().Add(time.Minute), nil)
			put(t, ctx, s, v1.LA.Code, versions(v2))
			probe := writeRecord(v2, cpis.ActionUpdate, "update", baseTime().Add(time.Hour))
			// A trace id too: Put must store it as AppendAudit does.
			probe.Actor.UserID, probe.RequestID, probe.TraceID = "probe", uuid.NewString(), uuid.NewString()
			err := tt.write(ctx, s, v2, probe)
			if (err == nil) != tt.stored {
				t.Fatalf("write: error %v, want an error %v", err, !tt.stored)
			}
			var want []cpis.AuditRecord
			if tt.stored {
				want = []cpis.AuditRecord{probe}
			} else {
				wantHistory(t, ctx, s, v2.ID, []cpis.Plan{v2, v1})
			}
			got := searchAudit(t, ctx, s, store.AuditQuery{ActorUserID: "probe", Limit: 10})
			wantRecords(t, "SearchAudit for the write's record", got, want)
		})
	}
}

func auditedWrites() []auditedWrite {
	updated := func(p cpis.Plan) cpis.Plan {
		return next(p, baseTime().Add(time.Hour), func(p *cpis.Plan) { p.End = cpis.MustDate("2025-11-30") })
	}
	// inTx runs f in a write transaction of v2's LA, then commits.
	inTx := func(ctx context.Context, s store.Store, v2 cpis.Plan, f func(tx store.WriteTx) error) error {
		tx, err := s.BeginWrite(ctx, v2.LA.Code)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if err := f(tx); err != nil {
			if cerr := tx.Commit(ctx); cerr == nil {
				return fmt.Errorf("a Commit after a failed call succeeded")
			}
			return err
		}
		return tx.Commit(ctx)
	}
	return []auditedWrite{
		{"a write", func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error {
			return tryPut(ctx, s, v2.LA.Code, versions(updated(v2)), probe)
		}, true},
		// Every write request is audited, even one that finds nothing to do.
		{"a request that changed nothing", func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error {
			return tryPut(ctx, s, v2.LA.Code, nil, probe)
		}, true},
		{"rolled back", func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error {
			tx, err := s.BeginWrite(ctx, v2.LA.Code)
			if err != nil {
				return err
			}
			if err := tx.Put(ctx, versions(updated(v2)), []cpis.AuditRecord{probe}); err != nil {
				return err
			}
			if err := tx.Rollback(ctx); err != nil {
				return err
			}
			return fmt.Errorf("rolled back")
		}, false},
		{"a Put refused", func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error {
			return inTx(ctx, s, v2, func(tx store.WriteTx) error {
				return tx.Put(ctx, versions(updated(v2), next(v2, probe.Recorded, nil)), []cpis.AuditRecord{probe})
			})
		}, false},
		{"a Put refused after one that was not", func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error {
			return inTx(ctx, s, v2, func(tx store.WriteTx) error {
				if err := tx.Put(ctx, versions(updated(v2)), []cpis.AuditRecord{probe}); err != nil {
					return fmt.Errorf("the first Put: %w", err)
				}
				return tx.Put(ctx, versions(updated(v2)), nil)
			})
		}, false},
		{"a request gone before the commit", func(ctx context.Context, s store.Store, v2 cpis.Plan, probe cpis.AuditRecord) error {
			ctx, cancel := context.WithCancel(ctx)
			tx, err := s.BeginWrite(ctx, v2.LA.Code)
			if err != nil {
				cancel()
				return err
			}
			defer tx.Rollback(ctx)
			if err := tx.Put(ctx, versions(updated(v2)), []cpis.AuditRecord{probe}); err != nil {
				cancel()
				return err
			}
			cancel()
			return tx.Commit(ctx)
		}, false},
	}
}
