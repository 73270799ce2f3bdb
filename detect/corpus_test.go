package detect

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// sigmaRoot is the SigmaHQ rule set the design uses as its yardstick.
const sigmaRoot = "../../shared/corpus/sigma"

// sigmaCorpus is its main rules folder.
const sigmaCorpus = sigmaRoot + "/rules"

func needCorpus(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(sigmaCorpus); err != nil {
		tb.Skipf("SigmaHQ corpus not found at %s: %v", sigmaCorpus, err)
	}
}

// loadCorpus parses and compiles every rule under dir one by one, then
// compiles the accepted ones together.
func loadCorpus(tb testing.TB, dir string) (*RuleSet, []*Rule) {
	tb.Helper()
	needCorpus(tb)
	rules, _ := parseDir(dir)
	cfg := DefaultConfig()
	var ok []*Rule
	for _, r := range rules {
		if _, err := Compile([]*Rule{r}, cfg); err == nil {
			ok = append(ok, r)
		}
	}
	rs, err := Compile(ok, cfg)
	if err != nil {
		tb.Fatalf("Compile(accepted corpus rules) = %v", err)
	}
	return rs, ok
}

// TestSigmaCorpus checks every SigmaHQ folder: each rule compiles, or fails
// for an explained reason; every problem names the file, the rule and why.
func TestSigmaCorpus(t *testing.T) {
	needCorpus(t)
	tests := []struct {
		dir string
		// allowed says which failures are expected, by reason.
		allowed func(reason string) bool
	}{
		{"rules", nil},
		// Two rules use |expand with %known_cdcs%.
		{"rules-emerging-threats", func(r string) bool { return r == "placeholder not defined: %known_cdcs%" }},
		{"rules-threat-hunting", nil},
		{"rules-compliance", nil},
		{"rules-dfir", nil},
		// Placeholder rules need the environment's values: without them
		// the specification requires rejecting the rule.
		{"rules-placeholder", func(r string) bool { return strings.HasPrefix(r, "placeholder not defined: ") }},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := filepath.Join(sigmaRoot, tt.dir)
			rep, err := CheckDir(dir, DefaultConfig())
			if err != nil {
				t.Fatalf("CheckDir(%s) error = %v", dir, err)
			}
			tot := rep.Total()
			t.Logf("%s: %d rules, %d compiled, %d failed, %d not routed to any mapped event source", tt.dir, tot.Rules, tot.Compiled, tot.Failed, rep.Unrouted)
			for _, f := range rep.Folders {
				t.Logf("  %-40s %5d rules %5d compiled %4d failed", f.Folder, f.Rules, f.Compiled, f.Failed)
			}
			reasons := rep.Reasons()
			keys := make([]string, 0, len(reasons))
			for k := range reasons {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				t.Logf("  failed %4d × %s", reasons[k], k)
			}
			for _, p := range rep.Problems {
				if p.Source == "" || !strings.HasPrefix(p.Source, dir) {
					t.Errorf("problem %q does not name its file", p)
				}
				if tt.allowed == nil || !tt.allowed(Reason(p)) {
					t.Errorf("unexpected failure: %v", p)
				}
			}
			if tot.Rules != tot.Compiled+tot.Failed {
				t.Errorf("counts: %d rules != %d compiled + %d failed", tot.Rules, tot.Compiled, tot.Failed)
			}
		})
	}
}

func TestSigmaPlaceholdersResolved(t *testing.T) {
	needCorpus(t)
	dir := filepath.Join(sigmaRoot, "rules-placeholder")
	rep, err := CheckDir(dir, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ph := map[string][]string{}
	for _, p := range rep.Problems {
		var pe *PlaceholderError
		if errors.As(p, &pe) {
			ph[pe.Name] = []string{"example-" + strings.ToLower(pe.Name)}
		}
	}
	if len(ph) == 0 {
		t.Skip("no placeholder failures")
	}
	// With every placeholder given, every placeholder rule compiles.
	for i := 0; i < 5; i++ { // a rule may name several placeholders
		rep, err = CheckDir(dir, Config{Placeholders: ph})
		if err != nil {
			t.Fatal(err)
		}
		more := false
		for _, p := range rep.Problems {
			var pe *PlaceholderError
			if errors.As(p, &pe) {
				ph[pe.Name], more = []string{"x"}, true
			}
		}
		if !more {
			break
		}
	}
	if n := len(rep.Problems); n > 0 {
		t.Errorf("with placeholders %v: %d problems, first %v", ph, n, rep.Problems[0])
	}
}

// TestIndexMatchesBruteForce compares the indexed evaluation with every
// rule of every selected group evaluated in full, on events built from the
// corpus rules' own values (so that many rules match) and plain ones.
func TestIndexMatchesBruteForce(t *testing.T) {
	rs, rules := loadCorpus(t, sigmaCorpus)
	evs := corpusEvents(rules, 600)
	hits, total := 0, 0
	for _, ev := range evs {
		got := rs.EvalHits(ev, nil)
		want := bruteForceHits(rs, ev)
		sortHits(got)
		total++
		hits += len(want)
		if len(got) != len(want) {
			t.Fatalf("event %v: indexed %d hits, brute force %d", ev.Unmapped, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("event %v: indexed hits %v, brute force %v", ev.Unmapped, got, want)
			}
		}
	}
	t.Logf("%d events, %d hits, indexed = brute force", total, hits)
	if hits == 0 {
		t.Error("no event matched any rule: the test proves nothing")
	}
}

func sortHits(h []Hit) { sort.Slice(h, func(i, j int) bool { return h[i].rule < h[j].rule }) }

// bruteForceHits evaluates every rule of every group that selects ev in
// full, without the prefilter: what EvalHits must return. The hits are in
// rule order.
func bruteForceHits(rs *RuleSet, ev *schemas.Event) []Hit {
	var want []Hit
	for gi := range rs.groups {
		g := &rs.groups[gi]
		if !g.selects(ev) {
			continue
		}
		for _, r := range g.rules {
			if r.cond.match(ev, nil) {
				want = append(want, Hit{rule: r.pos})
			}
		}
	}
	sortHits(want)
	return want
}

// corpusEvents builds process creation events whose fields carry the
// values of the corpus rules' selections.
func corpusEvents(rules []*Rule, n int) []*schemas.Event {
	var evs []*schemas.Event
	for _, r := range rules {
		if r.Logsource.Category != "process_creation" || r.Logsource.Product != "windows" || len(evs) >= n {
			continue
		}
		for _, s := range r.Detection.Searches {
			for _, fm := range s.Maps {
				ev := procEvent()
				for _, it := range fm {
					if it.Field == "" || len(it.Values) == 0 || it.Values[0].Null {
						continue
					}
					v := strings.NewReplacer("*", "x", "?", "y").Replace(it.Values[0].Text)
					switch {
					case oneOf("contains", it.Modifiers):
						v = "pre " + v + " post"
					case oneOf("endswith", it.Modifiers):
						v = `C:\Some\Dir` + v
					case oneOf("startswith", it.Modifiers):
						v = v + ` tail`
					}
					ev.Unmapped = append(ev.Unmapped, schemas.KV{Key: it.Field, Value: v})
				}
				evs = append(evs, ev)
			}
		}
	}
	evs = append(evs, procEvent("Image", `C:\Windows\System32\svchost.exe`, "CommandLine", `svchost.exe -k netsvcs -p`, "ParentImage", `C:\Windows\System32\services.exe`))
	return evs
}

// TestDispatchMatchesBruteForce checks the group dispatch (by Channel, then
// EventID) against every group's selector tried in turn, for events of
// every Windows channel and EventID the mapping knows, and for events
// lacking either attribute. Each event carries a field every rule of the
// corpus might read, so that a dispatch error shows as a missing hit.
func TestDispatchMatchesBruteForce(t *testing.T) {
	rs, rules := loadCorpus(t, filepath.Join(sigmaCorpus, "windows"))
	channels := map[string]bool{"": true}
	eventIDs := map[string]bool{"": true}
	for gi := range rs.groups {
		for _, s := range rs.groups[gi].sels {
			for _, v := range s.Unmapped["Channel"] {
				channels[v] = true
			}
			for _, v := range s.Unmapped["EventID"] {
				eventIDs[v] = true
			}
		}
	}
	// Field values taken from the rules, so that rules of many groups hit.
	base := corpusEvents(rules, 30)
	checked, hits := 0, 0
	for ch := range channels {
		for id := range eventIDs {
			for _, src := range base {
				ev := *src
				ev.Unmapped = nil
				if ch != "" {
					ev.Unmapped = append(ev.Unmapped, schemas.KV{Key: "Channel", Value: ch})
				}
				if id != "" {
					ev.Unmapped = append(ev.Unmapped, schemas.KV{Key: "EventID", Value: id})
				}
				for _, kv := range src.Unmapped {
					if kv.Key != "Channel" && kv.Key != "EventID" {
						ev.Unmapped = append(ev.Unmapped, kv)
					}
				}
				got := rs.EvalHits(&ev, nil)
				var want []Hit
				for gi := range rs.groups {
					g := &rs.groups[gi]
					if !g.selects(&ev) {
						continue
					}
					for _, r := range g.rules {
						if r.cond.match(&ev, nil) {
							want = append(want, Hit{rule: r.pos})
						}
					}
				}
				sortHits(got)
				sortHits(want)
				if !slices.Equal(got, want) {
					t.Fatalf("Channel %q EventID %q: dispatched hits %v, brute force %v", ch, id, got, want)
				}
				checked++
				hits += len(want)
			}
		}
	}
	t.Logf("%d channels × %d EventIDs: %d events, %d hits", len(channels), len(eventIDs), checked, hits)
	if hits == 0 {
		t.Error("no event matched: the test proves nothing")
	}
}
