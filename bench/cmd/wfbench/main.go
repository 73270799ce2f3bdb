// Command wfbench measures Watchfloor end to end on one machine: it starts a
// `watchfloor run` process (embedded JetStream) against a ClickHouse server,
// offers it a realistic mix of telemetry for several agencies through the
// sensor's own Publisher, and reports what users pick a pipeline by:
// sustained events/s, publish→queryable and publish→detection latency
// percentiles, CPU and peak RSS per process, and bytes on disk per event.
//
//	wfbench --duration 60s --rate 0            as fast as it goes
//	wfbench --duration 60s --rate 50000        a fixed offered rate
//	wfbench sink --duration 30s                the sink alone (sink.Sink.Write into ClickHouse)
//	wfbench detect --duration 10s              the rule engine alone, on one core
//
// It writes a JSON result and an SVG plot of throughput and latency over
// time (--out), draws a progress bar on stderr, and ends with an exact count:
// records sent = rows in events + rows in dead_letters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wfbench:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

const usage = `Usage: wfbench [flags]

Runs sensor -> JetStream -> watchfloor run -> ClickHouse on this machine and
measures it (wfbench sink -h: the sink alone; wfbench detect -h: the rule
engine alone). ClickHouse must be running (make clickhouse starts the local one);
the pipeline is started from --watchfloor with an embedded NATS server.

Flags:
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "sink" {
		return runSink(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "detect" {
		return runDetect(ctx, args[1:], stdout, stderr)
	}
	cfg := defaultConfig()
	if err := parseFlags(cfg.flags(), usage, args, stderr); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := bench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	res.print(stdout)
	if err := res.write(cfg.Out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "result: %s.json, plot: %s.svg\n", cfg.Out, cfg.Out)
	if !res.Exact {
		return fmt.Errorf("count mismatch: sent %d, stored %d events + %d dead letters", res.Sent, res.Events, res.DeadLetters)
	}
	return nil
}

// parseFlags parses args with fs, its errors and --help (usage, then the
// flags) going to stderr.
func parseFlags(fs *flag.FlagSet, usage string, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	return fs.Parse(args)
}
