// Package migrations holds the database schemas of both stores as numbered
// SQL files, embedded in the binaries. Both dialects have the same sequence
// of versions and names, so that a schema version means the same thing
// whichever store runs it; each store applies the files and records them in
// its own schema_migrations table.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/cpis-fhir/cpis/internal/cpis"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// The dialects, named after the directories that hold their files.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Migration is one step of a schema: the file NNNN_name.sql gives Version
// NNNN and Name name.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// fileName is the one accepted form, so that a stray file cannot be
// applied, or skipped, by accident.
var fileName = regexp.MustCompile(`^([0-9]{4})_([a-z0-9_]+)\.sql$`)

// List returns the migrations of dialect, oldest first. It fails if a file
// is misnamed or the versions are not 1, 2, 3 ... without a gap or a repeat:
// both would be a mistake in this repository, never in a deployment.
func List(dialect string) ([]Migration, error) {
	if dialect != SQLite && dialect != Postgres {
		return nil, cpis.E("migrations.List", cpis.Invalid, fmt.Sprintf("unknown dialect %q", dialect))
	}
	return list(files, dialect)
}

// list reads the migrations in directory dir of fsys.
func list(fsys fs.FS, dir string) ([]Migration, error) {
	const op = "migrations.List"
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, cpis.E(op, err)
	}
	var ms []Migration
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, cpis.E(op, cpis.Invalid, fmt.Sprintf("%s: not a migration file named NNNN_name.sql", path.Join(dir, e.Name())))
		}
		sql, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, cpis.E(op, err)
		}
		v, _ := strconv.Atoi(m[1]) // four digits: cannot fail
		ms = append(ms, Migration{Version: v, Name: m[2], SQL: string(sql)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, cpis.E(op, cpis.Invalid, fmt.Sprintf("%s: version %d found where %d was expected", dir, m.Version, i+1))
		}
	}
	if len(ms) == 0 {
		return nil, cpis.E(op, cpis.Invalid, fmt.Sprintf("%s: no migrations", dir))
	}
	return ms, nil
}
