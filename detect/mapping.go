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
	// Fields maps a Sigma field name to an attribute name (attributes.go),
	// or to "unmapped:<key>" for a vendor field kept in the event's unmapped
	// attributes under another name. A mapped field whose attribute is empty
	// in an event reads the unmapped attribute of the Sigma name instead.
	Fields map[string]string `yaml:"fields"`
	// Logsources selects events for a rule's logsource.
	Logsources []LogsourceMapping `yaml:"logsources"`
}

// LogsourceMapping is one `logsources` entry of a Mapping.
type LogsourceMapping struct {
	Name   string         `yaml:"name"`
	Match  LogsourceMatch `yaml:"match"`
	Events EventSelector  `yaml:"events"`
	// Fields overrides Mapping.Fields for the rules this entry selects
	// (the first selected entry that names a field wins).
	Fields map[string]string `yaml:"fields"`
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
	ActivityID  []uint32 `yaml:"activity_id"`
	Format      []string `yaml:"format"`
	Product     []string `yaml:"product"`      // metadata.product
	ProcessName []string `yaml:"process_name"` // actor.process.name
	unmapped    []unmappedSel
	// Unmapped requires unmapped attributes to hold one of the listed values
	// (exact), e.g. {EventID: ["1"], Channel: [Microsoft-Windows-Sysmon/Operational]}.
	Unmapped map[string][]string `yaml:"unmapped"`
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
	for i := range m.Logsources {
		m.Logsources[i].Events.prepare()
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
		if err := checkFieldTarget(a); err != nil {
			errs = append(errs, fmt.Errorf("mapping.fields.%s: %w", f, err))
		}
	}
	for i, l := range m.Logsources {
		if l.Name == "" {
			errs = append(errs, fmt.Errorf("mapping.logsources[%d].name is required", i))
		}
		e := l.Events
		if len(e.ClassUID) == 0 && len(e.Format) == 0 && len(e.Product) == 0 && len(e.ProcessName) == 0 && len(e.Unmapped) == 0 {
			errs = append(errs, fmt.Errorf("mapping.logsources[%d] (%s).events must select something", i, l.Name))
		}
		for f, a := range l.Fields {
			if err := checkFieldTarget(a); err != nil {
				errs = append(errs, fmt.Errorf("mapping.logsources[%d] (%s).fields.%s: %w", i, l.Name, f, err))
			}
		}
	}
	return errors.Join(errs...)
}

const unmappedPrefix = "unmapped:"

func checkFieldTarget(a string) error {
	if k, ok := strings.CutPrefix(a, unmappedPrefix); ok {
		if k == "" {
			return errors.New("\"unmapped:\" needs a key")
		}
		return nil
	}
	if _, ok := lookupAttribute(a); !ok {
		return fmt.Errorf("unknown attribute %q", a)
	}
	return nil
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
func (m *Mapping) selectorsFor(ls Logsource) ([]EventSelector, []map[string]string) {
	var out []EventSelector
	var fields []map[string]string
	ls.Product, ls.Category, ls.Service = strings.ToLower(ls.Product), strings.ToLower(ls.Category), strings.ToLower(ls.Service)
	for _, l := range m.Logsources {
		if matchKey(l.Match.Product, ls.Product) && matchKey(l.Match.Category, ls.Category) && matchKey(l.Match.Service, ls.Service) {
			out = append(out, l.Events)
			if l.Fields != nil {
				fields = append(fields, l.Fields)
			}
		}
	}
	return out, fields
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
	if len(s.ActivityID) > 0 && !slices.Contains(s.ActivityID, ev.ActivityID) {
		return false
	}
	for _, u := range s.unmapped {
		v, ok := ev.UnmappedValue(u.key)
		if !ok || !slices.Contains(u.values, v) {
			return false
		}
	}
	return true
}

type unmappedSel struct {
	key    string
	values []string
}

// prepare sorts the unmapped conditions into a slice so matching does not
// range over a map.
func (s *EventSelector) prepare() {
	s.unmapped = s.unmapped[:0]
	keys := make([]string, 0, len(s.Unmapped))
	for k := range s.Unmapped {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		s.unmapped = append(s.unmapped, unmappedSel{key: k, values: s.Unmapped[k]})
	}
}

func (s *EventSelector) key() string {
	k := fmt.Sprintf("class=%v format=%s product=%s process=%s", s.ClassUID,
		strings.Join(s.Format, ","), strings.Join(s.Product, ","), strings.Join(s.ProcessName, ","))
	if len(s.ActivityID) > 0 {
		k += fmt.Sprintf(" activity=%v", s.ActivityID)
	}
	for _, u := range s.unmapped {
		k += " " + u.key + "=" + strings.Join(u.values, ",")
	}
	return k
}
