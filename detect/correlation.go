package detect

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// compiledCorrelation is a correlation rule resolved against the rule set.
type compiledCorrelation struct {
	id, name, title, level string
	severity               uint8
	tags, techniques       []string
	spec                   *CorrelationSpec
	refs                   []corrRef
	emit                   bool
	parents                []*compiledCorrelation // correlations chained on this one
	parentRef              []int                  // this correlation's position in each parent's refs
	eager                  bool                   // the condition only has lower bounds: fire as soon as it holds
}

// corrRef is one referenced rule (or chained correlation) with the sources
// of its group-by fields and of the value_count field.
type corrRef struct {
	ref      string
	rule     *compiledRule
	corr     *compiledCorrelation
	groupSrc []source
	valueSrc source
}

func (rs *RuleSet) compileCorrelations(c *compiler, m *Mapping, corrs []*Rule, byRule map[string]*compiledRule) error {
	var errs []error
	byRef := map[string]*compiledCorrelation{}
	var compiled []*compiledCorrelation
	var defs []*Rule
	for _, r := range corrs {
		if err := r.Validate(); err != nil {
			errs = append(errs, &RuleError{Source: r.Source, RuleID: r.ID, Err: err})
			continue
		}
		cc := &compiledCorrelation{
			id: r.ID, name: r.Name, title: r.Title, level: r.Level,
			severity: schemas.SeverityForLevel(r.Level), tags: r.Tags, techniques: techniques(r.Tags),
			spec: r.Correlation, emit: true,
		}
		cc.eager = true
		for _, cmp := range r.Correlation.Condition.Cmps {
			cc.eager = cc.eager && (cmp.Op == "gt" || cmp.Op == "gte")
		}
		compiled = append(compiled, cc)
		defs = append(defs, r)
		byRef[r.ID] = cc
		if r.Name != "" {
			byRef[r.Name] = cc
		}
	}
	generating := map[*compiledRule]bool{}
	for i, cc := range compiled {
		r := defs[i]
		var rerrs []error
		for _, ref := range cc.spec.Rules {
			cr := corrRef{ref: ref}
			switch {
			case byRule[ref] != nil:
				cr.rule = byRule[ref]
				c.overrides = cr.rule.overrides
				for _, g := range cc.spec.GroupBy {
					cr.groupSrc = append(cr.groupSrc, c.resolve(aliasField(cc.spec, g, cr.rule.id, cr.rule.name)))
				}
				if f := cc.spec.Condition.Field; f != "" {
					cr.valueSrc = c.resolve(aliasField(cc.spec, f, cr.rule.id, cr.rule.name))
				}
				if cc.spec.Generate {
					generating[cr.rule] = true
				} else if !generating[cr.rule] {
					cr.rule.emit = false
				}
			case byRef[ref] != nil:
				cr.corr = byRef[ref]
				if cr.corr == cc {
					rerrs = append(rerrs, fmt.Errorf("correlation.rules: %q refers to itself", ref))
					continue
				}
				for _, g := range cc.spec.GroupBy {
					if !oneOf(g, cr.corr.spec.GroupBy) {
						rerrs = append(rerrs, fmt.Errorf("correlation.group-by: %q is not a group-by field of the chained correlation %q", g, ref))
					}
				}
				if !cc.spec.Generate {
					cr.corr.emit = false
				}
				cr.corr.parents = append(cr.corr.parents, cc)
				cr.corr.parentRef = append(cr.corr.parentRef, len(cc.refs))
			default:
				rerrs = append(rerrs, fmt.Errorf("correlation.rules: no rule or correlation with id or name %q", ref))
				continue
			}
			cc.refs = append(cc.refs, cr)
		}
		if len(rerrs) > 0 {
			errs = append(errs, &RuleError{Source: r.Source, RuleID: r.ID, Err: errors.Join(rerrs...)})
			continue
		}
		for _, cr := range cc.refs {
			if cr.rule != nil && !slices.Contains(cr.rule.corrs, cc) {
				cr.rule.corrs = append(cr.rule.corrs, cc)
			}
		}
	}
	for r := range generating {
		r.emit = true
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	rs.correlations = compiled
	rs.corrByID = make(map[string]*compiledCorrelation, len(compiled))
	for _, cc := range compiled {
		rs.corrByID[cc.id] = cc
	}
	return nil
}

// aliasField returns the field a rule uses for a group-by name: the alias's
// field for that rule, or the name itself.
func aliasField(spec *CorrelationSpec, name, id, ruleName string) string {
	if m, ok := spec.Aliases[name]; ok {
		if f, ok := m[id]; ok {
			return f
		}
		if f, ok := m[ruleName]; ok && ruleName != "" {
			return f
		}
	}
	return name
}

// CorrelatorConfig configures a Correlator.
type CorrelatorConfig struct {
	// Lateness is how far behind the newest event time an event may arrive
	// and still count. Later events are dropped (Stats.Late).
	Lateness time.Duration
	// MaxGroups bounds the open group windows over all correlations;
	// beyond it new groups are dropped (Stats.Overflow).
	MaxGroups int
	// MaxEntries bounds the matches kept per group window.
	MaxEntries int
}

// DefaultCorrelatorConfig returns one minute of lateness, 100,000 groups
// and 10,000 matches per group.
func DefaultCorrelatorConfig() CorrelatorConfig {
	return CorrelatorConfig{Lateness: time.Minute, MaxGroups: 100_000, MaxEntries: 10_000}
}

// Validate checks the configuration.
func (c CorrelatorConfig) Validate() error {
	switch {
	case c.Lateness < 0 || c.Lateness > 24*time.Hour:
		return fmt.Errorf("detect.correlation.lateness must be between 0 and 24h, got %s", c.Lateness)
	case c.MaxGroups < 1:
		return fmt.Errorf("detect.correlation.max_groups must be at least 1, got %d", c.MaxGroups)
	case c.MaxEntries < 1:
		return fmt.Errorf("detect.correlation.max_entries must be at least 1, got %d", c.MaxEntries)
	}
	return nil
}

// CorrelatorStats counts what a Correlator dropped.
type CorrelatorStats struct {
	Late, Overflow uint64
}

// Correlator evaluates a RuleSet's correlation rules over the stream of
// hits. Windows follow event time: a watermark (newest event time minus
// Lateness) closes windows and rejects events that arrive later than that.
// It is safe for concurrent use (one mutex); in a multi-instance deployment
// every group key must be fed to a single Correlator (see the package doc).
type Correlator struct {
	rs     *RuleSet
	cfg    CorrelatorConfig
	mu     sync.Mutex
	newest time.Time
	swept  time.Time // watermark of the last sweep
	groups map[string]*corrGroup
	stats  CorrelatorStats
}

type corrGroup struct {
	corr    *compiledCorrelation
	agency  string
	vals    []string // group-by values
	entries []corrEntry
}

type corrEntry struct {
	t     time.Time
	ev    schemas.ID
	ref   int    // position in corr.refs
	value string // value_count field
	ids   []schemas.ID
}

// NewCorrelator returns a Correlator for the correlations of rs.
func NewCorrelator(rs *RuleSet, cfg CorrelatorConfig) (*Correlator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Correlator{rs: rs, cfg: cfg, groups: map[string]*corrGroup{}}, nil
}

// Stats returns the drop counters.
func (c *Correlator) Stats() CorrelatorStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// CorrInput is one match a correlation needs: the unit that crosses
// JetStream when correlations run on the instance that owns the group
// (see the package doc). Key() names the group.
type CorrInput struct {
	Corr   string     `json:"corr"`   // correlation id
	Agency string     `json:"agency"` // from the event's subject
	Group  []string   `json:"group"`  // group-by values, in group-by order
	Ref    int        `json:"ref"`    // position of the matching rule in correlation.rules
	Value  string     `json:"value,omitempty"`
	Event  schemas.ID `json:"event"`
	Time   time.Time  `json:"time"`
}

// Key identifies the correlation group of the input.
func (in *CorrInput) Key() string {
	return in.Corr + "\x00" + in.Agency + "\x00" + strings.Join(in.Group, "\x00")
}

// CorrInputs appends the correlation inputs of an event's hits.
func (rs *RuleSet) CorrInputs(ev *schemas.Event, hits []Hit, out []CorrInput) []CorrInput {
	for _, h := range hits {
		r := rs.rules[h.rule]
		for _, cc := range r.corrs {
			for k := range cc.refs {
				ref := &cc.refs[k]
				if ref.rule != r {
					continue
				}
				in := CorrInput{Corr: cc.id, Agency: ev.Agency, Ref: k, Event: ev.ID, Time: ev.Time,
					Group: make([]string, len(ref.groupSrc))}
				for i := range ref.groupSrc {
					in.Group[i], _ = ref.groupSrc[i].first(ev)
				}
				if cc.spec.Condition.Field != "" {
					v, ok := ref.valueSrc.first(ev)
					if !ok {
						continue // value_count counts only events that carry the field
					}
					in.Value = v
				}
				out = append(out, in)
			}
		}
	}
	return out
}

// Observe feeds the hits of one event (from RuleSet.EvalHits) and appends
// the correlation findings that fire.
func (c *Correlator) Observe(ev *schemas.Event, hits []Hit, out []schemas.Finding) []schemas.Finding {
	if len(c.rs.correlations) == 0 {
		return out
	}
	c.mu.Lock()
	if ev.Time.After(c.newest) {
		c.newest = ev.Time
	}
	c.mu.Unlock()
	return c.ObserveInputs(c.rs.CorrInputs(ev, hits, nil), out)
}

// ObserveInputs feeds correlation inputs (from CorrInputs, possibly of
// other instances) and appends the findings that fire. Inputs naming a
// correlation the rule set does not hold, or a rule position out of range,
// are ignored (a rule set update raced the input).
func (c *Correlator) ObserveInputs(ins []CorrInput, out []schemas.Finding) []schemas.Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range ins {
		if ins[i].Time.After(c.newest) {
			c.newest = ins[i].Time
		}
	}
	wm := c.newest.Add(-c.cfg.Lateness)
	for i := range ins {
		in := &ins[i]
		cc := c.rs.corrByID[in.Corr]
		if cc == nil || in.Ref < 0 || in.Ref >= len(cc.refs) || cc.refs[in.Ref].rule == nil || len(in.Group) != len(cc.spec.GroupBy) {
			continue
		}
		if in.Time.Before(wm) {
			c.stats.Late++
			continue
		}
		out = c.add(cc, in.Agency, in.Group, corrEntry{t: in.Time, ev: in.Event, ref: in.Ref, value: in.Value}, out)
	}
	return c.advance(wm, out)
}

// Advance moves the watermark to now minus Lateness when no newer event has
// done so (idle streams), closing the windows that ended before it.
func (c *Correlator) Advance(now time.Time, out []schemas.Finding) []schemas.Finding {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.After(c.newest) {
		c.newest = now
	}
	return c.advance(c.newest.Add(-c.cfg.Lateness), out)
}

func groupKey(cc *compiledCorrelation, agency string, vals []string) string {
	return cc.id + "\x00" + agency + "\x00" + strings.Join(vals, "\x00")
}

func (c *Correlator) add(cc *compiledCorrelation, agency string, vals []string, e corrEntry, out []schemas.Finding) []schemas.Finding {
	key := groupKey(cc, agency, vals)
	g, ok := c.groups[key]
	if !ok {
		if len(c.groups) >= c.cfg.MaxGroups {
			c.stats.Overflow++
			return out
		}
		g = &corrGroup{corr: cc, agency: agency, vals: vals}
		c.groups[key] = g
	}
	if len(g.entries) >= c.cfg.MaxEntries {
		c.stats.Overflow++
		return out
	}
	// Keep entries in time order (events may arrive out of order).
	i := len(g.entries)
	for i > 0 && g.entries[i-1].t.After(e.t) {
		i--
	}
	g.entries = slices.Insert(g.entries, i, e)
	if !cc.eager {
		return out
	}
	// Fire on the first window [start, start+timespan] holding the new entry
	// in which the condition holds; its matches are then consumed.
	span := cc.spec.Timespan
	if i == len(g.entries)-1 {
		// In-order arrival: the conditions are monotone (lower bounds only),
		// so the widest window ending at the new match decides.
		s := sort.Search(len(g.entries), func(k int) bool { return e.t.Sub(g.entries[k].t) <= span })
		if c.holds(cc, g.entries[s:]) {
			out = c.fire(g, g.entries[s:], out)
			g.entries = g.entries[:s]
		}
		return out
	}
	for s := range g.entries {
		start := g.entries[s].t
		if start.After(e.t) {
			break
		}
		if e.t.Sub(start) > span {
			continue
		}
		end := s
		for end < len(g.entries) && g.entries[end].t.Sub(start) <= span {
			end++
		}
		if c.holds(cc, g.entries[s:end]) {
			out = c.fire(g, g.entries[s:end], out)
			g.entries = slices.Delete(g.entries, s, end)
			break
		}
	}
	return out
}

// advance drops matches that can no longer be in an open window and, for
// conditions with upper bounds, evaluates each window as it closes.
func (c *Correlator) advance(wm time.Time, out []schemas.Finding) []schemas.Finding {
	// Sweeping visits every group: do it when the watermark has moved on by
	// a second of event time, not for every input.
	if wm.Sub(c.swept) < sweepEvery {
		return out
	}
	c.swept = wm
	for key, g := range c.groups {
		span := g.corr.spec.Timespan
		for len(g.entries) > 0 && g.entries[0].t.Add(span).Before(wm) {
			if g.corr.eager {
				g.entries = g.entries[1:]
				continue
			}
			start := g.entries[0].t
			end := 0
			for end < len(g.entries) && g.entries[end].t.Sub(start) <= span {
				end++
			}
			if c.holds(g.corr, g.entries[:end]) {
				out = c.fire(g, g.entries[:end], out)
			}
			g.entries = g.entries[end:]
		}
		if len(g.entries) == 0 {
			delete(c.groups, key)
		}
	}
	return out
}

func (c *Correlator) holds(cc *compiledCorrelation, es []corrEntry) bool {
	cond := cc.spec.Condition
	switch cc.spec.Type {
	case CorrEventCount:
		return cond.holds(float64(len(es)))
	case CorrValueCount:
		seen := map[string]bool{}
		for _, e := range es {
			seen[strings.ToLower(e.value)] = true
		}
		return cond.holds(float64(len(seen)))
	case CorrTemporal:
		seen := make([]bool, len(cc.refs))
		n := 0
		for _, e := range es {
			if !seen[e.ref] {
				seen[e.ref] = true
				n++
			}
		}
		if len(cond.Cmps) == 0 {
			return n == len(cc.refs)
		}
		return cond.holds(float64(n))
	case CorrTemporalOrdered:
		next := 0
		for _, e := range es {
			if e.ref == next {
				if next++; next == len(cc.refs) {
					return true
				}
			}
		}
		return false
	}
	return false
}

// sweepEvery is the event time between sweeps of all groups.
const sweepEvery = time.Second

// maxFindingEvents bounds the event ids a correlation finding lists.
const maxFindingEvents = 100

func (c *Correlator) fire(g *corrGroup, es []corrEntry, out []schemas.Finding) []schemas.Finding {
	cc := g.corr
	var ids []schemas.ID
	for _, e := range es {
		if e.ids != nil {
			ids = append(ids, e.ids...)
		} else {
			ids = append(ids, e.ev)
		}
	}
	if len(ids) > maxFindingEvents {
		ids = ids[:maxFindingEvents]
	}
	last := es[len(es)-1]
	if cc.emit {
		out = append(out, schemas.Finding{
			ID:         schemas.FindingID(ids[0], cc.id+"/"+strings.Join(g.vals, "\x00")),
			EventID:    last.ev,
			Agency:     g.agency,
			Time:       last.t,
			RuleID:     cc.id,
			RuleTitle:  cc.title,
			RuleLevel:  cc.level,
			SeverityID: cc.severity,
			EventClass: schemas.ClassDetectionFinding,
			Tags:       cc.tags,
			Techniques: cc.techniques,
			Matched:    cc.spec.GroupBy,
			EventIDs:   ids,
		})
	}
	for i, p := range cc.parents {
		vals := make([]string, len(p.spec.GroupBy))
		for k, name := range p.spec.GroupBy {
			vals[k] = g.vals[slices.Index(cc.spec.GroupBy, name)]
		}
		out = c.add(p, g.agency, vals, corrEntry{t: last.t, ev: last.ev, ref: cc.parentRef[i], ids: ids}, out)
	}
	return out
}

// Correlating evaluates a rule set and its correlations in one process: its
// Eval appends the detection findings and the correlation findings that
// fire, so it can stand wherever a RuleSet's Eval does. It is safe for
// concurrent use. Across several instances each one would only see its share
// of a group's matches: route correlation inputs with detect/corrroute there.
type Correlating struct {
	rs *RuleSet
	c  *Correlator
}

// NewCorrelating returns rs with an in-process Correlator.
func NewCorrelating(rs *RuleSet, cfg CorrelatorConfig) (*Correlating, error) {
	c, err := NewCorrelator(rs, cfg)
	if err != nil {
		return nil, err
	}
	return &Correlating{rs: rs, c: c}, nil
}

// RuleSet returns the rule set.
func (x *Correlating) RuleSet() *RuleSet { return x.rs }

// Correlator returns the correlator (for Advance on a timer and Stats).
func (x *Correlating) Correlator() *Correlator { return x.c }

// Eval is RuleSet.Eval plus the correlations the event's hits feed. It
// allocates nothing when no rule matches.
func (x *Correlating) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	rs := x.rs
	if len(rs.correlations) == 0 {
		return rs.Eval(ev, out)
	}
	s := rs.getScratch()
	s.hits = rs.match(ev, s, s.hits[:0])
	feeds := false
	for _, h := range s.hits {
		r := rs.rules[h]
		if r.emit {
			out = append(out, rs.finding(r, ev))
		}
		feeds = feeds || len(r.corrs) > 0
	}
	if feeds {
		hits := make([]Hit, len(s.hits))
		for i, h := range s.hits {
			hits[i] = Hit{rule: h}
		}
		out = x.c.Observe(ev, hits, out)
	}
	rs.pool.Put(s)
	return out
}
