package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rule is a parsed Sigma detection rule: the document's meta data and its
// detection as an AST. It is plain data; Compile turns rules into a RuleSet.
type Rule struct {
	Title          string
	ID             string
	Name           string // optional unique name; correlations and filters may refer to it
	Status         string
	Description    string
	Level          string
	Author         string
	Date           string
	Modified       string
	Tags           []string
	References     []string
	FalsePositives []string
	Logsource      Logsource
	Detection      Detection

	// Correlation is set for a correlation rule (which has no Detection),
	// Filter for a filter (meta filter) document.
	Correlation *CorrelationSpec
	Filter      *FilterSpec

	// Source is where the rule came from (a file path for LoadDir), used in
	// error messages. Empty for rules parsed from bytes.
	Source string
}

// Logsource says which logs a rule applies to. Extra keys are allowed by the
// specification and ignored.
type Logsource struct {
	Product    string `yaml:"product"`
	Category   string `yaml:"category"`
	Service    string `yaml:"service"`
	Definition string `yaml:"definition"`
}

// Detection holds the search identifiers (in document order) and the
// condition(s). Several conditions are ORed.
type Detection struct {
	Searches   []Search
	Conditions []string
}

// Search is one search identifier: OR over its field maps. A map of fields
// is one FieldMap; a list of maps gives one FieldMap per element; a list of
// plain strings (a keyword search) is one FieldMap with a single field-less
// item.
type Search struct {
	Name string
	Maps []FieldMap
	Line int
}

// FieldMap is AND over its items.
type FieldMap []FieldItem

// FieldItem is one `field|mod1|mod2: value(s)` entry. Field is empty for a
// keyword search.
type FieldItem struct {
	Field     string
	Modifiers []string
	Values    []Value // OR, or AND with the "all" modifier
	Line      int
}

// Value is one value of a field item.
type Value struct {
	Text string
	Null bool // YAML null: the field is absent or empty
}

// Levels are the Sigma levels accepted in a rule.
var levels = []string{"informational", "low", "medium", "high", "critical"}

var statuses = []string{"stable", "test", "experimental", "deprecated", "unsupported"}

// ruleIDPattern is what a rule id may look like. Ids key the soc_rules KV
// bucket and the finding id, so they are restricted to KV-safe characters;
// SigmaHQ's UUIDs fit.
var ruleIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// stringList decodes a YAML scalar or sequence of scalars.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag != "!!null" {
			*l = []string{n.Value}
		}
		return nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: expected a string", c.Line)
			}
			out = append(out, c.Value)
		}
		*l = out
		return nil
	}
	return fmt.Errorf("line %d: expected a string or a list of strings", n.Line)
}

type ruleDoc struct {
	Title          string     `yaml:"title"`
	ID             string     `yaml:"id"`
	Name           string     `yaml:"name"`
	Status         string     `yaml:"status"`
	Description    string     `yaml:"description"`
	Level          string     `yaml:"level"`
	Author         string     `yaml:"author"`
	Date           string     `yaml:"date"`
	Modified       string     `yaml:"modified"`
	Tags           stringList `yaml:"tags"`
	References     stringList `yaml:"references"`
	FalsePositives stringList `yaml:"falsepositives"`
	Logsource      Logsource  `yaml:"logsource"`
	Detection      yaml.Node  `yaml:"detection"`
	Correlation    yaml.Node  `yaml:"correlation"`
	Filter         yaml.Node  `yaml:"filter"`
	Action         string     `yaml:"action"`
}

// ParseRule parses one Sigma rule from a single YAML document and validates
// it (see Rule.Validate). Modifiers and the condition's references are
// checked by Compile.
func ParseRule(data []byte) (*Rule, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("parse rule: empty document")
		}
		return nil, fmt.Errorf("parse rule: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse rule: more than one YAML document (use LoadDir for multi-document files)")
	}
	return parseRuleNode(&doc)
}

// parseRuleNode builds a Rule from a decoded YAML document.
func parseRuleNode(doc *yaml.Node) (*Rule, error) {
	var d ruleDoc
	if err := doc.Decode(&d); err != nil {
		return nil, fmt.Errorf("parse rule: %w", err)
	}
	r := &Rule{
		Title: d.Title, ID: d.ID, Name: d.Name, Status: d.Status, Description: d.Description, Level: d.Level,
		Author: d.Author, Date: d.Date, Modified: d.Modified,
		Tags: d.Tags, References: d.References, FalsePositives: d.FalsePositives,
		Logsource: d.Logsource,
	}
	switch {
	case d.Correlation.Kind != 0:
		c, err := parseCorrelation(&d.Correlation)
		if err != nil {
			return r, fmt.Errorf("correlation: %w", err)
		}
		r.Correlation = c
		return r, r.Validate()
	case d.Filter.Kind != 0:
		f, err := parseFilter(&d.Filter)
		if err != nil {
			return r, fmt.Errorf("filter: %w", err)
		}
		r.Filter = f
		return r, r.Validate()
	case d.Action != "":
		return r, unsupported("action: " + d.Action + " documents")
	}
	if d.Detection.Kind == 0 {
		return r, errors.New("detection is required")
	}
	det, err := parseDetection(&d.Detection)
	if err != nil {
		return r, err
	}
	r.Detection = det
	return r, r.Validate()
}

// Validate checks the rule's meta data: title (at most 256 characters), id
// (required here, unlike the specification, because it keys the finding id
// and the rules KV bucket), level (required, one of the Sigma levels), status
// when present, and that the detection has searches and a condition.
func (r *Rule) Validate() error {
	var errs []error
	switch {
	case strings.TrimSpace(r.Title) == "":
		errs = append(errs, errors.New("title is required"))
	case len(r.Title) > 256:
		errs = append(errs, fmt.Errorf("title is %d characters long, at most 256 are allowed", len(r.Title)))
	}
	switch {
	case r.ID == "":
		errs = append(errs, errors.New("id is required"))
	case !ruleIDPattern.MatchString(r.ID):
		errs = append(errs, fmt.Errorf("id %q must be 1-128 characters of letters, digits, '.', '_' and '-' (a UUID is best)", r.ID))
	}
	switch {
	case r.Filter != nil:
		// Filters carry no level or status.
	case r.Level == "":
		errs = append(errs, errors.New("level is required"))
	case !oneOf(r.Level, levels):
		errs = append(errs, fmt.Errorf("level %q is not one of %s", r.Level, strings.Join(levels, ", ")))
	}
	if r.Status != "" && !oneOf(r.Status, statuses) {
		errs = append(errs, fmt.Errorf("status %q is not one of %s", r.Status, strings.Join(statuses, ", ")))
	}
	det := r.Detection
	switch {
	case r.Correlation != nil:
		errs = append(errs, r.Correlation.validate())
		return errors.Join(errs...)
	case r.Filter != nil:
		det = r.Filter.Detection
		if len(r.Filter.Rules) == 0 {
			errs = append(errs, errors.New("filter.rules must name at least one rule"))
		}
	}
	if len(det.Searches) == 0 {
		errs = append(errs, errors.New("detection has no search identifiers"))
	}
	if len(det.Conditions) == 0 {
		errs = append(errs, errors.New("detection.condition is required"))
	}
	return errors.Join(errs...)
}

// Kind is the kind of a Sigma document.
type Kind uint8

const (
	KindDetection Kind = iota
	KindCorrelation
	KindFilter
)

// Kind returns the kind of document r was parsed from.
func (r *Rule) Kind() Kind {
	switch {
	case r.Correlation != nil:
		return KindCorrelation
	case r.Filter != nil:
		return KindFilter
	}
	return KindDetection
}

func oneOf(s string, set []string) bool {
	for _, v := range set {
		if s == v {
			return true
		}
	}
	return false
}

func parseDetection(n *yaml.Node) (Detection, error) {
	var det Detection
	if n.Kind != yaml.MappingNode {
		return det, fmt.Errorf("line %d: detection must be a mapping", n.Line)
	}
	var errs []error
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "condition":
			switch {
			case v.Kind == yaml.ScalarNode && v.Tag != "!!null":
				det.Conditions = append(det.Conditions, v.Value)
			case v.Kind == yaml.SequenceNode:
				for _, c := range v.Content {
					if c.Kind != yaml.ScalarNode {
						errs = append(errs, fmt.Errorf("line %d: detection.condition list items must be strings", c.Line))
						continue
					}
					det.Conditions = append(det.Conditions, c.Value)
				}
			default:
				errs = append(errs, fmt.Errorf("line %d: detection.condition must be a string or a list of strings", v.Line))
			}
		case "timeframe":
			errs = append(errs, unsupported("detection.timeframe (use a correlation rule)"))
		default:
			s, err := parseSearch(k.Value, v)
			if err != nil {
				errs = append(errs, fmt.Errorf("detection.%s: %w", k.Value, err))
				continue
			}
			det.Searches = append(det.Searches, s)
		}
	}
	return det, errors.Join(errs...)
}

func parseSearch(name string, v *yaml.Node) (Search, error) {
	s := Search{Name: name, Line: v.Line}
	switch v.Kind {
	case yaml.MappingNode:
		m, err := parseFieldMap(v)
		if err != nil {
			return s, err
		}
		s.Maps = []FieldMap{m}
	case yaml.SequenceNode:
		var kw FieldItem
		for _, c := range v.Content {
			switch c.Kind {
			case yaml.MappingNode:
				m, err := parseFieldMap(c)
				if err != nil {
					return s, err
				}
				s.Maps = append(s.Maps, m)
			case yaml.ScalarNode:
				if c.Tag == "!!null" {
					return s, fmt.Errorf("line %d: null is not allowed in a keyword list", c.Line)
				}
				if kw.Line == 0 {
					kw.Line = c.Line
				}
				kw.Values = append(kw.Values, Value{Text: c.Value})
			default:
				return s, fmt.Errorf("line %d: a search list holds strings or maps", c.Line)
			}
		}
		if len(kw.Values) > 0 {
			s.Maps = append(s.Maps, FieldMap{kw})
		}
		if len(s.Maps) == 0 {
			return s, fmt.Errorf("line %d: empty search list", v.Line)
		}
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return s, fmt.Errorf("line %d: empty search identifier", v.Line)
		}
		// A single keyword.
		s.Maps = []FieldMap{{FieldItem{Values: []Value{{Text: v.Value}}, Line: v.Line}}}
	default:
		return s, fmt.Errorf("line %d: a search identifier holds a map or a list", v.Line)
	}
	return s, nil
}

func parseFieldMap(n *yaml.Node) (FieldMap, error) {
	m := make(FieldMap, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		parts := strings.Split(k.Value, "|")
		it := FieldItem{Field: parts[0], Modifiers: parts[1:], Line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			it.Values = []Value{scalarValue(v)}
		case yaml.SequenceNode:
			if len(v.Content) == 0 {
				return nil, fmt.Errorf("line %d: %s: empty value list", v.Line, k.Value)
			}
			for _, c := range v.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("line %d: %s: values must be scalars", c.Line, k.Value)
				}
				it.Values = append(it.Values, scalarValue(c))
			}
		default:
			return nil, fmt.Errorf("line %d: %s: value must be a scalar or a list of scalars", v.Line, k.Value)
		}
		m = append(m, it)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("line %d: empty map", n.Line)
	}
	return m, nil
}

func scalarValue(n *yaml.Node) Value {
	if n.Tag == "!!null" {
		return Value{Null: true}
	}
	return Value{Text: n.Value}
}

// UnsupportedError is returned for a valid Sigma feature this engine does not
// implement yet (a modifier, correlation rules). Feature names it.
type UnsupportedError struct{ Feature string }

func (e *UnsupportedError) Error() string { return e.Feature + " not supported yet" }

func unsupported(feature string) error { return &UnsupportedError{Feature: feature} }
