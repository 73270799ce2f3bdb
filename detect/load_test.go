package detect

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		give string // rule document
		want []string
	}{
		{"unknown modifier", testRule("r-unknown-mod", dnsLogsource, "sel: {query|contain: x}\ncondition: sel"),
			[]string{"rule r-unknown-mod", `field "query"`, `unknown modifier "contain"`}},
		{"missing placeholder", testRule("r-ph", dnsLogsource, "sel: {query|expand: '%Nope%'}\ncondition: sel"),
			[]string{"rule r-ph", `field "query"`, "placeholder %Nope% is not defined"}},
		{"encoding a wildcard", testRule("r-b64", dnsLogsource, "sel: {query|base64: 'a*'}\ncondition: sel"),
			[]string{"rule r-b64", `modifier "base64" cannot encode value "a*": it holds wildcards`}},
		{"encoding after contains", testRule("r-b64c", dnsLogsource, "sel: {query|contains|base64: 'a'}\ncondition: sel"),
			[]string{"rule r-b64c", `modifier "base64" must come before "contains"`}},
		{"unknown search in condition", testRule("r-ref", dnsLogsource, "sel: {query: x}\ncondition: sel and not filter"),
			[]string{"rule r-ref", `unknown search identifier "filter"`, "offset 12"}},
		{"pattern matches nothing", testRule("r-of", dnsLogsource, "sel: {query: x}\ncondition: 1 of filter_*"),
			[]string{`"filter_*" matches no search identifier`}},
		{"condition syntax", testRule("r-syntax", dnsLogsource, "sel: {query: x}\ncondition: sel and"),
			[]string{"rule r-syntax", "offset 7", "end of condition"}},
		{"conflicting modifiers", testRule("r-conf", dnsLogsource, "sel: {query|contains|endswith: x}\ncondition: sel"),
			[]string{`modifier "endswith" cannot follow "contains"`}},
		{"all on one value", testRule("r-all", dnsLogsource, "sel: {query|contains|all: x}\ncondition: sel"),
			[]string{`"all" needs a list`}},
		{"bad cidr", testRule("r-cidr", dnsLogsource, "sel: {src_ip|cidr: 10.0.0.300/8}\ncondition: sel"),
			[]string{`cidr value "10.0.0.300/8"`}},
		{"regexp flag without re", testRule("r-flag", dnsLogsource, "sel: {query|i: x}\ncondition: sel"),
			[]string{`needs a preceding "re"`}},
		{"unsupported regexp", testRule("r-re", dnsLogsource, "sel: {query|re: 'a(?!b)'}\ncondition: sel"),
			[]string{"regular expression syntax", "not supported yet"}},
		{"exists needs a boolean", testRule("r-exists", dnsLogsource, "sel: {query|exists: maybe}\ncondition: sel"),
			[]string{`"exists" takes a single true or false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRule([]byte(tt.give))
			if err != nil {
				t.Fatalf("ParseRule() error = %v", err)
			}
			_, err = Compile([]*Rule{r}, Config{})
			if err == nil {
				t.Fatal("Compile() error = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Compile() error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseRuleErrors(t *testing.T) {
	const det = "detection:\n  sel: {query: x}\n  condition: sel\n"
	tests := []struct {
		name string
		give string
		want []string
	}{
		{"bad YAML", "title: x\nid: [unclosed\n", []string{"parse rule"}},
		{"bad level", "title: t\nid: r1\nlevel: severe\nlogsource: {category: dns}\n" + det,
			[]string{`level "severe" is not one of informational, low, medium, high, critical`}},
		{"missing id and level", "title: t\nlogsource: {category: dns}\n" + det,
			[]string{"id is required", "level is required"}},
		{"missing title", "id: r1\nlevel: low\nlogsource: {category: dns}\n" + det, []string{"title is required"}},
		{"bad id", "title: t\nid: 'a b/c'\nlevel: low\nlogsource: {category: dns}\n" + det, []string{`id "a b/c" must be`}},
		{"bad status", "title: t\nid: r1\nstatus: maybe\nlevel: low\nlogsource: {category: dns}\n" + det, []string{`status "maybe"`}},
		{"no detection", "title: t\nid: r1\nlevel: low\n", []string{"detection is required"}},
		{"no condition", "title: t\nid: r1\nlevel: low\ndetection:\n  sel: {query: x}\n", []string{"detection.condition is required"}},
		{"nested value", "title: t\nid: r1\nlevel: low\ndetection:\n  sel: {query: {a: b}}\n  condition: sel\n",
			[]string{"detection.sel", "value must be a scalar or a list"}},
		{"correlation", "title: t\nid: r1\ncorrelation: {type: event_count}\n", []string{"correlation.rules must name at least one rule", "correlation.timespan is required"}},
		{"correlation metric type", "title: t\nid: r1\nlevel: low\ncorrelation: {type: value_sum, rules: [a], timespan: 5m}\n", []string{"correlation type value_sum not supported yet"}},
		{"correlation timespan", "title: t\nid: r1\nlevel: low\ncorrelation: {type: event_count, rules: [a], timespan: 5y, condition: {gte: 2}}\n", []string{`timespan "5y"`}},
		{"filter without rules", "title: t\nid: f1\nlogsource: {category: dns}\nfilter: {sel: {query: x}, condition: sel}\n", []string{"filter.rules must name at least one rule"}},
		{"two documents", "title: t\n---\ntitle: u\n", []string{"more than one YAML document"}},
		{"empty", "", []string{"empty document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRule([]byte(tt.give))
			if err == nil {
				t.Fatal("ParseRule() error = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseRule() error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadDirErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("good.yml", testRule("good-1", dnsLogsource, "sel: {query: x}\ncondition: sel"))
	write("sub/bad_mod.yaml", testRule("bad-mod", dnsLogsource, "sel: {query|sometimes: x}\ncondition: sel"))
	write("sub/bad_yaml.yml", "title: [\n")
	write("multi.yml", testRule("multi-1", dnsLogsource, "sel: {query: x}\ncondition: sel")+"---\n"+
		testRule("multi-2", dnsLogsource, "sel: {query: x}\ncondition: nope"))
	write("dup.yml", testRule("good-1", dnsLogsource, "sel: {query: y}\ncondition: sel"))
	write("README.md", "not a rule")

	_, err := LoadDir(dir, Config{})
	if err == nil {
		t.Fatal("LoadDir() error = nil, want errors")
	}
	msg := err.Error()
	for _, w := range []string{
		filepath.Join(dir, "sub/bad_mod.yaml") + ": rule bad-mod: detection.sel: line 8: field \"query\": unknown modifier \"sometimes\"",
		filepath.Join(dir, "sub/bad_yaml.yml") + ": parse YAML",
		filepath.Join(dir, "multi.yml") + ": rule multi-2: condition \"nope\"",
		filepath.Join(dir, "good.yml") + ": rule good-1: duplicate rule id (also in " + filepath.Join(dir, "dup.yml") + ")",
	} {
		if !strings.Contains(msg, w) {
			t.Errorf("LoadDir() error =\n%s\nwant it to contain\n%s", msg, w)
		}
	}
	var re *RuleError
	if !errors.As(err, &re) {
		t.Errorf("LoadDir() error does not wrap a *RuleError")
	}

	good := t.TempDir()
	dir = good
	write("a.yml", testRule("a", dnsLogsource, "sel: {query: x}\ncondition: sel"))
	write("b/c.yaml", testRule("c", dnsLogsource, "sel: {query: x}\ncondition: sel")+"---\n"+testRule("d", linuxLogsource, "kw: [x]\ncondition: kw"))
	rs, err := LoadDir(good, Config{})
	if err != nil {
		t.Fatalf("LoadDir() error = %v", err)
	}
	if rs.Len() != 3 {
		t.Errorf("LoadDir().Len() = %d, want 3", rs.Len())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("Config{}.Validate() = %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	bad := &Mapping{Fields: map[string]string{"query": "query.nope"}, Keywords: []string{"message"},
		Logsources: []LogsourceMapping{{Name: "x"}}}
	err := Config{Mapping: bad}.Validate()
	for _, w := range []string{`mapping.fields.query: unknown attribute "query.nope"`, "(x).events must select something"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Config.Validate() = %v, want it to contain %q", err, w)
		}
	}
	if _, err := LoadDir(t.TempDir(), Config{Mapping: bad}); err == nil {
		t.Error("LoadDir() with an invalid mapping: error = nil")
	}
}

func TestParseMapping(t *testing.T) {
	m, err := ParseMapping([]byte("keywords: [message]\nfields: {q: query.hostname}\nlogsources:\n  - name: all-dns\n    match: {product: '*', category: '*', service: '*'}\n    events: {class_uid: [4003]}\n"))
	if err != nil {
		t.Fatalf("ParseMapping() error = %v", err)
	}
	rs := mustCompileWith(t, Config{Mapping: m}, testRule("m", "product: whatever", "sel: {q: a.com}\ncondition: sel"))
	if got := len(rs.Eval(dnsEvent("a.com"), nil)); got != 1 {
		t.Errorf("custom mapping: got %d findings, want 1", got)
	}
}

func mustCompileWith(tb testing.TB, cfg Config, docs ...string) *RuleSet {
	tb.Helper()
	var rules []*Rule
	for _, d := range docs {
		r, err := ParseRule([]byte(d))
		if err != nil {
			tb.Fatalf("ParseRule() error = %v", err)
		}
		rules = append(rules, r)
	}
	rs, err := Compile(rules, cfg)
	if err != nil {
		tb.Fatalf("Compile() error = %v", err)
	}
	return rs
}
