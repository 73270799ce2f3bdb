package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/corrroute"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/schemas"
)

// Correlation modes of `watchfloor run` (--corr.mode).
const (
	corrAuto   = "auto"   // routed when the NATS server has priority groups (2.11+), else local
	corrLocal  = "local"  // in-process windows: right for one instance
	corrRouted = "routed" // one owner per group through SOC_CORR: right for any number
)

// corrConfig configures how correlation rules are evaluated.
type corrConfig struct {
	Mode       string
	Route      corrroute.Config
	Correlator detect.CorrelatorConfig
}

func defaultCorrConfig() corrConfig {
	return corrConfig{Mode: corrAuto, Route: corrroute.DefaultConfig(), Correlator: detect.DefaultCorrelatorConfig()}
}

func corrFlags(fs *flag.FlagSet, c *corrConfig, d corrConfig) {
	fs.StringVar(&c.Mode, "corr.mode", d.Mode, "correlation rules: local keeps their windows in each instance (right for one instance), routed sends the matches they need through SOC_CORR to one owner per group (right for several; needs NATS 2.11+), auto is routed when the server supports it, else local")
	fs.IntVar(&c.Route.Partitions, "corr.partitions", d.Route.Partitions, "routed: partitions of soc.corr.<agency>.<p>, each owned by one instance at a time; fixed per deployment (changing it moves groups and loses their open windows)")
	fs.DurationVar(&c.Route.MaxAge, "corr.max-age", d.Route.MaxAge, "routed: how long SOC_CORR keeps correlation inputs; must exceed the longest correlation timespan plus --corr.lateness, best twice the timespan (a new owner rebuilds windows from the last two timespans)")
	fs.DurationVar(&c.Route.PinnedTTL, "corr.pinned-ttl", d.Route.PinnedTTL, "routed: a silent owner loses its partitions to another instance after this long")
	fs.DurationVar(&c.Correlator.Lateness, "corr.lateness", d.Correlator.Lateness, "routed: how far behind the newest event time of its partition a match may arrive and still count")
}

func (c *corrConfig) validate() []error {
	var errs []error
	switch c.Mode {
	case corrAuto, corrLocal, corrRouted:
	default:
		errs = append(errs, fmt.Errorf("corr.mode must be auto, local or routed, got %q", c.Mode))
	}
	if err := c.Route.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Correlator.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("corr.lateness: %w", err))
	}
	return errs
}

// serverHasPriorityGroups reports whether a NATS server version (x.y.z)
// has consumer priority groups with the pinned_client policy (2.11+).
func serverHasPriorityGroups(version string) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 2 || major == 2 && minor >= 11
}

// routedCorrelation is the routed mode's running part: the publisher the
// pipeline hands each batch's correlation inputs to, and the owner of the
// partitions this instance is pinned to.
type routedCorrelation struct {
	pub   *corrroute.Publisher
	owner *corrroute.Owner
	set   atomic.Pointer[rulebook.Set]
	log   *slog.Logger
	cfg   corrConfig
}

// setupCorrelation decides the mode and, when routed, ensures SOC_CORR and
// its partition consumers and builds the owner, whose findings go through
// the same store and SOC_DETECTIONS publisher as the pipeline's. It returns
// nil in local mode.
func setupCorrelation(ctx context.Context, c corrConfig, nc *nats.Conn, js jetstream.JetStream, set *rulebook.Set,
	store ingest.Store, findings ingest.FindingPublisher, log *slog.Logger) (*routedCorrelation, error) {
	version := nc.ConnectedServerVersion()
	switch {
	case c.Mode == corrLocal:
		log.Info("correlations evaluated in this instance (corr.mode=local): run one instance, or use routed", "correlations", set.RuleSet().Correlations())
		return nil, nil
	case !serverHasPriorityGroups(version) && c.Mode == corrRouted:
		return nil, fmt.Errorf("corr.mode=routed needs NATS server 2.11 or later (consumer priority groups), connected to %s", version)
	case !serverHasPriorityGroups(version):
		level := slog.LevelWarn
		if set.RuleSet().Correlations() == 0 {
			level = slog.LevelInfo // nothing to get wrong until a correlation is deployed
		}
		log.Log(ctx, level, "NATS server has no consumer priority groups: correlations are evaluated in each instance, correct only with a single `watchfloor run`",
			"server_version", version, "correlations", set.RuleSet().Correlations())
		return nil, nil
	}
	if span := set.CorrelationSpan(); span+c.Correlator.Lateness > c.Route.MaxAge {
		return nil, fmt.Errorf("corr.max-age (%s) must exceed the longest correlation timespan (%s) plus corr.lateness (%s)", c.Route.MaxAge, span, c.Correlator.Lateness)
	}
	if err := corrroute.Ensure(ctx, js, c.Route); err != nil {
		return nil, err
	}
	pub, err := corrroute.NewPublisher(js, c.Route)
	if err != nil {
		return nil, err
	}
	rc := &routedCorrelation{pub: pub, log: log, cfg: c}
	rc.set.Store(set)
	handle := ingest.StoreFindings(store, findings)
	rc.owner, err = corrroute.NewOwner(js, c.Route, corrroute.OwnerConfig{
		Rules: set.RuleSet(), Span: set.CorrelationSpan(), Correlator: c.Correlator, Clock: time.Now, Log: log,
		Handle: func(ctx context.Context, fs []schemas.Finding) error {
			rc.set.Load().Stamp(fs)
			return handle(ctx, fs)
		},
	})
	if err != nil {
		return nil, err
	}
	log.Info("correlations routed through JetStream (corr.mode=routed)", "stream", c.Route.Stream,
		"partitions", c.Route.Partitions, "correlations", set.RuleSet().Correlations())
	return rc, nil
}

// swap hands a new rule set to the owner, which rebuilds its partitions'
// windows under it from the stream.
func (rc *routedCorrelation) swap(set *rulebook.Set) {
	if rc == nil {
		return
	}
	if span := set.CorrelationSpan(); span+rc.cfg.Correlator.Lateness > rc.cfg.Route.MaxAge {
		rc.log.Warn("a correlation's timespan exceeds what SOC_CORR keeps: a takeover cannot rebuild its windows whole; raise --corr.max-age",
			"timespan", span, "corr_max_age", rc.cfg.Route.MaxAge)
	}
	rc.set.Store(set)
	rc.owner.SetRules(set.RuleSet(), set.CorrelationSpan())
}

// run runs the owner until stop is called.
func (rc *routedCorrelation) run(ctx context.Context) (stop func()) {
	if rc == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := rc.owner.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			rc.log.Error("correlation owner stopped: this instance no longer decides correlations", "err", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}
