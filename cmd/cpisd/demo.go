package main

import (
	"context"
	"fmt"
	"time"

	"github.com/cpis-fhir/cpis/internal/auth"
	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/register"
)

// demoPlans are a few plans on test NHS numbers (999 range), dated relative
// to today so that they show every status: active, recently ended, and an
// unborn plan. Each carries the LA's reference DEMO-<n>.
func demoPlans(today cpis.Date) []cpis.Plan {
	dir := cpis.TrustDirectory()
	// A child from outside the Trust's six LAs: the viewer has no directory
	// advice for it and points to the plan's own numbers.
	outOfArea := cpis.DirectoryEntry{LocalAuthority: cpis.OutOfAreaDevLA, EmergencyPhone: "020 7946 0901", OfficePhone: "020 7946 0902"}
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
		plan("9990000069", cpis.CPP, outOfArea, today.AddDays(-45), today.AddDays(320), today.AddYears(-9)),
	}
}

// loadDemo writes the demo plans through the register, as each LA's system
// would, unless they are there already: each is created only if its LA holds
// no plan with its reference (If-None-Exist), so a restart loads nothing.
func loadDemo(ctx context.Context, reg *register.Service, now func() time.Time) error {
	at := now()
	for i, p := range demoPlans(cpis.Today(at)) {
		p.Reference = fmt.Sprintf("DEMO-%d", i+1)
		c := register.Caller{At: at, Principal: &auth.Principal{
			Actor:  cpis.Actor{Kind: cpis.LASystem, UserID: "demo-loader", Name: "demo loader", OrgCode: p.LA.Code, OrgName: p.LA.Name},
			LACode: p.LA.Code, Scopes: []string{"system/Flag.write"},
		}}
		if _, _, err := reg.Apply(ctx, c, register.Write{Kind: register.Create, Reference: p.Reference, Plan: p}); err != nil {
			return fmt.Errorf("demo plan %d: %w", i+1, err)
		}
	}
	return nil
}
