package register

import (
	"context"
	"fmt"
	"iter"

	"github.com/cpis-fhir/cpis/internal/cpis"
	"github.com/cpis-fhir/cpis/internal/store"
)

// Line is one line of an LA's file: the plan it holds, or why it cannot be
// read (Err). Reference is the LA's reference on the line when it could be
// read even though the plan could not: a full import never ends the plan of
// a line it refused.
type Line struct {
	N         int // 1 for the first line
	Plan      cpis.Plan
	Reference string
	Err       error
}

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
	Options                                   ImportOptions
	Created, Updated, Unchanged, Ended        int
	NotReconciled                             int // current plans without a reference: never ended by an import
	Rejections                                []Rejection
	// ReconciliationSkipped says a full import ended nothing because a line
	// it refused could not be read far enough to know its reference.
	ReconciliationSkipped bool
}

// Rejection is one line the import refused, and why.
type Rejection struct {
	Line int
	Err  error
}

// Loaded is how many lines were stored or found unchanged.
func (r ImportReport) Loaded() int { return r.Created + r.Updated + r.Unchanged }

// The guard of a full import: it ends at most GuardShare of the LA's
// current plans, or GuardMinimum, unless forced. A truncated file must
// never silently end an LA's caseload.
const (
	GuardShare   = 0.10
	GuardMinimum = 10
)

// importChunk is how many lines are decided and stored together: one
// ByReference, one ChildPlans and one Put for each.
const importChunk = 1000

// Import loads an LA's file: each line a plan keyed by the LA's reference,
// created when the LA holds none with it, updated when it changed, left as
// it is when it did not. Every line that can be stored is stored, all in one
// transaction with the audit record of each write: if the database fails
// part way, nothing is stored and the error is Unavailable. Lines that break
// a rule are refused and reported by number, with why; they never stop the
// others. lines stops with an error when the file itself cannot be read on:
// then nothing is stored. Full and DryRun are as ImportOptions says.
func (s *Service) Import(ctx context.Context, c Caller, lines iter.Seq2[Line, error], o ImportOptions) (ImportReport, error) {
	const op = "register.Import"
	p, err := writer(c, op)
	if err != nil {
		return ImportReport{}, err
	}
	im := &importer{s: s, c: c, la: p.LACode, seen: map[string]bool{}, rep: ImportReport{Options: o}}
	tx, err := s.store.BeginWrite(ctx, im.la)
	if err != nil {
		return ImportReport{}, wrap(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	chunk := make([]Line, 0, importChunk)
	for line, err := range lines {
		if err != nil {
			return ImportReport{}, err
		}
		if chunk = append(chunk, line); len(chunk) == importChunk {
			if err := im.chunk(ctx, tx, chunk); err != nil {
				return ImportReport{}, err
			}
			chunk = chunk[:0]
		}
	}
	if err := im.chunk(ctx, tx, chunk); err != nil {
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
	return im.rep, wrap(op, tx.Commit(ctx))
}

// importer is one import under way.
type importer struct {
	s    *Service
	c    Caller
	la   string
	seen map[string]bool // references the file holds, for a full import
	rep  ImportReport
}

const opImport = "register.Import"

func (im *importer) reject(line int, err error) {
	im.rep.Rejections = append(im.rep.Rejections, Rejection{Line: line, Err: err})
}

// chunk decides and stores lines.
func (im *importer) chunk(ctx context.Context, tx store.WriteTx, lines []Line) error {
	writes, numbers := im.writes(lines)
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

// writes turns the lines that pass every rule of their own into
// conditional updates by reference, refusing the others.
func (im *importer) writes(lines []Line) ([]Write, []int) {
	var writes []Write
	var numbers []int
	for _, l := range lines {
		ref := l.Plan.Reference
		if ref == "" {
			ref = l.Reference
		}
		if ref != "" && im.seen[ref] {
			im.reject(l.N, cpis.E(opImport, cpis.Invalid, cpis.Expr("Flag.identifier"), "this reference is on an earlier line of the file: each plan appears once"))
			continue
		}
		switch {
		case ref != "":
			im.seen[ref] = true
		case im.rep.Options.Full:
			im.rep.ReconciliationSkipped = true // a line of unknown reference: its plan must not be ended
		}
		if l.Err != nil {
			im.reject(l.N, l.Err)
			continue
		}
		if l.Plan.Reference == "" {
			im.reject(l.N, cpis.E(opImport, cpis.MissingValue, cpis.Expr("Flag.identifier"),
				"each line of an import needs the LA's plan reference: an identifier with system https://cpis.example.org/fhir/Id/la-plan-reference"))
			continue
		}
		w, err := im.s.prepare(im.c.Principal, Write{Kind: Update, Reference: ref, Plan: l.Plan}, opImport)
		if err != nil {
			im.reject(l.N, err)
			continue
		}
		writes, numbers = append(writes, w), append(numbers, l.N)
	}
	return writes, numbers
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
