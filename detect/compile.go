package detect

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// Config configures rule compilation.
type Config struct {
	// Mapping ties Sigma fields and logsources to the common schema.
	// Nil means DefaultMapping().
	Mapping *Mapping
	// Placeholders gives the values of `expand` placeholders (%Name% →
	// values). A rule naming an undefined placeholder is rejected with a
	// *PlaceholderError, as the specification requires.
	Placeholders map[string][]string
}

// DefaultConfig returns a Config using the embedded mapping.
func DefaultConfig() Config { return Config{Mapping: DefaultMapping()} }

// Validate checks the configuration.
func (c Config) Validate() error {
	for k, v := range c.Placeholders {
		if k == "" || strings.ContainsAny(k, "% ") {
			return fmt.Errorf("detect.placeholders: name %q must be non-empty without spaces or %%", k)
		}
		if len(v) == 0 {
			return fmt.Errorf("detect.placeholders.%s: needs at least one value", k)
		}
	}
	if c.Mapping == nil {
		return nil
	}
	if err := c.Mapping.Validate(); err != nil {
		return fmt.Errorf("detect.mapping is invalid: %w", err)
	}
	return nil
}

// RuleError is a problem with one rule. Source is the file (empty for
// rules not read from a file).
type RuleError struct {
	Source string
	RuleID string
	Err    error
}

func (e *RuleError) Error() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.RuleID != "" {
		b.WriteString("rule ")
		b.WriteString(e.RuleID)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *RuleError) Unwrap() error { return e.Err }

// RuleSet is a compiled, immutable set of rules. It is safe for concurrent
// use by any number of goroutines.
type RuleSet struct {
	rules    []*compiledRule
	groups   []ruleGroup
	unrouted []string
}

// ruleGroup is the rules that share one event selection: an event is
// checked against the selection once and meets only those rules.
type ruleGroup struct {
	key   string
	sels  []EventSelector // ORed
	rules []*compiledRule
}

type compiledRule struct {
	id, title, level string
	severity         uint8
	tags             []string
	cond             matcher
}

// Len returns the number of compiled rules.
func (rs *RuleSet) Len() int { return len(rs.rules) }

// Unrouted returns the ids of compiled rules whose logsource the mapping
// does not route to any events; they never match until it does.
func (rs *RuleSet) Unrouted() []string { return rs.unrouted }

// Eval appends to out a finding for every rule that matches ev and returns
// the extended slice. It does no I/O, does not retain ev, and allocates
// nothing when no rule matches. Findings' Tags slices are shared with the
// rule set and must not be modified.
func (rs *RuleSet) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	for gi := range rs.groups {
		g := &rs.groups[gi]
		if !g.selects(ev) {
			continue
		}
		for _, r := range g.rules {
			if r.cond.match(ev) {
				out = append(out, schemas.Finding{
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
				})
			}
		}
	}
	return out
}

func (g *ruleGroup) selects(ev *schemas.Event) bool {
	for i := range g.sels {
		if g.sels[i].match(ev) {
			return true
		}
	}
	return false
}

// Compile validates and compiles rules. Every problem of every rule is
// reported (errors.Join of *RuleError); one bad rule fails the whole set.
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
	for _, r := range rules {
		if prev, dup := seen[r.ID]; dup && r.ID != "" {
			errs = append(errs, &RuleError{Source: r.Source, RuleID: r.ID, Err: fmt.Errorf("duplicate rule id (also in %s)", orUnnamed(prev))})
			continue
		}
		seen[r.ID] = r.Source
		sels, overrides := m.selectorsFor(r.Logsource)
		c.overrides = overrides
		cr, err := c.compileRule(r)
		if err != nil {
			errs = append(errs, &RuleError{Source: r.Source, RuleID: r.ID, Err: err})
			continue
		}
		rs.rules = append(rs.rules, cr)
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
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return rs, nil
}

func orUnnamed(s string) string {
	if s == "" {
		return "another rule"
	}
	return s
}

// compiler holds what is resolved once per Compile call.
type compiler struct {
	fields       map[string]string
	keywords     []*attribute
	placeholders map[string][]string
	overrides    []map[string]string // per-logsource field mappings of the rule being compiled
}

func newCompiler(m *Mapping) *compiler {
	c := &compiler{fields: m.Fields}
	for _, a := range m.Keywords {
		attr, _ := lookupAttribute(a)
		c.keywords = append(c.keywords, attr)
	}
	return c
}

// resolve maps a Sigma field name to its source: the rule's logsource
// overrides first, then the global fields, then the unmapped attribute of
// that name.
func (c *compiler) resolve(field string) source {
	target, ok := "", false
	for _, o := range c.overrides {
		if target, ok = o[field]; ok {
			break
		}
	}
	if !ok {
		target, ok = c.fields[field]
	}
	if !ok {
		return source{unmapped: field}
	}
	if k, isUnmapped := strings.CutPrefix(target, unmappedPrefix); isUnmapped {
		return source{unmapped: k}
	}
	attr, _ := lookupAttribute(target) // validated
	return source{attr: attr, unmapped: field}
}

func (c *compiler) compileRule(r *Rule) (*compiledRule, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	var errs []error
	searches := make(map[string]matcher, len(r.Detection.Searches))
	names := make([]string, 0, len(r.Detection.Searches))
	for _, s := range r.Detection.Searches {
		sm, err := c.compileSearch(&s)
		if err != nil {
			errs = append(errs, fmt.Errorf("detection.%s: %w", s.Name, err))
			continue
		}
		searches[s.Name] = sm
		names = append(names, s.Name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var conds []matcher
	for _, src := range r.Detection.Conditions {
		ast, err := ParseCondition(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cm, err := compileCond(ast, src, searches, names)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		conds = append(conds, cm)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var cond matcher = orM(conds)
	if len(conds) == 1 {
		cond = conds[0]
	}
	return &compiledRule{
		id: r.ID, title: r.Title, level: r.Level,
		severity: schemas.SeverityForLevel(r.Level),
		tags:     r.Tags,
		cond:     cond,
	}, nil
}

// compileCond turns a condition AST into matchers over the compiled searches.
func compileCond(n CondNode, src string, searches map[string]matcher, names []string) (matcher, error) {
	switch n := n.(type) {
	case CondAnd:
		out := make(andM, 0, len(n.Args))
		for _, a := range n.Args {
			m, err := compileCond(a, src, searches, names)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	case CondOr:
		out := make(orM, 0, len(n.Args))
		for _, a := range n.Args {
			m, err := compileCond(a, src, searches, names)
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		return out, nil
	case CondNot:
		m, err := compileCond(n.Arg, src, searches, names)
		if err != nil {
			return nil, err
		}
		return notM{m}, nil
	case CondRef:
		m, ok := searches[n.Name]
		if !ok {
			return nil, &ConditionError{Condition: src, Pos: n.Pos, Msg: fmt.Sprintf("unknown search identifier %q", n.Name)}
		}
		return m, nil
	case CondOf:
		var picked []matcher
		if n.Pattern == "them" {
			for _, name := range names {
				if !strings.HasPrefix(name, "_") {
					picked = append(picked, searches[name])
				}
			}
		} else {
			pm := newGlobMatcher(parseGlob(n.Pattern, false), false)
			for _, name := range names {
				if pm.matchString(name) {
					picked = append(picked, searches[name])
				}
			}
		}
		if len(picked) == 0 {
			return nil, &ConditionError{Condition: src, Pos: n.Pos, Msg: fmt.Sprintf("%q matches no search identifier", n.Pattern)}
		}
		if n.All {
			return andM(picked), nil
		}
		return orM(picked), nil
	}
	return nil, fmt.Errorf("condition %q: unexpected node %T", src, n)
}

func (c *compiler) compileSearch(s *Search) (matcher, error) {
	var alts orM
	var errs []error
	for _, fm := range s.Maps {
		var all andM
		for _, it := range fm {
			m, err := c.compileItem(&it)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			all = append(all, m)
		}
		if len(all) == 1 {
			alts = append(alts, all[0])
		} else {
			alts = append(alts, all)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return alts, nil
}

// reason shortens a regexp error to its code and the offending text.
func reason(err error) string {
	var re *syntax.Error
	if errors.As(err, &re) {
		return string(re.Code)
	}
	return err.Error()
}

func collapseStars(toks []ptok) []ptok {
	out := toks[:0:0]
	for _, t := range toks {
		if t.kind == tokStar && len(out) > 0 && out[len(out)-1].kind == tokStar {
			continue
		}
		out = append(out, t)
	}
	return out
}

type regexMatcher struct{ re *regexp.Regexp }

func (m regexMatcher) matchString(s string) bool { return m.re.MatchString(s) }

type cidrMatcher struct{ p netip.Prefix }

func (m cidrMatcher) matchString(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && m.p.Contains(a.Unmap())
}
