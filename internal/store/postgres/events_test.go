package postgres_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
	"github.com/cpis-fhir/cpis/migrations"
)

// withASN returns r sending an ASN to laCode, with the default window.
func withASN(r cpis.AuditRecord, laCode string) cpis.AuditRecord {
	r.ASNs = append(r.ASNs, cpis.ASN{ID: uuid.NewString(), AuditID: r.ID, Sent: r.Recorded, NHSNumber: r.Patient,
		LACode: laCode, PlanIDs: r.PlanIDs, OrgCode: r.Actor.OrgCode, OrgName: r.Actor.OrgName,
		UserName: r.Actor.Name, RoleName: r.Actor.RoleName, CoalesceWindow: cpis.DefaultASNCoalesceWindow})
	return r
}

// wholeLog reads the event log, oldest first.
func wholeLog(t *testing.T, s store.Store) []store.Event {
	t.Helper()
	var log []store.Event
	q := store.EventQuery{Order: store.OldestFirst, Limit: 1000}
	for {
		page, err := s.Events(t.Context(), q)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		log = append(log, page.Events...)
		if !page.More {
			return log
		}
		q.After = store.EventKeyOf(page.Events[len(page.Events)-1])
	}
}

// TestAppendAuditWithASNsAllOrNone checks both ways AppendAudit stores
// records sending ASNs (a few in one pipeline, more by COPY first) fail
// whole: a record PostgreSQL refuses, or an ASN whose id is taken, leaves
// no record, no ASN and the log's head where it was; and the store goes
// on working.
func TestAppendAuditWithASNsAllOrNone(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	la := cpis.TrustDirectory()[0].Code
	first := withASN(record(testNHS(1), faultTime), la)
	if err := s.AppendAudit(ctx, []cpis.AuditRecord{first}); err != nil {
		t.Fatal(err)
	}
	n := 10
	batch := func(size int) []cpis.AuditRecord {
		recs := make([]cpis.AuditRecord, size)
		for i := range recs {
			n++
			recs[i] = withASN(record(testNHS(n), faultTime.Add(time.Duration(n)*time.Second)), la)
		}
		return recs
	}
	faults := []struct {
		name  string
		spoil func(*cpis.AuditRecord)
		kind  cpis.Kind
	}{
		{"a record the database refuses", func(r *cpis.AuditRecord) { r.Query = "no NUL\x00 in PostgreSQL text" }, cpis.Other},
		{"an ASN id already logged", func(r *cpis.AuditRecord) { r.ASNs[0].ID = first.ASNs[0].ID }, cpis.Conflict},
	}
	stored := 1
	for _, size := range []int{3, 40} {
		for _, f := range faults {
			t.Run(fmt.Sprintf("%d records, %s", size, f.name), func(t *testing.T) {
				recs := batch(size)
				f.spoil(&recs[size-1])
				if err := s.AppendAudit(ctx, recs); cpis.KindOf(err) != f.kind {
					t.Fatalf("AppendAudit: %v, want %s", err, f.kind)
				}
				if got := countIn(t, s, "audit_events"); got != stored {
					t.Errorf("the audit trail holds %d records, want %d", got, stored)
				}
				if log := wholeLog(t, s); len(log) != stored {
					t.Errorf("the log holds %d events, want %d", len(log), stored)
				}
				// The store works on, from the head as it was.
				good := batch(size)
				if err := s.AppendAudit(ctx, good); err != nil {
					t.Fatal(err)
				}
				log := wholeLog(t, s)
				stored += size
				if len(log) != stored || log[len(log)-1].Position != int64(stored) || log[len(log)-1].ASN.ID != good[size-1].ASNs[0].ID {
					t.Errorf("after a good batch the log holds %d events, the last at %d; want %d, the last the batch's last ASN",
						len(log), log[len(log)-1].Position, stored)
				}
			})
		}
	}
}

// TestMigrationLogsStoredVersions checks migration 0007 logs every plan
// version stored before it, ordered by when it was written (ties broken by
// plan id, then version), stamped then, and sets the head after them.
func TestMigrationLogsStoredVersions(t *testing.T) {
	url := pgtest.URL(t)
	conn := connect(t, url)
	all, err := migrations.List(migrations.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, conn, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
	for _, m := range all {
		if m.Version >= 7 {
			break
		}
		exec(t, conn, m.SQL)
		exec(t, conn, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
	}
	at := func(s int) time.Time { return faultTime.Add(time.Duration(s) * time.Second) }
	a, b, c := plan(testNHS(1)), plan(testNHS(2)), plan(testNHS(3))
	a.ID, b.ID, c.ID = "a", "b", "c"
	a.Version, b.Version, c.Version = 1, 1, 1
	a.LastUpdated, b.LastUpdated, c.LastUpdated = at(3), at(3), at(1)
	a2 := a
	a2.Version, a2.LastUpdated = 2, at(5)
	columns := "id, version, nhs_number, plan_type, start_date, end_date, la_code, la_name, emergency_phone, " +
		"office_phone, birth_date, entered_in_error, last_updated, la_reference, display_until"
	for _, p := range []cpis.Plan{b, a2, c, a} {
		exec(t, conn, `INSERT INTO plan_versions (`+columns+`) VALUES (`+params(15)+`)`, postgres.PlanArgs(p)...)
	}
	if _, err := postgres.Migrate(t.Context(), url, migrateAt); err != nil {
		t.Fatal(err)
	}
	s := open(t, url)
	defer s.Close()
	log := wholeLog(t, s)
	want := []cpis.Plan{c, a, b, a2}
	if len(log) != len(want) {
		t.Fatalf("the log holds %d events, want %d", len(log), len(want))
	}
	for i, p := range want {
		if e := log[i]; e.Position != int64(i+1) || !e.Stamp.Equal(p.LastUpdated) || planKey(e.Plan) != planKey(p) {
			t.Errorf("event %d: %s at %d, %v; want %s at %d, %v", i, planKey(e.Plan), e.Position, e.Stamp, planKey(p), i+1, p.LastUpdated)
		}
	}
	// The next write follows on, though written at an earlier time.
	d := plan(testNHS(4))
	d.Version, d.LastUpdated = 1, at(2)
	if err := putPlans(t.Context(), s, d.LA.Code, []store.Version{{Plan: d}}); err != nil {
		t.Fatal(err)
	}
	log = wholeLog(t, s)
	if last := log[len(log)-1]; last.Position != 5 || !last.Stamp.Equal(at(5).Add(time.Microsecond)) {
		t.Errorf("the next write's event is at %d, %v; want 5, %v", last.Position, last.Stamp, at(5).Add(time.Microsecond))
	}
}

// params returns "$1, ..., $n".
func params(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", i+1)
	}
	return strings.Join(p, ", ")
}

// TestDeleteEventsBeforeInBatches checks retention deletes more events
// than one of its transactions does, all of them before the cutoff and
// none after.
func TestDeleteEventsBeforeInBatches(t *testing.T) {
	s := open(t, pgtest.MigratedURL(t))
	defer s.Close()
	ctx := t.Context()
	const n = 25_000
	plans := make([]cpis.Plan, n)
	for i := range plans {
		plans[i] = plan(testNHS(i))
	}
	if err := s.ImportPlans(ctx, plans); err != nil {
		t.Fatal(err)
	}
	later := plan(testNHS(1))
	later.Version, later.LastUpdated = 1, plans[0].LastUpdated.Add(time.Hour)
	if err := putPlans(ctx, s, later.LA.Code, []store.Version{{Plan: later}}); err != nil {
		t.Fatal(err)
	}
	deleted, err := s.DeleteEventsBefore(ctx, later.LastUpdated)
	if err != nil || deleted != n {
		t.Fatalf("DeleteEventsBefore = %d, %v; want %d", deleted, err, n)
	}
	if log := wholeLog(t, s); len(log) != 1 || log[0].Plan.ID != later.ID {
		t.Errorf("the log holds %d events after retention, want the later write's only", len(log))
	}
}

// BenchmarkAppendAudit measures what ASNs add to an AppendAudit call. Each
// iteration appends the same size of batch twice, without ASNs (one COPY)
// and with each record sending one (one pipeline of the inserts and the
// ASNs' statements in a transaction), timing each: taken in
// turns, both meet the same load on the database. ASNs have the default
// window and children all different, so that every one is checked and
// logged. parallel runs 2 × GOMAXPROCS callers at once, which wait for
// each other on the log's lock when they send ASNs.
func BenchmarkAppendAudit(b *testing.B) {
	s := open(b, pgtest.MigratedURL(b), postgres.WithMaxConns(8))
	defer s.Close()
	la := cpis.TrustDirectory()[0].Code
	var n atomic.Int64
	batch := func(size int, asns bool) []cpis.AuditRecord {
		recs := make([]cpis.AuditRecord, size)
		for i := range recs {
			k := n.Add(1)
			recs[i] = record(testNHS(int(k%90_000)), faultTime.Add(time.Duration(k)*time.Millisecond))
			if asns {
				recs[i] = withASN(recs[i], la)
			}
		}
		return recs
	}
	appendTimed := func(b *testing.B, recs []cpis.AuditRecord) time.Duration {
		start := time.Now()
		if err := s.AppendAudit(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for _, size := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("records=%d", size), func(b *testing.B) {
			var plain, withASNs time.Duration
			for b.Loop() {
				plain += appendTimed(b, batch(size, false))
				withASNs += appendTimed(b, batch(size, true))
			}
			b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "plain-ns/op")
			b.ReportMetric(float64(withASNs.Nanoseconds())/float64(b.N), "asns-ns/op")
		})
	}
	for _, asns := range []bool{false, true} {
		b.Run(fmt.Sprintf("records=8/asns=%v/parallel", asns), func(b *testing.B) {
			b.SetParallelism(2)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.AppendAudit(b.Context(), batch(8, asns)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
