package sqlite

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// queryPlan returns the steps of EXPLAIN QUERY PLAN for query, one a line.
func queryPlan(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, args...)
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "\n")
}

// TestEventStatementsUseIndexes checks, with EXPLAIN QUERY PLAN, that the
// feeds read an index in their order from where they start (no sort, so a
// page stops at its limit, and no scan from the log's beginning), and that
// every look-up of the log is a probe of an index.
func TestEventStatementsUseIndexes(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	search := func(q store.EventQuery) (string, []any) {
		query, args := eventSearchSQL(q)
		return query, append(args, q.Limit+1)
	}
	key := &store.EventKey{Stamp: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), Position: 42}
	from := key.Stamp
	tests := []struct {
		name  string
		query string
		args  []any
		want  string
	}{
		{"an LA's plan changes, newest first, after a key", "", nil,
			"SEARCH event_log USING INDEX event_log_la_idx (la_code=? AND kind=? AND stamp<?)"},
		{"an LA's ASNs, oldest first, from a stamp", "", nil,
			"SEARCH event_log USING INDEX event_log_la_idx (la_code=? AND kind=? AND stamp>?)"},
		{"every LA's events, from a stamp", "", nil, "SEARCH event_log USING INDEX event_log_stamp_idx (stamp>?)"},
		{"an ASN by id", "", nil, "SEARCH event_log USING INDEX event_log_asn_idx (asn_id=?)"},
		{"coalescing", sqlCoalesces, make([]any, 5),
			"SEARCH event_log USING COVERING INDEX event_log_coalesce_idx (nhs_number=? AND la_code=? AND org_code=? AND sent>? AND sent<?)"},
		{"a page's plan versions", sqlEventPlans, []any{`[["x", 1]]`}, "SEARCH plan_versions USING PRIMARY KEY (id=? AND version=?)"},
		{"retention", sqlDeleteEvents, []any{0, 10}, "SEARCH event_log USING COVERING INDEX event_log_stamp_idx (stamp<?)"},
	}
	tests[0].query, tests[0].args = search(store.EventQuery{LACode: "ZLA01", Kind: store.PlanChanged, After: key, Limit: 100})
	tests[1].query, tests[1].args = search(store.EventQuery{LACode: "ZLA01", Kind: store.ASNSent, Order: store.OldestFirst, From: from, Limit: 100})
	tests[2].query, tests[2].args = search(store.EventQuery{Order: store.OldestFirst, From: from, After: key, Limit: 100})
	tests[3].query, tests[3].args = search(store.EventQuery{LACode: "ZLA01", Kind: store.ASNSent, ASNID: uuid.NewString(), Limit: 1})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := queryPlan(t, s.w, tt.query, tt.args...)
			if !strings.Contains(plan, tt.want) {
				t.Errorf("the plan has no step %q:\n%s", tt.want, plan)
			}
			if strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "SCAN event_log") || strings.Contains(plan, "SCAN plan_versions") {
				t.Errorf("the plan sorts or scans a table:\n%s", plan)
			}
		})
	}
}

// TestEventLogBackfill: migration 0007 logs every plan version stored
// before it, in the order they were written (ties by id, then version),
// stamped with their time of writing; the next write's events follow.
func TestEventLogBackfill(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cpis.db")
	s := openAt(t, path)
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	nhs := testNHSNumbers(3)
	var versions []cpis.Plan
	for i, n := range nhs {
		p := testPlan(n, at.Add(time.Duration(len(nhs)-i)*time.Minute)) // written in reverse order
		versions = append(versions, createPlan(t, s, p))
	}
	tie := testPlan(nhs[0], versions[0].LastUpdated) // as late as the first
	tie.Type = cpis.CLA
	versions = append(versions, createPlan(t, s, tie))
	v2 := versions[2]
	v2.Version, v2.End = 2, cpis.MustDate("2025-11-30") // written as late as the first too
	v2.LastUpdated = versions[0].LastUpdated
	if err := putVersion(t, s, v2); err != nil {
		t.Fatal(err)
	}
	versions = append(versions, v2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to the schema before the log, with the plans still stored.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.ExecContext(ctx, `DROP TABLE discrepancies; DROP TABLE subscription_event; DROP TABLE subscriptions; DROP TABLE event_log; DROP TABLE event_head; DELETE FROM schema_migrations WHERE version >= 7`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	defer s.Close()

	slices.SortFunc(versions, func(a, b cpis.Plan) int {
		if c := a.LastUpdated.Compare(b.LastUpdated); c != 0 {
			return c
		}
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	later := createPlan(t, s, testPlan(testNHSNumbers(4)[3], at)) // its writer's time is before the newest version's
	var want []store.Event
	for i, p := range append(versions, later) {
		stamp := p.LastUpdated
		if p.ID == later.ID {
			stamp = versions[len(versions)-1].LastUpdated.Add(time.Microsecond)
		}
		want = append(want, store.Event{Position: int64(i + 1), Stamp: stamp, Kind: store.PlanChanged,
			LACode: p.LA.Code, NHSNumber: p.NHSNumber, Plan: p})
	}
	page, err := s.Events(ctx, store.EventQuery{Order: store.OldestFirst, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, page.Events); diff != "" {
		t.Errorf("the log after the migration (-want +got):\n%s", diff)
	}
}

// putVersion stores p, a version after the first, in a write transaction
// of its LA.
func putVersion(t *testing.T, s *Store, p cpis.Plan) error {
	ctx := t.Context()
	tx, err := s.BeginWrite(ctx, p.LA.Code)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := tx.Put(ctx, []store.Version{{Plan: p}}, nil); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// TestDeleteEventsInChunks: retention removes what it should however many
// chunks it takes, counting them all.
func TestDeleteEventsInChunks(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	defer s.Close()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, n := range testNHSNumbers(7) {
		createPlan(t, s, testPlan(n, at.Add(time.Duration(i)*time.Minute)))
	}
	// 2+2+1, then two full chunks and an empty one.
	for _, tt := range []struct{ minutes, chunk, want int64 }{{5, 2, 5}, {6, 1, 1}, {6, 3, 0}} {
		n, err := s.deleteEventsBefore(ctx, at.Add(time.Duration(tt.minutes)*time.Minute), tt.chunk)
		if err != nil || n != tt.want {
			t.Errorf("deleteEventsBefore(%d minutes, chunks of %d) = %d, %v; want %d", tt.minutes, tt.chunk, n, err, tt.want)
		}
	}
	page, err := s.Events(ctx, store.EventQuery{Order: store.OldestFirst, Limit: 10})
	if err != nil || len(page.Events) != 1 || !page.Events[0].Stamp.Equal(at.Add(6*time.Minute)) {
		t.Errorf("Events after retention = %+v, %v; want the last one", page.Events, err)
	}
}

// TestPlanEventsInChunks: a transaction logging more versions than one
// insert carries logs each once, in order, at consecutive positions.
func TestPlanEventsInChunks(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	defer s.Close()
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var plans []cpis.Plan
	for i, n := range testNHSNumbers(eventChunk + 1) {
		plans = append(plans, testPlan(n, at.Add(time.Duration(i)*time.Microsecond)))
	}
	if err := s.ImportPlans(ctx, plans); err != nil {
		t.Fatal(err)
	}
	q := store.EventQuery{Order: store.OldestFirst, Limit: 1000}
	var got []store.Event
	for {
		page, err := s.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Events...)
		if !page.More || len(got) > len(plans) {
			break
		}
		q.After = store.EventKeyOf(page.Events[len(page.Events)-1])
	}
	if len(got) != len(plans) {
		t.Fatalf("the log holds %d events, want %d", len(got), len(plans))
	}
	for i, e := range got {
		if e.Position != int64(i+1) || e.Plan.ID != plans[i].ID || !e.Stamp.Equal(plans[len(plans)-1].LastUpdated) {
			t.Fatalf("event %d: position %d, plan %s, stamp %v; want position %d, plan %s, stamp %v", i, e.Position, e.Plan.ID, e.Stamp,
				i+1, plans[i].ID, plans[len(plans)-1].LastUpdated)
		}
	}
}
