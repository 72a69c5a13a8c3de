package postgres_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// planNode is a node of EXPLAIN (FORMAT JSON)'s plan tree; the actual
// figures are there with ANALYZE.
type planNode struct {
	NodeType     string  `json:"Node Type"`
	RelationName string  `json:"Relation Name"`
	IndexName    string  `json:"Index Name"`
	ActualRows   float64 `json:"Actual Rows"`
	ActualLoops  float64 `json:"Actual Loops"`
	// RowsRemovedByFilter is per loop, as ActualRows is.
	RowsRemovedByFilter float64    `json:"Rows Removed by Filter"`
	Plans               []planNode `json:"Plans"`
}

// walk calls f on n and every node below it.
func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// TestAccessHistoryUsesIndex checks, with EXPLAIN ANALYZE, that the
// access-history query the store runs reads every audit partition through
// its part of audit_events_access_idx, in index order, checks the plans of
// each record by plans_pkey, and stops once it has the page: no sequential
// scan and no sort, whatever the number of records. Months of records are
// loaded and analyzed first, so that the planner works from real
// statistics; both the custom plan (one NHS number) and the generic plan of
// a prepared statement (which pgx's statement cache reuses) are checked,
// for a health reader and for an LA, to which every other access of the
// child returned only another LA's plan.
func TestAccessHistoryUsesIndex(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	start := time.Date(2030, time.January, 1, 0, 0, 0, 0, time.UTC)
	if err := s.EnsureAuditPartitions(ctx, start, 4); err != nil {
		t.Fatal(err)
	}
	loadAccesses(t, s, start, 5, 6_000)
	// PREPARE and EXECUTE must share a session.
	c, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for _, sql := range []string{"ANALYZE audit_events, plans", "PREPARE access_history AS " + postgres.AccessHistoryQuery} {
		if _, err := c.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	indexes := childIndexes(t, s, "audit_events_access_idx")
	parts := len(partitions(t, s))
	const limit = 25
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, reader := range []struct{ name, laCode string }{{"health", ""}, {"LA", cpis.TrustDirectory()[0].Code}} {
			t.Run(mode+"/"+reader.name, func(t *testing.T) {
				if _, err := c.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
					t.Fatal(err)
				}
				var out []byte
				q := `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE access_history('` + string(testNHS(7)) + `', '` + reader.laCode + `', ` + strconv.Itoa(limit) + `)`
				if err := c.QueryRow(ctx, q).Scan(&out); err != nil {
					t.Fatal(err)
				}
				checkPlan(t, out, indexes, parts)
				// Every other access returned the reading LA's plan: it
				// reads twice the page at most, and a row of each partition
				// the merge looked at first.
				if read, most := auditRowsRead(t, out), float64(2*limit+parts); read > most {
					t.Errorf("the query read %v audit records for a page of %d, want at most %v", read, limit, most)
				}
			})
		}
	}
}

// checkPlan fails unless every scan of an audit partition in the plan is
// an index scan on one of indexes, scans parts relations in all, every
// read of plans is by its primary key, and nothing sorts.
func checkPlan(t *testing.T, explain []byte, indexes map[string]bool, parts int) {
	t.Helper()
	scanned := map[string]bool{}
	explained(t, explain).walk(func(n planNode) {
		if n.NodeType == "Sort" || n.NodeType == "Incremental Sort" {
			t.Errorf("the plan sorts: %s", n.NodeType)
		}
		if n.RelationName == "plans" && ((n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan") || n.IndexName != "plans_pkey") {
			t.Errorf("plans is read by %s %s, want an index scan on plans_pkey", n.NodeType, n.IndexName)
		}
		if !strings.HasPrefix(n.RelationName, "audit_events") {
			return
		}
		scanned[n.RelationName] = true
		if (n.NodeType != "Index Scan" && n.NodeType != "Index Only Scan") || !indexes[n.IndexName] {
			t.Errorf("%s is read by %s %s, want an index scan on audit_events_access_idx", n.RelationName, n.NodeType, n.IndexName)
		}
	})
	if len(scanned) != parts {
		t.Errorf("the plan scans %d audit partitions, want all %d", len(scanned), parts)
	}
	if t.Failed() {
		t.Logf("plan: %s", explain)
	}
}

// explained is the root of an EXPLAIN (FORMAT JSON) plan.
func explained(t *testing.T, explain []byte) planNode {
	t.Helper()
	var plans []struct{ Plan planNode }
	if err := json.Unmarshal(explain, &plans); err != nil || len(plans) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", explain, err)
	}
	return plans[0].Plan
}

// auditRowsRead is how many rows the scans of audit partitions in an
// EXPLAIN ANALYZE plan fetched, kept or filtered out.
func auditRowsRead(t *testing.T, explain []byte) float64 {
	t.Helper()
	var read float64
	explained(t, explain).walk(func(n planNode) {
		if strings.HasPrefix(n.RelationName, "audit_events") {
			read += (n.ActualRows + n.RowsRemovedByFilter) * n.ActualLoops
		}
	})
	return read
}

// loadAccesses stores two plans, one of each of the first two Trust LAs, on
// each of 200 NHS numbers (the plans pa-N and pb-N of testNHS(N)), and
// perMonth records a month for months months from start, spread over the
// NHS numbers, a third of them not accesses. The accesses to each NHS
// number returned by turns both its plans and the second LA's only. The
// rows are made by the server: the test is about their shape, not how they
// came.
func loadAccesses(t *testing.T, s *postgres.Store, start time.Time, months, perMonth int) {
	t.Helper()
	nhs := make([]string, 200)
	var plans []cpis.Plan
	for i := range nhs {
		nhs[i] = string(testNHS(i))
		for j, id := range []string{"pa-", "pb-"} {
			p := plan(testNHS(i))
			p.ID, p.LA = id+strconv.Itoa(i), cpis.TrustDirectory()[j].LocalAuthority
			plans = append(plans, p)
		}
	}
	if err := s.ImportPlans(t.Context(), plans); err != nil {
		t.Fatal(err)
	}
	end := start.AddDate(0, months, 0)
	n := months * perMonth
	_, err := s.Pool().Exec(t.Context(), `INSERT INTO audit_events (`+strings.Join(postgres.AuditColumns, ", ")+`)
		SELECT gen_random_uuid()::text, $1::timestamptz + ($2::timestamptz - $1::timestamptz) * i / $3, 'E', 'search-type', 0,
			'health-user', '55500000' || (i % 50), 'Test Practitioner', '555021935107', 'S8001:G8005:R8000', 'Role',
			'RXX0' || (i % 7), 'Test Hospital', '{B0107}', ($4::text[])[1 + i % 200],
			CASE WHEN i / 200 % 2 = 0 THEN ARRAY['pa-' || i % 200, 'pb-' || i % 200] ELSE ARRAY['pb-' || i % 200] END,
			'/Flag', gen_random_uuid()::text, i % 3 <> 0, true, '{ZLA01}', 'https://replica-1.cpis.example.org',
			gen_random_uuid()::text
		FROM generate_series(0, $3 - 1) AS i`, start, end, n, nhs)
	if err != nil {
		t.Fatal(err)
	}
}

// childIndexes returns the names of the partitions' parts of a partitioned index.
func childIndexes(t *testing.T, s *postgres.Store, parent string) map[string]bool {
	t.Helper()
	rows, err := s.Pool().Query(t.Context(), `SELECT c.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, parent)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names[n] = true
	}
	if len(names) == 0 {
		t.Fatalf("%s has no parts", parent)
	}
	return names
}

// TestSnapshotPageReadsThePage checks, with EXPLAIN ANALYZE, that a page of
// an LA's plans as of an earlier instant (page 2 onwards of a search) reads
// the page from plans_la_code_idx in order and stops there, and finds the
// versions of the plans changed since by primary key: it reads rows for the
// page and the changes, not for the LA's whole register. The register is
// 12,000 plans of six LAs, analyzed, with plans changed after the instant.
func TestSnapshotPageReadsThePage(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	base := time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC)
	las := cpis.TrustDirectory()
	plans := make([]cpis.Plan, 12_000)
	for i := range plans {
		plans[i] = plan(testNHS(i % 2_000))
		plans[i].LA, plans[i].LastUpdated = las[i%len(las)].LocalAuthority, base.Add(time.Duration(i)*time.Second)
	}
	if err := s.ImportPlans(ctx, plans); err != nil {
		t.Fatal(err)
	}
	asOf := base.Add(time.Duration(len(plans)) * time.Second)
	const changed = 12 // of the first LA's plans, changed since asOf
	for i := range changed {
		p := plans[i*len(las)*100]
		p.Version, p.LastUpdated = 2, asOf.Add(time.Duration(i+1)*time.Minute)
		if err := putPlans(ctx, s, p.LA.Code, []store.Version{{Plan: p}}, writeRec(p, "")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE plans, plan_versions"); err != nil {
		t.Fatal(err)
	}
	const limit = 20
	for _, order := range []store.Order{store.NewestFirst, store.OldestFirst} {
		t.Run(map[store.Order]string{store.NewestFirst: "newest first", store.OldestFirst: "oldest first"}[order], func(t *testing.T) {
			// Page 3: after the key of plan 2*limit of the LA in this order.
			after := plans[len(plans)-len(las)*2*limit]
			if order == store.OldestFirst {
				after = plans[len(las)*2*limit]
			}
			q := store.PlanQuery{LACode: las[0].Code, Order: order, Limit: limit, AsOf: asOf, After: store.KeyOf(after)}
			sql, args, err := postgres.PlanSearchSQL(q)
			if err != nil {
				t.Fatal(err)
			}
			var out []byte
			if err := s.Pool().QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&out); err != nil {
				t.Fatal(err)
			}
			read := rowsRead(t, out)
			if read["plans"] > limit+1+changed || read["plan_versions"] > changed {
				t.Errorf("the page read %v rows of plans and %v of plan_versions, want at most %d and %d",
					read["plans"], read["plan_versions"], limit+1+changed, changed)
				t.Logf("plan: %s", out)
			}
		})
	}
}

// rowsRead sums, per table, the rows that the scans of an EXPLAIN ANALYZE
// plan returned, and fails on a sequential scan.
func rowsRead(t *testing.T, explain []byte) map[string]float64 {
	t.Helper()
	read := map[string]float64{}
	explained(t, explain).walk(func(n planNode) {
		if n.RelationName == "" || n.NodeType == "Bitmap Index Scan" {
			return
		}
		if n.NodeType == "Seq Scan" {
			t.Errorf("%s is read by a sequential scan", n.RelationName)
		}
		read[n.RelationName] += n.ActualRows * n.ActualLoops
	})
	return read
}

// TestWriteLookupsUseIndexes checks, with EXPLAIN ANALYZE, that the
// statements of a write transaction by a thousand keys probe an index for
// each key and read about a row a key, on a table never analyzed, as during
// a bulk upload that grew it inside its own transaction: ChildPlans by
// plans_nhs_number_idx, ByReference by plans_la_reference_idx, ByDigest by
// plans_la_digest_idx, and the removal of the current rows that a chunk of
// new versions replaces by plans_pkey. Each runs with the settings of a write transaction, as a
// custom and as a generic plan (which pgx's statement cache reuses).
func TestWriteLookupsUseIndexes(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	las := cpis.TrustDirectory()
	plans := make([]cpis.Plan, 60_000)
	for i := range plans {
		plans[i] = plan(testNHS(i))
		plans[i].LA, plans[i].Reference = las[i%2].LocalAuthority, "R-"+strconv.Itoa(i)
	}
	if err := s.ImportPlans(ctx, plans); err != nil {
		t.Fatal(err)
	}
	// Every plan as if an import line wrote it; both LAs' lines alike, so
	// that only the LA code tells their digests apart.
	if _, err := s.Pool().Exec(ctx, `UPDATE plans SET source_digest = encode(sha256(convert_to(la_reference, 'UTF8')), 'hex')`); err != nil {
		t.Fatal(err)
	}
	const keys = 1_000
	var ids, nhs, refs, digests []string
	for i := range keys {
		p := plans[i*20] // the first LA's
		ids, nhs, refs = append(ids, p.ID), append(nhs, string(p.NHSNumber)), append(refs, p.Reference)
		sum := sha256.Sum256([]byte(p.Reference))
		digests = append(digests, hex.EncodeToString(sum[:]))
	}
	array := func(l []string) string { return "'{" + strings.Join(l, ",") + "}'" }
	la := "'" + las[0].Code + "'"
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // the removal removes
	for _, sql := range []string{postgres.WriteSettings, "PREPARE child_plans AS " + postgres.TxChildPlans,
		"PREPARE by_reference AS " + postgres.TxByReference, "PREPARE by_digest AS " + postgres.TxByDigest,
		"PREPARE remove AS " + postgres.TxRemove} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		for _, tt := range []struct {
			name, execute, index string
			perKey               float64 // rows of plans scanned for each key
		}{
			{"ChildPlans", "child_plans(" + array(nhs) + ", " + la + ")", "plans_nhs_number_idx", 1},
			{"ByReference", "by_reference(" + la + ", " + array(refs) + ")", "plans_la_reference_idx", 1},
			{"ByDigest", "by_digest(" + la + ", " + array(digests) + ")", "plans_la_digest_idx", 1},
			{"the removal of current rows", "remove(" + array(ids) + ")", "plans_pkey", 2}, // found, then deleted
		} {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				var out []byte
				if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = "+mode+"; SAVEPOINT explain"); err != nil {
					t.Fatal(err)
				}
				if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE "+tt.execute).Scan(&out); err != nil {
					t.Fatal(err)
				}
				if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT explain"); err != nil {
					t.Fatal(err)
				}
				wantProbes(t, out, tt.index, keys*tt.perKey)
			})
		}
	}
}

// wantProbes fails unless the plan reads plans through no sequential or
// bitmap scan and no index but index, and at most most rows of it
// (returned or filtered out).
func wantProbes(t *testing.T, explain []byte, index string, most float64) {
	t.Helper()
	read := 0.0
	explained(t, explain).walk(func(n planNode) {
		if n.RelationName != "plans" || !strings.HasSuffix(n.NodeType, " Scan") {
			return
		}
		if n.NodeType == "Seq Scan" || n.NodeType == "Bitmap Heap Scan" {
			t.Errorf("plans is read by a %s", n.NodeType)
		}
		if n.IndexName != "" && n.IndexName != index {
			t.Errorf("plans is read by a %s on %s, want %s", n.NodeType, n.IndexName, index)
		}
		read += (n.ActualRows + n.RowsRemovedByFilter) * n.ActualLoops
	})
	if read > most {
		t.Errorf("the statement read %v rows of plans, want at most %v", read, most)
	}
	if t.Failed() {
		t.Logf("plan: %s", explain)
	}
}

// TestEventPagesReadThePage checks, with EXPLAIN ANALYZE, that a page of
// the event log reads the page through the index that serves its query,
// in order, without sorting, and stops there; that the plan version of
// each plan event is found by plan_versions' primary key; and that the
// look-ups of ASNs (by id, of a child, and AppendAudit's coalescing check)
// read only through the partial indexes on ASNs. The log holds 45,000
// plan events of 150 LAs and 45,000 ASNs, one a second, analyzed. Each
// query runs as a custom and as a generic plan (which pgx's statement
// cache reuses).
func TestEventPagesReadThePage(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	las := make([]cpis.LocalAuthority, 150)
	codes := make([]string, len(las))
	for i := range las {
		las[i] = cpis.LocalAuthority{Code: fmt.Sprintf("ZL%03d", i), Name: fmt.Sprintf("Test LA %d", i)}
		codes[i] = las[i].Code
	}
	plans := make([]cpis.Plan, 45_000)
	for i := range plans {
		plans[i] = plan(testNHS(i % 3_000))
		plans[i].LA = las[i%len(las)]
	}
	if err := s.ImportPlans(ctx, plans); err != nil {
		t.Fatal(err)
	}
	// ASNs after them, to each LA, from seven organisations; then every
	// event a second apart. The rows are made here: the test is about their
	// shape, not how they came.
	base := time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)
	for _, st := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO event_log (position, stamp, kind, la_code, nhs_number, asn_id, audit_id,
			sent, plan_ids, org_code, org_name, user_name, role_name)
		SELECT 45000 + i, $1, 'asn', ($2::text[])[1 + i % 150], ($3::text[])[1 + i % 3000], gen_random_uuid()::text,
			gen_random_uuid()::text, $1, '{}', 'RXX0' || i % 7, 'Test Hospital', 'Test Practitioner', 'Role'
		FROM generate_series(1, 45000) AS i`, []any{base, codes, nhsList(3_000)}},
		{`UPDATE event_log SET stamp = $1::timestamptz + position * interval '1 second'`, []any{base}},
		{`UPDATE event_log SET sent = stamp WHERE kind = 'asn'`, nil},
		{`UPDATE event_head SET position = 90000, stamp = $1::timestamptz + 90000 * interval '1 second'`, []any{base}},
		{`ANALYZE event_log, plan_versions`, nil},
	} {
		if _, err := s.Pool().Exec(ctx, st.sql, st.args...); err != nil {
			t.Fatalf("%s: %v", st.sql, err)
		}
	}
	at := func(position int) time.Time { return base.Add(time.Duration(position) * time.Second) }
	var asnID, asnLA string
	if err := s.Pool().QueryRow(ctx, `SELECT asn_id, la_code FROM event_log WHERE position = 50000`).Scan(&asnID, &asnLA); err != nil {
		t.Fatal(err)
	}
	const limit = 50
	old, nhs := store.OldestFirst, testNHS(7)
	tests := []struct {
		name  string
		q     store.EventQuery
		index string  // the one index event_log is read through
		most  float64 // rows of event_log read, at most
		sorts bool    // a sort of the few rows read is allowed
	}{
		{"an LA's plan changes, from a key", store.EventQuery{Kind: store.PlanChanged, LACode: codes[0], Order: old,
			After: &store.EventKey{Stamp: at(15_001), Position: 15_001}}, "event_log_la_idx", limit + 1, false},
		{"an LA's ASNs, newest first", store.EventQuery{Kind: store.ASNSent, LACode: codes[1]}, "event_log_la_idx", limit + 1, false},
		{"an LA's ASNs in a period, newest first, from a key", store.EventQuery{Kind: store.ASNSent, LACode: codes[1],
			From: at(50_000), Before: at(89_000), After: &store.EventKey{Stamp: at(88_001), Position: 88_001}},
			"event_log_la_idx", limit + 1, false},
		// 45,000 ASNs to 3,000 children: each child's are 15, all to one LA.
		{"an LA's ASNs about a child", store.EventQuery{Kind: store.ASNSent, LACode: codes[7], NHSNumber: nhs},
			"event_log_asn_coalesce_idx", 15, true},
		{"an ASN by id", store.EventQuery{Kind: store.ASNSent, LACode: asnLA, ASNID: asnID}, "event_log_asn_idx", 1, true},
		{"the whole log, from a key", store.EventQuery{Order: old, After: &store.EventKey{Stamp: at(20_000), Position: 20_000}},
			"event_log_stamp_idx", limit + 1, false},
	}
	c, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	for i, tt := range tests {
		if tt.q.Limit == 0 {
			tt.q.Limit = limit
		}
		sql, args := postgres.EventsSQL(tt.q)
		name := fmt.Sprintf("events_%d", i)
		if _, err := c.Exec(ctx, "PREPARE "+name+" AS "+sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				if _, err := c.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
					t.Fatal(err)
				}
				var out []byte
				if err := c.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE "+name+"("+literals(t, args)+")").Scan(&out); err != nil {
					t.Fatal(err)
				}
				wantEventScans(t, out, tt.index, tt.most, tt.sorts)
			})
		}
	}
	// AppendAudit runs the coalescing check with its generic plan, but the
	// custom plan is checked too.
	args := []any{[]string{uuid.NewString()}, []string{uuid.NewString()}, []time.Time{at(90_001)}, []string{string(nhs)},
		[]string{codes[7]}, []int32{1}, []int32{0}, []string{"RXX01"}, []string{"Test Hospital"},
		[]string{"Test Practitioner"}, []string{"Role"}, []int64{cpis.DefaultASNCoalesceWindow.Microseconds()}, []string{}}
	if _, err := c.Exec(ctx, "PREPARE append_asns AS "+postgres.AppendASNs); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		t.Run(mode+"/the coalescing check", func(t *testing.T) {
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx) // the statement logs an ASN
			if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = "+mode); err != nil {
				t.Fatal(err)
			}
			var out []byte
			if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE append_asns("+literals(t, args)+")").Scan(&out); err != nil {
				t.Fatal(err)
			}
			probed := false
			explained(t, out).walk(func(n planNode) {
				if n.RelationName != "event_log" || n.NodeType == "ModifyTable" {
					return
				}
				probed = true
				if n.IndexName != "event_log_asn_coalesce_idx" {
					t.Errorf("event_log is read by %s %s, want an index scan on event_log_asn_coalesce_idx", n.NodeType, n.IndexName)
				}
			})
			if !probed {
				t.Error("the plan does not read event_log")
			}
			if t.Failed() {
				t.Logf("plan: %s", out)
			}
		})
	}
}

// nhsList is the first n test NHS numbers.
func nhsList(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(testNHS(i))
	}
	return out
}

// literals writes query arguments as SQL literals, for EXECUTE.
func literals(t *testing.T, args []any) string {
	t.Helper()
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = literal(t, a)
	}
	return strings.Join(out, ", ")
}

// literal writes one argument, a string, time, integer or a slice of one
// of them, as an SQL literal.
func literal(t *testing.T, a any) string {
	t.Helper()
	array := func(typ string, n int, elem func(i int) string) string {
		elems := make([]string, n)
		for i := range elems {
			elems[i] = elem(i)
		}
		return "ARRAY[" + strings.Join(elems, ", ") + "]::" + typ + "[]"
	}
	switch v := a.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case time.Time:
		return "'" + v.Format(time.RFC3339Nano) + "'::timestamptz"
	case int, int32, int64:
		return fmt.Sprint(v)
	case []string:
		return array("text", len(v), func(i int) string { return literal(t, v[i]) })
	case []time.Time:
		return array("timestamptz", len(v), func(i int) string { return literal(t, v[i]) })
	case []int32:
		return array("int", len(v), func(i int) string { return literal(t, v[i]) })
	case []int64:
		return array("bigint", len(v), func(i int) string { return literal(t, v[i]) })
	}
	t.Fatalf("no literal for %T", a)
	return ""
}

// wantEventScans fails unless the plan reads event_log through index only,
// at most most rows of it, and plan_versions by its primary key, and sorts
// nothing unless sorts.
func wantEventScans(t *testing.T, explain []byte, index string, most float64, sorts bool) {
	t.Helper()
	read := 0.0
	explained(t, explain).walk(func(n planNode) {
		if !sorts && (n.NodeType == "Sort" || n.NodeType == "Incremental Sort") {
			t.Errorf("the plan sorts: %s", n.NodeType)
		}
		switch n.RelationName {
		case "event_log":
			if n.IndexName != index {
				t.Errorf("event_log is read by %s %s, want an index scan on %s", n.NodeType, n.IndexName, index)
			}
			read += (n.ActualRows + n.RowsRemovedByFilter) * n.ActualLoops
		case "plan_versions":
			if n.IndexName != "plan_versions_pkey" {
				t.Errorf("plan_versions is read by %s %s, want an index scan on plan_versions_pkey", n.NodeType, n.IndexName)
			}
		}
	})
	if read > most {
		t.Errorf("the query read %v rows of event_log, want at most %v", read, most)
	}
	if t.Failed() {
		t.Logf("plan: %s", explain)
	}
}
