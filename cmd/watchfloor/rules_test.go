package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func startNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(srv.Shutdown)
	return srv.ClientURL()
}

// rulesCLI runs `watchfloor rules args...` in process.
func rulesCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := run(ctx, append([]string{"rules"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

const cliRule = `title: CLI test rule
id: cli-rule
level: medium
logsource:
  category: dns
detection:
  sel:
    query|endswith: '.cli-test.example'
  condition: sel
`

const cliTests = `cases:
  - name: fires on the zone
    format: zeek_dns
    match: true
    raw: '{"ts":1.0,"query":"a.cli-test.example"}'
  - name: quiet elsewhere
    format: zeek_dns
    match: false
    raw: '{"ts":1.0,"query":"a.example"}'
`

func writeRule(t *testing.T, dir, name, rule, tests string) string {
	t.Helper()
	p := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(p, []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	if tests != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".tests.yml"), []byte(tests), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestRulesLifecycleCLI(t *testing.T) {
	env := map[string]string{"WATCHFLOOR_NATS_URL": startNATS(t)}
	dir := t.TempDir()
	writeRule(t, dir, "cli", cliRule, cliTests)

	out, err := rulesCLI(t, env, "validate", dir)
	if err != nil || !strings.Contains(out, "ok    cli-rule") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "test", dir)
	if err != nil || strings.Count(out, "PASS") != 2 {
		t.Fatalf("test: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "push", dir, "--dry-run")
	if err != nil || !strings.Contains(out, "would deploy cli-rule (new)") || !strings.Contains(out, "+title: CLI test rule") {
		t.Fatalf("push --dry-run: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "push", dir, "--json")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	var pushed struct {
		Changes []struct {
			ID, Change string
			Revision   uint64
		}
	}
	if err := json.Unmarshal([]byte(out), &pushed); err != nil || len(pushed.Changes) != 1 || pushed.Changes[0].Revision == 0 {
		t.Fatalf("push --json = %s (%v)", out, err)
	}
	rev1 := pushed.Changes[0].Revision
	out, _ = rulesCLI(t, env, "push", dir)
	if !strings.Contains(out, "deployed 0 rule(s), 1 unchanged") {
		t.Errorf("second push: %s", out)
	}

	// A change, shown by diff, then pushed.
	writeRule(t, dir, "cli", strings.Replace(cliRule, "level: medium", "level: high", 1), "")
	out, err = rulesCLI(t, env, "diff", dir)
	if err != nil || !strings.Contains(out, "-level: medium") || !strings.Contains(out, "+level: high") {
		t.Fatalf("diff PATH: %v\n%s", err, out)
	}
	if out, err = rulesCLI(t, env, "push", dir); err != nil {
		t.Fatalf("push change: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "list")
	if err != nil || !strings.Contains(out, "cli-rule") || !strings.Contains(out, "live") || !strings.Contains(out, "high") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "show", "cli-rule", "--revision", "1")
	if err != nil || !strings.Contains(out, "level: medium") {
		t.Fatalf("show --revision 1: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "diff", "cli-rule")
	if err != nil || !strings.Contains(out, "+level: high") {
		t.Fatalf("diff ID: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "rollback", "cli-rule", "--json")
	var rb struct {
		To       uint64 `json:"to_revision"`
		Revision uint64 `json:"revision"`
	}
	if err != nil || json.Unmarshal([]byte(out), &rb) != nil || rb.To != rev1 {
		t.Fatalf("rollback: %v\n%s", err, out)
	}
	out, err = rulesCLI(t, env, "disable", "cli-rule")
	if err != nil || !strings.Contains(out, "disabled cli-rule") {
		t.Fatalf("disable: %v\n%s", err, out)
	}
	out, _ = rulesCLI(t, env, "list")
	if !strings.Contains(out, "disabled") {
		t.Errorf("list after disable: %s", out)
	}
	out, err = rulesCLI(t, env, "history", "cli-rule")
	if err != nil || strings.Count(out, "\n") != 5 { // header + 4 revisions
		t.Errorf("history: %v\n%s", err, out)
	}
}

func TestRulesPushRefusesFailingCase(t *testing.T) {
	env := map[string]string{"WATCHFLOOR_NATS_URL": startNATS(t)}
	dir := t.TempDir()
	// The rule looks for the wrong zone: its positive case fails.
	writeRule(t, dir, "cli", strings.Replace(cliRule, ".cli-test.example", ".other.example", 1), cliTests)
	out, err := rulesCLI(t, env, "push", dir)
	if err == nil {
		t.Fatalf("push of a failing rule succeeded:\n%s", out)
	}
	if !strings.Contains(err.Error(), `rule cli-rule case "fires on the zone": want match, got no match`) || !strings.Contains(err.Error(), "nothing deployed") {
		t.Errorf("push error = %v, want the failing case named", err)
	}
	if !strings.Contains(out, `FAIL  cli-rule  "fires on the zone"`) {
		t.Errorf("push output does not show the failing case:\n%s", out)
	}
	out, _ = rulesCLI(t, env, "list")
	if !strings.Contains(out, "0 rule(s)") {
		t.Errorf("list after a refused push: %s", out)
	}
	// An invalid rule is refused too, naming the problem.
	writeRule(t, dir, "cli", strings.Replace(cliRule, "endswith", "nosuchmodifier", 1), "")
	_, err = rulesCLI(t, env, "push", dir)
	if err == nil || !strings.Contains(err.Error(), `unknown modifier "nosuchmodifier"`) {
		t.Errorf("push of an invalid rule: error = %v", err)
	}
	// Usage errors exit 2.
	_, err = rulesCLI(t, env, "show")
	if !errors.As(err, new(usageError)) {
		t.Errorf("rules show without ID: error = %v, want a usage error", err)
	}
}

func TestBundledRulesPassTheirTests(t *testing.T) {
	out, err := rulesCLI(t, nil, "test", "../../detect/rules", "--json")
	if err != nil {
		t.Fatalf("rules test detect/rules: %v\n%s", err, out)
	}
	var rep struct {
		OK    bool
		Tests struct {
			Untested []string
			Cases    []json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK || len(rep.Tests.Untested) != 0 || len(rep.Tests.Cases) < 12 {
		t.Errorf("rules test --json = %s (%v)", out, err)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		give string
		want time.Time
		bad  bool
	}{
		{give: "30d", want: now.AddDate(0, 0, -30)},
		{give: "12h", want: now.Add(-12 * time.Hour)},
		{give: "2026-11-01T00:00:00Z", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{give: "0d", bad: true},
		{give: "-1h", bad: true},
		{give: "soon", bad: true},
	}
	for _, tt := range tests {
		got, err := parseWhen(tt.give, now)
		if (err != nil) != tt.bad || (!tt.bad && !got.Equal(tt.want)) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v (bad %v)", tt.give, got, err, tt.want, tt.bad)
		}
	}
}

func TestRulesRequireTests(t *testing.T) {
	env := map[string]string{"WATCHFLOOR_NATS_URL": startNATS(t)}
	dir := t.TempDir()
	writeRule(t, dir, "cli", cliRule, "")
	if out, err := rulesCLI(t, env, "test", dir); err != nil || !strings.Contains(out, "NOTEST  cli-rule") {
		t.Errorf("test without sidecar: %v\n%s", err, out)
	}
	_, err := rulesCLI(t, env, "push", dir, "--require-tests")
	if err == nil || !strings.Contains(err.Error(), "rules without tests (--require-tests): cli-rule") {
		t.Errorf("push --require-tests of an untested rule: error = %v", err)
	}
}
