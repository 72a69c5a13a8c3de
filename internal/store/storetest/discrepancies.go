package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// testDiscrepancies: discrepancy reports, their work list and their
// resolution (store/discrepancies.go).
func testDiscrepancies(t *testing.T, open opener) {
	t.Run("RoundTrip", func(t *testing.T) { testDiscrepancyRoundTrip(t, open) })
	t.Run("WorkList", func(t *testing.T) { testDiscrepancyWorkList(t, open) })
	t.Run("Resolve", func(t *testing.T) { testDiscrepancyResolve(t, open) })
	t.Run("ConcurrentResolve", func(t *testing.T) { testConcurrentResolve(t, open) })
	t.Run("Refusals", func(t *testing.T) { testDiscrepancyRefusals(t, open) })
}

// practitioner is a health user of organisation org, every field of the
// actor set.
func practitioner(userID, org string) cpis.Actor {
	return cpis.Actor{Kind: cpis.HealthUser, UserID: userID, Name: "Nurse " + userID, RoleProfileID: "9" + userID,
		RoleCode: "S8000:G8000:R8001", RoleName: "Nurse Access Role", OrgCode: org, OrgName: "Trust " + org,
		Activities: []string{cpis.ActivityScheduledView, "B0172"}}
}

// newDiscrepancy is an open report on the n-th test child to org, made at at.
func newDiscrepancy(tb testing.TB, n int, org string, at time.Time) cpis.Discrepancy {
	return cpis.Discrepancy{ID: uuid.NewString(), NHSNumber: nhsNumber(tb, n), Reason: cpis.ReasonMissingAlert,
		Note: "Known to be on a plan in Luton", OrgCode: org, ReportedBy: practitioner("555000000002", org), ReportedAt: at}
}

// report stores d, failing the test on an error.
func report(tb testing.TB, ctx context.Context, s store.Store, d cpis.Discrepancy) cpis.Discrepancy {
	tb.Helper()
	if err := s.CreateDiscrepancy(ctx, d); err != nil {
		tb.Fatalf("CreateDiscrepancy: %v", err)
	}
	return d
}

// resolve resolves report id, failing the test on an error.
func resolve(tb testing.TB, ctx context.Context, s store.Store, id string, by cpis.Actor, at time.Time) cpis.Discrepancy {
	tb.Helper()
	d, err := s.ResolveDiscrepancy(ctx, id, by, at)
	if err != nil {
		tb.Fatalf("ResolveDiscrepancy: %v", err)
	}
	return d
}

// wantDiscrepancies compares reports whole, and checks their instants are in UTC.
func wantDiscrepancies(tb testing.TB, what string, got, want []cpis.Discrepancy) {
	tb.Helper()
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		tb.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
	for _, d := range got {
		wantUTC(tb, what+".ReportedAt", d.ReportedAt)
		if d.Resolved() {
			wantUTC(tb, what+".ResolvedAt", d.ResolvedAt)
		}
	}
}

func testDiscrepancyRoundTrip(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	d := report(t, ctx, s, newDiscrepancy(t, 1, "ZZT01", baseTime()))
	got, err := s.Discrepancy(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantDiscrepancies(t, "Discrepancy", []cpis.Discrepancy{got}, []cpis.Discrepancy{d})

	bare := newDiscrepancy(t, 2, "ZZT01", baseTime())
	bare.Note, bare.ReportedBy.Activities, bare.ReportedBy.RoleProfileID = "", nil, ""
	report(t, ctx, s, bare)
	got, err = s.Discrepancy(ctx, bare.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantDiscrepancies(t, "a report without note or activities", []cpis.Discrepancy{got}, []cpis.Discrepancy{bare})

	again := newDiscrepancy(t, 3, "ZZT02", baseTime())
	again.ID = d.ID
	wantKind(t, "CreateDiscrepancy with a taken id", s.CreateDiscrepancy(ctx, again), cpis.Conflict)
	_, err = s.Discrepancy(ctx, uuid.NewString())
	wantKind(t, "Discrepancy of an unknown id", err, cpis.NotFound)
}

// testDiscrepancyWorkList: an organisation's reports, open first, newest
// first, filtered and limited, and never another organisation's.
func testDiscrepancyWorkList(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	lead := practitioner("555000000005", "ZZT01")
	at := func(m int) time.Time { return baseTime().Add(time.Duration(m) * time.Minute) }
	oldResolved := report(t, ctx, s, newDiscrepancy(t, 1, "ZZT01", at(0)))
	open1 := report(t, ctx, s, newDiscrepancy(t, 2, "ZZT01", at(1)))
	open2 := report(t, ctx, s, newDiscrepancy(t, 3, "ZZT01", at(2)))
	open3 := report(t, ctx, s, newDiscrepancy(t, 4, "ZZT01", at(2))) // a tie: by id, descending
	newResolved := report(t, ctx, s, newDiscrepancy(t, 5, "ZZT01", at(3)))
	report(t, ctx, s, newDiscrepancy(t, 6, "ZZT02", at(4))) // another Trust's
	oldResolved = resolve(t, ctx, s, oldResolved.ID, lead, at(10))
	newResolved = resolve(t, ctx, s, newResolved.ID, lead, at(5))
	if open2.ID < open3.ID {
		open2, open3 = open3, open2
	}
	tests := []struct {
		name string
		q    store.DiscrepancyQuery
		want []cpis.Discrepancy
	}{
		{"all", store.DiscrepancyQuery{OrgCode: "ZZT01", Limit: 10}, []cpis.Discrepancy{open2, open3, open1, newResolved, oldResolved}},
		{"open", store.DiscrepancyQuery{OrgCode: "ZZT01", Open: true, Limit: 10}, []cpis.Discrepancy{open2, open3, open1}},
		{"resolved", store.DiscrepancyQuery{OrgCode: "ZZT01", Resolved: true, Limit: 10}, []cpis.Discrepancy{newResolved, oldResolved}},
		{"limited", store.DiscrepancyQuery{OrgCode: "ZZT01", Limit: 2}, []cpis.Discrepancy{open2, open3}},
		{"an organisation with none", store.DiscrepancyQuery{OrgCode: "ZZT03", Limit: 10}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Discrepancies(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			wantDiscrepancies(t, "Discrepancies", got, tt.want)
		})
	}
}

// testDiscrepancyResolve: the first resolution stands.
func testDiscrepancyResolve(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	d := report(t, ctx, s, newDiscrepancy(t, 1, "ZZT01", baseTime()))
	first, second := practitioner("555000000005", "ZZT01"), practitioner("555000000007", "ZZT01")
	first.Activities = nil
	resolvedAt := baseTime().Add(time.Hour)
	want := d
	want.ResolvedBy, want.ResolvedAt = &first, resolvedAt
	got := resolve(t, ctx, s, d.ID, first, resolvedAt)
	wantDiscrepancies(t, "ResolveDiscrepancy", []cpis.Discrepancy{got}, []cpis.Discrepancy{want})
	got = resolve(t, ctx, s, d.ID, second, resolvedAt.Add(time.Hour))
	wantDiscrepancies(t, "ResolveDiscrepancy again", []cpis.Discrepancy{got}, []cpis.Discrepancy{want})
	stored, err := s.Discrepancy(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantDiscrepancies(t, "Discrepancy after resolving twice", []cpis.Discrepancy{stored}, []cpis.Discrepancy{want})
}

// testConcurrentResolve: reviewers resolving one report at once all
// succeed, and all are told of the one resolution stored.
func testConcurrentResolve(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	d := report(t, ctx, s, newDiscrepancy(t, 1, "ZZT01", baseTime()))
	const n = 8
	results := make([]cpis.Discrepancy, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			by := practitioner("55500000010"+string(rune('0'+i)), "ZZT01")
			results[i], errs[i] = s.ResolveDiscrepancy(ctx, d.ID, by, baseTime().Add(time.Duration(i+1)*time.Second))
		})
	}
	wg.Wait()
	stored, err := s.Discrepancy(ctx, d.ID)
	if err != nil || !stored.Resolved() {
		t.Fatalf("after the resolutions: %+v, %v", stored, err)
	}
	for i := range n {
		if errs[i] != nil {
			t.Errorf("resolution %d: %v", i, errs[i])
			continue
		}
		wantDiscrepancies(t, "a concurrent resolution", []cpis.Discrepancy{results[i]}, []cpis.Discrepancy{stored})
	}
}

func testDiscrepancyRefusals(t *testing.T, open opener) {
	ctx, s := t.Context(), open(t)
	valid := newDiscrepancy(t, 1, "ZZT01", baseTime())
	resolved := valid
	resolved.ResolvedBy, resolved.ResolvedAt = &valid.ReportedBy, baseTime()
	for name, d := range map[string]cpis.Discrepancy{
		"no id":           func(d cpis.Discrepancy) cpis.Discrepancy { d.ID = ""; return d }(valid),
		"no child":        func(d cpis.Discrepancy) cpis.Discrepancy { d.NHSNumber = ""; return d }(valid),
		"no organisation": func(d cpis.Discrepancy) cpis.Discrepancy { d.OrgCode = ""; return d }(valid),
		"no reporter":     func(d cpis.Discrepancy) cpis.Discrepancy { d.ReportedBy = cpis.Actor{}; return d }(valid),
		"no time":         func(d cpis.Discrepancy) cpis.Discrepancy { d.ReportedAt = time.Time{}; return d }(valid),
		"resolved":        resolved,
	} {
		wantKind(t, "CreateDiscrepancy with "+name, s.CreateDiscrepancy(ctx, d), cpis.Invalid)
	}
	for name, q := range map[string]store.DiscrepancyQuery{
		"no organisation":   {Limit: 10},
		"open and resolved": {OrgCode: "ZZT01", Open: true, Resolved: true, Limit: 10},
		"no limit":          {OrgCode: "ZZT01"},
		"a limit too large": {OrgCode: "ZZT01", Limit: 1001},
	} {
		_, err := s.Discrepancies(ctx, q)
		wantKind(t, "Discrepancies with "+name, err, cpis.Invalid)
	}
	d := report(t, ctx, s, valid)
	_, err := s.ResolveDiscrepancy(ctx, d.ID, cpis.Actor{}, baseTime())
	wantKind(t, "ResolveDiscrepancy without a resolver", err, cpis.Invalid)
	_, err = s.ResolveDiscrepancy(ctx, d.ID, valid.ReportedBy, time.Time{})
	wantKind(t, "ResolveDiscrepancy without a time", err, cpis.Invalid)
	_, err = s.ResolveDiscrepancy(ctx, uuid.NewString(), valid.ReportedBy, baseTime())
	wantKind(t, "ResolveDiscrepancy of an unknown id", err, cpis.NotFound)
	if got, err := s.Discrepancy(ctx, d.ID); err != nil || got.Resolved() {
		t.Errorf("after the refusals: %+v, %v; want it open", got, err)
	}
}
