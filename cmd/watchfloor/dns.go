package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/watchfloor/watchfloor/detect/dnsanalytics"
	"github.com/watchfloor/watchfloor/detect/intel"
	"github.com/watchfloor/watchfloor/ingest"
)

// debianPublicSuffix is where Debian's publicsuffix package installs the
// list; used when --intel.public-suffix is empty and the file exists.
const debianPublicSuffix = "/usr/share/publicsuffix/public_suffix_list.dat"

// dnsConfig configures threat-intel matching and the DNS analytics.
type dnsConfig struct {
	IntelFeeds   []string // "path" or "name=path"
	IntelBucket  string   // object store watched for pushed feeds; "" disables
	IntelLevel   string
	PublicSuffix string
	DGAModel     string // popular-domain list the DGA model trains on; "" disables DGA
	Analytics    bool
	Analyzer     dnsanalytics.Config
}

func defaultDNSConfig() dnsConfig {
	return dnsConfig{IntelBucket: intel.DefaultBucket, IntelLevel: "high", Analytics: true, Analyzer: dnsanalytics.DefaultConfig()}
}

func dnsFlags(fs *flag.FlagSet, c *dnsConfig, d dnsConfig) {
	fs.Var((*listValue)(&c.IntelFeeds), "intel.feeds", "threat-intel feed files, comma-separated, each path or name=path; format from the extension (.json STIX 2.1, .csv, .intel Zeek, *hosts*, else one indicator per line)")
	fs.StringVar(&c.IntelBucket, "intel.bucket", d.IntelBucket, "JetStream Object Store whose objects are feeds (object name = feed name + extension), reloaded on every change; empty disables")
	fs.StringVar(&c.IntelLevel, "intel.level", d.IntelLevel, "Sigma level of threat-intel findings")
	fs.StringVar(&c.PublicSuffix, "intel.public-suffix", d.PublicSuffix, "public_suffix_list.dat bounding parent-domain matches; empty uses "+debianPublicSuffix+" when present, else the last label")
	fs.StringVar(&c.DGAModel, "dns.dga-model", d.DGAModel, "list of popular domains (one per line or rank,domain CSV, e.g. a Tranco top list) the DGA model trains on at start; empty disables DGA scoring")
	fs.BoolVar(&c.Analytics, "dns.analytics", d.Analytics, "run the DNS analytics (DGA, tunnelling, NXDOMAIN bursts) on DNS events")
	a, da := &c.Analyzer, d.Analyzer
	fs.StringVar(&a.DGALevel, "dns.dga-level", da.DGALevel, "Sigma level of DGA findings; empty disables")
	fs.Float64Var(&a.DGAThreshold, "dns.dga-threshold", da.DGAThreshold, "DGA: bits per character of the registrable label under the popular-domain model at which a name is flagged")
	fs.IntVar(&a.DGAMinLabelLen, "dns.dga-min-label-len", da.DGAMinLabelLen, "DGA: shortest registrable label scored")
	fs.StringVar(&a.TunnelNameLevel, "dns.tunnel-name-level", da.TunnelNameLevel, "Sigma level of encoded-name tunnelling findings; empty disables")
	fs.IntVar(&a.TunnelMinSubLen, "dns.tunnel-min-sub-len", da.TunnelMinSubLen, "tunnelling: subdomain length from which entropy is checked")
	fs.Float64Var(&a.TunnelMinEntropy, "dns.tunnel-min-entropy", da.TunnelMinEntropy, "tunnelling: subdomain character entropy (bits) flagged")
	fs.IntVar(&a.TunnelMaxLabel, "dns.tunnel-max-label", da.TunnelMaxLabel, "tunnelling: a label at least this long is flagged")
	fs.DurationVar(&a.Window, "dns.window", da.Window, "window of the per-client DNS analytics (unique subdomains, TXT/NULL volume, NXDOMAIN bursts)")
	fs.StringVar(&a.UniqueSubdomainsLevel, "dns.unique-subdomains-level", da.UniqueSubdomainsLevel, "Sigma level of unique-subdomain tunnelling findings; empty disables")
	fs.IntVar(&a.UniqueSubdomains, "dns.unique-subdomains", da.UniqueSubdomains, "tunnelling: distinct names under one domain from one client per window")
	fs.StringVar(&a.TXTNullLevel, "dns.txt-null-level", da.TXTNullLevel, "Sigma level of TXT/NULL volume findings; empty disables")
	fs.IntVar(&a.TXTNullQueries, "dns.txt-null-queries", da.TXTNullQueries, "tunnelling: TXT/NULL/ANY queries under one domain from one client per window")
	fs.StringVar(&a.NXDomainLevel, "dns.nxdomain-level", da.NXDomainLevel, "Sigma level of NXDOMAIN burst findings; empty disables")
	fs.IntVar(&a.NXDomainResponses, "dns.nxdomain-responses", da.NXDomainResponses, "NXDOMAIN answers to one client per window that make a burst")
	fs.StringVar(&a.FirstSeenLevel, "dns.first-seen-level", da.FirstSeenLevel, "Sigma level of first-seen-domain findings (per agency, per instance); empty disables")
	fs.DurationVar(&a.FirstSeenWarmup, "dns.first-seen-warmup", da.FirstSeenWarmup, "event time an agency's domains are learned silently before first-seen findings start")
	fs.IntVar(&a.FirstSeenMaxDomains, "dns.first-seen-max-domains", da.FirstSeenMaxDomains, "domains remembered per agency for first-seen; a full agency stops learning and firing")
	fs.BoolVar(&a.ScoreResponses, "dns.score-responses", da.ScoreResponses, "also run the per-name DNS analytics on response records (for sources that log only replies)")
	fs.BoolVar(&a.SkipPopular, "dns.skip-popular", da.SkipPopular, "exempt the popular domains of --dns.dga-model from the windowed tunnelling analytics")
	fs.IntVar(&a.MaxKeys, "dns.max-keys", da.MaxKeys, "bound on (client, domain) keys the windowed DNS analytics track")
}

func (c *dnsConfig) validate() []error {
	var errs []error
	if err := (intel.Config{Level: c.IntelLevel, MaxFindingsPerEvent: 1}).Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Analyzer.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, f := range c.IntelFeeds {
		ff := intel.ParseFileFeed(f)
		if _, err := os.Stat(ff.Path); err != nil {
			errs = append(errs, fmt.Errorf("intel.feeds %q: %w", f, err))
		}
	}
	for key, path := range map[string]string{"intel.public-suffix": c.PublicSuffix, "dns.dga-model": c.DGAModel} {
		if path != "" {
			if _, err := os.Stat(path); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", key, err))
			}
		}
	}
	return errs
}

// dnsDetection holds the intel matcher and the DNS analyzer of a run.
type dnsDetection struct {
	cfg      dnsConfig
	log      *slog.Logger
	loader   *intel.Loader
	matcher  *intel.Matcher
	analyzer *dnsanalytics.Analyzer // nil when --dns.analytics=false
	store    jetstream.ObjectStore
}

// newDNSDetection loads the public suffix list, the DGA model and the feed
// files; any failure stops start-up.
func newDNSDetection(c dnsConfig, log *slog.Logger) (*dnsDetection, error) {
	d := &dnsDetection{cfg: c, log: log}
	pslPath := c.PublicSuffix
	if pslPath == "" {
		if _, err := os.Stat(debianPublicSuffix); err == nil {
			pslPath = debianPublicSuffix
		}
	}
	var psl *intel.PublicSuffixes
	if pslPath != "" {
		f, err := os.Open(pslPath)
		if err != nil {
			return nil, fmt.Errorf("intel.public-suffix: %w", err)
		}
		psl, err = intel.ParsePublicSuffixes(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("intel.public-suffix %s: %w", pslPath, err)
		}
	} else {
		log.Warn("no public suffix list: parent-domain matching stops at the last label (set --intel.public-suffix)")
	}
	d.loader = &intel.Loader{PSL: psl}
	for _, f := range c.IntelFeeds {
		d.loader.Files = append(d.loader.Files, intel.ParseFileFeed(f))
	}
	set, stats, _, err := d.loader.Build(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	for _, st := range stats {
		log.Info("intel feed loaded", "feed", st.Feed, "indicators", st.Added, "skipped", st.Skipped, "unsupported", st.Unsupported, "first_skip", st.FirstSkip)
	}
	icfg := intel.DefaultConfig()
	icfg.Level = c.IntelLevel
	if d.matcher, err = intel.NewMatcher(icfg, set); err != nil {
		return nil, err
	}
	if !c.Analytics {
		return d, nil
	}
	var model *dnsanalytics.Model
	if c.DGAModel != "" {
		f, err := os.Open(c.DGAModel)
		if err != nil {
			return nil, fmt.Errorf("dns.dga-model: %w", err)
		}
		model, err = dnsanalytics.TrainModel(f, psl)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("dns.dga-model %s: %w", c.DGAModel, err)
		}
		log.Info("DGA model trained", "domains", model.Names())
	} else {
		log.Info("DGA scoring off: no --dns.dga-model list of popular domains")
	}
	if d.analyzer, err = dnsanalytics.New(c.Analyzer, model, psl); err != nil {
		return nil, err
	}
	return d, nil
}

// connect binds the feeds bucket (creating it) and loads the feeds pushed
// there so far.
func (d *dnsDetection) connect(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if d.cfg.IntelBucket == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := js.CreateOrUpdateObjectStore(cctx, jetstream.ObjectStoreConfig{
		Bucket: d.cfg.IntelBucket, Description: "Watchfloor threat-intel feeds", Replicas: replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("intel.bucket %s: %w", d.cfg.IntelBucket, err)
	}
	d.store = store
	set, stats, objErrs, err := d.loader.Build(cctx, store)
	if err != nil {
		return err
	}
	for _, e := range objErrs {
		d.log.Warn("intel feed skipped", "err", e)
	}
	d.matcher.Swap(set)
	d.log.Info("intel feeds ready", "feeds", len(stats), "indicators", set.Len(), "bucket", d.cfg.IntelBucket)
	return nil
}

// rules puts intel matching and the DNS analytics after the Sigma rules.
func (d *dnsDetection) rules(sigma ingest.Rules) ingest.Rules {
	chain := ingest.RulesChain{sigma, d.matcher}
	if d.analyzer != nil {
		chain = append(chain, d.analyzer)
	}
	return chain
}

// startReload watches the bucket until the returned stop is called.
func (d *dnsDetection) startReload(ctx context.Context) (stop func()) {
	if d.store == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg conc.WaitGroup
	r := &intel.Reloader{Loader: d.loader, Store: d.store, Matcher: d.matcher, Log: d.log}
	wg.Go(func() {
		if err := r.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("intel reload stopped", "err", err)
		}
	})
	return func() { cancel(); wg.Wait() }
}
