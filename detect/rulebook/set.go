package rulebook

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/schemas"
)

// Set is one compiled, immutable rule set: the base rules (a directory,
// revision 0) overlaid with the bucket's rules. It is safe for concurrent
// use; the pipeline takes one Set per batch, so every event of a batch is
// evaluated by the same rules.
type Set struct {
	rs       *detect.RuleSet
	corr     *detect.Correlating // nil without correlation rules
	revs     map[string]uint64   // rule id -> KV revision (absent: base rule, 0)
	revision uint64              // highest bucket revision folded in
	rules    []RuleInfo
	span     time.Duration // longest correlation timespan
}

// RuleInfo describes one rule of a Set.
type RuleInfo struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Level    string `json:"level"`
	Revision uint64 `json:"revision"` // 0 for a base (directory) rule
	Source   string `json:"source"`   // "kv" or the rule file
}

// Eval appends a finding for every rule that matches ev, each carrying its
// rule's KV revision, and returns the extended slice. Like
// detect.RuleSet.Eval it allocates nothing when no rule matches.
func (s *Set) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	n := len(out)
	if s.corr != nil {
		out = s.corr.Eval(ev, out)
	} else {
		out = s.rs.Eval(ev, out)
	}
	s.Stamp(out[n:])
	return out
}

// EvalCorr is Eval for routed correlations (ingest.CorrEvaluator): it
// appends the detection rules' findings and the correlation inputs of the
// event's hits (detect.RuleSet.CorrInputs) instead of feeding the set's
// in-process windows, which stay empty. It allocates nothing when no rule
// matches.
func (s *Set) EvalCorr(ev *schemas.Event, out []schemas.Finding, ins []detect.CorrInput) ([]schemas.Finding, []detect.CorrInput) {
	n := len(out)
	if s.corr == nil {
		out = s.rs.Eval(ev, out)
	} else {
		hits := s.rs.EvalHits(ev, nil)
		out = s.rs.Findings(ev, hits, out)
		ins = s.rs.CorrInputs(ev, hits, ins)
	}
	s.Stamp(out[n:])
	return out, ins
}

// Stamp sets each finding's RuleRevision to its rule's KV revision (a
// correlation owner's findings come from the set's RuleSet directly).
func (s *Set) Stamp(fs []schemas.Finding) {
	if len(s.revs) == 0 {
		return
	}
	for i := range fs {
		fs[i].RuleRevision = s.revs[fs[i].RuleID]
	}
}

// CorrelationSpan is the longest timespan of the set's correlation rules
// (0 without any): how far back a correlation owner replays its inputs.
func (s *Set) CorrelationSpan() time.Duration { return s.span }

// Len is the number of rules in the set.
func (s *Set) Len() int { return s.rs.Len() }

// Revision is the highest bucket revision the set reflects (0: none).
func (s *Set) Revision() uint64 { return s.revision }

// Rules lists the set's rules sorted by id. The slice must not be modified.
func (s *Set) Rules() []RuleInfo { return s.rules }

// RuleSet returns the compiled rules.
func (s *Set) RuleSet() *detect.RuleSet { return s.rs }

// kvRule is one live bucket entry: a rule to deploy, or a disable marker
// (Rule nil) that also hides a base rule of the same id.
type kvRule struct {
	rule     *detect.Rule
	revision uint64
}

// buildSet overlays kv on base and compiles the result. A bucket entry
// wins over a base rule of the same id, including a disable.
func buildSet(base []*detect.Rule, kv map[string]kvRule, revision uint64, cfg detect.Config) (*Set, error) {
	rules := make([]*detect.Rule, 0, len(base)+len(kv))
	s := &Set{revs: make(map[string]uint64, len(kv)), revision: revision}
	for _, r := range base {
		if _, overridden := kv[r.ID]; overridden {
			continue
		}
		rules = append(rules, r)
		s.rules = append(s.rules, RuleInfo{ID: r.ID, Title: r.Title, Level: r.Level, Source: r.Source})
	}
	for id, e := range kv {
		if e.rule == nil {
			continue
		}
		rules = append(rules, e.rule)
		s.revs[id] = e.revision
		s.rules = append(s.rules, RuleInfo{ID: id, Title: e.rule.Title, Level: e.rule.Level, Revision: e.revision, Source: "kv"})
	}
	for _, r := range rules {
		if r.Correlation != nil && r.Correlation.Timespan > s.span {
			s.span = r.Correlation.Timespan
		}
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	sort.Slice(s.rules, func(i, j int) bool { return s.rules[i].ID < s.rules[j].ID })
	rs, err := detect.Compile(rules, cfg)
	if err != nil {
		return nil, fmt.Errorf("compile rule set at revision %d: %w", revision, err)
	}
	s.rs = rs
	if rs.Correlations() > 0 {
		// In-process (local) correlation windows live in the Correlating: a
		// new rule set starts them afresh. Routed correlations (EvalCorr)
		// leave it empty; their owner rebuilds windows on a swap.
		if s.corr, err = detect.NewCorrelating(rs, detect.DefaultCorrelatorConfig()); err != nil {
			return nil, fmt.Errorf("correlations: %w", err)
		}
	}
	return s, nil
}

// StaticSet compiles rules with no bucket (every revision 0).
func StaticSet(rules []*detect.Rule, cfg detect.Config) (*Set, error) {
	return buildSet(rules, nil, 0, cfg)
}

// compileOne checks that one rule compiles on its own.
func compileOne(r *detect.Rule, cfg detect.Config) error {
	_, err := detect.Compile([]*detect.Rule{r}, cfg)
	return err
}

// LoadBase parses the rules of a directory for use as a Watcher's base.
func LoadBase(dir string) ([]*detect.Rule, error) {
	rules, errs := detect.ParseDir(dir)
	if len(errs) > 0 {
		return nil, fmt.Errorf("load rules from %s: %w", dir, errors.Join(errs...))
	}
	return rules, nil
}
