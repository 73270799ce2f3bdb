package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/ingest/sensor"
	"github.com/watchfloor/watchfloor/normalize"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

const (
	envNATS     = "WFSENSOR_NATS"
	envPassword = "WFSENSOR_PASSWORD"
	defaultNATS = "nats://127.0.0.1:4222"
)

// common holds the flags every publishing command shares.
type common struct {
	fs *flag.FlagSet

	natsURL, creds, user, password string
	agency, format, sensorID       string
	batchRecords, maxInFlight      int
	linger, timeout, drain         time.Duration
	statsEvery                     time.Duration
	traceSample                    float64
	compress                       bool
	logLevel                       string
	spool                          sensor.SpoolConfig
	tls                            ingest.TLSConfig
	inboxPrefix                    string
	spoolPolicy                    string

	hasFormat bool
	usage     string // command synopsis and description
	examples  string
}

// newCommon registers the shared flags on a new flag set for cmd.
func newCommon(cmd string, hasFormat bool, usage, examples string) *common {
	c := &common{fs: flag.NewFlagSet("wfsensor "+cmd, flag.ContinueOnError), hasFormat: hasFormat, usage: usage, examples: examples}
	fs := c.fs
	fs.SetOutput(io.Discard)
	d := sensor.DefaultConfig()
	fs.StringVar(&c.natsURL, "nats", defaultNATS, "NATS server URL(s), comma-separated (env "+envNATS+")")
	fs.StringVar(&c.creds, "creds", "", "NATS credentials file (JWT and NKey seed) for this agency's sensor account")
	fs.StringVar(&c.user, "user", "", "NATS user name, with --password")
	fs.StringVar(&c.password, "password", "", "NATS password (env "+envPassword+"; prefer the env var, flags show up in ps)")
	fs.StringVar(&c.agency, "agency", "", "agency token this sensor ships for, [a-z0-9][a-z0-9_-]* (required)")
	if hasFormat {
		fs.StringVar(&c.format, "format", "", "format of the lines, a registered parser name, or auto to detect it per file from its first lines (required; see the list below)")
	}
	fs.StringVar(&c.sensorID, "sensor-id", "", "sensor id in Wf-Sensor and Nats-Msg-Id, [A-Za-z0-9._-] (default the host name)")
	fs.IntVar(&c.batchRecords, "batch-records", d.BatchRecords, "records per batch at most (1 to 100000); a batch also closes near 1 MiB")
	fs.DurationVar(&c.linger, "linger", d.Linger, "publish a partial batch this long after its first record (0 to 1m; 0 waits for a full batch; replay ignores it)")
	fs.IntVar(&c.maxInFlight, "max-in-flight", d.MaxInFlight, "batches published and awaiting their acknowledgement (1 to 1024); reading pauses beyond")
	fs.BoolVar(&c.compress, "compress", false, "compress batches with zstd (Content-Encoding: zstd)")
	fs.DurationVar(&c.timeout, "timeout", d.AckTimeout, "wait this long for a batch's acknowledgement before resending it (100ms to 10m)")
	fs.DurationVar(&c.drain, "drain-timeout", 30*time.Second, "on SIGINT/SIGTERM, wait this long for outstanding acknowledgements")
	fs.Float64Var(&c.traceSample, "trace-sample", 0, "share of batches sent with a sampled W3C traceparent header (0 to 1), so the pipeline traces them end to end")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	sd := sensor.DefaultSpoolConfig()
	fs.StringVar(&c.spool.Dir, "spool-dir", "", "directory of the on-disk queue: every batch is written there until the stream acknowledges it, so an outage or a restart loses nothing (empty: no spool)")
	fs.Int64Var(&c.spool.MaxBytes, "spool-max-bytes", sd.MaxBytes, "size limit of each source's spool in bytes")
	fs.StringVar(&c.spoolPolicy, "spool-policy", string(sd.Policy), "when the spool is full: drop-oldest (logged and counted) or block (reading pauses)")
	fs.StringVar(&c.inboxPrefix, "inbox-prefix", "", "reply subject prefix for PubAcks (default _INBOX_sensor_<agency>: sensor users may subscribe there only, so a sensor never reads other clients' replies, the pipeline's raw deliveries among them)")
	fs.StringVar(&c.tls.CAFile, "tls-ca", "", "PEM CA that signs the NATS server's certificate (turns TLS on)")
	fs.StringVar(&c.tls.CertFile, "tls-cert", "", "PEM client certificate, when the server asks for one")
	fs.StringVar(&c.tls.KeyFile, "tls-key", "", "PEM key of --tls-cert")
	fs.BoolVar(&c.spool.Sync, "spool-sync", false, "fsync every spooled batch (survives power loss; slower)")
	return c
}

// parse parses args. It returns errHelpShown after printing help to stdout.
func (c *common) parse(e env, args []string) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(e)
			return errHelpShown
		}
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.fs.Name())}
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["nats"] {
		if v := e.getenv(envNATS); v != "" {
			c.natsURL = v
		}
	}
	if !set["password"] {
		c.password = e.getenv(envPassword)
	}
	return nil
}

var errHelpShown = errors.New("help shown")

func (c *common) printUsage(e env) {
	w := e.stdout
	fmt.Fprintf(w, "Usage: %s\n\nFlags:\n", c.usage)
	printFlags(w, c.fs)
	if c.hasFormat {
		fmt.Fprintf(w, "\nFormats accepted by --format: %s\n", formatList(e.formats()))
	}
	fmt.Fprintf(w, "\nExamples:\n%s", c.examples)
}

// printFlags is flag.PrintDefaults with the "--name" spelling.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch {
		case f.DefValue == "" || f.DefValue == "false" || f.DefValue == "0":
		case typ == "string":
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		default:
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func formatList(r *normalize.Registry) string {
	names := r.Names()
	if len(names) == 0 {
		return "(none registered in this build)"
	}
	return strings.Join(names, ", ")
}

// configKeyFlags maps sensor.Config keys to the flags that set them.
var configKeyFlags = []struct{ key, flag string }{
	{"sensor.batch_records", "--batch-records"},
	{"sensor.linger", "--linger"},
	{"sensor.max_in_flight", "--max-in-flight"},
	{"sensor.ack_timeout", "--timeout"},
	{"sensor.agency", "--agency"},
	{"sensor.id", "--sensor-id"},
	{"sensor.spool_max_bytes", "--spool-max-bytes"},
	{"sensor.spool_policy", "--spool-policy"},
	{"sensor.trace_sample", "--trace-sample"},
}

// config validates the flags and builds the publisher config. format is the
// looked-up --format, or nil for commands without one.
func (c *common) config(e env) (sensor.Config, *normalize.Format, error) {
	cfg := sensor.DefaultConfig()
	if c.agency == "" {
		return cfg, nil, usageError{errors.New("--agency is required: the agency token this sensor ships for, e.g. --agency doj")}
	}
	if err := ingest.ValidateAgency(c.agency); err != nil {
		return cfg, nil, usageError{fmt.Errorf("--agency: %w", err)}
	}
	var f *normalize.Format
	if c.hasFormat {
		reg := e.formats()
		if c.format == "" {
			return cfg, nil, usageError{fmt.Errorf("--format is required; accepted values: %s", formatList(reg))}
		}
		var ok bool
		if c.format == "auto" {
			// Resolved per file by detectFormat once the files are known.
		} else if f, ok = reg.Lookup(c.format); !ok {
			return cfg, nil, usageError{fmt.Errorf("--format %q is not a registered format; accepted values: auto, %s", c.format, formatList(reg))}
		}
	}
	if c.sensorID == "" {
		h, err := os.Hostname()
		if err != nil {
			return cfg, nil, fmt.Errorf("--sensor-id not given and the host name is unknown: %w", err)
		}
		c.sensorID = sanitizeID(h)
	}
	switch c.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return cfg, nil, usageError{fmt.Errorf("--log-level %q: accepted values: debug, info, warn, error", c.logLevel)}
	}
	if c.drain <= 0 {
		return cfg, nil, usageError{fmt.Errorf("--drain-timeout must be positive, got %s", c.drain)}
	}
	if c.user == "" && c.password != "" {
		return cfg, nil, usageError{errors.New("--password (or " + envPassword + ") needs --user")}
	}
	if err := c.tls.Validate("--tls"); err != nil {
		return cfg, nil, usageError{err}
	}
	if c.creds != "" {
		if _, err := os.Stat(c.creds); err != nil {
			return cfg, nil, usageError{fmt.Errorf("--creds: %w", err)}
		}
	}
	cfg.SensorID = c.sensorID
	cfg.Agency = c.agency
	cfg.BatchRecords = c.batchRecords
	cfg.Linger = c.linger
	cfg.MaxInFlight = c.maxInFlight
	cfg.AckTimeout = c.timeout
	cfg.Compress = c.compress
	cfg.Spool = c.spool
	cfg.Spool.Policy = sensor.SpoolPolicy(c.spoolPolicy)
	cfg.TraceSample = c.traceSample
	if err := cfg.Validate(); err != nil {
		for _, kf := range configKeyFlags {
			if strings.HasPrefix(err.Error(), kf.key) {
				return cfg, nil, usageError{fmt.Errorf("%s: %w", kf.flag, err)}
			}
		}
		return cfg, nil, usageError{err}
	}
	return cfg, f, nil
}

// sanitizeID turns a host name into a valid sensor id.
func sanitizeID(h string) string {
	b := []byte(h)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 128 {
		b = b[:128]
	}
	if len(b) == 0 {
		return "sensor"
	}
	return string(b)
}

func (c *common) logger(e env) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel))
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl})).With("sensor", c.sensorID)
}

// connect dials NATS. It keeps retrying in the background when the server
// is unreachable, so a sensor started before NATS still delivers. The
// returned close function closes the connection and waits for its last
// callbacks, so nothing logs after run returns.
func (c *common) connect(log *slog.Logger) (jetstream.JetStream, func(), error) {
	closed := make(chan struct{})
	opts := []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.Name("wfsensor " + c.sensorID),
		// Replies (PubAcks) come to this inbox; with users from
		// 'watchfloor nats-user add' it must be _INBOX_sensor_<agency>.
		nats.CustomInboxPrefix(c.inbox()),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(32 << 20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("connected to NATS", "server", redact(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error("NATS error", "err", err)
		}),
	}
	if c.creds != "" {
		opts = append(opts, nats.UserCredentials(c.creds))
	}
	tlsOpts, err := c.tls.ClientOptions()
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, tlsOpts...)
	if c.user != "" {
		opts = append(opts, nats.UserInfo(c.user, c.password))
	}
	nc, err := nats.Connect(c.natsURL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS %s: %w", redact(c.natsURL), err)
	}
	closeConn := func() {
		nc.Close()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
		}
	}
	if nc.IsConnected() {
		log.Info("connected to NATS", "server", redact(nc.ConnectedUrl()))
	} else {
		log.Warn("NATS not reachable yet, retrying in the background", "server", redact(c.natsURL))
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(c.timeout))
	if err != nil {
		closeConn()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return js, closeConn, nil
}

// redact drops credentials from NATS URLs before they are logged.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// drainContext ends d after ctx ends: on a signal the publishers get d to
// flush and collect their acknowledgements.
func drainContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t := time.AfterFunc(math.MaxInt64, cancel)
	stop := context.AfterFunc(ctx, func() { t.Reset(d) })
	return dctx, func() {
		stop()
		t.Stop()
		cancel()
	}
}

func versionString() string {
	v, rev := version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = " " + s.Value[:12]
			}
		}
	}
	return fmt.Sprintf("wfsensor %s%s %s %s/%s", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// summary renders the final counters.
func summary(what string, st sensor.Stats, elapsed time.Duration) string {
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(st.Records) / s
	}
	line := fmt.Sprintf("%s: %d records sent in %d batches (%d already stored), %d retries, %d oversize, %.1f MB sent, elapsed %s, %.0f records/s",
		what, st.Records, st.Batches, st.Duplicates, st.Retries, st.Oversize, float64(st.Bytes)/1e6, elapsed.Round(time.Millisecond), rate)
	if st.Failed > 0 {
		line += fmt.Sprintf(", %d records NOT sent", st.Failed)
	}
	if st.Spooled > 0 {
		line += fmt.Sprintf(", %d records spooled for the next start", st.Spooled)
	}
	if st.Dropped > 0 {
		line += fmt.Sprintf(", %d records DROPPED (spool full or torn)", st.Dropped)
	}
	return line
}

// inbox is the reply prefix: the agency's own unless --inbox-prefix says.
func (c *common) inbox() string {
	if c.inboxPrefix != "" {
		return c.inboxPrefix
	}
	return ingest.SensorInboxPrefix(c.agency)
}
