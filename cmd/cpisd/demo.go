package main

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// demoNamespace makes the demo plans' ids and request ids the same on every
// start, so --demo twice does not load them twice.
var demoNamespace = uuid.MustParse("6f1c1c57-1b0e-4a5f-9d59-3c0f7d2b9a10")

// demoPlans are a few plans on test NHS numbers (999 range), dated relative
// to today so that they show every status: active, recently ended, and an
// unborn plan. They are written as their LA's system would write them.
func demoPlans(today cpis.Date) []cpis.Plan {
	dir := cpis.TrustDirectory()
	plan := func(nhs string, t cpis.PlanType, la cpis.DirectoryEntry, start, end, born cpis.Date) cpis.Plan {
		return cpis.Plan{
			NHSNumber: cpis.NHSNumber(nhs), Type: t, Start: start, End: end, BirthDate: born,
			LA: la.LocalAuthority, EmergencyPhone: la.EmergencyPhone, OfficePhone: la.OfficePhone,
		}
	}
	return []cpis.Plan{
		plan("9990000018", cpis.CPP, dir[0], today.AddDays(-90), today.AddDays(275), today.AddYears(-6)),
		plan("9990000018", cpis.CLA, dir[0], today.AddDays(-30), today.AddDays(700), today.AddYears(-6)),
		plan("9990000026", cpis.CLA, dir[1], today.AddDays(-400), today.AddDays(-20), today.AddYears(-12)),
		plan("9990000034", cpis.UCPP, dir[2], today.AddDays(-60), today.AddDays(100), cpis.Date{}),
		plan("9990000042", cpis.CPP, dir[3], today.AddDays(-200), today.AddDays(165), today.AddYears(-3)),
	}
}

// loadDemo stores the demo plans unless they are there already.
func loadDemo(ctx context.Context, st store.Store, now func() time.Time) error {
	at := now().UTC().Truncate(time.Microsecond)
	for i, p := range demoPlans(cpis.Today(now())) {
		key := fmt.Sprintf("demo-plan-%d", i)
		p.ID = uuid.NewSHA1(demoNamespace, []byte(key)).String()
		p.Version, p.LastUpdated = 1, at
		actor := cpis.Actor{Kind: cpis.LASystem, UserID: "demo-loader", Name: "demo loader", OrgCode: p.LA.Code, OrgName: p.LA.Name}
		rec := cpis.AuditRecord{
			ID: uuid.NewString(), Recorded: at, Action: cpis.ActionCreate, Interaction: "create",
			Actor: actor, Patient: p.NHSNumber, PlanIDs: []string{p.ID}, LACodes: []string{p.LA.Code},
			RequestID: uuid.NewSHA1(demoNamespace, []byte(key+"-request")).String(),
		}
		if _, _, err := st.CreatePlan(ctx, p, rec); err != nil {
			return fmt.Errorf("demo plan %d: %w", i, err)
		}
	}
	return nil
}
