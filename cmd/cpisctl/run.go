package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// env is what a command may use of the world: the environment, the output
// streams and the clock, all injected so that tests can set them.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	now            func() time.Time
}

// command is one subcommand. To add one, write its function and list it in
// commands.
type command struct {
	name    string
	usage   string // its arguments, for help
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands, in the order help shows them.
func commands() []command {
	return []command{
		{"migrate", "", "apply the pending PostgreSQL schema migrations (and create the coming months' audit partitions)", migrate},
		{"audit-retention", "--keep-months N", "drop the audit partitions older than the current month and the N (>= 12) before it", auditRetention},
		{"help", "", "show this help", help},
	}
}

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (run `cpisctl help`)" }

// run runs the subcommand named by args[0].
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return (&env{getenv: getenv, stdout: stdout, stderr: stderr, now: time.Now}).run(ctx, args)
}

func (e *env) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{"no command given"}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	return &usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func help(_ context.Context, e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "usage: cpisctl <command> [arguments]\n\ncommands:")
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s %s\t%s\n", c.name, c.usage, c.summary)
	}
	w.Flush()
	fmt.Fprintln(e.stdout, "\nThe database is named by CPIS_DATABASE_URL, or read from the file named by CPIS_DATABASE_URL_FILE.")
	return nil
}

// flags parses a subcommand's flags; errors are usage errors.
func flags(name string, args []string, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(args); err != nil {
		return &usageError{fmt.Sprintf("%s: %v", name, err)}
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("%s: unexpected argument %q", name, fs.Arg(0))}
	}
	return nil
}

// databaseURL reads CPIS_DATABASE_URL, or the file CPIS_DATABASE_URL_FILE
// names (as container platforms mount secrets), the same way cpisd does.
func databaseURL(getenv func(string) string) (string, error) {
	if v := getenv("CPIS_DATABASE_URL"); v != "" {
		return v, nil
	}
	path := getenv("CPIS_DATABASE_URL_FILE")
	if path == "" {
		return "", &usageError{"set CPIS_DATABASE_URL, or CPIS_DATABASE_URL_FILE, to the PostgreSQL database URL"}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("CPIS_DATABASE_URL_FILE: %w", err)
	}
	url := strings.TrimSpace(string(b))
	if url == "" {
		return "", fmt.Errorf("CPIS_DATABASE_URL_FILE: %s is empty", path)
	}
	return url, nil
}
