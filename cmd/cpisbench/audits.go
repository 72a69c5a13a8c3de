package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// auditBatch is how many prior AuditEvents go into one AppendAudit.
const auditBatch = 10_000

// Proportions of the prior audit trail.
const (
	healthOrgs      = 40   // NHS organisations whose staff read CP-IS
	usersPerOrg     = 30   // practitioners of each
	shareAccess     = 0.85 // searches that found plans: accesses
	shareCareTeam   = 0.3  // searches through the national CP-IS API (CareTeam) rather than Flag
	auditHistory    = 365 * 24 * time.Hour
	priorAuditsHost = "http://127.0.0.1:8080" // the Source of prior records: an earlier server
)

// actors are the health users of the prior audit trail: several fictional
// organisations (ODS-like codes ZZH01..), each with practitioners in
// unscheduled care (B0107) and scheduled care (B0170).
func actors() []cpis.Actor {
	first := []string{"Alex", "Sam", "Jo", "Chris", "Pat", "Robin", "Kim", "Lee", "Max", "Ash"}
	last := []string{"Example", "Sample", "Placeholder", "Testwell", "Madeup", "Fictional"}
	var out []cpis.Actor
	for o := range healthOrgs {
		org, orgName := fmt.Sprintf("ZZH%02d", o+1), fmt.Sprintf("Fictional Hospitals %02d NHS Trust", o+1)
		for u := range usersPerOrg {
			n := o*usersPerOrg + u
			a := cpis.Actor{Kind: cpis.HealthUser, UserID: fmt.Sprintf("5551%08d", n),
				Name: first[n%len(first)] + " " + last[n/len(first)%len(last)], RoleProfileID: fmt.Sprintf("5552%08d", n),
				OrgCode: org, OrgName: orgName}
			if u%5 < 3 { // most readers are in unscheduled care
				a.RoleCode, a.RoleName, a.Activities = "S8000:G8000:R8000", "Clinical Practitioner Access Role", []string{cpis.ActivityUnscheduledView}
			} else {
				a.RoleCode, a.RoleName, a.Activities = "S8000:G8000:R8001", "Nurse Access Role", []string{cpis.ActivityScheduledView}
			}
			out = append(out, a)
		}
	}
	return out
}

// auditBatchOf returns batch b of the prior audit trail of n records: the
// trail is written in time order, batch after batch over the last twelve
// months, as a server would have appended it. Each batch has its own
// random stream, so batches can be made in any order and are the same on
// every run.
func (d *dataset) auditBatchOf(b, n int, who []cpis.Actor) []cpis.AuditRecord {
	r := rand.New(rand.NewPCG(d.seed, uint64(b)+1))
	ids := newIDs(d.seed ^ uint64(b+1)<<20)
	batches := (n + auditBatch - 1) / auditBatch
	size := min(auditBatch, n-b*auditBatch)
	from := d.now.Add(-auditHistory)
	span := auditHistory / time.Duration(batches)
	at := make([]time.Time, size)
	for i := range at {
		at[i] = from.Add(span*time.Duration(b) + time.Duration(r.Int64N(int64(span)))).Truncate(time.Microsecond)
	}
	slices.SortFunc(at, func(x, y time.Time) int { return x.Compare(y) })
	recs := make([]cpis.AuditRecord, size)
	for i := range recs {
		recs[i] = d.priorSearch(r, ids, who[r.IntN(len(who))], at[i])
	}
	return recs
}

// priorSearch is the record of one earlier search by a.
func (d *dataset) priorSearch(r *rand.Rand, ids *idSource, a cpis.Actor, at time.Time) cpis.AuditRecord {
	rec := cpis.AuditRecord{ID: ids.next(), Recorded: at, Action: cpis.ActionExecute, Interaction: "search-type",
		Outcome: cpis.OutcomeSuccess, Actor: a, RequestID: ids.next(), Source: priorAuditsHost}
	if r.Float64() < shareAccess {
		plans := d.plansOf(r.IntN(len(d.plans)))
		rec.Patient, rec.Access = plans[0].NHSNumber, true
		rec.Unscheduled = a.Can(cpis.ActivityUnscheduledView)
		for _, p := range plans {
			rec.PlanIDs, rec.LACodes = append(rec.PlanIDs, p.ID), append(rec.LACodes, p.LA.Code)
		}
	} else {
		rec.Patient = d.without[r.IntN(len(d.without))]
	}
	resource := "Flag"
	if r.Float64() < shareCareTeam {
		resource = "CareTeam"
	}
	rec.Query = "/" + resource + "?patient:identifier=" + cpis.NHSNumberSystem + "%7C" + string(rec.Patient)
	return rec
}

// plansOf returns the plans of the person whose plan is d.plans[i].
func (d *dataset) plansOf(i int) []cpis.Plan {
	nhs := d.plans[i].NHSNumber
	lo, hi := i, i+1
	for lo > 0 && d.plans[lo-1].NHSNumber == nhs {
		lo--
	}
	for hi < len(d.plans) && d.plans[hi].NHSNumber == nhs {
		hi++
	}
	return d.plans[lo:hi]
}
