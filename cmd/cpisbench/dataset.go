package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// la is a local authority of the data set with its contact numbers.
type la struct {
	cpis.LocalAuthority
	emergency, office string
	weight            float64 // relative number of children it looks after
}

// dataset is the benchmark's world: local authorities, plans, and the NHS
// numbers searches are made for. It is deterministic for a seed and a day:
// only the plans' times of last update depend on the time of day.
type dataset struct {
	seed     uint64
	now      time.Time
	today    cpis.Date
	las      []la
	plans    []cpis.Plan      // the plans of one person are adjacent
	withPlan []cpis.NHSNumber // every person with a plan, once
	without  []cpis.NHSNumber // valid NHS numbers with no plan
}

// Proportions of the data set (docs/domain.md, Scale, and the national
// statistics it summarises).
const (
	numLAs         = 153
	shareCLA       = 0.55
	shareCPP       = 0.40 // the rest, 5%, UCPP
	shareActive    = 0.5  // the rest ended within their display window
	shareTwoPlans  = 0.10 // of children
	maxAgeDays     = 18*365 - 1
	longestPlanDay = 3 * 365 // how far back an active plan may have started
)

// newDataset builds plans on people drawn from the 999 test range; every
// plan passes cpis.Plan.Validate, or it is an error.
func newDataset(seed uint64, nPlans int, now time.Time) (*dataset, error) {
	r := rand.New(rand.NewPCG(seed, 0x0c915))
	d := &dataset{seed: seed, now: now.UTC(), today: cpis.Today(now), las: newLAs(r)}
	people := testNHSNumbers()
	r.Shuffle(len(people), func(i, j int) { people[i], people[j] = people[j], people[i] })
	ids := newIDs(seed)
	next := 0
	for len(d.plans) < nPlans {
		nhs := people[next]
		next++
		d.withPlan = append(d.withPlan, nhs)
		d.plans = append(d.plans, d.person(r, ids, nhs, nPlans-len(d.plans))...)
	}
	d.without = people[next:]
	if len(d.without) < len(d.withPlan) {
		return nil, fmt.Errorf("too many plans for the 999 test range: %d people with plans leave %d numbers without", len(d.withPlan), len(d.without))
	}
	for i, p := range d.plans {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("generated plan %d breaks a rule: %w", i, err)
		}
	}
	return d, nil
}

// person returns one person's plans: a UCPP on a mother, or one or (for
// some children) two plans on a child; at most room plans.
func (d *dataset) person(r *rand.Rand, ids *idSource, nhs cpis.NHSNumber, room int) []cpis.Plan {
	l := d.pickLA(r)
	active := r.Float64() < shareActive
	var typ cpis.PlanType
	switch x := r.Float64(); {
	case x < shareCLA:
		typ = cpis.CLA
	case x < shareCLA+shareCPP:
		typ = cpis.CPP
	default:
		p := d.unborn(r, active)
		return []cpis.Plan{d.finish(r, ids, p, nhs, l)}
	}
	p := d.child(r, typ, active)
	plans := []cpis.Plan{d.finish(r, ids, p, nhs, l)}
	if room > 1 && r.Float64() < shareTwoPlans {
		other := map[cpis.PlanType]cpis.PlanType{cpis.CLA: cpis.CPP, cpis.CPP: cpis.CLA}[typ]
		if q, ok := d.second(r, other, p.BirthDate, r.Float64() < shareActive); ok {
			plans = append(plans, d.finish(r, ids, q, nhs, l))
		}
	}
	return plans
}

// child is a CPP or CLA, active today or ended within the last 364 days,
// for a child whose date of birth fits the 18th-birthday rule.
func (d *dataset) child(r *rand.Rand, typ cpis.PlanType, active bool) cpis.Plan {
	t := dayNum(d.today)
	var start, end int
	if active {
		start, end = t-r.IntN(longestPlanDay+1), t+r.IntN(731)
	} else {
		end = t - 1 - r.IntN(cpis.ChildPlanDisplayDays)
		start = end - 14 - r.IntN(longestPlanDay)
	}
	// Born no later than the start, and no more than 18 years before the end.
	oldest := dayNum(fromDay(end).AddYears(-18)) + 1
	birth := oldest + r.IntN(start-oldest+1)
	return cpis.Plan{Type: typ, Start: fromDay(start), End: fromDay(end), BirthDate: fromDay(birth)}
}

// unborn is a UCPP: started in pregnancy, ending at the expected date of
// delivery, or ended within the last 28 days.
func (d *dataset) unborn(r *rand.Rand, active bool) cpis.Plan {
	t := dayNum(d.today)
	var start, end int
	if active {
		// A pregnancy is about 280 days: a plan started elapsed days ago
		// ends within what is left of it (cpis.MaxUnbornPlanDays bounds it).
		elapsed := r.IntN(241)
		start, end = t-elapsed, t+r.IntN(281-elapsed)
	} else {
		end = t - 1 - r.IntN(cpis.UnbornPlanDisplayDays)
		start = end - 30 - r.IntN(211)
	}
	return cpis.Plan{Type: cpis.UCPP, Start: fromDay(start), End: fromDay(end)}
}

// second is another plan of a child born on birth: active today or ended
// within the last 364 days, and not ending after the 18th birthday; ok is
// false if no such plan fits (a child born today, or who has just turned
// 18 and whose plans have ended).
func (d *dataset) second(r *rand.Rand, typ cpis.PlanType, birth cpis.Date, active bool) (cpis.Plan, bool) {
	t, b, adult := dayNum(d.today), dayNum(birth), dayNum(birth.AddYears(18))
	var start, end int
	if active && adult >= t {
		start = max(b, t-r.IntN(longestPlanDay+1))
		end = min(adult, t+r.IntN(731))
	} else {
		lo, hi := max(b, t-cpis.ChildPlanDisplayDays), min(t-1, adult)
		if lo > hi {
			return cpis.Plan{}, false
		}
		end = lo + r.IntN(hi-lo+1)
		start = max(b, end-14-r.IntN(longestPlanDay))
	}
	return cpis.Plan{Type: typ, Start: fromDay(start), End: fromDay(end), BirthDate: birth}, true
}

// finish gives p its identity, LA and time of last update: some instant
// between its start and now.
func (d *dataset) finish(r *rand.Rand, ids *idSource, p cpis.Plan, nhs cpis.NHSNumber, l la) cpis.Plan {
	p.ID, p.NHSNumber, p.LA = ids.next(), nhs, l.LocalAuthority
	p.EmergencyPhone, p.OfficePhone = l.emergency, l.office
	// A fraction, not Int64N(span): the span depends on the time of day, and
	// Int64N draws a varying number of values, which would make every plan
	// after this one differ between two runs on the same day.
	from := p.Start.Start()
	p.LastUpdated = from.Add(time.Duration(r.Float64() * float64(d.now.Sub(from)))).UTC().Truncate(time.Microsecond)
	return p
}

// newLAs are the 153 local authorities of England, fictional: codes
// ZLB001..ZLB153, and numbers in Ofcom's range reserved for drama (020 7946
// 0xxx), so nothing here can reach a real office. Sizes vary as real LAs'
// caseloads do, about tenfold.
func newLAs(r *rand.Rand) []la {
	kinds := []string{"Borough Council", "County Council", "City Council", "Metropolitan Borough Council", "District Council"}
	out := make([]la, numLAs)
	for i := range out {
		n := i + 1
		out[i] = la{
			LocalAuthority: cpis.LocalAuthority{Code: fmt.Sprintf("ZLB%03d", n), Name: fmt.Sprintf("Fictional %03d %s", n, kinds[i%len(kinds)])},
			emergency:      fmt.Sprintf("020 7946 0%03d", n),
			office:         fmt.Sprintf("020 7946 0%03d", 500+n),
			weight:         0.3 + 2.7*r.Float64(),
		}
	}
	return out
}

// pickLA chooses an LA with probability proportional to its weight.
func (d *dataset) pickLA(r *rand.Rand) la {
	total := 0.0
	for _, l := range d.las {
		total += l.weight
	}
	x := r.Float64() * total
	for _, l := range d.las {
		if x -= l.weight; x < 0 {
			return l
		}
	}
	return d.las[len(d.las)-1]
}

// testNHSNumbers are all the valid NHS numbers of the 999 test range, in
// order: each candidate 999000000..999999999 with its check digit, kept if
// cpis.ParseNHSNumber accepts it (no check digit exists for a check value
// of 10). The digits are counted up in place: formatting a million numbers
// would cost more than the rest of the data set.
func testNHSNumbers() []cpis.NHSNumber {
	out := make([]cpis.NHSNumber, 0, 910_000)
	digits := []byte("9990000000")
	for range 1_000_000 {
		sum := 0
		for i := range 9 {
			sum += int(digits[i]-'0') * (10 - i)
		}
		digits[9] = byte('0' + (11-sum%11)%11%10)
		if nhs, err := cpis.ParseNHSNumber(string(digits)); err == nil {
			out = append(out, nhs)
		}
		increment(digits[3:9]) // the six digits after 999
	}
	return out
}

// increment adds one to the decimal number in digits, wrapping at the top.
func increment(digits []byte) {
	for i := len(digits) - 1; i >= 0; i-- {
		if digits[i] < '9' {
			digits[i]++
			return
		}
		digits[i] = '0'
	}
}

// dayNum is d as days since 1970-01-01, for arithmetic on dates.
func dayNum(d cpis.Date) int {
	return int(time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// fromDay is the date n days after 1970-01-01.
func fromDay(n int) cpis.Date { return cpis.DateOf(time.Unix(int64(n)*86400, 0).UTC()) }

// idSource makes UUIDs from a seeded stream, so that a data set is the same
// on every run.
type idSource struct{ r *rand.ChaCha8 }

func newIDs(seed uint64) *idSource {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return &idSource{rand.NewChaCha8(key)}
}

func (s *idSource) next() string { return uuid.Must(uuid.NewRandomFromReader(s.r)).String() }
