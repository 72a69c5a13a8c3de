package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestFlagAuthors reads the LAs of a searchset as the server writes it
// (fhir.MarshalSearchset: two plans of one child, of two LAs, and a
// warning), and refuses Flags the load generator could not attribute.
func TestFlagAuthors(t *testing.T) {
	d, err := newDataset(5, 100, time.Date(2026, 6, 15, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	p, q := d.plans[0], d.plans[1]
	q.NHSNumber, q.LA = p.NHSNumber, d.las[0].LocalAuthority
	if q.LA == p.LA {
		q.LA = d.las[1].LocalAuthority
	}
	body, err := fhir.MarshalSearchset(fhir.Searchset{BaseURL: "http://127.0.0.1:8080", Self: "http://127.0.0.1:8080/Flag",
		Entries:  []proto.Message{fhir.FlagResource(p, d.today, cpis.HealthView), fhir.FlagResource(q, d.today, cpis.HealthView)},
		Warnings: []*cpis.Error{{Kind: cpis.InvalidSearch, Expression: "_elements", Msg: "ignored"}}})
	if err != nil {
		t.Fatal(err)
	}
	if las, ok := flagAuthors(body, p.NHSNumber); !ok || !cmp.Equal(las, []string{p.LA.Code, q.LA.Code}) {
		t.Errorf("the server's searchset: LAs %v, ok %v; want %v and %v", las, ok, p.LA.Code, q.LA.Code)
	}
	flag := func(nhs, la string) string {
		return `{"resource":{"resourceType":"Flag","subject":{"identifier":{"value":"` + nhs + `"}},"author":{"identifier":{"value":"` + la + `"}}}}`
	}
	outcome := `{"resource":{"resourceType":"OperationOutcome"}}`
	tests := []struct {
		name string
		body string
		want []string
		ok   bool
	}{
		{"two LAs", `{"entry":[` + flag("9990276579", "ZLB001") + `,` + flag("9990276579", "ZLB002") + `]}`, []string{"ZLB001", "ZLB002"}, true},
		{"an outcome beside the Flag", `{"entry":[` + flag("9990276579", "ZLB001") + `,` + outcome + `]}`, []string{"ZLB001"}, true},
		{"another child's Flag", `{"entry":[` + flag("9990276579", "ZLB001") + `,` + flag("9991234567", "ZLB002") + `]}`, nil, false},
		{"a Flag without its LA", `{"entry":[` + flag("9990276579", "") + `]}`, nil, false},
		{"not JSON", `{"entry":`, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := flagAuthors([]byte(tt.body), "9990276579")
			if ok != tt.ok || !cmp.Equal(got, tt.want) {
				t.Errorf("flagAuthors = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestAccount: only unscheduled-care reads that found plans are noted as
// sending ASNs, one pair per LA; a wrong or unreadable answer counts as
// wrong.
func TestAccount(t *testing.T) {
	const nhs = cpis.NHSNumber("9990276579")
	ed := &client{session: session{persona: edClinician}, pairs: pairSet{}}
	ed.account(nhs, true, searchAnswer{las: []string{"ZLB001", "ZLB001", "ZLB002"}}) // two plans of ZLB001
	ed.account(nhs, false, searchAnswer{})
	ed.account(nhs, true, searchAnswer{}) // a plan expected, none found
	ed.account(nhs, true, searchAnswer{unreadable: true})
	want := pairSet{{nhs, "ZLB001"}: {}, {nhs, "ZLB002"}: {}}
	if ed.found != 2 || ed.wrong != 2 || ed.unscheduledFound != 2 || !cmp.Equal(ed.pairs, want, cmp.AllowUnexported(asnPair{})) {
		t.Errorf("ed-clinician: found %d, wrong %d, unscheduled found %d, pairs %v; want 2, 2, 2, %v", ed.found, ed.wrong, ed.unscheduledFound, ed.pairs, want)
	}
	nurse := &client{session: session{persona: communityNurse}, pairs: pairSet{}}
	nurse.account(nhs, true, searchAnswer{las: []string{"ZLB001"}})
	if nurse.found != 1 || nurse.unscheduledFound != 0 || len(nurse.pairs) != 0 {
		t.Errorf("community-nurse: found %d, unscheduled found %d, pairs %v; want 1, 0, none", nurse.found, nurse.unscheduledFound, nurse.pairs)
	}
}

// TestASNTally: a run expects the pairs no earlier run read; the store's
// ASNs are compared with every pair read.
func TestASNTally(t *testing.T) {
	a, b, c := asnPair{"9990276579", "ZLB001"}, asnPair{"9990276579", "ZLB002"}, asnPair{"9991234567", "ZLB001"}
	tally := newASNTally()
	first := storeRun{load: &load{pairs: pairSet{a: {}, b: {}}}}
	second := storeRun{load: &load{pairs: pairSet{b: {}, c: {}}}}
	tally.add(&first)
	tally.add(&second)
	if first.asnExpected != 2 || second.asnExpected != 1 {
		t.Errorf("expected %d then %d ASNs, want 2 then 1", first.asnExpected, second.asnExpected)
	}
	tests := []struct {
		name   string
		stored map[asnPair]int64
		want   asnDiff
	}{
		{"exact", map[asnPair]int64{a: 1, b: 1, c: 1}, asnDiff{}},
		{"one missing", map[asnPair]int64{a: 1, b: 1}, asnDiff{missing: 1}},
		{"one twice", map[asnPair]int64{a: 1, b: 2, c: 1}, asnDiff{repeated: 1}},
		{"one never read", map[asnPair]int64{a: 1, b: 1, c: 1, {"9991234567", "ZLB009"}: 1}, asnDiff{unread: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tally.stored = tt.stored
			if got := tally.diff(); got != tt.want {
				t.Errorf("diff = %+v, want %+v", got, tt.want)
			}
			if tally.equal() != (tt.want == asnDiff{}) {
				t.Errorf("equal = %v with diff %+v", tally.equal(), tt.want)
			}
		})
	}
}
