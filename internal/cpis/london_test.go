package cpis_test

import (
	"testing"
	"time"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// Every date rule is judged on the UK calendar (Europe/London), whatever the
// instant's zone: the day turns at 23:00 UTC in BST and at 00:00 UTC in GMT.
// These tests use fixed instants only.

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestTodayTurnsAtLondonMidnight(t *testing.T) {
	tests := []struct {
		name, at, want string
	}{
		{"BST, a second before London midnight", "2026-07-14T22:59:59Z", "2026-07-14"},
		{"BST, last nanosecond before London midnight", "2026-07-14T22:59:59.999999999Z", "2026-07-14"},
		{"BST, London midnight is 23:00 UTC", "2026-07-14T23:00:00Z", "2026-07-15"},
		{"BST, between 23:00 and 00:00 UTC", "2026-07-14T23:30:00Z", "2026-07-15"},
		{"GMT, a second before midnight", "2026-01-14T23:59:59Z", "2026-01-14"},
		{"GMT, midnight", "2026-01-15T00:00:00Z", "2026-01-15"},
		{"GMT, 23:30 UTC is still the same day", "2026-01-14T23:30:00Z", "2026-01-14"},
		// 29 March 2026: clocks go forward at 01:00 GMT to 02:00 BST.
		{"spring forward, the eve's last second", "2026-03-28T23:59:59Z", "2026-03-28"},
		{"spring forward, midnight GMT", "2026-03-29T00:00:00Z", "2026-03-29"},
		{"spring forward, a second before the change", "2026-03-29T00:59:59Z", "2026-03-29"},
		{"spring forward, the change (02:00 BST)", "2026-03-29T01:00:00Z", "2026-03-29"},
		{"spring forward, the day's last second in BST", "2026-03-29T22:59:59Z", "2026-03-29"},
		{"spring forward, the next day starts at 23:00 UTC", "2026-03-29T23:00:00Z", "2026-03-30"},
		// 25 October 2026: clocks go back at 02:00 BST (01:00 UTC) to 01:00 GMT.
		{"fall back, the eve's last second in BST", "2026-10-24T22:59:59Z", "2026-10-24"},
		{"fall back, the day starts at 23:00 UTC", "2026-10-24T23:00:00Z", "2026-10-25"},
		{"fall back, 00:00 UTC (01:00 BST)", "2026-10-25T00:00:00Z", "2026-10-25"},
		{"fall back, 00:59:59 UTC (01:59:59 BST)", "2026-10-25T00:59:59Z", "2026-10-25"},
		{"fall back, the change (01:00 GMT again)", "2026-10-25T01:00:00Z", "2026-10-25"},
		{"fall back, the day's last second in GMT", "2026-10-25T23:59:59Z", "2026-10-25"},
		{"fall back, the next day starts at 00:00 UTC", "2026-10-26T00:00:00Z", "2026-10-26"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cpis.Today(utc(tt.at)).String(); got != tt.want {
				t.Errorf("Today(%s) = %s, want %s", tt.at, got, tt.want)
			}
		})
	}
}

// londonPlan is a plan of type typ ending on end, with a start and (for a
// CPP or CLA) a date of birth that make it valid.
func londonPlan(typ cpis.PlanType, end string) cpis.Plan {
	p := validPlan()
	p.Type, p.End = typ, cpis.MustDate(end)
	p.Start = p.End.AddDays(-100)
	p.BirthDate = cpis.MustDate("2014-03-15")
	if typ == cpis.UCPP {
		p.BirthDate = cpis.Date{}
	}
	return p
}

func TestStatusAndWindowAreJudgedOnTheLondonDay(t *testing.T) {
	tests := []struct {
		name    string
		plan    cpis.Plan
		at      string
		status  cpis.Status
		visible bool
	}{
		// A plan whose end date was yesterday in London is not active
		// between 23:00 and 00:00 UTC in summer.
		{"BST, ends today: active at 23:30 BST", londonPlan(cpis.CPP, "2026-07-14"), "2026-07-14T22:30:00Z", cpis.Active, true},
		{"BST, ends today: active at the last second", londonPlan(cpis.CPP, "2026-07-14"), "2026-07-14T22:59:59Z", cpis.Active, true},
		{"BST, ended yesterday: inactive at 00:00 BST", londonPlan(cpis.CPP, "2026-07-14"), "2026-07-14T23:00:00Z", cpis.Inactive, true},
		{"BST, ended yesterday: inactive at 00:30 BST", londonPlan(cpis.CPP, "2026-07-14"), "2026-07-14T23:30:00Z", cpis.Inactive, true},
		{"GMT, ends today: active at 23:30", londonPlan(cpis.CLA, "2026-01-14"), "2026-01-14T23:30:00Z", cpis.Active, true},
		{"GMT, ended yesterday: inactive at 00:30", londonPlan(cpis.CLA, "2026-01-14"), "2026-01-15T00:30:00Z", cpis.Inactive, true},
		// A plan starting tomorrow in London is active from London midnight.
		{"BST, starts tomorrow: not yet at 22:59 UTC", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2026-07-15"), cpis.MustDate("2027-01-01") }), "2026-07-14T22:59:59Z", cpis.Inactive, true},
		{"BST, starts today: active at 23:00 UTC", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2026-07-15"), cpis.MustDate("2027-01-01") }), "2026-07-14T23:00:00Z", cpis.Active, true},
		// A CPP ended 2025-07-14 is shown until 2026-07-13 (364 days), a
		// London day that ends at 23:00 UTC.
		{"CPP window, last BST second", londonPlan(cpis.CPP, "2025-07-14"), "2026-07-13T22:59:59Z", cpis.Inactive, true},
		{"CPP window, closed at London midnight", londonPlan(cpis.CPP, "2025-07-14"), "2026-07-13T23:00:00Z", cpis.Inactive, false},
		{"CPP window, GMT: last second", londonPlan(cpis.CPP, "2025-01-15"), "2026-01-14T23:59:59Z", cpis.Inactive, true},
		{"CPP window, GMT: closed at midnight", londonPlan(cpis.CPP, "2025-01-15"), "2026-01-15T00:00:00Z", cpis.Inactive, false},
		// A UCPP ended 2026-06-15 is shown until 2026-07-13 (28 days).
		{"UCPP window, last BST second", londonPlan(cpis.UCPP, "2026-06-15"), "2026-07-13T22:59:59Z", cpis.Inactive, true},
		{"UCPP window, closed at London midnight", londonPlan(cpis.UCPP, "2026-06-15"), "2026-07-13T23:00:00Z", cpis.Inactive, false},
		{"UCPP window, GMT: last second", londonPlan(cpis.UCPP, "2025-12-18"), "2026-01-15T23:59:59Z", cpis.Inactive, true},
		{"UCPP window, GMT: closed at midnight", londonPlan(cpis.UCPP, "2025-12-18"), "2026-01-16T00:00:00Z", cpis.Inactive, false},
		// A window closing on the day the clocks change.
		{"window closing on the spring-forward day, last second", londonPlan(cpis.UCPP, "2026-03-01"), "2026-03-29T22:59:59Z", cpis.Inactive, true},
		{"window closing on the spring-forward day, closed", londonPlan(cpis.UCPP, "2026-03-01"), "2026-03-29T23:00:00Z", cpis.Inactive, false},
		{"window closing on the fall-back day, last second", londonPlan(cpis.UCPP, "2026-09-27"), "2026-10-25T23:59:59Z", cpis.Inactive, true},
		{"window closing on the fall-back day, closed", londonPlan(cpis.UCPP, "2026-09-27"), "2026-10-26T00:00:00Z", cpis.Inactive, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.plan.Validate(); err != nil {
				t.Fatalf("the test's plan is not valid: %v", err)
			}
			today := cpis.Today(utc(tt.at))
			if got := tt.plan.StatusOn(today); got != tt.status {
				t.Errorf("StatusOn(%s, London day of %s) = %s, want %s", today, tt.at, got, tt.status)
			}
			if got := tt.plan.VisibleToHealth(today); got != tt.visible {
				t.Errorf("VisibleToHealth(%s, London day of %s) = %v, want %v (DisplayUntil %s)", today, tt.at, got, tt.visible, tt.plan.DisplayUntil())
			}
		})
	}
}

// A person born on 29 February attains an age on 1 March in a common year
// (Family Law Reform Act 1969, s.9), so a CPP or CLA for them may end on
// 1 March of their 18th year and no later.
func TestEighteenthBirthdayOfALeapDayChild(t *testing.T) {
	tests := []struct {
		born, eighteen string
		end            string
		ok             bool
	}{
		{"2008-02-29", "2026-03-01", "2026-02-28", true},
		{"2008-02-29", "2026-03-01", "2026-03-01", true},
		{"2008-02-29", "2026-03-01", "2026-03-02", false},
		{"2012-02-29", "2030-03-01", "2030-02-28", true},
		{"2012-02-29", "2030-03-01", "2030-03-01", true},
		{"2012-02-29", "2030-03-01", "2030-03-02", false},
		// Born on 28 February, they turn 18 on 28 February even in a leap year.
		{"2010-02-28", "2028-02-28", "2028-02-28", true},
		{"2010-02-28", "2028-02-28", "2028-02-29", false},
		// Born on 1 March, 1 March: a leap year changes nothing.
		{"2010-03-01", "2028-03-01", "2028-02-29", true},
		{"2010-03-01", "2028-03-01", "2028-03-01", true},
		{"2010-03-01", "2028-03-01", "2028-03-02", false},
		// 18 is not a multiple of 4: a leap-day child's 18th birthday is always 1 March.
		{"1992-02-29", "2010-03-01", "2010-03-01", true},
		{"2016-02-29", "2034-03-01", "2034-03-02", false},
	}
	for _, typ := range []cpis.PlanType{cpis.CPP, cpis.CLA} {
		for _, tt := range tests {
			t.Run(string(typ)+" born "+tt.born+" ending "+tt.end, func(t *testing.T) {
				born := cpis.MustDate(tt.born)
				if got := born.AddYears(18).String(); got != tt.eighteen {
					t.Errorf("18th birthday of a child born %s = %s, want %s", tt.born, got, tt.eighteen)
				}
				p := validPlan()
				p.Type, p.BirthDate, p.End = typ, born, cpis.MustDate(tt.end)
				p.Start = p.End.AddDays(-200)
				err := p.Validate()
				if tt.ok && err != nil {
					t.Errorf("a plan ending %s for a child born %s: %v, want accepted", tt.end, tt.born, err)
				}
				if !tt.ok {
					got := problemsOf(err)
					if len(got) != 1 || got[0] != (problem{cpis.Invalid, exprEnd}) {
						t.Errorf("a plan ending %s for a child born %s: %v, want refused at %s", tt.end, tt.born, got, exprEnd)
					}
				}
			})
		}
	}
}

// The 18th birthday of a leap-day child, as the plan's status sees it on
// the London day: a plan ending on it is active until London midnight.
func TestLeapDayChildsPlanEndsAtLondonMidnight(t *testing.T) {
	p := validPlan()
	p.BirthDate, p.Start, p.End = cpis.MustDate("2008-02-29"), cpis.MustDate("2025-09-01"), cpis.MustDate("2026-03-01")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for at, want := range map[string]cpis.Status{
		"2026-02-28T23:59:59Z": cpis.Active, // 28 Feb GMT
		"2026-03-01T23:59:59Z": cpis.Active, // the 18th birthday, last second
		"2026-03-02T00:00:00Z": cpis.Inactive,
	} {
		if got := p.StatusOn(cpis.Today(utc(at))); got != want {
			t.Errorf("at %s: %s, want %s", at, got, want)
		}
	}
}
