package register

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"sync"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Line is one line of an LA's file as the entry point read it: its bytes
// and their digest, or why it could not be read at all (Err).
type Line struct {
	N      int // 1 for the first line
	Raw    []byte
	Digest string // of Raw: a line that wrote a plan unchanged since is not parsed again
	Err    error
}

// LineParser reads the plan on a line (the entry point's wire format): the
// plan, or why it cannot be read and, when it can be read, the LA's reference
// on the line (a full import never ends the plan of a line it refused).
type LineParser func(raw []byte) (plan cpis.Plan, reference string, err error)

// ImportOptions are how an LA's file is read.
type ImportOptions struct {
	// Full says the file is the LA's whole current caseload: each current plan
	// of the LA with a reference missing from it is ended.
	Full bool
	// DryRun reports what the import would do, and stores nothing.
	DryRun bool
	// Force ends plans missing from a full file even when they are more
	// than the guard allows (GuardShare).
	Force bool
}

// ImportReport is what an import did (or, in a dry run, would do).
type ImportReport struct {
	Options                            ImportOptions
	Created, Updated, Unchanged, Ended int
	NotReconciled                      int // current plans without a reference: never ended by an import
	Rejections                         []Rejection
	// ReconciliationSkipped says a full import ended nothing because a line
	// it refused could not be read far enough to know its reference.
	ReconciliationSkipped bool
}

// Rejection is one line the import refused, and why.
type Rejection struct {
	Line int
	Err  error
}

// The guard of a full import: it ends at most GuardShare of the LA's
// current plans, or GuardMinimum, unless forced. A truncated file must
// never silently end an LA's caseload.
const (
	GuardShare   = 0.10
	GuardMinimum = 10
)

// importChunk is how many lines are looked up, decided and stored
// together: one ByDigest, one ByReference, one ChildPlans and one Put each.
const importChunk = 1000

const opImport = "register.Import"

// Import loads an LA's file: each line a plan keyed by the LA's reference,
// created when the LA holds none with it, updated when it changed, left as
// it is when it did not (a line identical to the one that last wrote its plan
// is not even parsed again). Every line that can be stored is stored, all in
// one transaction with the audit record of each write: if the database fails
// part way, nothing is stored and the error is Unavailable. Lines that break
// a rule are refused and reported by number, with why; they never stop the
// others. lines ends with an error when the file itself cannot be read on:
// then nothing is stored.
//
// Lines are parsed on every core, a chunk at a time, while the chunk before
// is decided and stored: parsing is most of an import's work.
func (s *Service) Import(ctx context.Context, c Caller, lines iter.Seq2[Line, error], parse LineParser, o ImportOptions) (ImportReport, error) {
	p, err := writer(c, opImport)
	if err != nil {
		return ImportReport{}, err
	}
	im := &importer{s: s, c: c, la: p.LACode, parse: parse, seen: map[string]bool{}, rep: ImportReport{Options: o}}
	tx, err := s.store.BeginWrite(ctx, im.la)
	if err != nil {
		return ImportReport{}, wrap(opImport, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := im.run(ctx, tx, lines); err != nil {
		return ImportReport{}, err
	}
	if o.Full {
		if err := im.reconcile(ctx, tx); err != nil {
			return ImportReport{}, err
		}
	}
	if o.DryRun {
		return im.rep, nil // the deferred Rollback undoes it all
	}
	return im.rep, wrap(opImport, tx.Commit(ctx))
}

// importer is one import under way.
type importer struct {
	s     *Service
	c     Caller
	la    string
	parse LineParser
	seen  map[string]bool // references the file holds, for a full import
	rep   ImportReport
}

// chunk is a group of lines on their way through the import.
type chunk struct {
	lines  []Line
	known  map[string]cpis.Plan // the LA's live plans last written by one of these lines, by digest
	parsed []parsedLine         // by position in lines
	done   chan struct{}        // closed once parsed is filled
}

type parsedLine struct {
	plan cpis.Plan
	ref  string
	err  error
}

// run reads lines a chunk at a time: it looks up the chunk's digests, sets
// its parse going, and decides and stores the chunk before it meanwhile.
func (im *importer) run(ctx context.Context, tx store.WriteTx, lines iter.Seq2[Line, error]) error {
	var prev *chunk
	next := &chunk{}
	flush := func() error {
		cur := next
		next = &chunk{}
		if err := im.start(ctx, tx, cur); err != nil {
			return err
		}
		if prev != nil {
			if err := im.finish(ctx, tx, prev); err != nil {
				return err
			}
		}
		prev = cur
		return nil
	}
	for line, err := range lines {
		if err != nil {
			return err
		}
		if next.lines = append(next.lines, line); len(next.lines) == importChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(next.lines) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	if prev == nil {
		return nil
	}
	return im.finish(ctx, tx, prev)
}

// start looks up which of ch's lines wrote a plan still as they left it,
// and parses the others in the background, on every core.
func (im *importer) start(ctx context.Context, tx store.WriteTx, ch *chunk) error {
	digests := make([]string, 0, len(ch.lines))
	for _, l := range ch.lines {
		if l.Err == nil {
			digests = append(digests, l.Digest)
		}
	}
	known, err := tx.ByDigest(ctx, digests)
	if err != nil {
		return wrap(opImport, err)
	}
	ch.known, ch.parsed, ch.done = known, make([]parsedLine, len(ch.lines)), make(chan struct{})
	go func() {
		defer close(ch.done)
		var wg sync.WaitGroup
		work := make(chan int)
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := range work {
					ch.parsed[i].plan, ch.parsed[i].ref, ch.parsed[i].err = im.parse(ch.lines[i].Raw)
				}
			})
		}
		for i, l := range ch.lines {
			if _, ok := known[l.Digest]; !ok && l.Err == nil {
				work <- i
			}
		}
		close(work)
		wg.Wait()
	}()
	return nil
}

// finish decides ch's lines, in file order, and stores what they write.
func (im *importer) finish(ctx context.Context, tx store.WriteTx, ch *chunk) error {
	<-ch.done
	writes, numbers := im.writes(ch)
	if len(writes) == 0 {
		return nil
	}
	v := newView(im.la)
	v.quiet = true
	if err := v.load(ctx, tx, writes); err != nil {
		return wrap(opImport, err)
	}
	for i, w := range writes {
		res, err := im.s.decide(v, im.c, w, opImport)
		if err != nil {
			im.reject(numbers[i], err)
			continue
		}
		switch res.Outcome {
		case Created:
			im.rep.Created++
		case Updated:
			im.rep.Updated++
		case Unchanged:
			im.rep.Unchanged++
		}
	}
	return wrap(opImport, tx.Put(ctx, v.versions, v.recs))
}

func (im *importer) reject(line int, err error) {
	im.rep.Rejections = append(im.rep.Rejections, Rejection{Line: line, Err: err})
}

// writes turns ch's lines into conditional updates by reference, counting
// those known unchanged and refusing those that break a rule of their own.
func (im *importer) writes(ch *chunk) ([]Write, []int) {
	var writes []Write
	var numbers []int
	for i, l := range ch.lines {
		known, unchanged := ch.known[l.Digest]
		pl := ch.parsed[i]
		ref := pl.ref
		if unchanged {
			ref = known.Reference
		}
		if !im.first(l, ref) {
			continue
		}
		switch {
		case l.Err != nil:
			im.reject(l.N, l.Err)
		case unchanged:
			im.rep.Unchanged++
		case pl.err != nil:
			im.reject(l.N, pl.err)
		case pl.plan.Reference == "":
			im.reject(l.N, cpis.E(opImport, cpis.MissingValue, cpis.Expr("Flag.identifier"),
				"each line of an import needs the LA's plan reference: an identifier with system https://cpis.example.org/fhir/Id/la-plan-reference"))
		default:
			w, err := im.s.prepare(im.c.Principal, Write{Kind: Update, Reference: ref, Plan: pl.plan, Digest: l.Digest}, opImport)
			if err != nil {
				im.reject(l.N, err)
				continue
			}
			writes, numbers = append(writes, w), append(numbers, l.N)
		}
	}
	return writes, numbers
}

// first records that the file holds reference ref (on line l), and reports
// whether it is the first line to: each plan appears once in a file. A line
// whose reference cannot be read makes a full import end nothing: its plan
// must not be taken for missing.
func (im *importer) first(l Line, ref string) bool {
	switch {
	case ref != "" && im.seen[ref]:
		im.reject(l.N, cpis.E(opImport, cpis.Invalid, cpis.Expr("Flag.identifier"), "this reference is on an earlier line of the file: each plan appears once"))
		return false
	case ref != "":
		im.seen[ref] = true
	case im.rep.Options.Full:
		im.rep.ReconciliationSkipped = true
	}
	return true
}

// reconcile ends each current plan of the LA with a reference the file did
// not hold, unless that is more than the guard allows (and the import is
// not forced): then nothing at all is stored.
func (im *importer) reconcile(ctx context.Context, tx store.WriteTx) error {
	today := cpis.Today(im.c.At)
	total := 0
	var missing []cpis.Plan
	err := tx.Current(ctx, today, func(p cpis.Plan) error {
		total++
		switch {
		case p.Reference == "":
			im.rep.NotReconciled++
		case !im.seen[p.Reference]:
			missing = append(missing, p)
		}
		return nil
	})
	if err != nil {
		return wrap(opImport, err)
	}
	if im.rep.ReconciliationSkipped || len(missing) == 0 {
		return nil
	}
	if n := len(missing); n > GuardMinimum && float64(n) > GuardShare*float64(total) && !im.rep.Options.Force {
		return cpis.E(opImport, cpis.Unprocessable, fmt.Sprintf(
			"this full import would end %d of your local authority's %d current plans, more than %d%%: nothing was stored. "+
				"If the file really is your whole caseload, send it again with force=true", n, total, int(GuardShare*100)))
	}
	for start := 0; start < len(missing); start += importChunk {
		v := newView(im.la)
		for _, p := range missing[start:min(start+importChunk, len(missing))] {
			v.add(p)
			im.s.endPlan(v, im.c, p, today)
			im.rep.Ended++
		}
		if err := tx.Put(ctx, v.versions, v.recs); err != nil {
			return wrap(opImport, err)
		}
	}
	return nil
}
