package detect

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Correlation types of the Sigma correlation specification.
const (
	CorrEventCount      = "event_count"
	CorrValueCount      = "value_count"
	CorrTemporal        = "temporal"
	CorrTemporalOrdered = "temporal_ordered"
)

// CorrelationSpec is the `correlation` block of a correlation rule.
type CorrelationSpec struct {
	Type string
	// Rules names the referenced rules by id or name, in order (the order
	// matters for temporal_ordered).
	Rules []string
	// Aliases maps an alias used in GroupBy to the field of each rule:
	// alias → rule (id or name) → field.
	Aliases   map[string]map[string]string
	GroupBy   []string
	Timespan  time.Duration
	Condition CorrCondition
	// Generate also emits the referenced rules' own findings.
	Generate bool
}

// CorrCondition is a correlation condition: every comparison must hold
// (two keys make a range). Field is value_count's counted field.
type CorrCondition struct {
	Field string
	Cmps  []Comparison
}

// Comparison is one `op: value` of a condition.
type Comparison struct {
	Op    string // gt, gte, lt, lte, eq, neq
	Value float64
}

func (c CorrCondition) holds(n float64) bool {
	for _, cmp := range c.Cmps {
		ok := false
		switch cmp.Op {
		case "gt":
			ok = n > cmp.Value
		case "gte":
			ok = n >= cmp.Value
		case "lt":
			ok = n < cmp.Value
		case "lte":
			ok = n <= cmp.Value
		case "eq":
			ok = n == cmp.Value
		case "neq":
			ok = n != cmp.Value
		}
		if !ok {
			return false
		}
	}
	return true
}

type correlationDoc struct {
	Type      string                       `yaml:"type"`
	Rules     stringList                   `yaml:"rules"`
	Aliases   map[string]map[string]string `yaml:"aliases"`
	GroupBy   stringList                   `yaml:"group-by"`
	Timespan  string                       `yaml:"timespan"`
	Timeframe string                       `yaml:"timeframe"` // older spellings
	Condition yaml.Node                    `yaml:"condition"`
	Generate  bool                         `yaml:"generate"`
}

func parseCorrelation(n *yaml.Node) (*CorrelationSpec, error) {
	var d correlationDoc
	if err := n.Decode(&d); err != nil {
		return nil, err
	}
	c := &CorrelationSpec{Type: d.Type, Rules: d.Rules, Aliases: d.Aliases, GroupBy: d.GroupBy, Generate: d.Generate}
	ts := d.Timespan
	if ts == "" {
		ts = d.Timeframe
	}
	if ts != "" {
		dur, err := ParseTimespan(ts)
		if err != nil {
			return nil, err
		}
		c.Timespan = dur
	}
	switch d.Condition.Kind {
	case 0:
	case yaml.MappingNode:
		for i := 0; i+1 < len(d.Condition.Content); i += 2 {
			k, v := d.Condition.Content[i].Value, d.Condition.Content[i+1]
			if k == "field" {
				c.Condition.Field = v.Value
				continue
			}
			if !oneOf(k, []string{"gt", "gte", "lt", "lte", "eq", "neq"}) {
				return nil, fmt.Errorf("line %d: condition key %q is not one of gt, gte, lt, lte, eq, neq, field", v.Line, k)
			}
			f, err := strconv.ParseFloat(v.Value, 64)
			if err != nil || math.IsNaN(f) {
				return nil, fmt.Errorf("line %d: condition.%s: %q is not a number", v.Line, k, v.Value)
			}
			c.Condition.Cmps = append(c.Condition.Cmps, Comparison{Op: k, Value: f})
		}
	default:
		return nil, fmt.Errorf("line %d: condition must be a map such as {gte: 10}", d.Condition.Line)
	}
	return c, nil
}

// ParseTimespan parses a Sigma timespan: a number and s, m, h, d (or w).
func ParseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 {
		return 0, fmt.Errorf("timespan %q: want a number and s, m, h or d", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("timespan %q: want a positive number and s, m, h or d", s)
	}
	unit := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, fmt.Errorf("timespan %q: unit must be s, m, h or d", s)
	}
	if n > 366*24*int(time.Hour/unit) {
		return 0, fmt.Errorf("timespan %q: at most a year", s)
	}
	return time.Duration(n) * unit, nil
}

func (c *CorrelationSpec) validate() error {
	var errs []error
	switch c.Type {
	case CorrEventCount, CorrValueCount, CorrTemporal, CorrTemporalOrdered:
	case "value_sum", "value_avg", "value_percentile", "value_median":
		errs = append(errs, unsupported("correlation type "+c.Type))
	case "":
		errs = append(errs, errors.New("correlation.type is required"))
	default:
		errs = append(errs, fmt.Errorf("correlation.type %q is not one of event_count, value_count, temporal, temporal_ordered", c.Type))
	}
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("correlation.rules must name at least one rule"))
	}
	if c.Timespan == 0 {
		errs = append(errs, errors.New("correlation.timespan is required"))
	}
	switch c.Type {
	case CorrEventCount:
		if len(c.Condition.Cmps) == 0 {
			errs = append(errs, errors.New("correlation.condition is required for event_count"))
		}
	case CorrValueCount:
		if len(c.Condition.Cmps) == 0 || c.Condition.Field == "" {
			errs = append(errs, errors.New("correlation.condition needs a comparison and a field for value_count"))
		}
	case CorrTemporal, CorrTemporalOrdered:
		if len(c.Rules) < 2 {
			errs = append(errs, fmt.Errorf("correlation.rules: %s needs at least two rules", c.Type))
		}
	}
	for alias, m := range c.Aliases {
		if !oneOf(alias, c.GroupBy) {
			errs = append(errs, fmt.Errorf("correlation.aliases.%s is not used in group-by", alias))
		}
		if len(m) == 0 {
			errs = append(errs, fmt.Errorf("correlation.aliases.%s maps no rule", alias))
		}
	}
	return errors.Join(errs...)
}

// FilterSpec is the `filter` block of a filter (meta filter) document: its
// searches and condition suppress the named rules' matches (the rule's
// condition becomes "condition and not filter").
type FilterSpec struct {
	Rules     []string
	Detection Detection
}

func parseFilter(n *yaml.Node) (*FilterSpec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: filter must be a mapping", n.Line)
	}
	f := &FilterSpec{}
	rest := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "rules" {
			var l stringList
			if err := v.Decode(&l); err != nil {
				return nil, fmt.Errorf("rules: %w", err)
			}
			f.Rules = l
			continue
		}
		rest.Content = append(rest.Content, k, v)
	}
	det, err := parseDetection(rest)
	if err != nil {
		return nil, err
	}
	f.Detection = det
	return f, nil
}
