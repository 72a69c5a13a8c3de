package main

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// shareMissing is the share of plans a full import's files leave out.
const shareMissing = 0.01

// uploadFiles are the files of the upload run: each LA's plans as NDJSON
// Flags, as its case-management system would send them, and the register
// of local authorities the server is given.
type uploadFiles struct {
	dir      string
	register string    // CSV "code,name": the data set's LAs
	las      []laFiles // largest first, the order they are sent in
	lines    int       // plans in all the files
	size     int64     // bytes of all the files
	missing  int       // plans the full files leave out
}

// laFiles are one LA's two files: every plan it holds, sent twice as a
// delta; and the same less the plans it has ended meanwhile, sent as a
// full import.
type laFiles struct {
	la               cpis.LocalAuthority
	path, fullPath   string
	lines, fullLines int
	size, fullSize   int64
}

// fullLines is how many plans the full files hold.
func (u *uploadFiles) fullLines() int { return u.lines - u.missing }

// makeUploadFiles writes the files into dir: an LA's plan reference is its
// code and the plan's place among its plans, so references are unique per
// LA and the same on every run for a data set. Lines hold no id, version or
// time of update, so the same plans make the same bytes.
func makeUploadFiles(d *dataset, dir string) (*uploadFiles, error) {
	if err := checkNoOverlaps(d); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	u := &uploadFiles{dir: dir, register: filepath.Join(dir, "la-register.csv")}
	if err := writeRegister(u.register, d.las); err != nil {
		return nil, err
	}
	byLA := map[string][]int{}
	for i, p := range d.plans {
		byLA[p.LA.Code] = append(byLA[p.LA.Code], i)
	}
	missing := missingPlans(d)
	u.las = make([]laFiles, len(d.las))
	errs := make([]error, len(d.las))
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range work {
				u.las[i], errs[i] = writeLAFiles(d, dir, d.las[i].LocalAuthority, byLA[d.las[i].Code], missing)
			}
		})
	}
	for i := range d.las {
		work <- i
	}
	close(work)
	wg.Wait()
	for i, f := range u.las {
		if errs[i] != nil {
			return nil, errs[i]
		}
		u.lines += f.lines
		u.size += f.size
		u.missing += f.lines - f.fullLines
	}
	slices.SortStableFunc(u.las, func(a, b laFiles) int { return cmp.Compare(b.size, a.size) })
	return u, nil
}

// writeRegister writes the register of local authorities as the server
// reads it (CPIS_LA_REGISTER_FILE): the names the files' authors carry.
func writeRegister(path string, las []la) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"code", "name"})
	for _, l := range las {
		_ = w.Write([]string{l.Code, l.Name})
	}
	w.Flush()
	return closeAfter(f, w.Error())
}

// writeLAFiles writes la's two files from the plans at idx.
func writeLAFiles(d *dataset, dir string, la cpis.LocalAuthority, idx []int, missing map[int]bool) (laFiles, error) {
	lf := laFiles{la: la, path: filepath.Join(dir, la.Code+".ndjson"), fullPath: filepath.Join(dir, la.Code+".full.ndjson")}
	all, err := newLineWriter(lf.path)
	if err != nil {
		return lf, err
	}
	full, err := newLineWriter(lf.fullPath)
	if err != nil {
		return lf, closeAfter(all.f, err)
	}
	for k, i := range idx {
		p := d.plans[i]
		p.ID, p.Version, p.LastUpdated = "", 0, time.Time{}
		p.Reference = fmt.Sprintf("%s-%06d", la.Code, k+1)
		line, err := fhir.MarshalResource(fhir.FlagResource(p, d.today, cpis.OwnerView))
		if err != nil {
			err = fmt.Errorf("plan %d as a Flag: %w", i, err)
			return lf, closeAfter(full.f, closeAfter(all.f, err))
		}
		all.line(line)
		if !missing[i] {
			full.line(line)
		}
	}
	lf.lines, lf.size = all.n, all.size
	lf.fullLines, lf.fullSize = full.n, full.size
	return lf, closeAfter(full.f, all.finish(), full.finish())
}

// lineWriter writes an NDJSON file, counting lines and bytes.
type lineWriter struct {
	f    *os.File
	w    *bufio.Writer
	n    int
	size int64
}

func newLineWriter(path string) (*lineWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &lineWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

func (lw *lineWriter) line(b []byte) {
	lw.w.Write(b)
	lw.w.WriteByte('\n')
	lw.n++
	lw.size += int64(len(b)) + 1
}

func (lw *lineWriter) finish() error { return lw.w.Flush() }

// closeAfter closes f and returns the first error of errs, or of closing.
func closeAfter(f *os.File, errs ...error) error {
	cerr := f.Close()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return cerr
}

// missingPlans chooses the plans the full files leave out, shareMissing of
// all (at least one), spread evenly over the plans still current after
// tomorrow, so that the server ends every one of them (it ends only current
// plans: End on or after its today), even if the run goes past midnight.
func missingPlans(d *dataset) map[int]bool {
	want := max(1, int(shareMissing*float64(len(d.plans))))
	tomorrow := d.today.AddDays(1)
	var current []int
	for i, p := range d.plans {
		if p.End.After(tomorrow) {
			current = append(current, i)
		}
	}
	out := map[int]bool{}
	stride := max(1, len(current)/want)
	for k := 0; k < len(current) && len(out) < want; k += stride {
		out[current[k]] = true
	}
	return out
}

// checkNoOverlaps makes sure no LA holds two plans that overlap (same
// child, same type, periods sharing a day): the server refuses the second,
// and an upload of the data set must load every line. A person's plans are
// adjacent in the data set and each person appears once.
func checkNoOverlaps(d *dataset) error {
	for i := range d.plans {
		for j := i + 1; j < len(d.plans) && d.plans[j].NHSNumber == d.plans[i].NHSNumber; j++ {
			if d.plans[i].Overlaps(d.plans[j]) {
				return fmt.Errorf("the data set holds overlapping plans %d and %d: an upload would refuse one", i, j)
			}
		}
	}
	return nil
}
