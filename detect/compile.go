package detect

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"slices"
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

// compiler holds what is resolved once per Compile call.
type compiler struct {
	fields       map[string]string
	keywords     []*attribute
	placeholders map[string][]string
	overrides    []map[string]string // per-logsource field mappings of the rule being compiled
	ukeys        map[string]int32    // unmapped key → its source.uslot
}

// unmappedSource is the source of an unmapped key, with its memo slot.
func (c *compiler) unmappedSource(key string) source {
	if key == "" {
		return source{unmapped: key} // not memoized: keyTable has no empty key
	}
	slot, ok := c.ukeys[key]
	if !ok {
		slot = int32(len(c.ukeys)) + 1
		c.ukeys[key] = slot
	}
	return source{unmapped: key, uslot: slot}
}

func newCompiler(m *Mapping) *compiler {
	c := &compiler{fields: m.Fields, ukeys: map[string]int32{}}
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
		return c.unmappedSource(field)
	}
	if k, isUnmapped := strings.CutPrefix(target, unmappedPrefix); isUnmapped {
		return c.unmappedSource(k)
	}
	attr, _ := lookupAttribute(target) // validated
	src := c.unmappedSource(field)
	src.attr = attr
	return src
}

func (c *compiler) compileRule(r *Rule) (*compiledRule, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	cond, err := c.compileDetection(&r.Detection)
	if err != nil {
		return nil, err
	}
	return &compiledRule{
		id: r.ID, name: r.Name, title: r.Title, level: r.Level, source: r.Source,
		severity:   schemas.SeverityForLevel(r.Level),
		tags:       r.Tags,
		techniques: techniques(r.Tags),
		cond:       cond,
		emit:       true,
		overrides:  c.overrides,
	}, nil
}

// compileDetection compiles the searches and the condition(s) of a
// detection (several conditions are ORed).
func (c *compiler) compileDetection(det *Detection) (matcher, error) {
	var errs []error
	searches := make(map[string]matcher, len(det.Searches))
	names := make([]string, 0, len(det.Searches))
	for _, s := range det.Searches {
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
	for _, src := range det.Conditions {
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
	if len(conds) == 1 {
		return conds[0], nil
	}
	return orM(conds), nil
}

// techniques returns the ATT&CK technique ids of attack.tNNNN[.NNN] tags,
// upper-cased (T1059.001).
func techniques(tags []string) []string {
	var out []string
	for _, t := range tags {
		id, ok := strings.CutPrefix(strings.ToLower(t), "attack.t")
		if !ok || id == "" || id[0] < '0' || id[0] > '9' {
			continue
		}
		out = append(out, "T"+id)
	}
	return out
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

// regexMatcher runs a regular expression, after checking the literals any
// match must contain (need: an AND of ORs, ASCII case-folded): Go's regexp
// costs microseconds on a command line, a literal search tens of
// nanoseconds, and most values lack the literals.
type regexMatcher struct {
	re   *regexp.Regexp // as the rule wrote it
	test *regexp.Regexp // existsForm(re): what matchString runs
	seq  *byteSeq       // test as a byte sequence, for ASCII input; nil when it is none
	need [][]string
}

func newRegexMatcher(re *regexp.Regexp) regexMatcher {
	m := regexMatcher{re: re, test: existsForm(re)}
	m.seq, _ = newByteSeq(m.test)
	if p, err := syntax.Parse(re.String(), syntax.Perl); err == nil {
		lits, _ := regexLiterals(p.Simplify())
		for _, c := range lits {
			if !slices.Contains(c, nonASCIIAtom) {
				m.need = append(m.need, c)
			}
		}
	}
	return m
}

func (m regexMatcher) matchString(s string) bool {
	if m.seq != nil && isASCII(s) {
		return m.seq.match(s)
	}
	for _, c := range m.need {
		found := false
		for _, l := range c {
			if _, _, found = indexFold(s, l); found {
				break
			}
		}
		if !found {
			return false
		}
	}
	return m.test.MatchString(s)
}

type cidrMatcher struct{ p netip.Prefix }

func (m cidrMatcher) matchString(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && m.p.Contains(a.Unmap())
}
