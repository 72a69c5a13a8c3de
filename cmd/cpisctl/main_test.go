package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cpis-fhir/cpis/internal/store/postgres"
	"github.com/cpis-fhir/cpis/internal/store/postgres/pgtest"
)

// password is put in database URLs that carry none, so that the tests can
// check it is never printed. PostgreSQL's trust authentication ignores it.
const password = "pw-must-not-show"

// withPassword returns a postgres:// URL with a password, and the password
// to look for in the output: the URL's own, or else password added to it.
// A password that is also the user or database name (postgres:postgres in
// CI) cannot be looked for: the output names those.
func withPassword(t *testing.T, raw string) (string, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := u.User.Password(); ok {
		if strings.Contains(describe(raw), p) {
			return raw, ""
		}
		return raw, p
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), password
}

// someDay is the clock of the tests whose date does not matter: a fixed
// one, so that none depends on the day it runs.
var someDay = time.Date(2026, time.November, 22, 10, 0, 0, 0, time.UTC)

// cli runs cpisctl with args, environment vars and a clock; it returns
// what it printed and its error, checking secret shows nowhere.
func cli(t *testing.T, secret string, vars map[string]string, now time.Time, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{getenv: func(k string) string { return vars[k] }, stdout: &out, stderr: &errOut, now: func() time.Time { return now }}
	err := e.run(t.Context(), args)
	all := out.String() + errOut.String()
	if err != nil {
		all += err.Error()
	}
	if secret != "" && strings.Contains(all, secret) {
		t.Errorf("cpisctl %v printed the password:\n%s", args, all)
	}
	return out.String(), err
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		vars  map[string]string
		usage bool   // the error is a usage error
		want  string // in the output or the error
	}{
		{"help", []string{"help"}, nil, false, "audit-retention --keep-months N"},
		{"no command", nil, nil, true, "no command given"},
		{"unknown command", []string{"frobnicate"}, nil, true, `unknown command "frobnicate"`},
		{"no database", []string{"migrate"}, nil, true, "CPIS_DATABASE_URL_FILE"},
		{"stray argument", []string{"migrate", "now"}, nil, true, `unexpected argument "now"`},
		{"retention without months", []string{"audit-retention"}, map[string]string{"CPIS_DATABASE_URL": "postgres://x"}, true, "--keep-months N is required"},
		{"retention too short", []string{"audit-retention", "--keep-months", "11"}, map[string]string{"CPIS_DATABASE_URL": "postgres://x"}, true, "N >= 12"},
		{"retention not a number", []string{"audit-retention", "--keep-months", "a year"}, nil, true, "invalid value"},
		{"missing URL file", []string{"migrate"}, map[string]string{"CPIS_DATABASE_URL_FILE": "/nonexistent/url"}, false, "CPIS_DATABASE_URL_FILE"},
		{"help lists upload", []string{"help"}, nil, false, "upload [--full] [--dry-run] [--force] --server URL --token-file PATH FILE"},
		{"upload help", []string{"upload", "--help"}, nil, false, "Exit status: 0 every line was loaded; 2 the server rejected some lines"},
		{"upload help lists its flags", []string{"upload", "-h"}, nil, false, "-token-file PATH"},
		{"migrate help", []string{"migrate", "--help"}, nil, false, "usage: cpisctl migrate\n\napply the pending"},
		{"flag after an argument", []string{"migrate", "now", "--verbose"}, nil, true, "flag provided but not defined: -verbose"},
		{"no upload file", []string{"upload", "--server", "https://cpis.example.org/fhir", "--token-file", "/t"}, nil, true, "give the FILE to send"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := cli(t, password, tt.vars, someDay, tt.args...)
			if got := errors.As(err, new(*usageError)); got != tt.usage {
				t.Errorf("error %v: usage error %v, want %v", err, got, tt.usage)
			}
			if all := out + errorText(err); !strings.Contains(all, tt.want) {
				t.Errorf("output and error %q do not contain %q", all, tt.want)
			}
		})
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestMigrate(t *testing.T) {
	u, secret := withPassword(t, pgtest.URL(t))
	file := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(file, []byte("  "+u+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := map[string]string{"CPIS_DATABASE_URL_FILE": file}
	// The last second of May in London is still May in UTC.
	now := time.Date(2027, time.May, 31, 22, 59, 59, 0, time.UTC)
	out, err := cli(t, secret, fromFile, now, "migrate")
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	for _, want := range []string{"migrating " + describe(u), "applied 0001_plans", "applied 0002_audit_events",
		"audit partitions exist for 2027-05 through 2027-08 (UTC months)"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate printed %q, want it to contain %q", out, want)
		}
	}
	out, err = cli(t, secret, map[string]string{"CPIS_DATABASE_URL": u}, now, "migrate")
	if err != nil || !strings.Contains(out, "nothing to apply") || strings.Contains(out, "applied") {
		t.Errorf("migrate again: %v\n%s\nwant nothing applied", err, out)
	}
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatalf("Open after migrate: %v", err)
	}
	s.Close()
}

func TestDescribe(t *testing.T) {
	tests := []struct{ url, want string }{
		{"postgres://cpis:" + password + "@db.example:5433/cpis?sslmode=require", `database "cpis" on db.example:5433 as user "cpis"`},
		{"host=db.example port=5433 dbname=cpis user=cpis password=" + password, `database "cpis" on db.example:5433 as user "cpis"`},
		{"postgres://cpis:" + password + "@db.example:port/cpis", "the database (its URL cannot be parsed)"},
	}
	for _, tt := range tests {
		if got := describe(tt.url); got != tt.want {
			t.Errorf("describe(...) = %q, want %q", got, tt.want)
		}
	}
}

func TestMigrateUnreachable(t *testing.T) {
	vars := map[string]string{"CPIS_DATABASE_URL": "postgres://postgres:" + password + "@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"}
	if _, err := cli(t, password, vars, someDay, "migrate"); err == nil {
		t.Fatal("migrate of an unreachable database succeeded")
	}
	vars["CPIS_DATABASE_URL"] = "postgres://postgres:" + password + "@127.0.0.1:bad-port/postgres"
	if _, err := cli(t, password, vars, someDay, "migrate"); err == nil {
		t.Fatal("migrate with an unparsable URL succeeded")
	}
}

// TestAuditRetention keeps twelve months before the current one, the
// current month being the one of cpisctl's clock in UTC, whatever the
// database's clock: at 23:59:57 UTC on 31 May, already June in London, it
// is still May.
func TestAuditRetention(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2029, time.May, 31, 23, 59, 57, 0, time.UTC)
	u, secret := withPassword(t, pgtest.MigratedURLAt(t, now))
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	y, m, _ := now.Date()
	month := func(n int) time.Time { return time.Date(y, m+time.Month(n), 1, 0, 0, 0, 0, time.UTC) }
	name := func(n int) string { return "audit_events_y" + month(n).Format("2006") + "m" + month(n).Format("01") }
	s, err := postgres.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, ensure := range []struct{ from, ahead int }{{-30, 3}, {-13, 1}} {
		if err := s.EnsureAuditPartitions(ctx, month(ensure.from), ensure.ahead); err != nil {
			t.Fatal(err)
		}
	}
	vars := map[string]string{"CPIS_DATABASE_URL": u}
	out, err := cli(t, secret, vars, now, "audit-retention", "--keep-months", "12")
	if err != nil {
		t.Fatalf("audit-retention: %v\n%s", err, out)
	}
	var want []string
	for _, n := range []int{-30, -29, -28, -27, -13} {
		want = append(want, "dropped "+name(n))
	}
	if got := dropLines(out); !slices.Equal(got, want) {
		t.Errorf("audit-retention printed %q, want %q", got, want)
	}
	var left []string
	rows, err := conn.Query(ctx, `SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	if left, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{-12, 0, 1} {
		if !slices.Contains(left, name(n)) {
			t.Errorf("partition %s was dropped; left: %v", name(n), left)
		}
	}
	out, err = cli(t, secret, vars, now, "audit-retention", "--keep-months", "12")
	if err != nil || !strings.Contains(out, "nothing to drop") {
		t.Errorf("audit-retention again: %v\n%s\nwant nothing to drop", err, out)
	}
}

// dropLines returns the "dropped ..." lines of out.
func dropLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "dropped ") {
			lines = append(lines, l)
		}
	}
	return lines
}
