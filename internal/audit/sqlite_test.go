package audit_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/audit"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/sqlite"
)

// TestRecorderOnSQLite runs the recorder over the real embedded store: every
// acknowledged access is in the trail, and a batch the store refuses leaves
// nothing behind.
func TestRecorderOnSQLite(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "cpis.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := audit.NewRecorder(st, audit.Options{Writers: 2})
	t.Cleanup(func() { r.Close() })

	const nhs, n = cpis.NHSNumber("9990276579"), 100
	base := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rec := access(nhs, base.Add(time.Duration(i)*time.Second))
			if err := r.Record(t.Context(), rec); err != nil {
				t.Errorf("Record %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := st.SearchAudit(t.Context(), store.AuditQuery{Patient: nhs, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d records in the trail, want %d", len(got), n)
	}
	// The newest accesses come first (the records name no stored plan, so
	// the access history, which shows accesses to live plans, is not used).
	history, err := st.SearchAudit(t.Context(), store.AuditQuery{Patient: nhs, AccessOnly: true, Limit: cpis.AccessHistoryLength})
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != cpis.AccessHistoryLength || !history[0].Recorded.Equal(base.Add((n-1)*time.Second)) {
		t.Errorf("history: %d records, newest %v", len(history), history[0].Recorded)
	}

	// A call whose second record the table refuses (a record must have an
	// id) fails whole: the first is not stored either.
	fresh, broken := access(nhs, base.Add(time.Hour)), access(nhs, base.Add(time.Hour))
	broken.ID = ""
	err = r.Record(t.Context(), fresh, broken)
	if cpis.KindOf(err) != cpis.Unavailable {
		t.Fatalf("refused record: error %v, want kind Unavailable", err)
	}
	after, err := st.SearchAudit(t.Context(), store.AuditQuery{Patient: nhs, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != n {
		t.Errorf("%d records after a refused batch, want %d: part of it was stored", len(after), n)
	}
}

func access(nhs cpis.NHSNumber, at time.Time) cpis.AuditRecord {
	return cpis.AuditRecord{
		ID: uuid.NewString(), Recorded: at, Action: cpis.ActionRead, Interaction: "search-type",
		Actor: cpis.Actor{
			Kind: cpis.HealthUser, UserID: "555021935107", Name: "Test Practitioner", RoleCode: "S8001:G8005:R8000",
			OrgCode: "RX1", OrgName: "Test Trust", Activities: []string{cpis.ActivityScheduledView},
		},
		Patient: nhs, Query: fmt.Sprintf("/Flag?patient=%s", nhs), RequestID: uuid.NewString(), Access: true,
	}
}
