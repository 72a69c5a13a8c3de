package main

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/fhir"
	"github.com/cpis-fhir/cpis/internal/cpis"
)

// TestUploadFiles reads back every file of the upload: each line a CP-IS
// Flag the server would accept on its own (the profile, the SOP's rules, a
// reference unique within its LA, the LA of the file and of the register),
// every plan of the data set once, and full files that leave out 1% of the
// plans, all of them current.
func TestUploadFiles(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d, err := newDataset(5, 400, now)
	if err != nil {
		t.Fatal(err)
	}
	u, err := makeUploadFiles(d, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := os.Open(u.register)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	las, err := cpis.ReadAuthorities(reg)
	if err != nil {
		t.Fatalf("the register file: %v", err)
	}
	if len(u.las) != numLAs || u.lines != len(d.plans) || u.missing != len(d.plans)/100 {
		t.Fatalf("%d files, %d lines, %d missing; want %d, %d, %d", len(u.las), u.lines, u.missing, numLAs, len(d.plans), len(d.plans)/100)
	}
	seen := map[cpis.NHSNumber]int{}
	for i, f := range u.las {
		if i > 0 && f.size > u.las[i-1].size {
			t.Errorf("%s is sent after a smaller file", f.la.Code)
		}
		if l, ok := las.Lookup(f.la.Code); !ok || l != f.la {
			t.Errorf("%s is not in the register as the files name it", f.la.Code)
		}
		all, lines := readPlans(t, f.path, f.la)
		full := readLines(t, f.fullPath)
		if len(all) != f.lines || len(full) != f.fullLines {
			t.Errorf("%s: %d and %d lines, the files say %d and %d", f.la.Code, len(all), len(full), f.lines, f.fullLines)
		}
		kept := map[string]bool{}
		for _, line := range full {
			ref, _ := fhir.FlagReference([]byte(line))
			if lines[ref] != line {
				t.Fatalf("%s: a line of the full file is not the same plan's line in the other", f.la.Code)
			}
			kept[ref] = true
		}
		for ref, p := range all {
			seen[p.NHSNumber]++
			if !kept[ref] && !p.End.After(d.today.AddDays(1)) {
				t.Errorf("%s %s is left out of the full file but is not current: the server would not end it", f.la.Code, ref)
			}
		}
	}
	for _, p := range d.plans {
		seen[p.NHSNumber]--
	}
	for nhs, n := range seen {
		if n != 0 {
			t.Fatalf("%s: %d plans more in the files than in the data set", nhs, n)
		}
	}
}

// readPlans parses every line of an upload file as the server does, keyed
// by reference, with the lines; a line it would refuse fails the test.
func readPlans(t *testing.T, path string, la cpis.LocalAuthority) (map[string]cpis.Plan, map[string]string) {
	t.Helper()
	plans, lines := map[string]cpis.Plan{}, map[string]string{}
	for n, line := range readLines(t, path) {
		p, err := fhir.ParseFlag([]byte(line))
		if err == nil {
			err = p.Validate()
		}
		switch _, dup := plans[p.Reference]; {
		case err != nil:
			t.Fatalf("%s line %d: %v", filepath.Base(path), n+1, err)
		case dup || p.Reference == "" || p.LA.Code != la.Code || p.LA.Name != la.Name || p.ID != "":
			t.Fatalf("%s line %d: reference %q (again: %v), LA %v, id %q", filepath.Base(path), n+1, p.Reference, dup, p.LA, p.ID)
		}
		plans[p.Reference], lines[p.Reference] = p, line
	}
	return plans, lines
}

// readLines reads an NDJSON file's lines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<10)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCheckNoOverlaps: a data set holding one plan twice is refused.
func TestCheckNoOverlaps(t *testing.T) {
	d, err := newDataset(5, 200, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkNoOverlaps(d); err != nil {
		t.Fatal(err)
	}
	twice := d.plans[7]
	twice.ID = "another"
	d.plans = append(d.plans[:8], append([]cpis.Plan{twice}, d.plans[8:]...)...)
	if checkNoOverlaps(d) == nil {
		t.Error("a plan held twice was not found")
	}
}

// TestParseImportAnswer reads an answer made by the server's own encoder.
func TestParseImportAnswer(t *testing.T) {
	rep := fhir.ImportReport{Mode: "full", Created: 3, Updated: 1, Unchanged: 40, Ended: 2, Rejected: 1,
		Rejections: []fhir.Rejection{{Line: 7, Problem: cpis.E("test", cpis.Conflict, "overlaps Flag/x").(*cpis.Error)}}}
	b, err := fhir.MarshalResource(fhir.ImportParameters(rep))
	if err != nil {
		t.Fatal(err)
	}
	got, rejections, err := parseImportAnswer(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(importCounts{created: 3, updated: 1, unchanged: 40, ended: 2, rejected: 1}, got, cmp.AllowUnexported(importCounts{})); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if len(rejections) != 1 || rejections[0][:8] != "line 7: " {
		t.Errorf("rejections %q, want line 7's", rejections)
	}
	if _, _, err := parseImportAnswer([]byte(`{"resourceType":"OperationOutcome"}`)); err == nil {
		t.Error("an OperationOutcome was read as an import's answer")
	}
}
