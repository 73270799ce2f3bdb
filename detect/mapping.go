package detect

import (
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/watchfloor/watchfloor/schemas"
)

//go:embed mapping.yaml
var defaultMappingYAML []byte

// Mapping is the data that ties Sigma to the common schema: Sigma field names
// to event attributes, logsources to the events they select, and where a
// keyword search looks. It is read-only once parsed.
type Mapping struct {
	// Keywords lists the attributes a field-less (keyword) search matches.
	Keywords []string `yaml:"keywords"`
	// Fields maps a Sigma field name to an attribute name (attributes.go).
	Fields map[string]string `yaml:"fields"`
	// Logsources selects events for a rule's logsource.
	Logsources []LogsourceMapping `yaml:"logsources"`
}

// LogsourceMapping is one `logsources` entry of a Mapping.
type LogsourceMapping struct {
	Name   string         `yaml:"name"`
	Match  LogsourceMatch `yaml:"match"`
	Events EventSelector  `yaml:"events"`
}

// LogsourceMatch lists the accepted values of each logsource key. An empty
// list accepts only a rule that leaves the key out; "*" accepts anything.
type LogsourceMatch struct {
	Product  stringList `yaml:"product"`
	Category stringList `yaml:"category"`
	Service  stringList `yaml:"service"`
}

// EventSelector selects events: every non-empty list must contain the
// event's value. Formats and process names compare case-sensitively, as the
// pipeline writes them.
type EventSelector struct {
	ClassUID    []uint32 `yaml:"class_uid"`
	Format      []string `yaml:"format"`
	Product     []string `yaml:"product"`      // metadata.product
	ProcessName []string `yaml:"process_name"` // actor.process.name
}

// DefaultMapping returns the mapping embedded from detect/mapping.yaml.
func DefaultMapping() *Mapping {
	m, err := ParseMapping(defaultMappingYAML)
	if err != nil {
		panic("detect: embedded mapping.yaml is invalid: " + err.Error()) // caught by tests
	}
	return m
}

// ParseMapping parses and validates a mapping document (see mapping.yaml).
func ParseMapping(data []byte) (*Mapping, error) {
	var m Mapping
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse mapping: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks that every attribute named exists and every logsource
// entry selects something.
func (m *Mapping) Validate() error {
	var errs []error
	for _, a := range m.Keywords {
		if _, ok := lookupAttribute(a); !ok {
			errs = append(errs, fmt.Errorf("mapping.keywords: unknown attribute %q", a))
		}
	}
	for f, a := range m.Fields {
		if _, ok := lookupAttribute(a); !ok {
			errs = append(errs, fmt.Errorf("mapping.fields.%s: unknown attribute %q", f, a))
		}
	}
	for i, l := range m.Logsources {
		if l.Name == "" {
			errs = append(errs, fmt.Errorf("mapping.logsources[%d].name is required", i))
		}
		e := l.Events
		if len(e.ClassUID) == 0 && len(e.Format) == 0 && len(e.Product) == 0 && len(e.ProcessName) == 0 {
			errs = append(errs, fmt.Errorf("mapping.logsources[%d] (%s).events must select something", i, l.Name))
		}
	}
	return errors.Join(errs...)
}

func matchKey(accepted []string, v string) bool {
	if len(accepted) == 0 {
		return v == ""
	}
	for _, a := range accepted {
		if a == "*" || a == v {
			return true
		}
	}
	return false
}

// selectorsFor returns the event selectors a logsource applies to (ORed),
// nil when none is mapped.
func (m *Mapping) selectorsFor(ls Logsource) []EventSelector {
	var out []EventSelector
	ls.Product, ls.Category, ls.Service = strings.ToLower(ls.Product), strings.ToLower(ls.Category), strings.ToLower(ls.Service)
	for _, l := range m.Logsources {
		if matchKey(l.Match.Product, ls.Product) && matchKey(l.Match.Category, ls.Category) && matchKey(l.Match.Service, ls.Service) {
			out = append(out, l.Events)
		}
	}
	return out
}

func (s *EventSelector) match(ev *schemas.Event) bool {
	if len(s.ClassUID) > 0 && !slices.Contains(s.ClassUID, ev.ClassUID) {
		return false
	}
	if len(s.Format) > 0 && !slices.Contains(s.Format, ev.Format) {
		return false
	}
	if len(s.Product) > 0 && !slices.Contains(s.Product, ev.Metadata.Product) {
		return false
	}
	if len(s.ProcessName) > 0 && !slices.Contains(s.ProcessName, ev.ProcessName) {
		return false
	}
	return true
}

func (s *EventSelector) key() string {
	return fmt.Sprintf("class=%v format=%s product=%s process=%s", s.ClassUID,
		strings.Join(s.Format, ","), strings.Join(s.Product, ","), strings.Join(s.ProcessName, ","))
}
