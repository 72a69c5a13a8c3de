package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// lifeStep is one instant of a server's life: health users read and search
// the plan then, and see it with status.
type lifeStep struct {
	at     time.Time
	status string
}

// lifeCase is a plan written at the first step's instant and read at each.
type lifeCase struct {
	name       string
	start, end string // the plan's period
	steps      []lifeStep
}

// utcAt is an instant given in UTC, to the second.
func utcAt(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// lifeCases are the instants where a day, a month or a year ends in London
// but not in UTC, or in both, or where London's clock changes. Partitions
// are UTC months, the SOP's days are London days: the two disagree for an
// hour at the end of every summer-time month.
var lifeCases = []lifeCase{
	{"the last second of June in summer time", "2026-01-01", "2026-06-30", []lifeStep{
		{utcAt(2026, time.June, 30, 22, 59, 59), "active"},  // 23:59:59 BST, 30 June
		{utcAt(2026, time.June, 30, 23, 0, 0), "inactive"},  // 00:00 BST, 1 July; still June in UTC
		{utcAt(2026, time.June, 30, 23, 30, 0), "inactive"}, // 00:30 BST, 1 July
		{utcAt(2026, time.July, 1, 0, 0, 0), "inactive"},    // July in UTC too
	}},
	{"the last second of the year and 1 January", "2027-01-01", "2027-12-31", []lifeStep{
		{utcAt(2026, time.December, 31, 23, 59, 59), "inactive"}, // not started yet
		{utcAt(2027, time.January, 1, 0, 0, 0), "active"},
	}},
	{"29 February", "2027-03-01", "2028-02-29", []lifeStep{
		{utcAt(2028, time.February, 29, 0, 0, 0), "active"},
		{utcAt(2028, time.February, 29, 23, 59, 59), "active"},
		{utcAt(2028, time.March, 1, 0, 0, 0), "inactive"},
	}},
	{"summer time begins", "2026-03-28", "2027-03-28", []lifeStep{
		{utcAt(2027, time.March, 28, 0, 59, 59), "active"},  // 00:59:59 GMT
		{utcAt(2027, time.March, 28, 1, 0, 0), "active"},    // 02:00:00 BST
		{utcAt(2027, time.March, 28, 22, 59, 59), "active"}, // 23:59:59 BST: a 23-hour day
		{utcAt(2027, time.March, 28, 23, 0, 0), "inactive"}, // 00:00 BST, 29 March
	}},
	{"summer time ends", "2026-10-31", "2027-10-31", []lifeStep{
		{utcAt(2027, time.October, 31, 0, 59, 59), "active"},  // 01:59:59 BST
		{utcAt(2027, time.October, 31, 1, 0, 0), "active"},    // 01:00:00 GMT, the same hour again
		{utcAt(2027, time.October, 31, 23, 59, 59), "active"}, // 23:59:59 GMT: a 25-hour day
		{utcAt(2027, time.November, 1, 0, 0, 0), "inactive"},  // November in London and in UTC
	}},
}

// TestLifeAtTheEdgesOfTime runs a server's life at instants where dates
// turn, on both stores: it starts, runs its upkeep at the instant, an LA
// writes a plan, health users read and search it at each step and see the
// status of that London day, and the access history shows those reads at
// the instants they happened. On PostgreSQL every audit record must sit in
// the partition of its UTC month, none in the default partition.
func TestLifeAtTheEdgesOfTime(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			for _, lc := range lifeCases {
				t.Run(lc.name, func(t *testing.T) {
					ts := newTestServer(t, b.db(t))
					live(t, ts, lc)
					if ts.cfg.DatabaseURL != "" {
						checkAuditPartitions(t, ts.cfg.DatabaseURL)
					}
				})
			}
		})
	}
}

// live moves ts through lc's steps.
func live(t *testing.T, ts *testServer, lc lifeCase) {
	t.Helper()
	flag := edit(t, example(t, "flag-cpp.json"), func(m map[string]any) {
		m["period"] = map[string]any{"start": lc.start, "end": lc.end}
	})
	nhs := subjectNHS(t, flag)
	var id string
	for i, step := range lc.steps {
		ts.setClock(step.at)
		if err := ts.srv.upkeep(t.Context()); err != nil {
			t.Fatalf("upkeep at %v: %v", step.at, err)
		}
		if i == 0 {
			id = ts.create(la, flag)
		}
		read := ts.as("ed-clinician", "GET", "/Flag/"+id, nil)
		mustStatus(t, read, http.StatusOK)
		if got := read.JSON(t)["status"]; got != step.status {
			t.Errorf("read at %v: status %v, want %s", step.at, got, step.status)
		}
		found := entries(t, ts.as("community-nurse", "GET", "/Flag?patient="+nhs, nil), "Flag")
		if len(found) != 1 || found[0]["status"] != step.status {
			t.Errorf("search at %v: %d plans (%v), want one, %s", step.at, len(found), found, step.status)
		}
	}
	var want []time.Time // two accesses, the read and the search, at each step, newest first
	for _, step := range slices.Backward(lc.steps) {
		want = append(want, step.at, step.at)
	}
	hist := ts.as("community-nurse", "GET", "/AuditEvent?patient="+nhs, nil)
	mustStatus(t, hist, http.StatusOK)
	var got []time.Time
	for _, e := range entries(t, hist, "AuditEvent") {
		at, err := time.Parse(time.RFC3339Nano, e["recorded"].(string))
		if err != nil {
			t.Fatalf("recorded: %v", err)
		}
		got = append(got, at)
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("the access history shows accesses at\n%v\nwant\n%v", got, want)
	}
}

// checkAuditPartitions fails the test unless every audit record of the
// database at url sits in the partition of its UTC month.
func checkAuditPartitions(t *testing.T, url string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT tableoid::regclass::text, recorded FROM audit_events ORDER BY recorded`)
	if err != nil {
		t.Fatal(err)
	}
	type placed struct {
		Table    string
		Recorded time.Time
	}
	all, err := pgx.CollectRows(rows, pgx.RowToStructByPos[placed])
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no audit records in PostgreSQL")
	}
	for _, r := range all {
		u := r.Recorded.UTC()
		if want := fmt.Sprintf("audit_events_y%04dm%02d", u.Year(), int(u.Month())); r.Table != want {
			t.Errorf("the record of %v is in %s, want %s", u, r.Table, want)
		}
	}
}

// TestStartMakesPartitionsOnItsClock starts a server on a database migrated
// months before its clock: the partitions of the server's month and the
// months after exist when start returns, before the first request, so its
// first records never wait in the default partition.
func TestStartMakesPartitionsOnItsClock(t *testing.T) {
	url := pgtest.MigratedURLAt(t, utcAt(2026, time.January, 15, 12, 0, 0))
	ts := newTestServer(t, func(c *Config) { c.DatabaseURL = url })
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"audit_events_y2026m11", "audit_events_y2026m12", "audit_events_y2027m01", "audit_events_y2027m02"} {
		if !slices.Contains(parts, want) { // startDay is 22 November 2026
			t.Errorf("no %s after start; partitions: %v", want, parts)
		}
	}
	mustStatus(t, ts.as("ed-clinician", "GET", "/Flag/"+ts.create(la, example(t, "flag-cpp.json")), nil), http.StatusOK)
	checkAuditPartitions(t, url)
}
