package postgres_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// plan returns a valid CPP on nhs, uploaded by the first Trust LA.
func plan(nhs cpis.NHSNumber) cpis.Plan {
	start := cpis.MustDate("2025-01-01")
	return cpis.Plan{ID: uuid.NewString(), NHSNumber: nhs, Type: cpis.CPP, Start: start, End: start.AddDays(200),
		LA: cpis.TrustDirectory()[0].LocalAuthority, EmergencyPhone: "020 7946 0101", BirthDate: start.AddYears(-5),
		LastUpdated: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// writeRec is the audit record of an LA's write.
func writeRec(p cpis.Plan, requestID string) cpis.AuditRecord {
	return cpis.AuditRecord{ID: uuid.NewString(), Recorded: p.LastUpdated, Action: cpis.ActionUpdate, Interaction: "update",
		Actor: cpis.Actor{Kind: cpis.LASystem, UserID: "client", OrgCode: p.LA.Code}, Patient: p.NHSNumber,
		PlanIDs: []string{p.ID}, RequestID: requestID}
}

// twoServers opens two stores on one schema: two server processes.
func twoServers(t *testing.T) [2]*postgres.Store {
	u := pgtest.MigratedURL(t)
	a, b := open(t, u), open(t, u)
	t.Cleanup(func() { a.Close(); b.Close() })
	return [2]*postgres.Store{a, b}
}

// TestUpdateRaceAcrossProcesses races writers holding one version through
// two pools: exactly one wins, the others fail PreconditionFailed.
func TestUpdateRaceAcrossProcesses(t *testing.T) {
	servers := twoServers(t)
	v1, _, err := servers[0].CreatePlan(t.Context(), plan(testNHS(1)), writeRec(plan(testNHS(1)), ""))
	if err != nil {
		t.Fatal(err)
	}
	const writers = 10
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			p := v1
			p.End = p.End.AddDays(-i)
			_, _, errs[i] = servers[i%2].UpdatePlan(t.Context(), p, 1, writeRec(p, uuid.NewString()))
		})
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case cpis.KindOf(err) != cpis.PreconditionFailed:
			t.Errorf("writer %d: %v, want PreconditionFailed", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d writers won, want 1", won)
	}
}

// TestCreateReplayRaceAcrossProcesses sends one create request, with one
// request id, several times at once through two pools, as a client retrying
// after a timeout would: one plan is written and audited, and every answer
// is that plan.
func TestCreateReplayRaceAcrossProcesses(t *testing.T) {
	servers := twoServers(t)
	nhs, requestID := testNHS(2), uuid.NewString()
	const tries = 8
	got := make([]cpis.Plan, tries)
	replayed := make([]bool, tries)
	errs := make([]error, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Go(func() {
			p := plan(nhs) // each try is a new request to a server: a new plan id
			got[i], replayed[i], errs[i] = servers[i%2].CreatePlan(t.Context(), p, writeRec(p, requestID))
		})
	}
	wg.Wait()
	firsts := 0
	for i := range tries {
		if errs[i] != nil {
			t.Fatalf("try %d: %v", i, errs[i])
		}
		if !replayed[i] {
			firsts++
		}
		if got[i].ID != got[0].ID || got[i].Version != 1 {
			t.Errorf("try %d answered plan %s version %d, want %s version 1", i, got[i].ID, got[i].Version, got[0].ID)
		}
	}
	if firsts != 1 {
		t.Errorf("%d tries were not replays, want 1", firsts)
	}
	page, err := servers[0].SearchPlans(t.Context(), store.PlanQuery{NHSNumber: nhs, Limit: 10})
	if err != nil || len(page.Plans) != 1 {
		t.Errorf("SearchPlans: %d plans (%v), want 1", len(page.Plans), err)
	}
	recs, err := servers[1].SearchAudit(t.Context(), store.AuditQuery{Patient: nhs, Limit: 10})
	if err != nil || len(recs) != 1 {
		t.Errorf("SearchAudit: %d records (%v), want 1", len(recs), err)
	}
}

// TestCreateOverlapRaceAcrossProcesses creates one plan many times at once
// through two pools, each time as a new request (its own request id), as an
// LA system posting the same plan twice would: one plan is stored, and
// every other create is Conflict. Without the child's lock each
// transaction's overlap check would miss the others' uncommitted plans.
func TestCreateOverlapRaceAcrossProcesses(t *testing.T) {
	servers := twoServers(t)
	nhs := testNHS(3)
	const tries = 8
	for round := range 3 {
		errs := make([]error, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				p := plan(nhs)
				p.Start, p.End = p.Start.AddDays(400*round), p.End.AddDays(400*round) // a new plan each round
				_, _, errs[i] = servers[i%2].CreatePlan(t.Context(), p, writeRec(p, uuid.NewString()))
			})
		}
		wg.Wait()
		stored := 0
		for i, err := range errs {
			switch {
			case err == nil:
				stored++
			case cpis.KindOf(err) != cpis.Conflict:
				t.Errorf("round %d, try %d: %v, want Conflict", round, i, err)
			}
		}
		if stored != 1 {
			t.Errorf("round %d: %d creates stored a plan, want 1", round, stored)
		}
	}
	page, err := servers[0].SearchPlans(t.Context(), store.PlanQuery{NHSNumber: nhs, Limit: 10})
	if err != nil || len(page.Plans) != 3 {
		t.Errorf("SearchPlans: %d plans (%v), want 3", len(page.Plans), err)
	}
}
