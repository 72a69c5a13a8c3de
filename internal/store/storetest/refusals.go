package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testRefusals: a query a store cannot run is Invalid on every backend,
// never an empty answer on one and an error on another, so that the api's
// answer does not depend on the store behind it.
func testRefusals(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	nhs := nhsNumber(t, 1)
	create(t, ctx, s, newPlan(nhs, la(0), cpis.CPP, "2025-01-01", "2025-12-31", baseTime()))
	today := cpis.MustDate(searchToday)
	plans := []struct {
		name string
		q    store.PlanQuery
	}{
		{"no limit", store.PlanQuery{NHSNumber: nhs}},
		{"a negative limit", store.PlanQuery{NHSNumber: nhs, Limit: -1}},
		{"over the largest page", store.PlanQuery{NHSNumber: nhs, Limit: 1001}},
		{"statuses without a day", store.PlanQuery{NHSNumber: nhs, Limit: 10, Statuses: []cpis.Status{cpis.Active}}},
		{"an unknown status", store.PlanQuery{NHSNumber: nhs, Limit: 10, Statuses: []cpis.Status{"proposed"}, Today: today}},
		{"an unknown status among known ones", store.PlanQuery{NHSNumber: nhs, Limit: 10,
			Statuses: []cpis.Status{cpis.Active, "proposed"}, Today: today}},
	}
	for _, tt := range plans {
		t.Run("SearchPlans/"+tt.name, func(t *testing.T) {
			_, err := s.SearchPlans(ctx, tt.q)
			wantKind(t, "SearchPlans", err, cpis.Invalid)
		})
	}
	audits := []struct {
		name string
		q    store.AuditQuery
	}{
		{"no limit", store.AuditQuery{Patient: nhs}},
		{"over the largest page", store.AuditQuery{Patient: nhs, Limit: 1001}},
	}
	for _, tt := range audits {
		t.Run("SearchAudit/"+tt.name, func(t *testing.T) {
			_, err := s.SearchAudit(ctx, tt.q)
			wantKind(t, "SearchAudit", err, cpis.Invalid)
		})
	}
	appendAudit(t, ctx, s, accessRecord(nhs, "555000000001", "RXX01", baseTime().Add(time.Minute)))
	for _, limit := range []int{0, -1, 1001} {
		t.Run(fmt.Sprintf("AccessHistory/limit %d", limit), func(t *testing.T) {
			_, err := s.AccessHistory(ctx, store.AccessQuery{NHSNumber: nhs, Limit: limit})
			wantKind(t, "AccessHistory", err, cpis.Invalid)
		})
	}
	t.Run("AccessHistory/no NHS number", func(t *testing.T) {
		_, err := s.AccessHistory(ctx, store.AccessQuery{LACode: la(0).Code, Limit: 25})
		wantKind(t, "AccessHistory", err, cpis.Invalid)
	})
	keysetRefusals(t, ctx, s)
	t.Run("SearchPlans/an unknown type matches nothing", func(t *testing.T) {
		for _, types := range [][]cpis.PlanType{{"XYZ"}, {cpis.CLA, "XYZ"}} {
			page, err := s.SearchPlans(ctx, store.PlanQuery{NHSNumber: nhs, Limit: 10, Types: types})
			if err != nil || page.Plans == nil || len(page.Plans) != 0 || page.More {
				t.Errorf("SearchPlans(types %v) = %+v, %v; want a non-nil empty page", types, page, err)
			}
		}
	})
}
