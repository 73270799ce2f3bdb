package intel

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	"github.com/watchfloor/watchfloor/schemas"
)

// Config tunes how matches become findings.
type Config struct {
	// Level is the Sigma level of intel findings (informational, low,
	// medium, high, critical). Default high.
	Level string
	// MatchAnswers matches DNS answers (A/AAAA rdata) against IP and CIDR
	// indicators. Default true.
	MatchAnswers bool
	// MatchDstIP matches dst_endpoint.ip of every event class. Default true.
	MatchDstIP bool
	// MaxFindingsPerEvent bounds the findings one event can raise (a name
	// listed by many feeds). Default 16.
	MaxFindingsPerEvent int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Level: "high", MatchAnswers: true, MatchDstIP: true, MaxFindingsPerEvent: 16}
}

// Validate names the first bad key.
func (c Config) Validate() error {
	if schemas.SeverityForLevel(c.Level) == schemas.SeverityUnknown {
		return fmt.Errorf("intel.level must be informational, low, medium, high or critical, got %q", c.Level)
	}
	if c.MaxFindingsPerEvent < 1 || c.MaxFindingsPerEvent > 1000 {
		return fmt.Errorf("intel.max_findings_per_event must be between 1 and 1000, got %d", c.MaxFindingsPerEvent)
	}
	return nil
}

// RulePrefix starts the rule id of every intel finding: "intel.<feed>".
const RulePrefix = "intel."

// Matcher raises findings for events that name an indicator. The set is
// swapped atomically (hot reload): an Eval sees either the old or the new
// set, never a mix. Safe for concurrent use.
type Matcher struct {
	cfg Config
	sev uint8
	set atomic.Pointer[Set]
}

// NewMatcher returns a matcher over set (nil: an empty set until Swap).
func NewMatcher(cfg Config, set *Set) (*Matcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Matcher{cfg: cfg, sev: schemas.SeverityForLevel(cfg.Level)}
	m.set.Store(set)
	return m, nil
}

// Swap installs set for later Evals and returns the previous one.
func (m *Matcher) Swap(set *Set) *Set { return m.set.Swap(set) }

// Set returns the set in use.
func (m *Matcher) Set() *Set { return m.set.Load() }

// Eval appends a finding per (feed, indicator) that ev matches: the DNS
// query name (exact or a parent domain), DNS answers that are addresses, and
// dst_endpoint.ip. The rule id is "intel.<feed>"; the title and the tags
// name the feed, the indicator and the matched attribute. It allocates only
// for matches. ev is not retained.
func (m *Matcher) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	set := m.set.Load()
	if set == nil || set.Len() == 0 {
		return out
	}
	start := len(out)
	var buf [8]Match
	if ev.ClassUID == schemas.ClassDNS && ev.DNS.QueryHostname != "" {
		ms := set.MatchDomain(ev.DNS.QueryHostname, buf[:0])
		out = m.findings(ev, ms, "query.hostname", ev.DNS.QueryHostname, start, out)
	}
	if m.cfg.MatchAnswers && ev.ClassUID == schemas.ClassDNS {
		for _, a := range ev.DNS.Answers {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				continue
			}
			ms := set.MatchIP(ip, buf[:0])
			out = m.findings(ev, ms, "answers.rdata", a, start, out)
		}
	}
	if m.cfg.MatchDstIP && ev.Dst.IP != "" {
		if ip, err := netip.ParseAddr(ev.Dst.IP); err == nil {
			ms := set.MatchIP(ip, buf[:0])
			out = m.findings(ev, ms, "dst_endpoint.ip", ev.Dst.IP, start, out)
		}
	}
	return out
}

func (m *Matcher) findings(ev *schemas.Event, ms []Match, attr, value string, start int, out []schemas.Finding) []schemas.Finding {
next:
	for _, mt := range ms {
		if len(out)-start >= m.cfg.MaxFindingsPerEvent {
			return out
		}
		rule := RulePrefix + mt.Feed
		id := schemas.FindingID(ev.ID, rule+"\x00"+mt.Indicator)
		for i := start; i < len(out); i++ {
			if out[i].ID == id {
				continue next // same indicator via another answer
			}
		}
		out = append(out, schemas.Finding{
			ID:         id,
			EventID:    ev.ID,
			Agency:     ev.Agency,
			Time:       ev.Time,
			RuleID:     rule,
			RuleTitle:  fmt.Sprintf("Threat intel match: %s %s listed by feed %s (%s = %s)", mt.Kind, mt.Indicator, mt.Feed, attr, value),
			RuleLevel:  m.cfg.Level,
			SeverityID: m.sev,
			EventClass: ev.ClassUID,
			Tags: []string{
				"intel",
				"intel.feed:" + mt.Feed,
				"intel.indicator:" + mt.Indicator,
				"intel.kind:" + mt.Kind.String(),
				"intel.matched:" + attr,
			},
		})
	}
	return out
}
