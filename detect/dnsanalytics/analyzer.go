package dnsanalytics

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/watchfloor/watchfloor/detect/intel"
	"github.com/watchfloor/watchfloor/schemas"
)

// Rule ids of the analytics' findings.
const (
	RuleDGA              = "dns.dga"
	RuleTunnelName       = "dns.tunnel.name"
	RuleTunnelSubdomains = "dns.tunnel.unique_subdomains"
	RuleTunnelTXTNull    = "dns.tunnel.txt_null_volume"
	RuleNXDomainBurst    = "dns.nxdomain_burst"
	RuleFirstSeen        = "dns.first_seen"
)

// Config holds the tunable thresholds. Zero values are not defaults: start
// from DefaultConfig. Each analytic has its own Sigma level; "" disables it.
type Config struct {
	// DGA: the registrable label's surprise under the popular-domain model
	// (bits per character) at or above DGAThreshold, for labels of at least
	// DGAMinLabelLen characters, and not a domain the model was trained on.
	DGALevel       string
	DGAThreshold   float64
	DGAMinLabelLen int

	// Tunnel, per name: the labels below the registrable domain are at
	// least TunnelMinSubLen long with character entropy of at least
	// TunnelMinEntropy bits, or one label is at least TunnelMaxLabel long.
	TunnelNameLevel  string
	TunnelMinSubLen  int
	TunnelMinEntropy float64
	TunnelMaxLabel   int

	// Windowed per client (agency + src_endpoint.ip), in tumbling windows of
	// Window by event time; each fires once per key and window.
	Window time.Duration
	// UniqueSubdomainsLevel: at least UniqueSubdomains distinct names under
	// one registrable domain from one client.
	UniqueSubdomainsLevel string
	UniqueSubdomains      int
	// TXTNullLevel: at least TXTNullQueries TXT/NULL/ANY... queries (see
	// tunnelTypes) from one client under one registrable domain.
	TXTNullLevel   string
	TXTNullQueries int
	// NXDomainLevel: at least NXDomainResponses NXDOMAIN answers to one client.
	NXDomainLevel     string
	NXDomainResponses int

	// FirstSeenLevel: a registrable domain no client of the agency queried
	// before, once the agency's first FirstSeenWarmup of event time has been
	// learned silently. At most FirstSeenMaxDomains domains are remembered
	// per agency; a full agency stops learning and stops firing (so a flood
	// of random names cannot evict what was learned). Popular domains of the
	// model never fire.
	FirstSeenLevel      string
	FirstSeenWarmup     time.Duration
	FirstSeenMaxDomains int

	// ScoreResponses also runs the per-name analytics (DGA, tunnel name,
	// first seen) on Response records. Off by default, because sources that
	// log both lines of a lookup would raise each finding twice; turn it on
	// for sources that log only replies (Unbound log-replies alone, dnstap
	// *_RESPONSE only).
	ScoreResponses bool

	// SkipPopular exempts registrable domains the DGA model was trained on
	// (popular domains) from the windowed tunnelling analytics: CDNs and
	// telemetry endpoints under them make many unique names legitimately,
	// and skipping them keeps most traffic off the per-client state. A
	// tunnel's own domain is never a popular one. Needs a model.
	SkipPopular bool

	// MaxKeys bounds the window state (clients × domains tracked); keys
	// beyond it are not tracked until the next window.
	MaxKeys int
}

// DefaultConfig returns thresholds measured on the shared corpus (see the
// package tests for the precision and recall they give).
func DefaultConfig() Config {
	return Config{
		DGALevel: "medium", DGAThreshold: 5.0, DGAMinLabelLen: 8,
		TunnelNameLevel: "medium", TunnelMinSubLen: 30, TunnelMinEntropy: 3.8, TunnelMaxLabel: 52,
		Window:                time.Minute,
		UniqueSubdomainsLevel: "high", UniqueSubdomains: 150,
		TXTNullLevel: "medium", TXTNullQueries: 200,
		NXDomainLevel: "medium", NXDomainResponses: 100,
		FirstSeenLevel: "informational", FirstSeenWarmup: 24 * time.Hour, FirstSeenMaxDomains: 500_000,
		SkipPopular: true,
		MaxKeys:     200_000,
	}
}

func checkLevel(key, v string) error {
	if v != "" && schemas.SeverityForLevel(v) == schemas.SeverityUnknown {
		return fmt.Errorf("%s must be empty (off) or informational, low, medium, high, critical; got %q", key, v)
	}
	return nil
}

// Validate names the first bad key.
func (c Config) Validate() error {
	for _, l := range []struct{ k, v string }{
		{"dns.dga_level", c.DGALevel}, {"dns.tunnel_name_level", c.TunnelNameLevel},
		{"dns.unique_subdomains_level", c.UniqueSubdomainsLevel}, {"dns.txt_null_level", c.TXTNullLevel},
		{"dns.nxdomain_level", c.NXDomainLevel}, {"dns.first_seen_level", c.FirstSeenLevel},
	} {
		if err := checkLevel(l.k, l.v); err != nil {
			return err
		}
	}
	switch {
	case c.DGAThreshold <= 0 || c.DGAThreshold > 20:
		return fmt.Errorf("dns.dga_threshold must be in (0, 20] bits per character, got %g", c.DGAThreshold)
	case c.DGAMinLabelLen < 1 || c.DGAMinLabelLen > 63:
		return fmt.Errorf("dns.dga_min_label_len must be between 1 and 63, got %d", c.DGAMinLabelLen)
	case c.TunnelMinSubLen < 1 || c.TunnelMinSubLen > 253:
		return fmt.Errorf("dns.tunnel_min_sub_len must be between 1 and 253, got %d", c.TunnelMinSubLen)
	case c.TunnelMaxLabel < 1 || c.TunnelMaxLabel > 63:
		return fmt.Errorf("dns.tunnel_max_label must be between 1 and 63, got %d", c.TunnelMaxLabel)
	case c.Window < time.Second || c.Window > 24*time.Hour:
		return fmt.Errorf("dns.window must be between 1s and 24h, got %s", c.Window)
	case c.UniqueSubdomains < 2 || c.UniqueSubdomains > 100000:
		return fmt.Errorf("dns.unique_subdomains must be between 2 and 100000, got %d", c.UniqueSubdomains)
	case c.TXTNullQueries < 1 || c.NXDomainResponses < 1:
		return fmt.Errorf("dns.txt_null_queries and dns.nxdomain_responses must be positive, got %d and %d", c.TXTNullQueries, c.NXDomainResponses)
	case c.FirstSeenWarmup < 0 || c.FirstSeenWarmup > 90*24*time.Hour:
		return fmt.Errorf("dns.first_seen_warmup must be between 0 and 90 days, got %s", c.FirstSeenWarmup)
	case c.FirstSeenMaxDomains < 1 || c.FirstSeenMaxDomains > 50_000_000:
		return fmt.Errorf("dns.first_seen_max_domains must be between 1 and 50000000, got %d", c.FirstSeenMaxDomains)
	case c.MaxKeys < 100 || c.MaxKeys > 10_000_000:
		return fmt.Errorf("dns.max_keys must be between 100 and 10000000, got %d", c.MaxKeys)
	}
	return nil
}

// Analyzer runs the DNS analytics over events. Per-name analytics are
// pure; windowed ones keep bounded state per client, sharded by key and
// guarded by mutexes. Safe for concurrent use.
//
// Window state is per process: with several pipeline instances sharing the
// consumer, each sees a part of a client's traffic, so windowed thresholds
// apply per instance (route an agency to one instance for exact counts).
type Analyzer struct {
	cfg    Config
	model  *Model // nil disables DGA
	psl    *intel.PublicSuffixes
	shards [16]shard

	seenMu sync.Mutex
	seen   map[string]*agencySeen
}

// agencySeen is what one agency's clients have queried.
type agencySeen struct {
	start   time.Time // first event time seen: learning ends at start+warmup
	domains map[uint64]struct{}
}

type shard struct {
	mu   sync.Mutex
	keys map[uint64]*window
	// swept is the window of the last sweep: a full shard whose keys all
	// belong to the current window gains nothing from sweeping again, and
	// sweeping per new key would make every event cost O(keys).
	swept int64
}

// window is the state of one key in its current window.
type window struct {
	start   int64 // window index (event time / Window)
	count   int
	fired   bool
	subs    map[uint32]struct{} // distinct subdomain hashes, up to the threshold
	subRoot string              // the registrable domain, for the finding
}

// New returns an Analyzer. model may be nil (no DGA scoring), psl nil
// (the public suffix is the last label).
func New(cfg Config, model *Model, psl *intel.PublicSuffixes) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Analyzer{cfg: cfg, model: model, psl: psl, seen: map[string]*agencySeen{}}
	for i := range a.shards {
		a.shards[i].keys = map[uint64]*window{}
	}
	return a, nil
}

// DGAScore is the registrable label's surprise in bits per character, and
// whether it is scored at all (long enough, not a trained popular domain,
// a model present).
func (a *Analyzer) DGAScore(p Parts) (float64, bool) {
	if a.model == nil || len(p.Label) < a.cfg.DGAMinLabelLen || a.model.Known(p.Registrable) {
		return 0, false
	}
	return a.model.Surprise(p.Label), true
}

func (a *Analyzer) popular(p Parts) bool {
	return a.model != nil && a.model.Known(p.Registrable)
}

// TunnelName reports whether the labels below the registrable domain look
// like encoded data, and the measure that decided it.
func (a *Analyzer) TunnelName(p Parts) (bool, string) {
	sub := serviceLabelsOut(p.Sub)
	if sub == "" {
		return false, ""
	}
	longest, cur := 0, 0
	for i := 0; i <= len(sub); i++ {
		if i == len(sub) || sub[i] == '.' {
			longest = max(longest, cur)
			cur = 0
			continue
		}
		cur++
	}
	if longest >= a.cfg.TunnelMaxLabel {
		return true, "label of " + strconv.Itoa(longest) + " characters"
	}
	if len(sub) >= a.cfg.TunnelMinSubLen {
		if h := Entropy(sub); h >= a.cfg.TunnelMinEntropy {
			return true, fmt.Sprintf("%d characters with entropy %.2f bits", len(sub), h)
		}
	}
	return false, ""
}

// serviceLabelsOut drops the underscore labels of service discovery names
// (_ldap._tcp.dc._msdcs, _sites): Active Directory's domain controller
// locator asks for long names of them all day, and they carry no data.
func serviceLabelsOut(sub string) string {
	if !strings.Contains(sub, "_") {
		return sub
	}
	var b strings.Builder
	for _, l := range strings.Split(sub, ".") {
		if l == "" || l[0] == '_' {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(l)
	}
	return b.String()
}

// tunnelTypes are record types tunnels favour for their payload capacity.
func tunnelType(t string) bool {
	switch t {
	case "TXT", "NULL", "ANY", "TYPE10", "TYPE16", "TYPE255":
		return true
	}
	return false
}

func lowerName(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// Eval appends the findings ev raises. Only DNS Activity events with a
// query name are analysed; responses count toward NXDOMAIN bursts, queries
// (and paired Traffic records) toward the others, so a resolver logging
// both query and response lines does not count a name twice for the
// query-side analytics.
func (a *Analyzer) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	if ev.ClassUID != schemas.ClassDNS || ev.DNS.QueryHostname == "" {
		return out
	}
	name := lowerName(ev.DNS.QueryHostname)
	p := Split(name, a.psl)
	if p.Label == "" {
		return out
	}
	isQuery := ev.ActivityID != 2 // 1 Query, 6 Traffic; 2 is Response
	perName := isQuery || a.cfg.ScoreResponses
	popular := a.popular(p)
	if perName {
		if a.cfg.DGALevel != "" && a.model != nil && !popular && len(p.Label) >= a.cfg.DGAMinLabelLen {
			if s := a.model.Surprise(p.Label); s >= a.cfg.DGAThreshold {
				out = a.finding(ev, out, RuleDGA, a.cfg.DGALevel, p.Registrable,
					fmt.Sprintf("Algorithmically generated domain: %s (label %q scores %.2f bits/char, threshold %.2f)", p.Registrable, p.Label, s, a.cfg.DGAThreshold))
			}
		}
		if a.cfg.TunnelNameLevel != "" {
			if hit, why := a.TunnelName(p); hit {
				out = a.finding(ev, out, RuleTunnelName, a.cfg.TunnelNameLevel, p.Registrable,
					fmt.Sprintf("DNS tunnelling: encoded-looking name under %s (%s)", p.Registrable, why))
			}
		}
	}
	if ev.Time.IsZero() {
		return out
	}
	if perName && !popular && a.cfg.FirstSeenLevel != "" && a.firstSeen(ev.Agency, p.Registrable, ev.Time) {
		out = a.finding(ev, out, RuleFirstSeen, a.cfg.FirstSeenLevel, p.Registrable,
			fmt.Sprintf("First-seen domain for the agency: %s", p.Registrable))
	}
	if ev.Src.IP == "" {
		return out
	}
	win := ev.Time.UnixNano() / int64(a.cfg.Window)
	skip := popular && a.cfg.SkipPopular
	if isQuery && !skip && a.cfg.UniqueSubdomainsLevel != "" && p.Sub != "" {
		if n, ok := a.track(RuleTunnelSubdomains, ev, p.Registrable, win, p.Sub, a.cfg.UniqueSubdomains); ok {
			out = a.finding(ev, out, RuleTunnelSubdomains, a.cfg.UniqueSubdomainsLevel, p.Registrable,
				fmt.Sprintf("DNS tunnelling: %d distinct names under %s from %s within %s", n, p.Registrable, ev.Src.IP, a.cfg.Window))
		}
	}
	if isQuery && !skip && a.cfg.TXTNullLevel != "" && tunnelType(ev.DNS.QueryType) {
		if n, ok := a.track(RuleTunnelTXTNull, ev, p.Registrable, win, "", a.cfg.TXTNullQueries); ok {
			out = a.finding(ev, out, RuleTunnelTXTNull, a.cfg.TXTNullLevel, p.Registrable,
				fmt.Sprintf("DNS tunnelling: %d TXT/NULL/ANY queries under %s from %s within %s", n, p.Registrable, ev.Src.IP, a.cfg.Window))
		}
	}
	if a.cfg.NXDomainLevel != "" && ev.DNS.RCodeID == 3 && ev.ActivityID != 1 {
		if n, ok := a.track(RuleNXDomainBurst, ev, "", win, "", a.cfg.NXDomainResponses); ok {
			out = a.finding(ev, out, RuleNXDomainBurst, a.cfg.NXDomainLevel, "",
				fmt.Sprintf("NXDOMAIN burst: %d non-existent names answered to %s within %s", n, ev.Src.IP, a.cfg.Window))
		}
	}
	return out
}

// firstSeen records domain for agency and reports whether it is new after
// the agency's warm-up.
func (a *Analyzer) firstSeen(agency, domain string, t time.Time) bool {
	h := xxhash.Sum64String(domain)
	a.seenMu.Lock()
	defer a.seenMu.Unlock()
	s := a.seen[agency]
	if s == nil {
		s = &agencySeen{start: t, domains: make(map[uint64]struct{}, 1024)}
		a.seen[agency] = s
	}
	if _, ok := s.domains[h]; ok {
		return false
	}
	if len(s.domains) >= a.cfg.FirstSeenMaxDomains {
		return false
	}
	s.domains[h] = struct{}{}
	return t.Sub(s.start) >= a.cfg.FirstSeenWarmup
}

// track counts ev in the window of (rule, agency, client, root); distinct
// counts sub values instead when sub is not empty. It reports the count and
// true once, when the count reaches threshold.
func (a *Analyzer) track(rule string, ev *schemas.Event, root string, win int64, sub string, threshold int) (int, bool) {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(rule)
	d.WriteString("\x00")
	d.WriteString(ev.Agency)
	d.WriteString("\x00")
	d.WriteString(ev.Src.IP)
	d.WriteString("\x00")
	d.WriteString(root)
	key := d.Sum64()
	sh := &a.shards[key%uint64(len(a.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	w := sh.keys[key]
	if w == nil || w.start != win {
		if w == nil {
			if len(sh.keys) >= a.cfg.MaxKeys/len(a.shards) {
				if sh.swept < win {
					sh.sweep(win)
					sh.swept = win
				}
				if len(sh.keys) >= a.cfg.MaxKeys/len(a.shards) {
					return 0, false // full: not tracked this window
				}
			}
			w = &window{}
			sh.keys[key] = w
		}
		*w = window{start: win, subs: w.subs}
		clear(w.subs)
	}
	if w.fired {
		return w.count, false
	}
	if sub != "" {
		if w.subs == nil {
			w.subs = make(map[uint32]struct{}, 16)
		}
		w.subs[uint32(xxhash.Sum64String(sub))] = struct{}{}
		w.count = len(w.subs)
	} else {
		w.count++
	}
	if w.count >= threshold {
		w.fired = true
		w.subs = nil // free the set: the key fired for this window
		return w.count, true
	}
	return w.count, false
}

// sweep drops keys of windows before win.
func (sh *shard) sweep(win int64) {
	for k, w := range sh.keys {
		if w.start < win {
			delete(sh.keys, k)
		}
	}
}

func (a *Analyzer) finding(ev *schemas.Event, out []schemas.Finding, rule, level, domain, title string) []schemas.Finding {
	tags := []string{"dns.analytics", "attack.command-and-control"}
	switch rule {
	case RuleDGA:
		tags = append(tags, "attack.t1568.002")
	case RuleNXDomainBurst:
		tags = append(tags, "attack.t1568.002")
	case RuleFirstSeen:
		tags = []string{"dns.analytics"}
	default:
		tags = append(tags, "attack.t1071.004", "attack.exfiltration", "attack.t1048")
	}
	if domain != "" {
		tags = append(tags, "dns.domain:"+domain)
	}
	return append(out, schemas.Finding{
		ID:         schemas.FindingID(ev.ID, rule),
		EventID:    ev.ID,
		Agency:     ev.Agency,
		Time:       ev.Time,
		RuleID:     rule,
		RuleTitle:  title,
		RuleLevel:  level,
		SeverityID: schemas.SeverityForLevel(level),
		EventClass: ev.ClassUID,
		Tags:       tags,
	})
}
