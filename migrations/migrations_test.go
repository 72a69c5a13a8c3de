package migrations

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

// step is what must agree between dialects: the version and its name.
type step struct {
	Version int
	Name    string
}

func steps(tb testing.TB, dialect string) []step {
	tb.Helper()
	ms, err := List(dialect)
	if err != nil {
		tb.Fatalf("List(%q): %v", dialect, err)
	}
	var out []step
	for _, m := range ms {
		if strings.TrimSpace(m.SQL) == "" {
			tb.Errorf("%s migration %d (%s) is empty", dialect, m.Version, m.Name)
		}
		out = append(out, step{m.Version, m.Name})
	}
	return out
}

func TestDialectsHaveSameSequence(t *testing.T) {
	sqlite, postgres := steps(t, SQLite), steps(t, Postgres)
	if diff := cmp.Diff(sqlite, postgres); diff != "" {
		t.Errorf("the dialects' migrations differ (-sqlite +postgres):\n%s", diff)
	}
	want := []step{{1, "plans"}, {2, "audit_events"}, {3, "audit_source"}, {4, "audit_trace_id"}, {5, "plan_reference"},
		{6, "plan_source_digest"}}
	if diff := cmp.Diff(want, sqlite[:min(len(sqlite), len(want))]); diff != "" {
		t.Errorf("the first migrations are not the agreed ones (-want +got):\n%s", diff)
	}
}

func TestListUnknownDialect(t *testing.T) {
	if _, err := List("mysql"); cpis.KindOf(err) != cpis.Invalid {
		t.Errorf("List(mysql) error %v, want kind Invalid", err)
	}
}

func TestList(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	tests := []struct {
		name  string
		files fstest.MapFS
		want  []Migration // nil: an error is expected
	}{
		{"sorted by version", fstest.MapFS{
			"d/0002_b.sql": file("B"),
			"d/0001_a.sql": file("A"),
			"d/0003_c.sql": file("C"),
		}, []Migration{{1, "a", "A"}, {2, "b", "B"}, {3, "c", "C"}}},
		{"a gap", fstest.MapFS{"d/0001_a.sql": file("A"), "d/0003_c.sql": file("C")}, nil},
		{"not from 1", fstest.MapFS{"d/0002_b.sql": file("B")}, nil},
		{"a repeated version", fstest.MapFS{"d/0001_a.sql": file("A"), "d/0001_b.sql": file("B")}, nil},
		{"a misnamed file", fstest.MapFS{"d/0001_a.sql": file("A"), "d/2_b.sql": file("B")}, nil},
		{"upper case", fstest.MapFS{"d/0001_Plans.sql": file("A")}, nil},
		{"a directory", fstest.MapFS{"d/0001_a.sql/x": file("A")}, nil},
		{"no files", fstest.MapFS{"d": &fstest.MapFile{Mode: fs.ModeDir}}, nil},
		{"no directory", fstest.MapFS{"e/0001_a.sql": file("A")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := list(tt.files, "d")
			if tt.want == nil {
				if err == nil {
					t.Fatalf("list = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("list mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
