package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/normalize"
)

// localRule is one rule read from a file, with the bytes to deploy.
type localRule struct {
	File string
	Rule *detect.Rule
	Body []byte
}

// ruleCheck is the validation outcome of one file or rule.
type ruleCheck struct {
	File  string `json:"file"`
	ID    string `json:"id,omitempty"`
	Title string `json:"title,omitempty"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// ruleFiles lists the rule files under each path (a file or a directory,
// recursively), test sidecars excluded.
func ruleFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("rules path: %w", err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			ext := strings.ToLower(filepath.Ext(path))
			if !d.IsDir() && (ext == ".yml" || ext == ".yaml") && !detect.IsTestFile(path) {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read rules under %s: %w", p, err)
		}
	}
	sort.Strings(out)
	return out, nil
}

// splitDocs returns the bytes of each YAML document of a file: the file
// itself when it holds one (comments kept), re-encoded documents otherwise.
func splitDocs(data []byte) ([][]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &n)
	}
	if len(docs) <= 1 {
		return [][]byte{data}, nil
	}
	out := make([][]byte, len(docs))
	for i, d := range docs {
		b, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// loadLocal parses and compiles every rule under paths. It returns the
// rules that are good and one check per rule or file.
func loadLocal(paths []string, cfg detect.Config) ([]localRule, []ruleCheck, error) {
	files, err := ruleFiles(paths)
	if err != nil {
		return nil, nil, err
	}
	var good []localRule
	var checks []ruleCheck
	seen := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		if len(data) > 4*rulebook.MaxRuleBytes {
			checks = append(checks, ruleCheck{File: f, Error: fmt.Sprintf("file is %d bytes, at most %d are allowed", len(data), 4*rulebook.MaxRuleBytes)})
			continue
		}
		rules, errs := detect.ParseFile(f, data)
		for _, e := range errs {
			c := ruleCheck{File: f, Error: e.Error()}
			var re *detect.RuleError
			if errors.As(e, &re) {
				c.ID, c.Error = re.RuleID, re.Err.Error()
			}
			checks = append(checks, c)
		}
		if len(errs) > 0 {
			continue
		}
		bodies, err := splitDocs(data)
		if err != nil || len(bodies) != len(rules) {
			checks = append(checks, ruleCheck{File: f, Error: fmt.Sprintf("split YAML documents: %v", err)})
			continue
		}
		for i, r := range rules {
			c := ruleCheck{File: f, ID: r.ID, Title: r.Title}
			_, err := detect.Compile([]*detect.Rule{r}, cfg)
			switch {
			case err != nil:
				var re *detect.RuleError
				if errors.As(err, &re) {
					err = re.Err
				}
				c.Error = err.Error()
			case seen[r.ID] != "":
				c.Error = "duplicate rule id (also in " + seen[r.ID] + ")"
			case len(bodies[i]) > rulebook.MaxRuleBytes:
				c.Error = fmt.Sprintf("rule is %d bytes, at most %d are allowed", len(bodies[i]), rulebook.MaxRuleBytes)
			default:
				c.OK = true
				seen[r.ID] = f
				good = append(good, localRule{File: f, Rule: r, Body: bodies[i]})
			}
			checks = append(checks, c)
		}
		if _, err := rulebook.LoadTestFile(rulebook.SidecarPath(f)); err != nil {
			checks = append(checks, ruleCheck{File: rulebook.SidecarPath(f), Error: err.Error()})
		}
	}
	return good, checks, nil
}

// testReport is the outcome of running the sidecars of some rules.
type testReport struct {
	Cases    []rulebook.CaseResult `json:"cases"`
	Untested []string              `json:"untested"` // rule ids with no sidecar case
	Failed   int                   `json:"failed"`
}

func runSidecars(rules []localRule, cfg detect.Config) (testReport, error) {
	rep := testReport{Cases: []rulebook.CaseResult{}, Untested: []string{}}
	byFile := map[string][]*detect.Rule{}
	var order []string
	for _, r := range rules {
		if _, ok := byFile[r.File]; !ok {
			order = append(order, r.File)
		}
		byFile[r.File] = append(byFile[r.File], r.Rule)
	}
	formats := normalize.Builtin()
	for _, f := range order {
		tf, err := rulebook.LoadTestFile(rulebook.SidecarPath(f))
		if err != nil {
			return rep, err
		}
		tested := map[string]bool{}
		if tf != nil {
			for _, c := range rulebook.RunTests(byFile[f], tf, formats, cfg) {
				tested[c.RuleID] = true
				if !c.Pass {
					rep.Failed++
				}
				rep.Cases = append(rep.Cases, c)
			}
		}
		for _, r := range byFile[f] {
			if !tested[r.ID] {
				rep.Untested = append(rep.Untested, r.ID)
			}
		}
	}
	return rep, nil
}

// lineDiff renders a unified-style diff of a and b (whole files, no hunk
// headers), "" when equal.
func lineDiff(aName, bName string, a, b []byte) string {
	if bytes.Equal(a, b) {
		return ""
	}
	al, bl := splitLines(a), splitLines(b)
	if len(al)*len(bl) > 4_000_000 {
		return fmt.Sprintf("--- %s\n+++ %s\n(too large to diff line by line: %d and %d lines)\n", aName, bName, len(al), len(bl))
	}
	// LCS table.
	n, m := len(al), len(bl)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	line := func(prefix, s string) {
		out.WriteString(prefix)
		out.WriteString(strings.TrimSuffix(s, "\n"))
		out.WriteByte('\n')
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			line(" ", al[i])
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			line("+", bl[j])
			j++
		default:
			line("-", al[i])
			i++
		}
	}
	return out.String()
}

func splitLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	l := strings.SplitAfter(string(b), "\n")
	if l[len(l)-1] == "" {
		l = l[:len(l)-1]
	}
	return l
}
