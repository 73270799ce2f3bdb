package rulebook

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

// A test sidecar sits next to a rule file: rules/x.yml is tested by
// rules/x.tests.yml. Each case is one raw record in a registered format,
// normalized by the pipeline's own parser, and whether the rule must match:
//
//	cases:
//	  - name: wpad lookup
//	    format: zeek_dns
//	    match: true
//	    raw: '{"ts":1575413122.7,"query":"wpad.corp.example","qtype_name":"A"}'
//
// A file holding several rules names the rule of each case with `rule: ID`.

// MaxTestFileBytes bounds a sidecar.
const MaxTestFileBytes = 1 << 20

// TestFile is a parsed sidecar.
type TestFile struct {
	Path  string     `yaml:"-"`
	Cases []TestCase `yaml:"cases"`
}

// TestCase is one sample event and the expected outcome.
type TestCase struct {
	Name   string `yaml:"name" json:"name"`
	Rule   string `yaml:"rule,omitempty" json:"rule,omitempty"`
	Format string `yaml:"format" json:"format"`
	Agency string `yaml:"agency,omitempty" json:"agency,omitempty"`
	Match  *bool  `yaml:"match" json:"match"`
	Raw    string `yaml:"raw" json:"-"`
}

// SidecarPath returns the sidecar path of a rule file.
func SidecarPath(ruleFile string) string {
	ext := filepath.Ext(ruleFile)
	return strings.TrimSuffix(ruleFile, ext) + ".tests" + ext
}

// LoadTestFile reads a sidecar; a missing file returns (nil, nil).
func LoadTestFile(path string) (*TestFile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read tests %s: %w", path, err)
	}
	return ParseTestFile(path, data)
}

// ParseTestFile parses and checks a sidecar.
func ParseTestFile(path string, data []byte) (*TestFile, error) {
	if len(data) > MaxTestFileBytes {
		return nil, fmt.Errorf("tests %s: %d bytes, at most %d are allowed", path, len(data), MaxTestFileBytes)
	}
	var tf TestFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&tf); err != nil {
		return nil, fmt.Errorf("parse tests %s: %w", path, err)
	}
	tf.Path = path
	var errs []error
	if len(tf.Cases) == 0 {
		errs = append(errs, errors.New("cases: at least one case is required"))
	}
	for i, c := range tf.Cases {
		name := fmt.Sprintf("cases[%d]", i)
		if c.Name != "" {
			name += " (" + c.Name + ")"
		}
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: name is required", name))
		case c.Format == "":
			errs = append(errs, fmt.Errorf("%s: format is required", name))
		case c.Match == nil:
			errs = append(errs, fmt.Errorf("%s: match (true or false) is required", name))
		case strings.TrimSpace(c.Raw) == "":
			errs = append(errs, fmt.Errorf("%s: raw is required", name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("tests %s: %w", path, errors.Join(errs...))
	}
	return &tf, nil
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	File   string `json:"file"`
	RuleID string `json:"rule"`
	Case   string `json:"case"`
	Want   bool   `json:"want_match"`
	Got    bool   `json:"got_match"`
	Pass   bool   `json:"pass"`
	Error  string `json:"error,omitempty"`
}

// testTime is the batch receive time of every test event, so sources that
// omit the year normalize the same way on every run.
var testTime = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// RunTests runs every case of tf against the rules of one file. A case
// whose rule is not among rules, whose format is unknown or whose record
// does not normalize fails with an error.
func RunTests(rules []*detect.Rule, tf *TestFile, formats *normalize.Registry, cfg detect.Config) []CaseResult {
	byID := make(map[string]*detect.Rule, len(rules))
	for _, r := range rules {
		byID[r.ID] = r
	}
	sets := map[string]*detect.RuleSet{}
	out := make([]CaseResult, 0, len(tf.Cases))
	for i, c := range tf.Cases {
		res := CaseResult{File: tf.Path, RuleID: c.Rule, Case: c.Name, Want: *c.Match}
		fail := func(format string, args ...any) {
			res.Error = fmt.Sprintf(format, args...)
			out = append(out, res)
		}
		if res.RuleID == "" {
			if len(rules) != 1 {
				fail("case names no rule and the file holds %d rules: add `rule: ID`", len(rules))
				continue
			}
			res.RuleID = rules[0].ID
		}
		r, ok := byID[res.RuleID]
		if !ok {
			fail("rule %q is not in the rule file", res.RuleID)
			continue
		}
		rs, ok := sets[r.ID]
		if !ok {
			var err error
			rs, err = detect.Compile([]*detect.Rule{r}, cfg)
			if err != nil {
				fail("compile rule: %v", err)
				continue
			}
			sets[r.ID] = rs
		}
		ev, err := NormalizeSample(formats, c.Format, c.Agency, []byte(strings.TrimRight(c.Raw, "\n")), i)
		if err != nil {
			fail("%v", err)
			continue
		}
		for _, f := range rs.Eval(ev, nil) {
			if f.RuleID == r.ID {
				res.Got = true
			}
		}
		res.Pass = res.Got == res.Want
		out = append(out, res)
	}
	return out
}

// NormalizeSample turns one raw record into an event as the pipeline would
// (agency "test" when empty).
func NormalizeSample(formats *normalize.Registry, format, agency string, raw []byte, index int) (*schemas.Event, error) {
	f, ok := formats.Lookup(format)
	if !ok {
		return nil, fmt.Errorf("unknown format %q: registered formats are %v", format, formats.Names())
	}
	if agency == "" {
		agency = "test"
	}
	dec := f.NewDecoder(normalize.BatchInfo{Received: testTime})
	ev := &schemas.Event{}
	var recErr error
	n := 0
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if f.Directive(line) {
			if err := dec.Directive(line); err != nil {
				return nil, fmt.Errorf("%s directive: %w", format, err)
			}
			continue
		}
		n++
		ev.Reset()
		recErr = dec.Record(line, ev)
		if ev.Raw == "" {
			ev.Raw = string(line)
		}
	}
	switch {
	case n != 1:
		return nil, fmt.Errorf("raw holds %d records, want exactly one (directive lines aside)", n)
	case recErr != nil:
		return nil, fmt.Errorf("normalize %s record: %w", format, recErr)
	}
	ev.ID = schemas.EventID("rules-test", index)
	ev.Agency, ev.Sensor, ev.Format = agency, "rules-test", format
	return ev, nil
}
