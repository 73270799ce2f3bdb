// Command wfsensor ships an agency's telemetry to Watchfloor: it replays or
// tails log files, or listens for syslog, and publishes batches of lines to
// soc.raw.<agency>.<format> on NATS JetStream.
//
//	wfsensor replay [flags] FILE...
//	wfsensor tail   [flags] FILE...
//	wfsensor syslog [flags]
//	wfsensor version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/watchfloor/watchfloor/normalize"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wfsensor:", err)
		stop()
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is wfsensor with its environment passed in.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runWith(ctx, env{
		args: args, getenv: getenv, stdout: stdout, stderr: stderr,
		formats: normalize.Builtin,
	})
}

// env is what a run depends on; tests swap the format registry.
type env struct {
	args           []string
	getenv         func(string) string
	stdout, stderr io.Writer
	formats        func() *normalize.Registry
}

const topUsage = `wfsensor ships an agency's telemetry to Watchfloor over NATS JetStream.

Usage:
  wfsensor replay [flags] FILE...   publish files once, from start to end
  wfsensor tail   [flags] FILE...   follow files as they grow (handles rotation)
  wfsensor syslog [flags]           receive syslog over UDP and TCP
  wfsensor version                  print the version

Run 'wfsensor <command> --help' for the flags of a command.
`

func runWith(ctx context.Context, e env) error {
	if len(e.args) == 0 {
		fmt.Fprint(e.stderr, topUsage)
		return usageError{errors.New("a command is required")}
	}
	cmd, rest := e.args[0], e.args[1:]
	switch cmd {
	case "replay":
		return runReplay(ctx, e, rest)
	case "tail":
		return runTail(ctx, e, rest)
	case "syslog":
		return runSyslog(ctx, e, rest)
	case "version", "--version", "-version":
		fmt.Fprintln(e.stdout, versionString())
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(e.stdout, topUsage)
		return nil
	}
	fmt.Fprint(e.stderr, topUsage)
	return usageError{fmt.Errorf("unknown command %q: want replay, tail, syslog or version", cmd)}
}

// usageError is a bad command line: exit status 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }
