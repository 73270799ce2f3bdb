package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sourcegraph/conc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

const runUsage = `Usage: watchfloor run [flags]

Consumes raw telemetry batches from the SOC_RAW stream (subjects
soc.raw.<agency>.<format>) with a durable pull consumer shared by every
instance, normalizes each record into the common schema, evaluates the Sigma
rules, stores events, detections and dead letters in ClickHouse, publishes
detections to soc.detections.<agency>.<level>, and acknowledges a batch only
after its rows are stored. Runs 'migrate' first.

With no --nats.url it starts an embedded NATS JetStream server that stores
under --data-dir and listens on --nats.listen for sensors.

Example:
  watchfloor run --clickhouse.addr 127.0.0.1:9000 --rules detect/rules
`

const migrateUsage = `Usage: watchfloor migrate [flags]

Creates or updates the ClickHouse schema: the database, the events,
detections and dead_letters tables, recorded in schema_migrations. Safe to
run any number of times; 'run' does it at start-up too.
`

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flagSet("migrate", &cfg, false)
	if help, err := parseFlags(fs, args, getenv, stdout, migrateUsage); help || err != nil {
		return err
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	log := newLogger(stderr, &cfg)
	s, err := openSink(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	res, err := s.Migrate(ctx)
	if err != nil {
		return err
	}
	f := s.Features()
	fmt.Fprintf(stdout, "schema version %d in database %s (ClickHouse %d.%d.%d); applied now: %d step(s) %v\n",
		res.Current, cfg.Sink.Database, f.Version[0], f.Version[1], f.Version[2], len(res.Applied), res.Applied)
	return nil
}

// openSink connects to ClickHouse, waiting up to 60s for it to come up so a
// pipeline started together with its database does not fail needlessly.
func openSink(ctx context.Context, cfg *config, log *slog.Logger) (*sink.Sink, error) {
	deadline := time.Now().Add(60 * time.Second)
	for attempt := 1; ; attempt++ {
		s, err := sink.Open(ctx, cfg.Sink, log)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		if attempt == 1 {
			log.Warn("waiting for ClickHouse", "addr", strings.Join(cfg.Sink.Addr, ","), "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func cmdRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config
	fs := flagSet("run", &cfg, true)
	if help, err := parseFlags(fs, args, getenv, stdout, runUsage); help || err != nil {
		return err
	}
	if err := cfg.validate(true); err != nil {
		return err
	}
	log := newLogger(stderr, &cfg)
	if cfg.MemLimit > 0 {
		debug.SetMemoryLimit(cfg.MemLimit << 20)
	}

	// Rules first: a broken rule directory should stop start-up at once.
	baseRules, err := rulebook.LoadBase(cfg.RulesDir)
	if err != nil {
		return err
	}
	if rules, err := rulebook.StaticSet(baseRules, detect.DefaultConfig()); err != nil {
		return fmt.Errorf("load rules from %s: %w", cfg.RulesDir, err)
	} else {
		log.Info("rules loaded", "dir", cfg.RulesDir, "rules", rules.Len(), "correlations", rules.RuleSet().Correlations())
	}
	dnsDet, err := newDNSDetection(cfg.DNS, log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return fmt.Errorf("create prometheus exporter: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer provider.Shutdown(context.Background())
	metrics, err := ingest.NewMetrics(provider.Meter("github.com/watchfloor/watchfloor/ingest"))
	if err != nil {
		return fmt.Errorf("create metrics: %w", err)
	}

	s, err := openSink(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	if res, err := s.Migrate(ctx); err != nil {
		return err
	} else if len(res.Applied) > 0 {
		log.Info("schema migrated", "version", res.Current, "applied", res.Applied)
	}

	url := cfg.NATSURL
	if url == "" {
		host, portStr, _ := net.SplitHostPort(cfg.NATSListen)
		var port int
		fmt.Sscan(portStr, &port)
		ec := ingest.EmbeddedConfig{DataDir: cfg.DataDir, Host: host, Port: port, MaxStore: cfg.NATSMaxStore}
		if cfg.NATSUsers != "" {
			users, err := ingest.LoadUsers(cfg.NATSUsers)
			if err != nil {
				return err
			}
			// This process connects as an internal user whose random
			// password lives only in memory.
			var r [24]byte
			_, _ = crand.Read(r[:])
			cfg.NATSUser, cfg.NATSPassword = "_watchfloor_internal", hex.EncodeToString(r[:])
			ec.Users = append(users.ServerUsers(), &server.User{Username: cfg.NATSUser, Password: cfg.NATSPassword})
			log.Info("embedded NATS authorization on", "users_file", cfg.NATSUsers, "users", len(users.Users))
		}
		if cfg.ListenTLS.Enabled() {
			if ec.TLS, err = cfg.ListenTLS.ServerTLS(); err != nil {
				return err
			}
		}
		srv, err := ingest.StartEmbedded(ec, log)
		if err != nil {
			return err
		}
		defer func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		}()
		url = srv.ClientURL()
	}
	nc, err := connectNATS(url, &cfg, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := ingest.EnsureStreams(ctx, js, cfg.Streams); err != nil {
		return err
	}

	if err := dnsDet.connect(ctx, js, cfg.Streams.Replicas); err != nil {
		return err
	}
	defer dnsDet.startReload(ctx)()

	// Deployed rules: the soc_rules bucket overlays --rules and every change
	// is compiled and swapped in whole; a batch sees one set (SetRules).
	var p *ingest.Pipeline
	var corr *routedCorrelation
	watcher, err := startRulesWatcher(ctx, js, baseRules, func(set *rulebook.Set) {
		if p != nil {
			p.SetRules(dnsDet.rules(set))
			corr.swap(set)
		}
	}, log)
	if err != nil {
		return err
	}
	// Correlations: routed through SOC_CORR to one owner per group (any
	// number of instances), or in-process (one instance); see corr.go.
	findings := &ingest.JetStreamFindings{JS: js}
	corr, err = setupCorrelation(ctx, cfg.Corr, nc, js, watcher.Current(), s, findings, log)
	if err != nil {
		return err
	}
	p, err = ingest.NewPipeline(cfg.Pipeline, js, normalize.Builtin(), s, dnsDet.rules(watcher.Current()),
		findings, metrics, log)
	if err != nil {
		return err
	}
	if corr != nil {
		p.RouteCorrelations(corr.pub)
	}
	// The owner runs beside the pipeline and stops with it; inputs it has
	// not acked stay in SOC_CORR for the instance that takes over.
	defer corr.run(ctx)()
	watchCtx, stopWatch := context.WithCancel(ctx)
	var watching conc.WaitGroup
	watching.Go(func() {
		if err := watcher.Run(watchCtx); err != nil {
			log.Error("rules watcher stopped; the last rule set stays live", "err", err)
		}
	})
	defer watching.Wait()
	defer stopWatch()
	tp, stopTracing, err := newTracerProvider(ctx, cfg.OTel, nc.Opts.Name+"@"+hostname())
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	p.SetTracerProvider(tp)

	var srv *http.Server
	if cfg.Metrics != "" {
		srv, err = serveTelemetry(cfg.Metrics, reg, p, s, nc, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	// Retention: servers without TTL (18.16) rely on this job to drop
	// partitions past their table's retention; on the others it is a no-op
	// safety net. It stops with the pipeline.
	retCtx, stopRetention := context.WithCancel(ctx)
	var bg conc.WaitGroup
	bg.Go(func() { _ = s.RunRetention(retCtx, time.Hour, time.Now) })
	defer func() {
		stopRetention()
		bg.Wait()
	}()
	err = p.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if err := nc.Drain(); err != nil {
		log.Warn("drain nats connection", "err", err)
	}
	log.Info("stopped")
	return nil
}

func connectNATS(url string, cfg *config, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("watchfloor-pipeline"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		// Asynchronous errors (permission violations, a slow consumer
		// dropping deliveries after a failover) would otherwise go to
		// stderr unstructured. Dropped deliveries are redelivered after
		// --pipeline.ack-wait.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats async error", "subject", subject, "err", err)
		}),
	}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	tlsOpts, err := cfg.NATSTLS.ClientOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, tlsOpts...)
	if cfg.NATSUser != "" {
		opts = append(opts, nats.UserInfo(cfg.NATSUser, cfg.NATSPassword))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", redactURL(url), err)
	}
	log.Info("connected to NATS", "url", nc.ConnectedUrlRedacted())
	return nc, nil
}

func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "***@" + u[i+1:]
		}
	}
	return u
}

func serveTelemetry(addr string, reg *prometheus.Registry, p *ingest.Pipeline, s *sink.Sink, nc *nats.Conn, log *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Profiles, as Prometheus itself serves them: stacks and counts, no
	// record data. The listener is loopback unless the operator says otherwise.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		var problems []string
		if !p.Ready() {
			problems = append(problems, "consumer not running")
		}
		if !nc.IsConnected() {
			problems = append(problems, "nats not connected")
		}
		if err := s.Ping(ctx); err != nil {
			problems = append(problems, "clickhouse: "+err.Error())
		}
		if len(problems) > 0 {
			http.Error(w, strings.Join(problems, "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("telemetry server", "err", err)
		}
	}()
	log.Info("serving /metrics, /healthz, /readyz", "addr", ln.Addr().String())
	return srv, nil
}
