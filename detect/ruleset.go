package detect

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/watchfloor/watchfloor/schemas"
)

// RuleSet is a compiled, immutable set of rules. It is safe for concurrent
// use by any number of goroutines; swap rule sets by replacing the pointer
// (an atomic.Pointer[RuleSet]).
type RuleSet struct {
	rules        []*compiledRule
	groups       []ruleGroup
	unrouted     []string
	correlations []*compiledCorrelation
	pool         sync.Pool // *scratch
	maxGroup     int
	maxPatterns  int
}

// ruleGroup is the rules that share one event selection: an event is
// checked against the selection once and meets only those rules, and only
// those whose literals the group's index finds in it.
type ruleGroup struct {
	key   string
	sels  []EventSelector // ORed
	rules []*compiledRule
	index *groupIndex // nil for small groups: every rule is evaluated
}

type compiledRule struct {
	pos                    int32 // position in RuleSet.rules
	id, name, title, level string
	source                 string
	severity               uint8
	tags, techniques       []string
	cond                   matcher
	// emit is false for a rule that only feeds correlations (referenced by
	// correlations with generate: false).
	emit      bool
	overrides []map[string]string
	// corrs are the correlations that take this rule's matches.
	corrs []*compiledCorrelation
}

// Len returns the number of compiled detection rules.
func (rs *RuleSet) Len() int { return len(rs.rules) }

// Unrouted returns the ids of compiled rules whose logsource the mapping
// does not route to any events; they never match until it does.
func (rs *RuleSet) Unrouted() []string { return rs.unrouted }

// Hit is one detection rule matching one event, before suppression: the
// input of correlations.
type Hit struct{ rule int32 }

// Eval appends to out a finding for every generating rule that matches ev
// and returns the extended slice. It does no I/O, does not retain ev, and
// allocates nothing when no rule matches. Findings' Tags and Techniques
// slices are shared with the rule set and must not be modified.
// Correlations are not evaluated here: see Correlator.
func (rs *RuleSet) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	s := rs.getScratch()
	s.hits = rs.match(ev, s, s.hits[:0])
	for _, h := range s.hits {
		if r := rs.rules[h]; r.emit {
			out = append(out, rs.finding(r, ev))
		}
	}
	rs.pool.Put(s)
	return out
}

// EvalHits appends every detection rule matching ev to hits, including the
// rules that only feed correlations, and returns the extended slice.
func (rs *RuleSet) EvalHits(ev *schemas.Event, hits []Hit) []Hit {
	s := rs.getScratch()
	s.hits = rs.match(ev, s, s.hits[:0])
	for _, h := range s.hits {
		hits = append(hits, Hit{rule: h})
	}
	rs.pool.Put(s)
	return hits
}

// Findings appends the findings of the hits' generating rules.
func (rs *RuleSet) Findings(ev *schemas.Event, hits []Hit, out []schemas.Finding) []schemas.Finding {
	for _, h := range hits {
		if r := rs.rules[h.rule]; r.emit {
			out = append(out, rs.finding(r, ev))
		}
	}
	return out
}

// RuleID returns the id of the hit's rule.
func (rs *RuleSet) RuleID(h Hit) string { return rs.rules[h.rule].id }

func (rs *RuleSet) getScratch() *scratch {
	if s, ok := rs.pool.Get().(*scratch); ok {
		return s
	}
	return &scratch{rmark: make([]uint32, rs.maxGroup), rmask: make([]uint8, rs.maxGroup), pmark: make([]uint32, rs.maxPatterns)}
}

func (rs *RuleSet) match(ev *schemas.Event, s *scratch, hits []int32) []int32 {
	for gi := range rs.groups {
		g := &rs.groups[gi]
		if !g.selects(ev) {
			continue
		}
		if g.index == nil {
			for _, r := range g.rules {
				if r.cond.match(ev) {
					hits = append(hits, r.pos)
				}
			}
			continue
		}
		for _, p := range g.index.candidates(ev, s) {
			if r := g.rules[p]; r.cond.match(ev) {
				hits = append(hits, r.pos)
			}
		}
	}
	return hits
}

func (rs *RuleSet) finding(r *compiledRule, ev *schemas.Event) schemas.Finding {
	return schemas.Finding{
		ID:         schemas.FindingID(ev.ID, r.id),
		EventID:    ev.ID,
		Agency:     ev.Agency,
		Time:       ev.Time,
		RuleID:     r.id,
		RuleTitle:  r.title,
		RuleLevel:  r.level,
		SeverityID: r.severity,
		EventClass: ev.ClassUID,
		Tags:       r.tags,
		Techniques: r.techniques,
		Matched:    matchedFields(r.cond, ev, nil),
	}
}

// matchedFields lists the fields of the items that made m true for ev
// (items under a "not" are left out). It runs only for a match.
func matchedFields(m matcher, ev *schemas.Event, out []string) []string {
	switch m := m.(type) {
	case andM:
		for _, c := range m {
			out = matchedFields(c, ev, out)
		}
	case orM:
		for _, c := range m {
			if c.match(ev) {
				out = matchedFields(c, ev, out)
			}
		}
	case *fieldMatcher:
		name := m.field
		if name == "" {
			name = "keywords"
		}
		if m.match(ev) && !containsString(out, name) {
			out = append(out, name)
		}
	case *fieldrefMatcher:
		if m.match(ev) && !containsString(out, m.field) {
			out = append(out, m.field)
		}
	}
	return out
}

func containsString(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

func (g *ruleGroup) selects(ev *schemas.Event) bool {
	for i := range g.sels {
		if g.sels[i].match(ev) {
			return true
		}
	}
	return false
}

// Compile validates and compiles rules: detection rules, filters (which
// add "and not filter" to the rules they name) and correlation rules (run
// by a Correlator). Every problem of every rule is reported (errors.Join of
// *RuleError); one bad rule fails the whole set.
func Compile(rules []*Rule, cfg Config) (*RuleSet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.Mapping
	if m == nil {
		m = DefaultMapping()
	}
	c := newCompiler(m)
	c.placeholders = cfg.Placeholders
	rs := &RuleSet{}
	var errs []error
	seen := make(map[string]string, len(rules))
	groups := map[string]int{}
	byRef := map[string]*compiledRule{}
	var filters, corrs []*Rule
	for _, r := range rules {
		if prev, dup := seen[r.ID]; dup && r.ID != "" {
			errs = append(errs, &RuleError{Source: r.Source, RuleID: r.ID, Err: fmt.Errorf("duplicate rule id (also in %s)", orUnnamed(prev))})
			continue
		}
		seen[r.ID] = r.Source
		switch r.Kind() {
		case KindFilter:
			filters = append(filters, r)
			continue
		case KindCorrelation:
			corrs = append(corrs, r)
			continue
		}
		sels, overrides := m.selectorsFor(r.Logsource)
		c.overrides = overrides
		cr, err := c.compileRule(r)
		if err != nil {
			errs = append(errs, &RuleError{Source: r.Source, RuleID: r.ID, Err: err})
			continue
		}
		cr.pos = int32(len(rs.rules))
		rs.rules = append(rs.rules, cr)
		byRef[r.ID] = cr
		if r.Name != "" {
			byRef[r.Name] = cr
		}
		if len(sels) == 0 {
			rs.unrouted = append(rs.unrouted, r.ID)
			continue
		}
		keys := make([]string, len(sels))
		for i := range sels {
			sels[i].prepare()
			keys[i] = sels[i].key()
		}
		sort.Strings(keys)
		key := strings.Join(keys, " | ")
		gi, ok := groups[key]
		if !ok {
			gi = len(rs.groups)
			groups[key] = gi
			rs.groups = append(rs.groups, ruleGroup{key: key, sels: sels})
		}
		rs.groups[gi].rules = append(rs.groups[gi].rules, cr)
	}
	for _, f := range filters {
		if err := c.applyFilter(m, f, byRef); err != nil {
			errs = append(errs, &RuleError{Source: f.Source, RuleID: f.ID, Err: err})
		}
	}
	if err := rs.compileCorrelations(c, m, corrs, byRef); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for gi := range rs.groups {
		g := &rs.groups[gi]
		rs.maxGroup = max(rs.maxGroup, len(g.rules))
		if len(g.rules) >= minIndexedGroup {
			g.index = buildGroupIndex(g.rules)
			rs.maxPatterns = max(rs.maxPatterns, g.index.maxPatterns())
		}
	}
	return rs, nil
}

// applyFilter compiles a filter document and adds "and not filter" to the
// condition of every rule it names (by id or name).
func (c *compiler) applyFilter(m *Mapping, f *Rule, byRef map[string]*compiledRule) error {
	if err := f.Validate(); err != nil {
		return err
	}
	var errs []error
	for _, ref := range f.Filter.Rules {
		r, ok := byRef[ref]
		if !ok {
			errs = append(errs, fmt.Errorf("filter.rules: no rule with id or name %q", ref))
			continue
		}
		// The filter's fields resolve as the filtered rule's do.
		c.overrides = r.overrides
		fm, err := c.compileDetection(&f.Filter.Detection)
		if err != nil {
			return err
		}
		r.cond = andM{r.cond, notM{fm}}
	}
	return errors.Join(errs...)
}

func orUnnamed(s string) string {
	if s == "" {
		return "another rule"
	}
	return s
}
