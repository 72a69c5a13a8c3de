package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// gatedAppender holds the first commit until gate is closed, so that the
// requests made meanwhile queue up and go into the next commit together. It
// remembers the size of every commit that failed.
type gatedAppender struct {
	Appender
	gate    chan struct{}
	entered chan int // the record count of each commit, as it starts

	mu     sync.Mutex
	calls  int
	failed []int
}

func (g *gatedAppender) AppendAudit(ctx context.Context, recs []cpis.AuditRecord) error {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.mu.Unlock()
	g.entered <- len(recs)
	if first {
		<-g.gate
	}
	err := g.Appender.AppendAudit(ctx, recs)
	if err != nil {
		g.mu.Lock()
		g.failed = append(g.failed, len(recs))
		g.mu.Unlock()
	}
	return err
}

// TestRecorderOnPostgresPoisonedRecord batches a request whose audit record
// PostgreSQL refuses (a query string holding a byte that is not UTF-8) with
// good ones: only that request fails, and none of its records is stored.
func TestRecorderOnPostgresPoisonedRecord(t *testing.T) {
	st, err := postgres.Open(t.Context(), pgtest.MigratedURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &gatedAppender{Appender: st, gate: make(chan struct{}), entered: make(chan int, 100)}
	r := newRecorder(t, g, Options{})

	const nhs, good = cpis.NHSNumber("9990276579"), 20
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC) // inside the migrated partitions
	first := record(t.Context(), r, pgAccess(nhs, at))
	<-g.entered // the writer is held: what follows queues up

	var done []<-chan error
	const poisoned = good / 2
	for i := range good + 1 {
		recs := []cpis.AuditRecord{pgAccess(nhs, at.Add(time.Duration(i+1)*time.Second))}
		if i == poisoned {
			bad := pgAccess(nhs, at.Add(time.Hour))
			bad.Query = fmt.Sprintf("/Flag?patient=%s&_format=\xff", nhs)
			recs = append(recs, bad)
		}
		done = append(done, record(t.Context(), r, recs...))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	close(g.gate)

	if err := result(t, first); err != nil {
		t.Fatalf("first: %v", err)
	}
	for i, d := range done {
		err := result(t, d)
		if i == poisoned {
			checkUnavailable(t, err, nil)
			continue
		}
		if err != nil {
			t.Errorf("request %d, batched with a poisoned record: %v", i, err)
		}
	}
	g.mu.Lock()
	failed := g.failed
	g.mu.Unlock()
	if fmt.Sprint(failed) != fmt.Sprint([]int{good + 2, 2}) {
		t.Errorf("failed commits carried %v records, want [%d 2]: the batch, then the poisoned request alone", failed, good+2)
	}
	stored, err := st.SearchAudit(t.Context(), store.AuditQuery{Patient: nhs, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != good+1 {
		t.Errorf("%d records stored, want %d: the first and one per good request", len(stored), good+1)
	}
	for _, rec := range stored {
		if rec.Recorded.Equal(at.Add((poisoned+1)*time.Second)) || rec.Recorded.Equal(at.Add(time.Hour)) {
			t.Errorf("a record of the refused request was stored: %v", rec.Recorded)
		}
	}
}

// pgAccess is a complete access record, as the api writes for a search.
func pgAccess(nhs cpis.NHSNumber, at time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID: uuid.NewString(), Recorded: at, Action: cpis.ActionRead, Interaction: "search-type",
		Actor: cpis.Actor{
			Kind: cpis.HealthUser, UserID: "555021935107", Name: "Test Practitioner", RoleCode: "S8001:G8005:R8000",
			OrgCode: "RX1", OrgName: "Test Trust", Activities: []string{cpis.ActivityScheduledView},
		},
		Patient: nhs, Query: fmt.Sprintf("/Flag?patient=%s", nhs), RequestID: uuid.NewString(), Access: true,
	}
}

// TestRecorderOnPostgresDown cuts the network to PostgreSQL while a batch
// waits: the batch fails as unavailable and its requests are refused at
// once, not retried one by one against a database that is not there.
func TestRecorderOnPostgresDown(t *testing.T) {
	p := pgtest.StartProxy(t, pgtest.MigratedURL(t))
	st, err := postgres.Open(t.Context(), p.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := &gatedAppender{Appender: st, gate: make(chan struct{}), entered: make(chan int, 1000)}
	r := newRecorder(t, g, Options{})

	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	first := record(t.Context(), r, pgAccess("9990276579", at))
	<-g.entered
	var done []<-chan error
	for i := range 100 {
		done = append(done, record(t.Context(), r, pgAccess("9990276579", at)))
		waitFor(t, "request to queue", func() bool { return len(r.queue) == i+1 })
	}
	p.Stop()
	close(g.gate)
	checkUnavailable(t, result(t, first), nil)
	for _, d := range done {
		checkUnavailable(t, result(t, d), nil)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.calls != 2 {
		t.Errorf("%d commits, want 2 (the first, the batch): the requests were retried alone against a database that is down", g.calls)
	}
}
