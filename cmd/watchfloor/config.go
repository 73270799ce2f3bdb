package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/sink"
)

// config is everything `watchfloor run` needs, composed from the packages'
// own configs so each validates its part.
type config struct {
	DataDir string

	NATSURL      string
	NATSCreds    string
	NATSUser     string
	NATSPassword string           // never logged
	NATSListen   string           // embedded server address
	NATSUsers    string           // users file for the embedded server ("" = no authorization)
	NATSTLS      ingest.TLSConfig // client side: CA of the server, optional client certificate
	ListenTLS    ingest.TLSConfig // embedded server: certificate, key, optional client CA
	NATSMaxStore int64

	Streams   ingest.StreamConfig
	Pipeline  ingest.PipelineConfig
	Sink      sink.Config
	RulesDir  string
	DNS       dnsConfig  // threat intel and DNS analytics (dns.go)
	Corr      corrConfig // correlation rules: local or routed (corr.go)
	Metrics   string     // listen address for /metrics, /healthz, /readyz; "" disables
	OTel      otelConfig
	MemLimit  int64 // soft memory limit for the Go runtime in MiB; 0 leaves GOMEMLIMIT / no limit
	LogLevel  string
	LogFormat string
}

// flagSet binds flags to cfg. Every flag falls back to its environment
// variable WATCHFLOOR_<NAME> (dots and dashes become underscores).
func flagSet(name string, cfg *config, withRun bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	d := defaultConfig()
	*cfg = d
	fs.StringVar(&cfg.Sink.Database, "clickhouse.database", d.Sink.Database, "ClickHouse database that holds the tables")
	fs.Var((*listValue)(&cfg.Sink.Addr), "clickhouse.addr", "ClickHouse native host:port, comma-separated for several")
	fs.StringVar(&cfg.Sink.Username, "clickhouse.user", d.Sink.Username, "ClickHouse user")
	fs.StringVar(&cfg.Sink.Password, "clickhouse.password", "", "ClickHouse password (prefer the WATCHFLOOR_CLICKHOUSE_PASSWORD variable; never logged)")
	fs.IntVar(&cfg.Sink.EventRetentionDays, "clickhouse.event-retention-days", d.Sink.EventRetentionDays, "days events are kept (TTL on servers that have it; 0 keeps forever)")
	fs.IntVar(&cfg.Sink.DetectionRetentionDays, "clickhouse.detection-retention-days", d.Sink.DetectionRetentionDays, "days detections are kept")
	fs.IntVar(&cfg.Sink.DeadLetterRetentionDays, "clickhouse.dead-letter-retention-days", d.Sink.DeadLetterRetentionDays, "days dead letters are kept")
	fs.StringVar(&cfg.Sink.Compression, "clickhouse.compression", d.Sink.Compression, "compression of the native protocol's data blocks: auto (none when ClickHouse is on loopback, else lz4), lz4, zstd or none")
	fs.IntVar(&cfg.Sink.InsertConns, "clickhouse.insert-conns", d.Sink.InsertConns, "concurrent INSERTs one flush of events is split into, each on its own connection (1 to 8)")
	fs.IntVar(&cfg.Sink.BlockRows, "clickhouse.block-rows", d.Sink.BlockRows, "rows per native block sent within one INSERT; the server merges the blocks of an INSERT into one part (1000 to 1000000)")
	fs.StringVar(&cfg.LogLevel, "log.level", d.LogLevel, "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log.format", d.LogFormat, "log format: text or json")
	if !withRun {
		return fs
	}
	fs.StringVar(&cfg.DataDir, "data-dir", d.DataDir, "directory for local state (the embedded NATS store)")
	fs.StringVar(&cfg.NATSURL, "nats.url", "", "NATS server URL(s), comma-separated; empty starts an embedded JetStream server")
	fs.StringVar(&cfg.NATSCreds, "nats.creds", "", "NATS credentials file (JWT + NKey) for --nats.url")
	fs.StringVar(&cfg.NATSUser, "nats.user", "", "NATS user for --nats.url")
	fs.StringVar(&cfg.NATSPassword, "nats.password", "", "NATS password (prefer WATCHFLOOR_NATS_PASSWORD; never logged)")
	fs.StringVar(&cfg.NATSListen, "nats.listen", d.NATSListen, "address the embedded NATS server listens on, for sensors (host:port)")
	fs.StringVar(&cfg.NATSUsers, "nats.users-file", "", "users file from 'watchfloor nats-user add': the embedded server then admits only those users, with their permissions")
	fs.StringVar(&cfg.NATSTLS.CAFile, "nats.tls-ca", "", "PEM CA that signs the NATS server's certificate (turns TLS on for the pipeline's connection)")
	fs.StringVar(&cfg.NATSTLS.CertFile, "nats.tls-cert", "", "PEM client certificate for NATS, when the server asks for one")
	fs.StringVar(&cfg.NATSTLS.KeyFile, "nats.tls-key", "", "PEM key of --nats.tls-cert")
	fs.StringVar(&cfg.ListenTLS.CertFile, "nats.listen-tls-cert", "", "PEM certificate of the embedded server: its listener then accepts TLS only")
	fs.StringVar(&cfg.ListenTLS.KeyFile, "nats.listen-tls-key", "", "PEM key of --nats.listen-tls-cert")
	fs.StringVar(&cfg.ListenTLS.CAFile, "nats.listen-tls-client-ca", "", "PEM CA: the embedded server then requires client certificates signed by it")
	fs.Int64Var(&cfg.NATSMaxStore, "nats.max-store", d.NATSMaxStore, "bytes of disk the embedded JetStream server may use")
	fs.IntVar(&cfg.Streams.Replicas, "nats.replicas", d.Streams.Replicas, "stream replicas: 1, or 3/5 on a JetStream cluster")
	fs.Int64Var(&cfg.Streams.RawMaxBytes, "nats.raw-max-bytes", d.Streams.RawMaxBytes, "SOC_RAW size limit in bytes; when full, sensors are pushed back (they spool)")
	fs.DurationVar(&cfg.Streams.RawMaxAge, "nats.raw-max-age", d.Streams.RawMaxAge, "how long unprocessed raw batches are kept in SOC_RAW")
	fs.DurationVar(&cfg.Streams.DuplicateWindow, "nats.duplicate-window", d.Streams.DuplicateWindow, "window in which a resent batch (same Nats-Msg-Id) is dropped")
	fs.DurationVar(&cfg.Streams.DetectionsDuplicateWindow, "nats.detections-duplicate-window", d.Streams.DetectionsDuplicateWindow, "window in which a republished finding is dropped from SOC_DETECTIONS; longer than pipeline.ack-wait, and the server holds every finding id of it in memory")
	fs.StringVar(&cfg.Pipeline.Durable, "pipeline.durable", d.Pipeline.Durable, "durable consumer name shared by all pipeline instances")
	fs.IntVar(&cfg.Pipeline.Workers, "pipeline.workers", d.Pipeline.Workers, "worker goroutines that decode, normalize and evaluate batches")
	fs.IntVar(&cfg.Pipeline.FetchBatch, "pipeline.fetch-batch", d.Pipeline.FetchBatch, "raw batches pulled per request")
	fs.IntVar(&cfg.Pipeline.MaxAckPending, "pipeline.max-ack-pending", d.Pipeline.MaxAckPending, "raw batches in flight (delivered, not yet acked) per consumer: bounds memory")
	fs.DurationVar(&cfg.Pipeline.AckWait, "pipeline.ack-wait", d.Pipeline.AckWait, "redeliver a batch not acked within this time")
	fs.IntVar(&cfg.Pipeline.MaxDeliver, "pipeline.max-deliver", d.Pipeline.MaxDeliver, "a batch delivered more often than this without being settled becomes dead letters (or goes to soc.dlq.<agency>.<format>)")
	fs.IntVar(&cfg.Pipeline.FlushRows, "pipeline.flush-rows", d.Pipeline.FlushRows, "rows that trigger a ClickHouse insert")
	fs.IntVar(&cfg.Pipeline.Flushers, "pipeline.flushers", d.Pipeline.Flushers, "ClickHouse inserts in flight at once (1 to 16); more overlap the insert with filling the next")
	fs.DurationVar(&cfg.Pipeline.FlushInterval, "pipeline.flush-interval", d.Pipeline.FlushInterval, "longest time rows wait before an insert")
	fs.DurationVar(&cfg.Pipeline.RetryMax, "pipeline.retry-max", d.Pipeline.RetryMax, "ceiling of the back-off between failed ClickHouse writes")
	fs.DurationVar(&cfg.Pipeline.DrainTimeout, "pipeline.drain-timeout", d.Pipeline.DrainTimeout, "time a shutdown may spend storing in-flight rows")
	fs.StringVar(&cfg.RulesDir, "rules", d.RulesDir, "directory of Sigma rules (*.yml), loaded at start")
	dnsFlags(fs, &cfg.DNS, d.DNS)
	corrFlags(fs, &cfg.Corr, d.Corr)
	fs.StringVar(&cfg.Metrics, "metrics.listen", d.Metrics, "address for /metrics (Prometheus), /healthz and /readyz; empty disables")
	fs.StringVar(&cfg.OTel.Endpoint, "otel.endpoint", "", "OTLP/HTTP endpoint for traces, e.g. http://otel-collector:4318 (path /v1/traces added when absent); empty disables tracing")
	fs.Float64Var(&cfg.OTel.SampleRatio, "otel.sample-ratio", d.OTel.SampleRatio, "share of batches traced when they arrive without a sampled traceparent (0 to 1); sensors choose with --trace-sample")
	fs.StringVar(&cfg.OTel.ServiceName, "otel.service-name", d.OTel.ServiceName, "service.name of the exported spans")
	fs.Int64Var(&cfg.MemLimit, "memory-limit-mib", d.MemLimit, "soft memory limit of the Go runtime in MiB (the GC works harder near it); 0 keeps GOMEMLIMIT or none")
	return fs
}

func defaultConfig() config {
	return config{
		DataDir:      "watchfloor-data",
		NATSListen:   "127.0.0.1:4222",
		NATSMaxStore: 10 << 30,
		Streams:      ingest.DefaultStreamConfig(),
		Pipeline:     ingest.DefaultPipelineConfig(),
		Sink:         sink.DefaultConfig(),
		RulesDir:     "detect/rules",
		DNS:          defaultDNSConfig(),
		Corr:         defaultCorrConfig(),
		Metrics:      "127.0.0.1:9464",
		OTel:         otelConfig{ServiceName: "watchfloor"},
		LogLevel:     "info",
		LogFormat:    "text",
	}
}

// parseFlags applies the environment, then the command line.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer, usage string) (help bool, err error) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := envName(f.Name)
		if v := getenv(key); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %w", key, redact(f.Name, v), err)
			}
		}
	})
	if envErr != nil {
		return false, usageError{envErr}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs, usage)
			return true, nil
		}
		return false, usageError{fmt.Errorf("%w (see --help)", err)}
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))}
	}
	return false, nil
}

func envName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "WATCHFLOOR_" + strings.ToUpper(r.Replace(flagName))
}

func redact(name, v string) string {
	if strings.Contains(name, "password") {
		return "***"
	}
	return v
}

func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprint(w, usage)
	fmt.Fprintln(w, "\nFlags (environment variable in brackets):")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%s  [%s]\n      %s (default %s)\n", f.Name, envName(f.Name), f.Usage, def)
	})
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validate checks the whole configuration at start-up; errors name the flag.
func (c *config) validate(withRun bool) error {
	var errs []error
	if err := c.Sink.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("log.format must be text or json, got %q", c.LogFormat))
	}
	if withRun {
		if err := c.Pipeline.Validate(); err != nil {
			errs = append(errs, err)
		}
		if err := c.Streams.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.Streams.DetectionsDuplicateWindow <= c.Pipeline.AckWait {
			errs = append(errs, fmt.Errorf("nats.detections-duplicate-window (%s) must be longer than pipeline.ack-wait (%s): findings republished after a crash would reach subscribers twice", c.Streams.DetectionsDuplicateWindow, c.Pipeline.AckWait))
		}
		if c.Streams.DuplicateWindow <= c.Pipeline.AckWait {
			errs = append(errs, fmt.Errorf("nats.duplicate-window (%s) must be longer than pipeline.ack-wait (%s): findings republished after a crash would be stored twice", c.Streams.DuplicateWindow, c.Pipeline.AckWait))
		}
		if c.NATSURL == "" {
			if _, _, err := net.SplitHostPort(c.NATSListen); err != nil {
				errs = append(errs, fmt.Errorf("nats.listen %q must be host:port: %w", c.NATSListen, err))
			}
			if c.DataDir == "" {
				errs = append(errs, errors.New("data-dir must be set when --nats.url is empty (the embedded server stores there)"))
			}
		}
		if err := c.NATSTLS.Validate("nats.tls"); err != nil {
			errs = append(errs, err)
		}
		if err := c.ListenTLS.Validate("nats.listen_tls"); err != nil {
			errs = append(errs, err)
		}
		if c.ListenTLS.Enabled() && (c.NATSURL != "" || c.ListenTLS.CertFile == "") {
			errs = append(errs, errors.New("nats.listen-tls-* configure the embedded server: they need --nats.listen-tls-cert and no --nats.url"))
		}
		if c.NATSUsers != "" && c.NATSURL != "" {
			errs = append(errs, errors.New("nats.users-file configures the embedded server; with --nats.url give the external server the block from 'watchfloor nats-user add' instead"))
		}
		if c.NATSUsers != "" {
			if _, err := ingest.LoadUsers(c.NATSUsers); err != nil {
				errs = append(errs, fmt.Errorf("nats.users-file: %w", err))
			} else if _, err := os.Stat(c.NATSUsers); err != nil {
				errs = append(errs, fmt.Errorf("nats.users-file: %w", err))
			}
		}
		if c.NATSCreds != "" && c.NATSUser != "" {
			errs = append(errs, errors.New("nats.creds and nats.user are exclusive: give one"))
		}
		if c.NATSCreds != "" {
			if _, err := os.Stat(c.NATSCreds); err != nil {
				errs = append(errs, fmt.Errorf("nats.creds: %w", err))
			}
		}
		errs = append(errs, c.DNS.validate()...)
		errs = append(errs, c.Corr.validate()...)
		if st, err := os.Stat(c.RulesDir); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("rules %q must be a directory of Sigma rules", c.RulesDir))
		}
		if err := c.OTel.validate(); err != nil {
			errs = append(errs, err)
		}
		if c.MemLimit != 0 && (c.MemLimit < 128 || c.MemLimit > 1<<20) {
			errs = append(errs, fmt.Errorf("memory-limit-mib must be 0 or between 128 and 1048576, got %d", c.MemLimit))
		}
		if c.Metrics != "" {
			if _, _, err := net.SplitHostPort(c.Metrics); err != nil {
				errs = append(errs, fmt.Errorf("metrics.listen %q must be host:port or empty: %w", c.Metrics, err))
			}
		}
	}
	if len(errs) > 0 {
		return usageError{fmt.Errorf("invalid configuration:\n  %w", joinLines(errs))}
	}
	return nil
}

func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log.level must be one of debug, info, warn, error; got %q", s)
}

func newLogger(w io.Writer, c *config) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// listValue is a comma-separated flag.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }
func (l *listValue) Set(s string) error {
	*l = splitList(s)
	return nil
}
