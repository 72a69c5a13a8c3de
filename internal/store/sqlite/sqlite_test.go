package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/storetest"
	"github.com/cpis-fhir/cpis/migrations"
)

// openTemp opens a store in a new file of the test's temporary directory.
func openTemp(tb testing.TB) *Store {
	tb.Helper()
	return openAt(tb, filepath.Join(tb.TempDir(), "cpis.db"))
}

func openAt(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(tb.Context(), path)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "cpis.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s // storetest.Run closes it
	})
}

func wantKind(tb testing.TB, what string, err error, k cpis.Kind) {
	tb.Helper()
	if got := cpis.KindOf(err); err == nil || got != k {
		tb.Errorf("%s: error %v (kind %q), want kind %q", what, err, got, k)
	}
}

// testPlan is a valid CPP for nhs, written by the first of the Trust's LAs.
func testPlan(nhs cpis.NHSNumber, at time.Time) cpis.Plan {
	return cpis.Plan{
		ID: uuid.NewString(), NHSNumber: nhs, Type: cpis.CPP,
		Start: cpis.MustDate("2025-01-01"), End: cpis.MustDate("2025-12-31"), BirthDate: cpis.MustDate("2015-01-01"),
		LA: cpis.TrustDirectory()[0].LocalAuthority, EmergencyPhone: "020 7946 0101", LastUpdated: at,
	}
}

// putPlan stores p as version 1, with rec, in a write transaction of its LA.
func putPlan(ctx context.Context, s *Store, p cpis.Plan, recs ...cpis.AuditRecord) error {
	tx, err := s.BeginWrite(ctx, p.LA.Code)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	p.Version = 1
	if err := tx.Put(ctx, []store.Version{{Plan: p}}, recs); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// createPlan is putPlan, failing the test on an error; it returns p as stored.
func createPlan(tb testing.TB, s *Store, p cpis.Plan) cpis.Plan {
	tb.Helper()
	if err := putPlan(tb.Context(), s, p, testRecord(p.NHSNumber, p.LastUpdated)); err != nil {
		tb.Fatalf("storing a plan: %v", err)
	}
	p.Version = 1
	return p
}

func testRecord(nhs cpis.NHSNumber, at time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID: uuid.NewString(), Recorded: at, Action: cpis.ActionExecute, Interaction: "search-type",
		Actor: cpis.Actor{Kind: cpis.HealthUser, UserID: "555000000001", OrgCode: "RXX01"}, Patient: nhs, Access: true,
	}
}

func TestOpenMigratesOnce(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cpis.db")
	want, err := migrations.List(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	s := openAt(t, path)
	p := testPlan(testNHSNumbers(1)[0], time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC))
	stored := createPlan(t, s, p)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Opening again applies nothing and finds the data.
	s = openAt(t, path)
	defer s.Close()
	v, err := s.SchemaVersion(ctx)
	if err != nil || v != len(want) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(want))
	}
	var rows int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != len(want) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", rows, err, len(want))
	}
	got, err := s.Plan(ctx, p.ID)
	if err != nil {
		t.Fatalf("Plan after reopening: %v", err)
	}
	if diff := cmp.Diff(stored, got); diff != "" {
		t.Errorf("Plan after reopening (-want +got):\n%s", diff)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpis.db")
	s := openAt(t, path)
	if _, err := s.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (99, 'future')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("Open of a database newer than the program succeeded")
	}
}

func TestOpenBadPath(t *testing.T) {
	tests := []struct {
		name, path string
		want       cpis.Kind
	}{
		{"empty", "", cpis.Invalid},
		{"a query string", filepath.Join(t.TempDir(), "x.db?mode=ro"), cpis.Invalid},
		{"no such directory", filepath.Join(t.TempDir(), "missing", "x.db"), cpis.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.path)
			if err == nil {
				s.Close()
			}
			wantKind(t, "Open", err, tt.want)
		})
	}
}

// TestPragmas checks the settings durability and safety rest on.
func TestPragmas(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	tests := []struct {
		db           *sql.DB
		pragma, want string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "synchronous", "2"}, // FULL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", lockTryMS},
		{s.r, "busy_timeout", readerBusyMS},
		{s.r, "query_only", "1"},
		{s.r, "journal_mode", "wal"},
	}
	for _, tt := range tests {
		var got string
		if err := tt.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
}

func TestAppendAuditIsAtomic(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	defer s.Close()
	nhs := testNHSNumbers(1)[0]
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	bad := testRecord(nhs, at)
	bad.ID = "" // refused by the table's CHECK, after the first record went in
	err := s.AppendAudit(ctx, []cpis.AuditRecord{testRecord(nhs, at), bad, testRecord(nhs, at)})
	if err == nil {
		t.Fatal("AppendAudit of a batch with a record without an id succeeded")
	}
	got, err := s.SearchAudit(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(got) != 0 {
		t.Fatalf("SearchAudit = %d records (%v), want none", len(got), err)
	}
}

// TestLockedIsUnavailable: a write lock held elsewhere (here another
// connection, as cpisctl would) past the request's deadline is Unavailable,
// and the store works again once it is released.
func TestLockedIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpis.db")
	s := openAt(t, path)
	defer s.Close()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	nhs := testNHSNumbers(1)[0]
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.AppendAudit(ctx, []cpis.AuditRecord{testRecord(nhs, at)})
	wantKind(t, "AppendAudit while locked", err, cpis.Unavailable)
	// It gave up with the request, not after SQLite's whole wait: 10 s
	// against 0.3 s, so the bound is loose enough never to flake.
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("AppendAudit waited %v for a lock, past its context's deadline", waited)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := s.AppendAudit(t.Context(), []cpis.AuditRecord{testRecord(nhs, at)}); err != nil {
		t.Fatalf("AppendAudit after the lock was released: %v", err)
	}
}

// TestAccessHistoryPlan checks, with EXPLAIN QUERY PLAN, that the access
// history reads audit_events_patient_idx in index order (no sort, so it
// stops after the limit) and checks each record's plans through the unique
// index on plans.id.
func TestAccessHistoryPlan(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	for _, laCode := range []string{"", "ZLA01"} {
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+sqlAccessHistory, "9990000026", laCode, laCode, 25)
		if err != nil {
			t.Fatal(err)
		}
		var steps []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, detail)
		}
		rows.Close()
		plan := strings.Join(steps, "\n")
		for _, want := range []string{"SEARCH a USING INDEX audit_events_patient_idx (nhs_number=? AND access=?)", "SEARCH p USING INDEX sqlite_autoindex_plans_1 (id=?)"} {
			if !strings.Contains(plan, want) {
				t.Errorf("the plan has no step %q:\n%s", want, plan)
			}
		}
		if strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "SCAN a") || strings.Contains(plan, "SCAN p") {
			t.Errorf("the plan sorts or scans a table:\n%s", plan)
		}
	}
}

// TestStatementsAreReused: searches of one shape prepare one statement,
// whatever their values, so the cache cannot grow without bound.
func TestStatementsAreReused(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	defer s.Close()
	for i, nhs := range testNHSNumbers(20) {
		key := &store.PlanKey{LastUpdated: time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC), ID: uuid.NewString()}
		q := store.PlanQuery{NHSNumber: nhs, VisibleOn: cpis.MustDate("2025-01-01").AddDays(i), Limit: 1 + i, After: key,
			Types: []cpis.PlanType{cpis.CLA, cpis.CPP, cpis.CLA}}
		if _, err := s.SearchPlans(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	s.rs.mu.Lock()
	n := len(s.rs.m)
	s.rs.mu.Unlock()
	if n != 1 {
		t.Errorf("%d statements prepared for one shape of search, want 1", n)
	}
}

func TestClosedIsUnavailable(t *testing.T) {
	s := openTemp(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantKind(t, "Ping after Close", s.Ping(t.Context()), cpis.Unavailable)
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		err  error
		want cpis.Kind
	}{
		{context.Canceled, cpis.Unavailable},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), cpis.Unavailable},
		{sql.ErrConnDone, cpis.Unavailable},
		{sql.ErrNoRows, cpis.NotFound},
		{errors.New("something else"), cpis.Other},
	}
	for _, tt := range tests {
		if got := kindOf(tt.err); got != tt.want {
			t.Errorf("kindOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestReadersAndWriterTogether runs searches, audit appends and plan
// writes at once, for the race detector and for SQLITE_BUSY between the
// pools: none may fail.
func TestReadersAndWriterTogether(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	defer s.Close()
	nhs := testNHSNumbers(10)
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 6 {
		wg.Go(func() {
			for i := range 20 {
				n := nhs[(g+i)%len(nhs)]
				var err error
				switch g % 3 {
				case 0:
					p := testPlan(n, at.Add(time.Duration(g*100+i)*time.Second))
					p.Start = cpis.MustDate("2020-01-01").AddDays(10 * (g*100 + i))
					p.End = p.Start.AddDays(9)
					err = putPlan(ctx, s, p, testRecord(n, p.LastUpdated))
				case 1:
					err = s.AppendAudit(ctx, []cpis.AuditRecord{testRecord(n, at), testRecord(n, at)})
				default:
					_, err = s.SearchPlans(ctx, store.PlanQuery{NHSNumber: n, VisibleOn: cpis.MustDate("2025-06-01"), Limit: 100})
					if err == nil {
						_, err = s.AccessHistory(ctx, store.AccessQuery{NHSNumber: n, Limit: cpis.AccessHistoryLength})
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	page, err := s.SearchPlans(ctx, store.PlanQuery{LACode: cpis.TrustDirectory()[0].Code, Limit: 1000})
	if err != nil || len(page.Plans) != 40 {
		t.Errorf("after the run: %d plans (%v), want 40", len(page.Plans), err)
	}
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

// TestWriteThroughput logs how fast a bulk upload writes through one
// write transaction (storetest.WriteThroughput); set
// CPIS_WRITE_THROUGHPUT_PLANS=100000, without -race, to measure.
func TestWriteThroughput(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	storetest.WriteThroughput(t, s, storetest.ThroughputPlans(t, 2_000))
}

// TestWriteStatementsUseIndexes checks, with EXPLAIN QUERY PLAN, that each
// look-up of a write transaction probes an index per key, so that a chunk
// of an upload costs the same however many plans the LA holds: in
// particular that ChildPlans probes the primary key by NHS number and does
// not walk plans_la_code_idx, which the planner, without statistics, would
// otherwise prefer.
func TestWriteStatementsUseIndexes(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	tests := []struct {
		name, query string
		want        []string
	}{
		{"ByReference", sqlByReference, []string{"SEARCH plans USING INDEX plans_la_reference_idx (la_code=? AND la_reference=?)"}},
		{"ByDigest", sqlByDigest, []string{"SEARCH plans USING INDEX plans_la_digest_idx (la_code=? AND source_digest=?)"}},
		{"ChildPlans", sqlChildPlans, []string{"SEARCH plans USING PRIMARY KEY (nhs_number=?)"}},
		{"Replay", sqlReplay, []string{"SEARCH plan_versions USING INDEX plan_versions_request_idx (la_code=? AND request_id=?)"}},
		{"Plan", sqlPlan, []string{"SEARCH plans USING INDEX sqlite_autoindex_plans_1 (id=?)"}},
		{"updating the current row", sqlUpdateCurrent, []string{"SEARCH plans USING PRIMARY KEY (nhs_number=? AND id=?)"}},
		{"moving the current row", sqlMoveCurrent, []string{"SEARCH plans USING INDEX sqlite_autoindex_plans_1 (id=?)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := s.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tt.query, make([]any, strings.Count(tt.query, "?"))...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var steps []string
			for rows.Next() {
				var id, parent, unused int
				var detail string
				if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				steps = append(steps, detail)
			}
			plan := strings.Join(steps, "\n")
			for _, want := range tt.want {
				if !strings.Contains(plan, want) {
					t.Errorf("the plan has no step %q:\n%s", want, plan)
				}
			}
			if strings.Contains(plan, "SCAN plans") || strings.Contains(plan, "plans_la_code_idx") {
				t.Errorf("the plan reads the LA's plans or the table:\n%s", plan)
			}
		})
	}
}
