// Command watchfloor runs the Watchfloor pipeline: it consumes raw telemetry
// batches from NATS JetStream, normalizes them into the common schema,
// evaluates Sigma rules, and stores events, detections and dead letters in
// ClickHouse.
//
//	watchfloor run      consume, normalize, detect, store (migrates first)
//	watchfloor migrate  create or update the ClickHouse schema
//	watchfloor rules    rule lifecycle: check, validate, test, push, rollback, backtest
//	watchfloor ddl      print the schema DDL (single server or --cluster)
//	watchfloor query    named queries and read-only SQL for analysts
//	watchfloor tenant   per-agency analyst logins
//	watchfloor nats-user per-agency sensor, pipeline and rule-writer NATS users
//	watchfloor retention drop partitions past their retention
//	watchfloor version  print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "watchfloor:", err)
		stop()
		if errors.As(err, new(usageError)) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

const topUsage = `watchfloor is the Watchfloor SOC telemetry pipeline.

Usage:
  watchfloor run [flags]       consume SOC_RAW, normalize, detect, store in ClickHouse
  watchfloor migrate [flags]   create or update the ClickHouse schema (idempotent)
  watchfloor rules <command>   check, validate, test, push, roll back and backtest Sigma rules
  watchfloor ddl [flags]       print the schema DDL (--cluster NAME for Replicated/Distributed)
  watchfloor query NAME|SQL    named queries (top-domains, detections, event ID, ...) or read-only SQL
  watchfloor tenant add AGENCY create an agency's read-only analyst login (and service-analyst)
  watchfloor nats-user add NAME create NATS credentials: an agency's sensors, the pipeline, rule writers
  watchfloor retention         drop partitions older than their table's retention
  watchfloor version           print the version

Every flag can also be set from the environment: --clickhouse.addr is
WATCHFLOOR_CLICKHOUSE_ADDR. Flags win over the environment.
Run 'watchfloor <command> --help' for the flags of a command.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return usageError{errors.New("a command is required")}
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "rules":
		return cmdRules(ctx, args[1:], getenv, stdout, stderr)
	case "ddl":
		return cmdDDL(ctx, args[1:], getenv, stdout, stderr)
	case "query":
		return cmdQuery(ctx, args[1:], getenv, stdout, stderr)
	case "tenant":
		return cmdTenant(ctx, args[1:], getenv, stdout, stderr)
	case "nats-user":
		return cmdNATSUser(ctx, args[1:], getenv, stdout, stderr)
	case "retention":
		return cmdRetention(ctx, args[1:], getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "watchfloor", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, topUsage)
		return nil
	}
	fmt.Fprint(stderr, topUsage)
	return usageError{fmt.Errorf("unknown command %q: want run, migrate, rules, ddl, query, tenant, nats-user, retention or version", args[0])}
}
