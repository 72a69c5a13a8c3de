package cpis_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// problem is what a test checks of one validation failure.
type problem struct {
	Kind cpis.Kind
	Expr string
}

func problemsOf(err error) []problem {
	var out []problem
	for _, e := range cpis.Problems(err) {
		out = append(out, problem{e.Kind, e.Expression})
	}
	return out
}

// Expressions Plan.Validate names.
const (
	exprNHS       = "Flag.subject.identifier.value"
	exprCode      = "Flag.code"
	exprStart     = "Flag.period.start"
	exprEnd       = "Flag.period.end"
	exprBirth     = "Flag.extension('child-birth-date')"
	exprLACode    = "Flag.author.identifier.value"
	exprEmergency = "Flag.extension('emergency-duty-telephone')"
	exprOffice    = "Flag.extension('office-hours-telephone')"
)

// validPlan is a CPP for a child born 2015-05-31, who turns 18 on 2033-05-31.
func validPlan() cpis.Plan {
	return cpis.Plan{
		NHSNumber:      "9990276579",
		Type:           cpis.CPP,
		Start:          cpis.MustDate("2026-01-10"),
		End:            cpis.MustDate("2027-01-09"),
		LA:             cpis.LocalAuthority{Code: "ZLA01", Name: "London Borough of Hackney and City of London"},
		EmergencyPhone: "020 7946 0101",
		OfficePhone:    "020 7946 0102",
		BirthDate:      cpis.MustDate("2015-05-31"),
	}
}

func planWith(f func(p *cpis.Plan)) cpis.Plan {
	p := validPlan()
	f(&p)
	return p
}

func TestPlanValidateAccepts(t *testing.T) {
	tests := []struct {
		name string
		plan cpis.Plan
	}{
		{"CPP", validPlan()},
		{"CLA", planWith(func(p *cpis.Plan) { p.Type = cpis.CLA })},
		{"UCPP without a birth date", planWith(func(p *cpis.Plan) { p.Type = cpis.UCPP; p.BirthDate = cpis.Date{}; p.End = p.Start.AddDays(200) })},
		{"UCPP of exactly 300 days", planWith(func(p *cpis.Plan) {
			p.Type, p.BirthDate, p.End = cpis.UCPP, cpis.Date{}, p.Start.AddDays(300)
		})},
		{"no LA name: the register supplies it", planWith(func(p *cpis.Plan) { p.LA.Name = "" })},
		{"an LA reference", planWith(func(p *cpis.Plan) { p.Reference = "CP-2026.0042_a" })},
		{"ending exactly on the 18th birthday", planWith(func(p *cpis.Plan) { p.End = cpis.MustDate("2033-05-31") })},
		{"leap-day child ending on 1 March of the 18th year", planWith(func(p *cpis.Plan) {
			p.BirthDate, p.Start, p.End = cpis.MustDate("2008-02-29"), cpis.MustDate("2025-01-01"), cpis.MustDate("2026-03-01")
		})},
		{"one-day plan", planWith(func(p *cpis.Plan) { p.End = p.Start })},
		{"starting on the day of birth", planWith(func(p *cpis.Plan) { p.Start = p.BirthDate })},
		{"no office-hours number", planWith(func(p *cpis.Plan) { p.OfficePhone = "" })},
		{"international emergency number", planWith(func(p *cpis.Plan) { p.EmergencyPhone = "+44 20 7946 0101" })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.plan.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestPlanValidateRejects(t *testing.T) {
	tests := []struct {
		name string
		plan cpis.Plan
		want []problem
	}{
		{"missing NHS number", planWith(func(p *cpis.Plan) { p.NHSNumber = "" }), []problem{{cpis.InvalidNHSNumber, exprNHS}}},
		{"bad NHS number", planWith(func(p *cpis.Plan) { p.NHSNumber = "9990276570" }), []problem{{cpis.InvalidNHSNumber, exprNHS}}},
		{"unknown type", planWith(func(p *cpis.Plan) { p.Type = "CIN" }), []problem{{cpis.Invalid, exprCode}}},
		{"missing start", planWith(func(p *cpis.Plan) { p.Start = cpis.Date{} }), []problem{{cpis.Invalid, exprStart}}},
		{"missing end", planWith(func(p *cpis.Plan) { p.End = cpis.Date{} }), []problem{{cpis.Invalid, exprEnd}}},
		{"end before start", planWith(func(p *cpis.Plan) { p.End = p.Start.AddDays(-1) }), []problem{{cpis.Invalid, exprEnd}}},
		{"CPP without a birth date", planWith(func(p *cpis.Plan) { p.BirthDate = cpis.Date{} }), []problem{{cpis.Invalid, exprBirth}}},
		{"CLA without a birth date", planWith(func(p *cpis.Plan) { p.Type = cpis.CLA; p.BirthDate = cpis.Date{} }), []problem{{cpis.Invalid, exprBirth}}},
		{"ending the day after the 18th birthday", planWith(func(p *cpis.Plan) { p.End = cpis.MustDate("2033-06-01") }), []problem{{cpis.Invalid, exprEnd}}},
		{"CLA ending after the 18th birthday", planWith(func(p *cpis.Plan) { p.Type = cpis.CLA; p.End = cpis.MustDate("2034-01-01") }), []problem{{cpis.Invalid, exprEnd}}},
		{"leap-day child ending the day after 1 March of the 18th year", planWith(func(p *cpis.Plan) {
			p.BirthDate, p.Start, p.End = cpis.MustDate("2008-02-29"), cpis.MustDate("2025-01-01"), cpis.MustDate("2026-03-02")
		}), []problem{{cpis.Invalid, exprEnd}}},
		{"starting before birth", planWith(func(p *cpis.Plan) { p.Start = p.BirthDate.AddDays(-1) }), []problem{{cpis.Invalid, exprStart}}},
		{"UCPP with a birth date", planWith(func(p *cpis.Plan) { p.Type = cpis.UCPP; p.End = p.Start.AddDays(200) }), []problem{{cpis.Invalid, exprBirth}}},
		{"missing LA code", planWith(func(p *cpis.Plan) { p.LA.Code = "" }), []problem{{cpis.Invalid, exprLACode}}},
		{"an LA reference with a space", planWith(func(p *cpis.Plan) { p.Reference = "CP 42" }), []problem{{cpis.Invalid, "Flag.identifier"}}},
		{"an LA reference too long", planWith(func(p *cpis.Plan) { p.Reference = strings.Repeat("a", 65) }), []problem{{cpis.Invalid, "Flag.identifier"}}},
		{"UCPP longer than 300 days", planWith(func(p *cpis.Plan) {
			p.Type, p.BirthDate, p.End = cpis.UCPP, cpis.Date{}, p.Start.AddDays(301)
		}), []problem{{cpis.Invalid, exprEnd}}},
		{"missing emergency number", planWith(func(p *cpis.Plan) { p.EmergencyPhone = "" }), []problem{{cpis.Invalid, exprEmergency}}},
		{"malformed emergency number", planWith(func(p *cpis.Plan) { p.EmergencyPhone = "call the duty team" }), []problem{{cpis.Invalid, exprEmergency}}},
		{"emergency number too short", planWith(func(p *cpis.Plan) { p.EmergencyPhone = "999" }), []problem{{cpis.Invalid, exprEmergency}}},
		{"bad office number", planWith(func(p *cpis.Plan) { p.OfficePhone = "0207 ext 12" }), []problem{{cpis.Invalid, exprOffice}}},
		{"several at once", planWith(func(p *cpis.Plan) {
			p.NHSNumber, p.EmergencyPhone, p.End = "123", "", cpis.MustDate("2040-01-01")
		}), []problem{{cpis.InvalidNHSNumber, exprNHS}, {cpis.Invalid, exprEnd}, {cpis.Invalid, exprEmergency}}},
		{"nothing at all", cpis.Plan{}, []problem{
			{cpis.InvalidNHSNumber, exprNHS}, {cpis.Invalid, exprCode}, {cpis.Invalid, exprStart}, {cpis.Invalid, exprEnd},
			{cpis.Invalid, exprLACode}, {cpis.Invalid, exprEmergency},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.plan.Validate()
			if diff := cmp.Diff(tt.want, problemsOf(err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if got := cpis.KindOf(err); got != tt.want[0].Kind {
				t.Errorf("KindOf = %v, want %v", got, tt.want[0].Kind)
			}
			for _, e := range cpis.Problems(err) {
				if e.Op != "cpis.Plan.Validate" || e.Msg == "" {
					t.Errorf("problem without op or message: %#v", e)
				}
			}
		})
	}
}

func TestValidPhone(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"020 7946 0101", true},
		{"02079460101", true},
		{"020-7946-0101", false},   // digits and spaces only: what a reader dials
		{"(020) 7946 0101", false}, // likewise
		{"020  7946 0101", false},  // one space at a time
		{" 020 7946 0101", false},
		{"020 7946 0101 ", false},
		{"020 7946 0101\u202e", false}, // a bidirectional override
		{"020 7946\n0101", false},
		{"++44 20 7946 0101", false},
		{"44 20 7946 0101", false},
		{"0 2 0 7 9 4 6 0 1 0 1", false}, // too long as written
		{"01632 960001", true},
		{"01632 96000", true}, // ten digits: some UK numbers have them
		{"+44 20 7946 0101", true},
		{"+442079460101", true},
		{"", false},
		{"999", false},
		{"7946 0101", false},
		{"20 7946 0101", false},
		{"+1 212 555 0100", false},
		{"020 7946 010a", false},
		{"020 7946 0101 ext 2", false},
		{"020 7946 0101 2345", false},
		{"0207946", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := cpis.ValidPhone(tt.in); got != tt.ok {
				t.Errorf("ValidPhone(%q) = %v, want %v", tt.in, got, tt.ok)
			}
		})
	}
}

func TestPlanStatusOn(t *testing.T) {
	p := planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2026-01-10"), cpis.MustDate("2026-06-30") })
	tests := []struct {
		name string
		plan cpis.Plan
		day  string
		want cpis.Status
	}{
		{"day before start", p, "2026-01-09", cpis.Inactive},
		{"start day", p, "2026-01-10", cpis.Active},
		{"during", p, "2026-03-01", cpis.Active},
		{"end day", p, "2026-06-30", cpis.Active},
		{"day after end", p, "2026-07-01", cpis.Inactive},
		{"long after end", p, "2030-01-01", cpis.Inactive},
		{"entered in error while it would be active", entered(p), "2026-03-01", cpis.EnteredInError},
		{"entered in error after its end", entered(p), "2026-07-01", cpis.EnteredInError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.plan.StatusOn(cpis.MustDate(tt.day)); got != tt.want {
				t.Errorf("StatusOn(%s) = %s, want %s", tt.day, got, tt.want)
			}
		})
	}
}

// entered returns p withdrawn by its LA.
func entered(p cpis.Plan) cpis.Plan {
	p.EnteredInError = true
	return p
}

func TestPlanVisibleToHealth(t *testing.T) {
	child := planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2026-01-10"), cpis.MustDate("2026-06-30") })
	looked := planWith(func(p *cpis.Plan) { *p = child; p.Type = cpis.CLA })
	unborn := planWith(func(p *cpis.Plan) { *p = child; p.Type = cpis.UCPP; p.BirthDate = cpis.Date{} })
	leap := planWith(func(p *cpis.Plan) { *p = child; p.End = cpis.MustDate("2027-03-01") })
	tests := []struct {
		name string
		plan cpis.Plan
		day  string
		want bool
	}{
		{"CPP before start", child, "2025-12-01", true},
		{"CPP on its end day", child, "2026-06-30", true},
		{"CPP end+364", child, "2027-06-29", true},
		{"CPP end+365", child, "2027-06-30", false},
		{"CLA end+364", looked, "2027-06-29", true},
		{"CLA end+365", looked, "2027-06-30", false},
		{"UCPP end+28", unborn, "2026-07-28", true},
		{"UCPP end+29", unborn, "2026-07-29", false},
		{"CPP window over a leap day: end+364", leap, "2028-02-28", true},
		{"CPP window over a leap day: end+365", leap, "2028-02-29", false},
		{"entered in error while active", entered(child), "2026-03-01", false},
		{"entered in error before start", entered(child), "2025-12-01", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.plan.VisibleToHealth(cpis.MustDate(tt.day)); got != tt.want {
				t.Errorf("VisibleToHealth(%s) = %v, want %v", tt.day, got, tt.want)
			}
		})
	}
}

func TestPlanDisplayUntil(t *testing.T) {
	end := cpis.MustDate("2026-06-30")
	for _, tt := range []struct {
		typ  cpis.PlanType
		want string
	}{{cpis.CPP, "2027-06-29"}, {cpis.CLA, "2027-06-29"}, {cpis.UCPP, "2026-07-28"}} {
		t.Run(string(tt.typ), func(t *testing.T) {
			if got := (cpis.Plan{Type: tt.typ, End: end}).DisplayUntil().String(); got != tt.want {
				t.Errorf("DisplayUntil = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPlanType(t *testing.T) {
	tests := []struct {
		typ     cpis.PlanType
		valid   bool
		display string
	}{
		{cpis.CPP, true, "Child Protection Plan"},
		{cpis.CLA, true, "Child Looked After"},
		{cpis.UCPP, true, "Unborn Child Protection Plan"},
		{"cpp", false, "cpp"},
		{"", false, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			if tt.typ.Valid() != tt.valid || tt.typ.Display() != tt.display {
				t.Errorf("Valid %v Display %q, want %v %q", tt.typ.Valid(), tt.typ.Display(), tt.valid, tt.display)
			}
		})
	}
	if diff := cmp.Diff([]cpis.PlanType{cpis.CPP, cpis.CLA, cpis.UCPP}, cpis.PlanTypes); diff != "" {
		t.Errorf("PlanTypes (-want +got):\n%s", diff)
	}
}

func TestPlanOverlaps(t *testing.T) {
	// held runs from 2026-01-10 to 2027-01-09 (validPlan).
	held := validPlan()
	tests := []struct {
		name  string
		other cpis.Plan
		want  bool
	}{
		{"the same plan again", validPlan(), true},
		{"inside it", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2026-03-01"), cpis.MustDate("2026-04-01") }), true},
		{"around it", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2025-12-01"), cpis.MustDate("2027-02-01") }), true},
		{"starting on its last day", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2027-01-09"), cpis.MustDate("2027-06-01") }), true},
		{"ending on its first day", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2025-06-01"), cpis.MustDate("2026-01-10") }), true},
		{"one day, its first", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2026-01-10"), cpis.MustDate("2026-01-10") }), true},
		{"the same LA code without the name", planWith(func(p *cpis.Plan) { p.LA.Name = "" }), true},
		{"other telephone numbers", planWith(func(p *cpis.Plan) { p.EmergencyPhone, p.OfficePhone = "020 7946 0999", "" }), true},
		{"starting the day after it ends", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2027-01-10"), cpis.MustDate("2027-06-01") }), false},
		{"ending the day before it starts", planWith(func(p *cpis.Plan) { p.Start, p.End = cpis.MustDate("2025-06-01"), cpis.MustDate("2026-01-09") }), false},
		{"another LA", planWith(func(p *cpis.Plan) { p.LA = cpis.LocalAuthority{Code: "ZLA02"} }), false},
		{"another type", planWith(func(p *cpis.Plan) { p.Type = cpis.CLA }), false},
		{"another NHS number", planWith(func(p *cpis.Plan) { p.NHSNumber = "9000000009" }), false},
		{"withdrawn", planWith(func(p *cpis.Plan) { p.EnteredInError = true }), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := held.Overlaps(tt.other); got != tt.want {
				t.Errorf("held.Overlaps(other) = %v, want %v", got, tt.want)
			}
			if got := tt.other.Overlaps(held); got != tt.want {
				t.Errorf("other.Overlaps(held) = %v, want %v: the relation is symmetric", got, tt.want)
			}
		})
	}
	withdrawn := held
	withdrawn.EnteredInError = true
	if withdrawn.Overlaps(validPlan()) {
		t.Error("a withdrawn plan overlaps a live one")
	}
}
