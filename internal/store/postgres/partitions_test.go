package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// testNHS returns the n-th test NHS number (n < 100,000), a valid one in
// the 999 range, cheaply.
func testNHS(n int) cpis.NHSNumber {
	for i := n * 10; ; i++ {
		nine := fmt.Sprintf("999%06d", i)
		sum := 0
		for j := range 9 {
			sum += int(nine[j]-'0') * (10 - j)
		}
		if check := (11 - sum%11) % 11; check != 10 {
			return cpis.NHSNumber(fmt.Sprintf("%s%d", nine, check))
		}
	}
}

func utc(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

// partitions lists audit_events' partitions, in name order.
func partitions(tb testing.TB, s *postgres.Store) []string {
	tb.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT c.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass ORDER BY 1`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// countIn counts the rows of one table.
func countIn(tb testing.TB, s *postgres.Store, table string) int {
	tb.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// record is an access to nhs recorded at when.
func record(nhs cpis.NHSNumber, when time.Time) cpis.AuditRecord {
	r := benchRecord(nhs, when)
	r.Recorded = when
	return r
}

func TestEnsureAuditPartitions(t *testing.T) {
	url := pgtest.MigratedURL(t)
	s := open(t, url)
	defer s.Close()
	before := partitions(t, s)
	now := utc(2031, time.November, 30)
	// Three processes at once, twice over: idempotent and race-free.
	others := []*postgres.Store{s, open(t, url), open(t, url)}
	for range 2 {
		var wg sync.WaitGroup
		errs := make([]error, len(others))
		for i, o := range others {
			wg.Go(func() { errs[i] = o.EnsureAuditPartitions(t.Context(), now, 2) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("EnsureAuditPartitions %d: %v", i, err)
			}
		}
	}
	for _, o := range others[1:] {
		o.Close()
	}
	want := append(slices.Clone(before), "audit_events_y2031m11", "audit_events_y2031m12", "audit_events_y2032m01")
	slices.Sort(want)
	if diff := cmp.Diff(want, partitions(t, s)); diff != "" {
		t.Errorf("partitions (-want +got):\n%s", diff)
	}
	var withIndex int
	err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events_access_idx'::regclass AND c.relname::text LIKE 'audit_events_y2031m1%'`).Scan(&withIndex)
	if err != nil || withIndex != 2 {
		t.Errorf("%d new partitions carry the access index (%v), want 2", withIndex, err)
	}
}

// TestEnsureAuditPartitionsMovesDefaultRows checks records that landed in
// the default partition before their month's partition existed are moved
// into it, and stay readable.
func TestEnsureAuditPartitionsMovesDefaultRows(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	nhs := testNHS(1)
	recs := []cpis.AuditRecord{record(nhs, utc(2033, time.March, 1)), record(nhs, utc(2033, time.March, 31)), record(nhs, utc(2033, time.April, 1))}
	if err := s.AppendAudit(t.Context(), recs); err != nil {
		t.Fatal(err)
	}
	if n := countIn(t, s, "audit_events_default"); n != 3 {
		t.Fatalf("%d rows in the default partition, want 3", n)
	}
	if err := s.EnsureAuditPartitions(t.Context(), utc(2033, time.March, 15), 0); err != nil {
		t.Fatal(err)
	}
	if got := []int{countIn(t, s, "audit_events_y2033m03"), countIn(t, s, "audit_events_default")}; !slices.Equal(got, []int{2, 1}) {
		t.Errorf("rows in March and default: %v, want [2 1]", got)
	}
	got, err := s.SearchAudit(t.Context(), store.AuditQuery{Patient: nhs, AccessOnly: true, Limit: 25})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]cpis.AuditRecord{recs[2], recs[1], recs[0]}, got); diff != "" {
		t.Errorf("the patient's accesses (-want +got):\n%s", diff)
	}
}

func TestDropAuditPartitionsBefore(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	if err := s.EnsureAuditPartitions(ctx, utc(2020, time.January, 1), 3); err != nil {
		t.Fatal(err)
	}
	nhs := testNHS(2)
	old := record(nhs, utc(2019, time.June, 1)) // before every partition: in default
	jan, feb := record(nhs, utc(2020, time.January, 31)), record(nhs, utc(2020, time.February, 29))
	mar, apr := record(nhs, utc(2020, time.March, 1)), record(nhs, utc(2020, time.April, 30))
	if err := s.AppendAudit(ctx, []cpis.AuditRecord{old, jan, feb, mar, apr}); err != nil {
		t.Fatal(err)
	}
	now := utc(2021, time.January, 15)
	dropped, err := s.DropAuditPartitionsBefore(ctx, now, time.Date(2020, time.March, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"audit_events_y2020m01", "audit_events_y2020m02"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	got, err := s.SearchAudit(ctx, store.AuditQuery{Patient: nhs, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]cpis.AuditRecord{apr, mar}, got); diff != "" {
		t.Errorf("records left (-want +got):\n%s", diff)
	}
	// Partitions that end after the cutoff stay, even mid-month.
	dropped, err = s.DropAuditPartitionsBefore(ctx, now, utc(2020, time.April, 15))
	if err != nil || !slices.Equal(dropped, []string{"audit_events_y2020m03"}) {
		t.Errorf("second drop: %v (%v), want only March", dropped, err)
	}
}

// TestDropAuditPartitionsKeepsCurrentMonth checks a cutoff in the future
// cannot drop the current month or later ones, judged by the caller's clock
// (not the database's, which is years before it here) in UTC months: at
// 00:30 on 1 July in summer time it is still June in UTC, and June's
// partition holds the record just made.
func TestDropAuditPartitionsKeepsCurrentMonth(t *testing.T) {
	now := time.Date(2031, time.July, 1, 0, 30, 0, 0, time.FixedZone("BST", 3600))
	s := open(t, pgtest.MigratedURLAt(t, now))
	defer s.Close()
	ctx := t.Context()
	if err := s.EnsureAuditPartitions(ctx, utc(2031, time.May, 31), 0); err != nil {
		t.Fatal(err)
	}
	current := record(testNHS(3), now)
	if err := s.AppendAudit(ctx, []cpis.AuditRecord{current}); err != nil {
		t.Fatal(err)
	}
	before := partitions(t, s)
	dropped, err := s.DropAuditPartitionsBefore(ctx, now, now.AddDate(5, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"audit_events_y2031m05"}) {
		t.Errorf("dropped %v, want only audit_events_y2031m05", dropped)
	}
	after := partitions(t, s)
	if want := slices.DeleteFunc(slices.Clone(before), func(n string) bool { return n == "audit_events_y2031m05" }); !slices.Equal(after, want) {
		t.Errorf("partitions before %v, after %v: want %v", before, after, want)
	}
	got, err := s.SearchAudit(ctx, store.AuditQuery{Patient: current.Patient, AccessOnly: true, Limit: 25})
	if err != nil || len(got) != 1 || got[0].ID != current.ID {
		t.Errorf("the patient's accesses after the drop: %v (%v), want this month's record", got, err)
	}
}

// TestCreatePartitionUnderInserts creates a month's partition while several
// writers append records of that month, as a server's partition upkeep may
// while its requests are audited: no append may fail, no record may be
// lost, and none of the month may be left in the default partition. The
// appends in flight when the partition is attached are the ones at risk, so
// it is done several times.
func TestCreatePartitionUnderInserts(t *testing.T) {
	const writers, rounds = 4, 8
	s := open(t, pgtest.MigratedURL(t), postgres.WithMaxConns(writers+2))
	defer s.Close()
	for i := range rounds {
		month := time.Date(2040, time.January+time.Month(i), 1, 0, 0, 0, 0, time.UTC)
		t.Run(month.Format("2006-01"), func(t *testing.T) {
			nhs := testNHS(100 + i)
			appended := appendUntilPartitioned(t, s, nhs, month, writers)
			var inMonth, inDefault int
			err := s.Pool().QueryRow(t.Context(), `SELECT count(*), count(*) FILTER (WHERE tableoid = 'audit_events_default'::regclass)
				FROM audit_events WHERE nhs_number = $1`, string(nhs)).Scan(&inMonth, &inDefault)
			if err != nil {
				t.Fatal(err)
			}
			if inMonth != appended || inDefault != 0 {
				t.Errorf("%d records appended; %d stored, %d of them in the default partition: want all stored, none there", appended, inMonth, inDefault)
			}
			part := "audit_events_y" + month.Format("2006") + "m" + month.Format("01")
			if n := countIn(t, s, part); n != appended {
				t.Errorf("%d records in %s, want %d", n, part, appended)
			}
		})
	}
}

// appendUntilPartitioned appends records of month for nhs from several
// goroutines, creates month's partition once some have landed in the
// default partition, keeps appending a little longer, and returns how many
// records were appended. Any error fails the test.
func appendUntilPartitioned(t *testing.T, s *postgres.Store, nhs cpis.NHSNumber, month time.Time, writers int) int {
	t.Helper()
	ctx := t.Context()
	var appended atomic.Int64
	var failed atomic.Bool
	stop := make(chan struct{})
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				batch := make([]cpis.AuditRecord, 3)
				for j := range batch {
					batch[j] = record(nhs, month.Add(time.Duration(w*500_000+i*len(batch)+j)*time.Second))
				}
				if errs[w] = s.AppendAudit(ctx, batch); errs[w] != nil {
					failed.Store(true)
					return
				}
				appended.Add(int64(len(batch)))
			}
		})
	}
	waitForAppends := func(n int64) {
		for deadline := time.Now().Add(10 * time.Second); appended.Load() < n && !failed.Load() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}
	waitForAppends(30)
	ensured := s.EnsureAuditPartitions(ctx, month, 0)
	waitForAppends(appended.Load() + 30)
	close(stop)
	wg.Wait()
	if ensured != nil {
		t.Fatalf("EnsureAuditPartitions under inserts: %v", ensured)
	}
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: AppendAudit: %v (kind %s)", w, err, cpis.KindOf(err))
		}
	}
	return int(appended.Load())
}

// TestAppendAuditAllOrNone checks a batch with one record the database
// refuses stores none of them.
func TestAppendAuditAllOrNone(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	nhs := testNHS(4)
	var batch []cpis.AuditRecord
	for i := range 10 {
		batch = append(batch, record(nhs, utc(2026, time.November, 22).Add(time.Duration(i)*time.Second)))
	}
	batch[7].Query = "no NUL\x00 in PostgreSQL text"
	if err := s.AppendAudit(t.Context(), batch); err == nil {
		t.Fatal("AppendAudit of a batch with a NUL byte succeeded")
	}
	got, err := s.SearchAudit(t.Context(), store.AuditQuery{Limit: 100})
	if err != nil || len(got) != 0 {
		t.Fatalf("SearchAudit: %d records (%v), want none", len(got), err)
	}
}

// benchRecord is the audit record of one health user's search of nhs that
// returned a plan.
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
