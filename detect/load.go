package detect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadDir parses and compiles every *.yml and *.yaml file under dir,
// recursively, in lexical order. A file may hold several YAML documents, one
// rule each. Errors name the file, the rule id and the problem; one bad rule
// fails the load, and every problem found is returned (errors.Join of
// *RuleError).
func LoadDir(dir string, cfg Config) (*RuleSet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rules, errs := parseDir(dir)
	rs, err := Compile(rules, cfg)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("load rules from %s: %w", dir, errors.Join(errs...))
	}
	return rs, nil
}

// parseDir parses every rule file under dir. It returns the rules that parsed
// and one error per problem (a *RuleError, or a walk error).
func parseDir(dir string) ([]*Rule, []error) {
	var rules []*Rule
	var errs []error
	walkErr := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !isRuleFile(path) {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rs, fileErrs := parseFile(path, data)
		rules = append(rules, rs...)
		errs = append(errs, fileErrs...)
		return nil
	})
	if walkErr != nil {
		errs = append(errs, fmt.Errorf("read rules: %w", walkErr))
	}
	return rules, errs
}

func isRuleFile(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return (ext == ".yml" || ext == ".yaml") && !IsTestFile(path)
}

// parseFile parses every YAML document of one file as a rule.
func parseFile(path string, data []byte) ([]*Rule, []error) {
	var rules []*Rule
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			errs = append(errs, &RuleError{Source: path, Err: fmt.Errorf("parse YAML: %w", err)})
			break // the decoder cannot resynchronise
		}
		r, err := parseRuleNode(&doc)
		if r != nil {
			r.Source = path
		}
		if err != nil {
			re := &RuleError{Source: path, Err: err}
			if r != nil {
				re.RuleID = r.ID
			}
			if i > 0 {
				re.Source = fmt.Sprintf("%s (document %d)", path, i+1)
			}
			errs = append(errs, re)
			continue
		}
		rules = append(rules, r)
	}
	return rules, errs
}

// ParseRules parses every YAML document of data (detection rules,
// correlations, filters), as LoadDir does for one file.
func ParseRules(data []byte) ([]*Rule, error) {
	rules, errs := parseFile("", data)
	return rules, errors.Join(errs...)
}
