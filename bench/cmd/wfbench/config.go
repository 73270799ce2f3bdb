package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/ingest"
)

// Config is one benchmark run.
type Config struct {
	Watchfloor   string   // path of the watchfloor binary
	RunArgs      []string // extra flags for watchfloor run
	Rules        string   // --rules for the pipeline
	ProbeRules   string   // rules the latency probes need, added to Rules when it lacks them
	ClickHouse   string   // native host:port
	CHPidFile    string   // pid file of the ClickHouse server, for its CPU and RSS
	Database     string   // created for the run; dropped after it unless KeepDatabase
	KeepDatabase bool
	Agencies     int           // agencies the load is spread over
	Duration     time.Duration // measured publishing time
	Rate         int           // offered records/s; 0 = as fast as the pipeline takes them
	MaxBacklog   int           // at max rate: records sent but not yet stored, at most
	BatchRecords int           // records per raw batch
	Publishers   int           // concurrent publishers (one per agency at most)
	ProbeEvery   time.Duration // latency probe interval
	Drain        time.Duration // longest wait for the backlog after publishing stops
	Out          string        // result path without extension
	DataDir      string        // pipeline data dir (embedded NATS store); emptied first
}

func defaultConfig() Config {
	return Config{
		Watchfloor: "bin/watchfloor",
		Rules:      "detect/rules",
		ProbeRules: "detect/rules",
		ClickHouse: "127.0.0.1:19000",
		CHPidFile:  ".data/clickhouse/pid",
		// A database per run: a pipeline still draining from an earlier run
		// must not write into this one's counts.
		Database:     "wfbench_" + time.Now().UTC().Format("20060102_150405"),
		Agencies:     8,
		Duration:     60 * time.Second,
		BatchRecords: 1000,
		Publishers:   4,
		MaxBacklog:   300000,
		ProbeEvery:   250 * time.Millisecond,
		Drain:        5 * time.Minute,
		Out:          "bench/results/wfbench-" + time.Now().UTC().Format("20060102-150405"),
		DataDir:      ".data/wfbench",
	}
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (c *Config) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("wfbench", flag.ContinueOnError)
	fs.StringVar(&c.Watchfloor, "watchfloor", c.Watchfloor, "watchfloor binary to benchmark (make build puts it in bin/)")
	fs.Var((*listFlag)(&c.RunArgs), "run-arg", "extra flag for watchfloor run, repeatable (e.g. --run-arg=--pipeline.workers=4)")
	fs.StringVar(&c.Rules, "rules", c.Rules, "rules directory for the pipeline (e.g. ../shared/corpus/sigma/rules for all of SigmaHQ)")
	fs.StringVar(&c.ProbeRules, "probe-rules", c.ProbeRules, "directory holding the rule the latency probes trigger (the bundled WPAD rule); added to --rules when that is another directory, empty to leave --rules alone")
	fs.StringVar(&c.ClickHouse, "clickhouse", c.ClickHouse, "ClickHouse native host:port")
	fs.StringVar(&c.CHPidFile, "clickhouse-pid-file", c.CHPidFile, "pid file of that ClickHouse server, to report its CPU and RSS (empty skips)")
	fs.StringVar(&c.Database, "database", c.Database, "ClickHouse database for the run (dropped first if it exists)")
	fs.BoolVar(&c.KeepDatabase, "keep-database", false, "keep the run's database for inspection instead of dropping it at the end")
	fs.IntVar(&c.Agencies, "agencies", c.Agencies, "agencies the load is spread over (1 to 1000)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to publish (1s to 24h)")
	fs.IntVar(&c.Rate, "rate", c.Rate, "offered records/s; 0 offers as fast as the stream acknowledges")
	fs.IntVar(&c.MaxBacklog, "max-backlog", c.MaxBacklog, "with --rate 0: pause publishing while more records than this are sent but not stored")
	fs.IntVar(&c.BatchRecords, "batch-records", c.BatchRecords, "records per raw batch (1 to 100000)")
	fs.IntVar(&c.Publishers, "publishers", c.Publishers, "concurrent publishing goroutines (1 to 64)")
	fs.DurationVar(&c.ProbeEvery, "probe-every", c.ProbeEvery, "interval of latency probes (10ms to 10s)")
	fs.DurationVar(&c.Drain, "drain", c.Drain, "longest wait for the pipeline to store the backlog after publishing stops")
	fs.StringVar(&c.Out, "out", c.Out, "result path without extension: writes OUT.json and OUT.svg")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data dir of the pipeline under test (emptied first)")
	return fs
}

// Validate names the flag that is wrong.
func (c *Config) Validate() error {
	var errs []error
	if st, err := os.Stat(c.Watchfloor); err != nil || st.IsDir() {
		errs = append(errs, fmt.Errorf("--watchfloor %q is not a binary (run make build first)", c.Watchfloor))
	}
	if st, err := os.Stat(c.Rules); err != nil || !st.IsDir() {
		errs = append(errs, fmt.Errorf("--rules %q must be a directory", c.Rules))
	}
	if st, err := os.Stat(c.ProbeRules); c.ProbeRules != "" && (err != nil || !st.IsDir()) {
		errs = append(errs, fmt.Errorf("--probe-rules %q must be a directory or empty", c.ProbeRules))
	}
	if err := ingest.ValidateAgency(strings.ReplaceAll(c.Database, "_", "-")); err != nil || strings.ContainsAny(c.Database, "-.") {
		errs = append(errs, fmt.Errorf("--database %q must be [a-z0-9_]+", c.Database))
	}
	if c.Agencies < 1 || c.Agencies > 1000 {
		errs = append(errs, fmt.Errorf("--agencies must be between 1 and 1000, got %d", c.Agencies))
	}
	if c.Duration < time.Second || c.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--duration must be between 1s and 24h, got %s", c.Duration))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate must be 0 (as fast as possible) or positive, got %d", c.Rate))
	}
	if c.MaxBacklog < 1000 {
		errs = append(errs, fmt.Errorf("--max-backlog must be at least 1000, got %d", c.MaxBacklog))
	}
	if c.BatchRecords < 1 || c.BatchRecords > 100000 {
		errs = append(errs, fmt.Errorf("--batch-records must be between 1 and 100000, got %d", c.BatchRecords))
	}
	if c.Publishers < 1 || c.Publishers > 64 {
		errs = append(errs, fmt.Errorf("--publishers must be between 1 and 64, got %d", c.Publishers))
	}
	if c.ProbeEvery < 10*time.Millisecond || c.ProbeEvery > 10*time.Second {
		errs = append(errs, fmt.Errorf("--probe-every must be between 10ms and 10s, got %s", c.ProbeEvery))
	}
	if c.Out == "" || c.DataDir == "" {
		errs = append(errs, errors.New("--out and --data-dir must be set"))
	}
	return errors.Join(errs...)
}
