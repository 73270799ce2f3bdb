package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

const corrBase = `title: Whoami
id: rule-whoami
name: whoami
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|contains: whoami}
  condition: sel
---
title: Net user
id: rule-netuser
name: netuser
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|contains: 'net user'}
  condition: sel
`

// corrRules parses the base rules plus the given documents.
func corrRules(t *testing.T, docs string) *RuleSet {
	t.Helper()
	rules, errs := parseFile("corr.yml", []byte(corrBase+"---\n"+docs))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	rs, err := Compile(rules, Config{})
	if err != nil {
		t.Fatalf("Compile() error = %v", err)
	}
	return rs
}

// step is one event of a stream: minutes after t0, command line, user.
type step struct {
	min  float64
	cmd  string
	user string
	img  string
}

// runStream feeds the steps in order and returns the ids of the rules of
// every finding, in order, each with the step index it fired at.
func runStream(t *testing.T, rs *RuleSet, cfg CorrelatorConfig, steps []step, advance float64) ([]string, *Correlator) {
	t.Helper()
	c, err := NewCorrelator(rs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	var got []string
	for i, s := range steps {
		ev := procEvent("CommandLine", s.cmd, "User", s.user, "Image", s.img)
		ev.ID = schemas.EventID("s:1", i)
		ev.Time = t0.Add(time.Duration(s.min * float64(time.Minute)))
		hits := rs.EvalHits(ev, nil)
		out := rs.Findings(ev, hits, nil)
		out = c.Observe(ev, hits, out)
		for _, f := range out {
			got = append(got, fmt.Sprintf("%s@%d", f.RuleID, i))
		}
	}
	if advance > 0 {
		for _, f := range c.Advance(t0.Add(time.Duration(advance*float64(time.Minute))), nil) {
			got = append(got, f.RuleID+"@end")
		}
	}
	return got, c
}

func TestCorrelations(t *testing.T) {
	eventCount := func(cond string) string {
		return `title: Many whoami
id: corr-count
level: high
correlation:
  type: event_count
  rules: [whoami]
  group-by: [User]
  timespan: 5m
  condition: ` + cond + "\n"
	}
	cfg := CorrelatorConfig{Lateness: 0, MaxGroups: 100, MaxEntries: 100}
	late := CorrelatorConfig{Lateness: 5 * time.Minute, MaxGroups: 100, MaxEntries: 100}
	w := func(min float64, user string) step { return step{min: min, cmd: "whoami /all", user: user} }
	tests := []struct {
		name    string
		doc     string
		cfg     CorrelatorConfig
		steps   []step
		advance float64
		want    string
	}{
		{"threshold reached", eventCount("{gte: 3}"), cfg, []step{w(0, "alice"), w(1, "alice"), w(2, "alice")}, 0, "corr-count@2"},
		{"below threshold", eventCount("{gte: 3}"), cfg, []step{w(0, "alice"), w(1, "alice")}, 0, ""},
		{"gt is strict", eventCount("{gt: 2}"), cfg, []step{w(0, "a"), w(1, "a"), w(2, "a")}, 0, "corr-count@2"},
		{"gt is strict, two", eventCount("{gt: 2}"), cfg, []step{w(0, "a"), w(1, "a")}, 0, ""},
		{"group-by keeps users apart", eventCount("{gte: 3}"), cfg, []step{w(0, "alice"), w(1, "bob"), w(2, "alice"), w(3, "bob")}, 0, ""},
		{"group-by is case-sensitive per value", eventCount("{gte: 2}"), cfg, []step{w(0, "alice"), w(1, "bob"), w(2, "alice")}, 0, "corr-count@2"},
		{"timespan edge included", eventCount("{gte: 3}"), cfg, []step{w(0, "a"), w(2, "a"), w(5, "a")}, 0, "corr-count@2"},
		{"timespan edge exceeded", eventCount("{gte: 3}"), cfg, []step{w(0, "a"), w(2, "a"), w(5.02, "a")}, 0, ""},
		{"sliding window", eventCount("{gte: 3}"), cfg, []step{w(0, "a"), w(4, "a"), w(6, "a"), w(8, "a")}, 0, "corr-count@3"},
		{"matches are consumed", eventCount("{gte: 2}"), cfg, []step{w(0, "a"), w(1, "a"), w(2, "a"), w(3, "a")}, 0, "corr-count@1 corr-count@3"},
		{"other rule does not count", eventCount("{gte: 2}"), cfg, []step{w(0, "a"), {min: 1, cmd: "net user x", user: "a"}}, 0, "rule-netuser@1"},
		{"out of order within lateness", eventCount("{gte: 3}"), late, []step{w(2, "a"), w(0, "a"), w(1, "a")}, 0, "corr-count@2"},
		{"out of order, span from the oldest", eventCount("{gte: 3}"), CorrelatorConfig{Lateness: 10 * time.Minute, MaxGroups: 10, MaxEntries: 10}, []step{w(6, "a"), w(0, "a"), w(3, "a")}, 0, ""},
		{"too late is dropped", eventCount("{gte: 2}"), CorrelatorConfig{Lateness: time.Minute, MaxGroups: 10, MaxEntries: 10}, []step{w(10, "a"), w(8, "a")}, 0, ""},
		{"range condition at window close", eventCount("{gte: 2, lte: 3}"), cfg, []step{w(0, "a"), w(1, "a"), w(2, "a")}, 20, "corr-count@end"},
		{"range condition exceeded", eventCount("{gte: 2, lte: 3}"), cfg, []step{w(0, "a"), w(1, "a"), w(2, "a"), w(3, "a")}, 20, ""},
		{"lt fires when the window closes", eventCount("{lt: 2}"), cfg, []step{w(0, "a")}, 20, "corr-count@end"},
		{"window not closed yet", eventCount("{lt: 2}"), cfg, []step{w(0, "a")}, 4, ""},
		{"value_count", `title: Many images
id: corr-values
level: high
correlation:
  type: value_count
  rules: [whoami]
  group-by: [User]
  timespan: 10m
  condition: {gte: 3, field: Image}
`, cfg, []step{
			{0, "whoami", "a", `C:\a.exe`}, {1, "whoami", "a", `C:\A.EXE`}, {2, "whoami", "a", `C:\b.exe`}, {3, "whoami", "a", `C:\c.exe`},
		}, 0, "corr-values@3"},
		{"temporal any order", `title: Recon
id: corr-temporal
level: high
correlation:
  type: temporal
  rules: [whoami, netuser]
  group-by: [User]
  timespan: 10m
`, cfg, []step{{0, "net user bob", "a", ""}, {3, "whoami", "a", ""}}, 0, "corr-temporal@1"},
		{"temporal needs every rule", `title: Recon
id: corr-temporal
level: high
correlation: {type: temporal, rules: [whoami, netuser], group-by: [User], timespan: 10m}
`, cfg, []step{{0, "whoami", "a", ""}, {3, "whoami", "a", ""}}, 0, ""},
		{"temporal outside timespan", `title: Recon
id: corr-temporal
level: high
correlation: {type: temporal, rules: [whoami, netuser], group-by: [User], timespan: 10m}
`, cfg, []step{{0, "whoami", "a", ""}, {11, "net user", "a", ""}}, 0, ""},
		{"temporal_ordered in order", `title: Recon ordered
id: corr-ordered
level: high
correlation: {type: temporal_ordered, rules: [whoami, netuser], group-by: [User], timespan: 10m}
`, cfg, []step{{0, "whoami", "a", ""}, {3, "net user", "a", ""}}, 0, "corr-ordered@1"},
		{"temporal_ordered wrong order", `title: Recon ordered
id: corr-ordered
level: high
correlation: {type: temporal_ordered, rules: [whoami, netuser], group-by: [User], timespan: 10m}
`, cfg, []step{{0, "net user", "a", ""}, {3, "whoami", "a", ""}}, 0, ""},
		{"generate emits the rule's findings too", `title: Many whoami
id: corr-gen
level: high
correlation: {type: event_count, rules: [whoami], group-by: [User], timespan: 5m, condition: {gte: 2}, generate: true}
`, cfg, []step{w(0, "a"), w(1, "a")}, 0, "rule-whoami@0 rule-whoami@1 corr-gen@1"},
		{"aliases", `title: Alias
id: corr-alias
level: high
correlation:
  type: temporal
  rules: [whoami, netuser]
  group-by: [actor]
  timespan: 10m
  aliases:
    actor: {whoami: User, netuser: Image}
`, cfg, []step{{0, "whoami", "alice", ""}, {1, "net user", "bob", "alice"}}, 0, "corr-alias@1"},
		{"chained correlations", `title: Many whoami
id: corr-inner
name: inner
level: medium
correlation: {type: event_count, rules: [whoami], group-by: [User], timespan: 5m, condition: {gte: 2}}
---
title: Then net user
id: corr-outer
level: critical
correlation: {type: temporal_ordered, rules: [inner, netuser], group-by: [User], timespan: 10m}
`, cfg, []step{w(0, "a"), w(1, "a"), {2, "net user", "a", ""}}, 0, "corr-outer@2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := corrRules(t, tt.doc)
			got, _ := runStream(t, rs, tt.cfg, tt.steps, tt.advance)
			if g := strings.Join(got, " "); g != tt.want {
				t.Errorf("findings = %q, want %q", g, tt.want)
			}
		})
	}
}

func TestCorrelationFinding(t *testing.T) {
	rs := corrRules(t, `title: Many whoami
id: corr-count
level: high
tags: [attack.discovery, attack.t1033]
correlation: {type: event_count, rules: [whoami], group-by: [User], timespan: 5m, condition: {gte: 2}}
`)
	c, err := NewCorrelator(rs, DefaultCorrelatorConfig())
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.Finding
	for i := 0; i < 2; i++ {
		ev := procEvent("CommandLine", "whoami", "User", "alice")
		ev.ID = schemas.EventID("s:1", i)
		ev.Time = testTime.Add(time.Duration(i) * time.Second)
		hits := rs.EvalHits(ev, nil)
		if n := len(rs.Findings(ev, hits, nil)); n != 0 {
			t.Errorf("a rule referenced without generate raised %d findings of its own", n)
		}
		out = c.Observe(ev, hits, out)
	}
	if len(out) != 1 {
		t.Fatalf("got %d findings, want 1", len(out))
	}
	f := out[0]
	if f.RuleID != "corr-count" || f.RuleLevel != "high" || f.SeverityID != schemas.SeverityHigh || f.Agency != "doj" ||
		len(f.EventIDs) != 2 || f.EventIDs[0] != schemas.EventID("s:1", 0) || fmt.Sprint(f.Techniques) != "[T1033]" ||
		fmt.Sprint(f.Matched) != "[User]" || f.EventClass != schemas.ClassDetectionFinding {
		t.Errorf("finding = %+v", f)
	}
	// The same events give the same finding id (replay after a crash).
	again, _ := runStream(t, rs, DefaultCorrelatorConfig(), []step{{0, "whoami", "alice", ""}, {0.01, "whoami", "alice", ""}}, 0)
	if len(again) != 1 {
		t.Fatalf("replay: %v", again)
	}
}

func TestCorrelationLimits(t *testing.T) {
	rs := corrRules(t, `title: Many whoami
id: corr-count
level: high
correlation: {type: event_count, rules: [whoami], group-by: [User], timespan: 5m, condition: {gte: 100}}
`)
	var steps []step
	for i := 0; i < 5; i++ {
		steps = append(steps, step{float64(i) / 10, "whoami", fmt.Sprint("user", i), ""})
	}
	_, c := runStream(t, rs, CorrelatorConfig{Lateness: time.Minute, MaxGroups: 3, MaxEntries: 10}, steps, 0)
	if got := c.Stats().Overflow; got != 2 {
		t.Errorf("Stats().Overflow = %d, want 2 (5 groups, 3 allowed)", got)
	}
	_, c = runStream(t, rs, CorrelatorConfig{Lateness: time.Minute, MaxGroups: 10, MaxEntries: 10},
		[]step{{10, "whoami", "a", ""}, {1, "whoami", "a", ""}}, 0)
	if got := c.Stats().Late; got != 1 {
		t.Errorf("Stats().Late = %d, want 1", got)
	}
}

func TestCorrelationErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"unknown rule", "title: c\nid: c1\nlevel: low\ncorrelation: {type: event_count, rules: [nope], timespan: 5m, condition: {gte: 2}}\n", `no rule or correlation with id or name "nope"`},
		{"temporal with one rule", "title: c\nid: c1\nlevel: low\ncorrelation: {type: temporal, rules: [whoami], timespan: 5m}\n", "needs at least two rules"},
		{"value_count without field", "title: c\nid: c1\nlevel: low\ncorrelation: {type: value_count, rules: [whoami], timespan: 5m, condition: {gte: 2}}\n", "needs a comparison and a field"},
		{"bad condition key", "title: c\nid: c1\nlevel: low\ncorrelation: {type: event_count, rules: [whoami], timespan: 5m, condition: {ge: 2}}\n", `condition key "ge"`},
		{"unknown type", "title: c\nid: c1\nlevel: low\ncorrelation: {type: event_sum, rules: [whoami], timespan: 5m}\n", `correlation.type "event_sum"`},
		{"filter names unknown rule", "title: f\nid: f1\nlogsource: {product: windows}\nfilter: {rules: [nope], sel: {User: x}, condition: sel}\n", `no rule with id or name "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, errs := parseFile("corr.yml", []byte(corrBase+"---\n"+tt.doc))
			var err error
			if len(errs) > 0 {
				err = errs[0]
			} else {
				_, err = Compile(rules, Config{})
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	rs := corrRules(t, `title: Admins may
id: filter-admins
logsource: {product: windows, category: process_creation}
filter:
  rules: [rule-whoami]
  admins: {User|startswith: 'CORP\adm_'}
  condition: admins
`)
	tests := []struct {
		user, cmd string
		want      int
	}{
		{`CORP\alice`, "whoami", 1},
		{`CORP\adm_bob`, "whoami", 0},
		{`CORP\adm_bob`, "net user", 1}, // the filter names only rule-whoami
	}
	for _, tt := range tests {
		if got := len(rs.Eval(procEvent("CommandLine", tt.cmd, "User", tt.user), nil)); got != tt.want {
			t.Errorf("user %s, %s: %d findings, want %d", tt.user, tt.cmd, got, tt.want)
		}
	}
}

// BenchmarkCorrelator feeds hits of 10,000 groups, one hot group holding
// thousands of matches: the cost per input must not grow with either.
func BenchmarkCorrelator(b *testing.B) {
	rules, errs := parseFile("corr.yml", []byte(corrBase+`---
title: Many whoami
id: corr-count
level: high
correlation: {type: event_count, rules: [whoami], group-by: [User], timespan: 1h, condition: {gte: 1000000}}
`))
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	rs, err := Compile(rules, Config{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCorrelator(rs, CorrelatorConfig{Lateness: time.Minute, MaxGroups: 20_000, MaxEntries: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	in := []CorrInput{{Corr: "corr-count", Agency: "doj", Group: []string{""}}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in[0].Group = []string{fmt.Sprint("user", i%10_000)}
		if i%2 == 0 {
			in[0].Group = []string{"hot"}
		}
		in[0].Time = t0.Add(time.Duration(i) * time.Millisecond)
		in[0].Event = schemas.EventID("s:1", i)
		c.ObserveInputs(in, nil)
		i++
	}
}

func TestCorrelating(t *testing.T) {
	rs := corrRules(t, `title: Many whoami
id: corr-count
level: high
correlation: {type: event_count, rules: [whoami], group-by: [User], timespan: 5m, condition: {gte: 2}}
`)
	x, err := NewCorrelating(rs, DefaultCorrelatorConfig())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, cmd := range []string{"whoami", "net user", "whoami"} {
		ev := procEvent("CommandLine", cmd, "User", "a")
		ev.ID, ev.Time = schemas.EventID("s:1", i), testTime.Add(time.Duration(i)*time.Second)
		for _, f := range x.Eval(ev, nil) {
			got = append(got, fmt.Sprintf("%s@%d", f.RuleID, i))
		}
	}
	if g := strings.Join(got, " "); g != "rule-netuser@1 corr-count@2" {
		t.Errorf("findings = %q", g)
	}
	if raceEnabled {
		return
	}
	miss := procEvent("CommandLine", "dir", "User", "a")
	if n := testing.AllocsPerRun(100, func() { x.Eval(miss, nil) }); n != 0 {
		t.Errorf("Correlating.Eval() on a miss: %v allocations, want 0", n)
	}
}
