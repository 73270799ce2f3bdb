package detect

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// CheckReport is the outcome of CheckDir: every rule file under a directory,
// parsed and compiled rule by rule so that one bad rule does not hide the
// others.
type CheckReport struct {
	Dir      string
	Folders  []FolderCount // sorted by folder
	Problems []*RuleError  // every rule that did not compile, in file order
	Unrouted int           // compiled rules whose logsource the mapping routes nowhere
}

// FolderCount counts the rules of one folder (the first two path elements
// under the checked directory, e.g. rules/windows).
type FolderCount struct {
	Folder   string
	Rules    int
	Compiled int
	Failed   int
}

// Total returns the sum over all folders.
func (r *CheckReport) Total() FolderCount {
	t := FolderCount{Folder: "total"}
	for _, f := range r.Folders {
		t.Rules += f.Rules
		t.Compiled += f.Compiled
		t.Failed += f.Failed
	}
	return t
}

// Reasons counts the problems by reason (see Reason).
func (r *CheckReport) Reasons() map[string]int {
	out := map[string]int{}
	for _, p := range r.Problems {
		out[Reason(p)]++
	}
	return out
}

// Write prints the report: per-folder counts, then one line per problem
// naming the file, the rule and the reason.
func (r *CheckReport) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-48s %7s %9s %7s\n", "folder", "rules", "compiled", "failed")
	for _, f := range append(r.Folders, r.Total()) {
		fmt.Fprintf(&b, "%-48s %7d %9d %7d\n", f.Folder, f.Rules, f.Compiled, f.Failed)
	}
	if r.Unrouted > 0 {
		fmt.Fprintf(&b, "%d compiled rules have a logsource the mapping routes to no events (they never match)\n", r.Unrouted)
	}
	for _, p := range r.Problems {
		b.WriteString(p.Error())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Reason reduces a rule error to a countable reason: the unsupported
// feature, the undefined placeholder, or the message without quoted values.
func Reason(err error) string {
	var pe *PlaceholderError
	if errors.As(err, &pe) {
		return "placeholder not defined: %" + pe.Name + "%"
	}
	var ue *UnsupportedError
	if errors.As(err, &ue) {
		return "unsupported: " + ue.Feature
	}
	var ce *ConditionError
	if errors.As(err, &ce) {
		return "condition: " + ce.Msg
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// CheckDir parses and compiles every rule under dir, one at a time, and
// reports what compiled and why the others did not. It fails only when dir
// cannot be read or cfg is invalid.
func CheckDir(dir string, cfg Config) (*CheckReport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &CheckReport{Dir: dir}
	counts := map[string]*FolderCount{}
	folderOf := func(src string) string {
		src = strings.SplitN(src, " (document", 2)[0]
		rel, err := filepath.Rel(dir, src)
		if err != nil {
			return "."
		}
		parts := strings.Split(filepath.ToSlash(filepath.Dir(rel)), "/")
		if len(parts) > 2 {
			parts = parts[:2]
		}
		return strings.Join(parts, "/")
	}
	count := func(src string) *FolderCount {
		f := folderOf(src)
		c, ok := counts[f]
		if !ok {
			c = &FolderCount{Folder: f}
			counts[f] = c
		}
		return c
	}
	rules, errs := parseDir(dir)
	for _, err := range errs {
		var re *RuleError
		if !errors.As(err, &re) {
			return nil, err // the directory could not be read
		}
		c := count(re.Source)
		c.Rules++
		c.Failed++
		rep.Problems = append(rep.Problems, re)
	}
	// Correlations and filters refer to other rules: compile each together
	// with the rules it names, detection rules alone.
	byRef := map[string]*Rule{}
	for _, r := range rules {
		if r.ID != "" {
			byRef[r.ID] = r
		}
		if r.Name != "" {
			byRef[r.Name] = r
		}
	}
	for _, r := range rules {
		c := count(r.Source)
		c.Rules++
		set := append([]*Rule{r}, referenced(r, byRef)...)
		rs, err := Compile(set, cfg)
		if err != nil {
			c.Failed++
			var re *RuleError
			if !errors.As(err, &re) {
				re = &RuleError{Source: r.Source, RuleID: r.ID, Err: err}
			}
			rep.Problems = append(rep.Problems, re)
			continue
		}
		c.Compiled++
		if r.Kind() == KindDetection && len(rs.Unrouted()) > 0 {
			rep.Unrouted++
		}
	}
	for _, c := range counts {
		rep.Folders = append(rep.Folders, *c)
	}
	sort.Slice(rep.Folders, func(i, j int) bool { return rep.Folders[i].Folder < rep.Folders[j].Folder })
	return rep, nil
}

// referenced returns the rules a correlation or filter names, transitively,
// that are known.
func referenced(r *Rule, byRef map[string]*Rule) []*Rule {
	var out []*Rule
	seen := map[*Rule]bool{r: true}
	var walk func(*Rule)
	walk = func(r *Rule) {
		var refs []string
		switch {
		case r.Correlation != nil:
			refs = r.Correlation.Rules
		case r.Filter != nil:
			refs = r.Filter.Rules
		}
		for _, id := range refs {
			if d, ok := byRef[id]; ok && !seen[d] {
				seen[d] = true
				out = append(out, d)
				walk(d)
			}
		}
	}
	walk(r)
	return out
}

// ParsePlaceholders reads a placeholders file: a YAML map from placeholder
// name (without the percent signs) to a value or a list of values.
//
//	Administrators: ['CORP\Domain Admins', 'CORP\Enterprise Admins']
//	DomainControllers: [dc01*, dc02*]
func ParsePlaceholders(data []byte) (map[string][]string, error) {
	var raw map[string]stringList
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse placeholders: %w", err)
	}
	out := make(map[string][]string, len(raw))
	for k, v := range raw {
		out[strings.Trim(k, "%")] = v
	}
	if err := (Config{Placeholders: out}).Validate(); err != nil {
		return nil, fmt.Errorf("parse placeholders: %w", err)
	}
	return out, nil
}
