package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"
)

// env is what a command may use of the world: the environment, the
// standard streams and the clock, all injected so that tests can set them.
type env struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
	// terminal is whether stdout is a terminal: upload draws a progress bar
	// on one, and writes a single line where the output goes to a file or
	// a pipe.
	terminal bool
	now      func() time.Time
}

// command is one subcommand. To add one, write its function and list it in
// commands.
type command struct {
	name    string
	usage   string // its arguments, for help
	summary string
	run     func(ctx context.Context, e *env, args []string) error
	help    string // more than the summary, for `cpisctl NAME --help`; may be empty
}

// commands lists the subcommands, in the order help shows them.
func commands() []command {
	return []command{
		{"migrate", "", "apply the pending PostgreSQL schema migrations (and create the coming months' audit partitions)", migrate, ""},
		{"audit-retention", "--keep-months N", "drop the audit partitions older than the current month and the N (>= 12) before it", auditRetention, ""},
		{"upload", "[--full] [--dry-run] [--force] --server URL --token-file PATH FILE", "send an LA's NDJSON file (or FHIR Bundle) of Flags to the server's Flag/$import; FILE - reads standard input", upload, uploadHelp},
		{"client-assertion", "--key PATH --client-id ID --token-url URL", "print a signed client assertion (SMART Backend Services) for a registered system", clientAssertion, assertionHelp},
		{"help", "", "show this help", help, ""},
	}
}

// usageError is a mistake in the command line; main exits 2 for it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg + " (run `cpisctl help`)" }

func (e *usageError) exitStatus() int { return 2 }

// errHelpShown stops a command whose flags asked for its help, which
// flags has printed: run then returns nil.
var errHelpShown = errors.New("help shown")

// exitCode is the status main exits with after a command returned err: 0
// for none, the error's own status when it has one (2 for usage errors and
// for uploads that had lines rejected), else 1.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var s interface{ exitStatus() int }
	if errors.As(err, &s) {
		return s.exitStatus()
	}
	return 1
}

// run runs the subcommand named by args[0].
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, terminal: isTerminal(stdout), now: time.Now}
	return e.run(ctx, args)
}

// isTerminal reports whether w is a file open on a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (e *env) run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return &usageError{"no command given"}
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := c.run(ctx, e, args[1:]); !errors.Is(err, errHelpShown) {
				return err
			}
			return nil
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
	fmt.Fprintln(e.stdout, "upload talks to a CP-IS server over HTTP(S) and needs no database.")
	fmt.Fprintln(e.stdout, "`cpisctl <command> --help` shows a command's flags.")
	return nil
}

// flags parses the flags of a subcommand that takes no other argument.
func flags(e *env, name string, args []string, define func(fs *flag.FlagSet)) error {
	rest, err := parseFlags(e, name, args, define)
	if err == nil && len(rest) > 0 {
		err = &usageError{fmt.Sprintf("%s: unexpected argument %q", name, rest[0])}
	}
	return err
}

// parseFlags parses a subcommand's flags, which may come before or after
// its other arguments (the flag package alone stops at the first of them),
// and returns those arguments; everything after "--" is one. Errors are
// usage errors; -h or --help prints the command's help and returns
// errHelpShown.
func parseFlags(e *env, name string, args []string, define func(fs *flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	var rest []string
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			commandHelp(e, name, fs)
			return nil, errHelpShown
		} else if err != nil {
			return nil, &usageError{fmt.Sprintf("%s: %v", name, err)}
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

// commandHelp prints a command's usage line, its help and its flags.
func commandHelp(e *env, name string, fs *flag.FlagSet) {
	for _, c := range commands() {
		if c.name == name {
			fmt.Fprintf(e.stdout, "usage: cpisctl %s\n\n%s\n", strings.TrimSpace(c.name+" "+c.usage), c.summary)
			if c.help != "" {
				fmt.Fprintf(e.stdout, "\n%s", c.help)
			}
		}
	}
	fmt.Fprintln(e.stdout, "\nflags:")
	fs.SetOutput(e.stdout)
	fs.PrintDefaults()
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
