package detect

import (
	"errors"
	"fmt"
	"math"
	"slices"
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
	corrByID     map[string]*compiledCorrelation
	pool         sync.Pool // *scratch
	maxGroup     int
	maxPatterns  int
	unmappedKeys int      // distinct unmapped keys the rules read (scratch memo slots)
	ukeys        keyTable // their slots by name
	dispatchSrc  source   // dispatchKey's source

	// Group dispatch: the groups whose every selector requires the unmapped
	// attribute dispatchKey (Channel for Windows) are found by its value
	// with one look-up; the others are checked one by one. Both lists are
	// in group order.
	dispatchKey string
	byDispatch  map[string]*dispatchBucket
	undispatch  []int32
}

// dispatchBucket is the groups one value of the dispatch key leads to. When
// enough of them also require a second key (EventID for Windows channels),
// those are found by its value too: the Sysmon channel alone leads to some
// twenty groups, one per EventID.
type dispatchBucket struct {
	groups []int32 // all of them, in group order
	key    string  // the second key, "" when none
	by     map[string][]int32
	rest   []int32 // the groups that do not require key
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

// Correlations returns the number of compiled correlation rules.
func (rs *RuleSet) Correlations() int { return len(rs.correlations) }

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
	return &scratch{rmark: make([]uint32, rs.maxGroup), pmark: make([]uint32, rs.maxPatterns),
		ukeys: &rs.ukeys, uval: make([]string, rs.unmappedKeys), umark: make([]uint32, rs.unmappedKeys)}
}

func (rs *RuleSet) match(ev *schemas.Event, s *scratch, hits []int32) []int32 {
	s.nextU()
	var bucket, rest []int32
	if rs.dispatchKey != "" {
		if v, ok := s.unmappedValue(ev, &rs.dispatchSrc); ok {
			bucket, rest = rs.byDispatch[v].lookup(ev)
		}
	}
	// Merge the three sorted lists so groups run in order.
	un := rs.undispatch
	for len(un) > 0 || len(bucket) > 0 || len(rest) > 0 {
		gi := int32(math.MaxInt32)
		for _, l := range [...][]int32{un, bucket, rest} {
			if len(l) > 0 {
				gi = min(gi, l[0])
			}
		}
		switch {
		case len(un) > 0 && un[0] == gi:
			un = un[1:]
		case len(bucket) > 0 && bucket[0] == gi:
			bucket = bucket[1:]
		default:
			rest = rest[1:]
		}
		g := &rs.groups[gi]
		if !g.selects(ev) {
			continue
		}
		if g.index == nil {
			for _, r := range g.rules {
				if r.cond.match(ev, s) {
					hits = append(hits, r.pos)
				}
			}
			continue
		}
		for _, p := range g.index.candidates(ev, s) {
			if r := g.rules[p]; r.cond.match(ev, s) {
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
			if c.match(ev, nil) {
				out = matchedFields(c, ev, out)
			}
		}
	case *fieldMatcher:
		name := m.field
		if name == "" {
			name = "keywords"
		}
		if m.match(ev, nil) && !containsString(out, name) {
			out = append(out, name)
		}
	case *fieldrefMatcher:
		if m.match(ev, nil) && !containsString(out, m.field) {
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
	rs.buildDispatch()
	if rs.dispatchKey != "" {
		rs.dispatchSrc = c.unmappedSource(rs.dispatchKey)
	}
	rs.unmappedKeys = len(c.ukeys)
	rs.ukeys = newKeyTable(c.ukeys)
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

// buildDispatch picks the unmapped selector key most groups require and
// indexes those groups by its accepted values.
func (rs *RuleSet) buildDispatch() {
	count := map[string]int{}
	for gi := range rs.groups {
		for _, k := range rs.groups[gi].requiredKeys() {
			count[k]++
		}
	}
	best := ""
	for k, n := range count {
		if n > count[best] || n == count[best] && k < best {
			best = k
		}
	}
	rs.undispatch = rs.undispatch[:0]
	if count[best] < 4 {
		for gi := range rs.groups {
			rs.undispatch = append(rs.undispatch, int32(gi))
		}
		return
	}
	rs.dispatchKey, rs.byDispatch = best, map[string]*dispatchBucket{}
	// A group found through the dispatch key's value has that key's
	// condition met by its selectors in the common case: test it last, so
	// that a selector fails on its distinctive key (EventID) first.
	for gi := range rs.groups {
		for i := range rs.groups[gi].sels {
			u := rs.groups[gi].sels[i].unmapped
			slices.SortStableFunc(u, func(a, b unmappedSel) int {
				switch {
				case a.key == best && b.key != best:
					return 1
				case b.key == best && a.key != best:
					return -1
				}
				return 0
			})
		}
	}
	for gi := range rs.groups {
		g := &rs.groups[gi]
		if !slices.Contains(g.requiredKeys(), best) {
			rs.undispatch = append(rs.undispatch, int32(gi))
			continue
		}
		for _, v := range g.acceptedValues(best) {
			b := rs.byDispatch[v]
			if b == nil {
				b = &dispatchBucket{}
				rs.byDispatch[v] = b
			}
			b.groups = append(b.groups, int32(gi))
		}
	}
	for _, b := range rs.byDispatch {
		b.split(rs.groups, best)
	}
}

// acceptedValues lists the values of key that g's selectors accept.
func (g *ruleGroup) acceptedValues(key string) []string {
	var out []string
	for i := range g.sels {
		for _, u := range g.sels[i].unmapped {
			if u.key != key {
				continue
			}
			for _, v := range u.values {
				if !slices.Contains(out, v) {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// lookup returns the bucket's groups that ev may select, as two sorted lists.
func (b *dispatchBucket) lookup(ev *schemas.Event) (by, rest []int32) {
	switch {
	case b == nil:
		return nil, nil
	case b.key == "":
		return b.groups, nil
	}
	if v, ok := ev.UnmappedValue(b.key); ok {
		by = b.by[v]
	}
	return by, b.rest
}

// split indexes the bucket's groups by the key (other than first) most of
// them require, when at least four do.
func (b *dispatchBucket) split(groups []ruleGroup, first string) {
	count := map[string]int{}
	for _, gi := range b.groups {
		for _, k := range groups[gi].requiredKeys() {
			if k != first {
				count[k]++
			}
		}
	}
	key := ""
	for k, n := range count {
		if n > count[key] || n == count[key] && k < key {
			key = k
		}
	}
	if count[key] < 4 {
		return
	}
	b.key, b.by = key, map[string][]int32{}
	for _, gi := range b.groups {
		if !slices.Contains(groups[gi].requiredKeys(), key) {
			b.rest = append(b.rest, gi)
			continue
		}
		for _, v := range groups[gi].acceptedValues(key) {
			b.by[v] = append(b.by[v], gi)
		}
	}
}

// requiredKeys returns the unmapped keys every selector of g requires.
func (g *ruleGroup) requiredKeys() []string {
	var out []string
	for i := range g.sels {
		var keys []string
		for _, u := range g.sels[i].unmapped {
			keys = append(keys, u.key)
		}
		if i == 0 {
			out = keys
			continue
		}
		out = slices.DeleteFunc(out, func(k string) bool { return !slices.Contains(keys, k) })
	}
	return out
}
