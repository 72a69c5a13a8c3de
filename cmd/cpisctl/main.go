// Command cpisctl is the operator's tool for a CP-IS deployment: it
// migrates the PostgreSQL schema, applies the audit trail's retention,
// uploads an LA's file of plans to a server, and signs a registered
// system's client assertion for SMART Backend Services.
// Run `cpisctl help` for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "cpisctl:", err)
		os.Exit(exitCode(err))
	}
}
