package detect

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// sigmaCorpus is the SigmaHQ rule set the design uses as its yardstick.
const sigmaCorpus = "../../shared/corpus/sigma/rules"

// rejectReason reduces a rule error to a countable reason.
func rejectReason(err error) string {
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
	return regexp.MustCompile(`"[^"]*"`).ReplaceAllString(msg, `"…"`)
}

// loadCorpus parses and compiles every corpus rule one by one so that every
// rejection is counted, then compiles the accepted ones together.
func loadCorpus(tb testing.TB) (*RuleSet, []*Rule, map[string]int, int) {
	tb.Helper()
	if _, err := os.Stat(sigmaCorpus); err != nil {
		tb.Skipf("SigmaHQ corpus not found at %s: %v", sigmaCorpus, err)
	}
	rules, errs := parseDir(sigmaCorpus)
	reasons := map[string]int{}
	for _, err := range errs {
		reasons[rejectReason(err)]++
	}
	total := len(rules) + len(errs)
	cfg := DefaultConfig()
	var ok []*Rule
	for _, r := range rules {
		if _, err := Compile([]*Rule{r}, cfg); err != nil {
			reasons[rejectReason(err)]++
			continue
		}
		ok = append(ok, r)
	}
	rs, err := Compile(ok, cfg)
	if err != nil {
		tb.Fatalf("Compile(accepted corpus rules) = %v", err)
	}
	return rs, ok, reasons, total
}

func TestSigmaCorpus(t *testing.T) {
	rs, ok, reasons, total := loadCorpus(t)
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return reasons[keys[i]] > reasons[keys[j]] })
	t.Logf("SigmaHQ corpus %s: %d rules, %d compiled (%.1f%%), %d rejected, %d compiled but not routed to any mapped event source",
		filepath.Clean(sigmaCorpus), total, len(ok), 100*float64(len(ok))/float64(total), total-len(ok), len(rs.Unrouted()))
	for _, k := range keys {
		t.Logf("  rejected %4d × %s", reasons[k], k)
	}
	if rs.Len() != len(ok) {
		t.Errorf("RuleSet.Len() = %d, want %d", rs.Len(), len(ok))
	}
	for _, g := range rs.groups {
		t.Logf("  group %-60s %4d rules", g.key, len(g.rules))
	}
	if float64(len(ok)) < 0.9*float64(total) {
		t.Errorf("only %d of %d corpus rules compiled, want at least 90%%", len(ok), total)
	}
}
