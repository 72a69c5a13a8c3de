// Command cpisd is the CP-IS FHIR server. With no configuration it runs in
// dev mode on an embedded SQLite database under ./data, issuing its own
// tokens; see README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // "today" is a UK date wherever the binary runs
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cpisd:", err)
		os.Exit(1)
	}
}
