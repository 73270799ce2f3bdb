package main

import (
	"bytes"
	"context"
	"github.com/segmentio/encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDetectValidateNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.yml")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*DetectConfig)
		want string
	}{
		{"no rules", func(c *DetectConfig) { c.Rules = "" }, "--rules"},
		{"missing rules", func(c *DetectConfig) { c.Rules = filepath.Join(dir, "nope") }, "--rules"},
		{"rules is a file", func(c *DetectConfig) { c.Rules = file }, "not a folder"},
		{"small", func(c *DetectConfig) { c.Small = 0 }, "--small"},
		{"events", func(c *DetectConfig) { c.Events = 0 }, "--events"},
		{"duration", func(c *DetectConfig) { c.Duration = time.Millisecond }, "--duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultDetectConfig()
			c.Rules = dir
			tt.edit(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
	c := defaultDetectConfig()
	c.Rules = dir
	if err := c.Validate(); err != nil {
		t.Errorf("default config on a folder: %v", err)
	}
}

// detectRules writes a small rule folder: one rule the generated events
// match (every Sysmon event from bench/gen is a process start by one of ten
// images, one of them cmd.exe), one they never match, one that does not
// compile and a test-case file the loader must skip.
func detectRules(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"cmd.yml": `title: cmd started
id: 7f4a5f52-0d59-4c7e-9b6e-000000000001
logsource: {category: process_creation, product: windows}
detection:
  sel: {Image|endswith: '\cmd.exe'}
  condition: sel
level: low
`,
		"never.yml": `title: never
id: 7f4a5f52-0d59-4c7e-9b6e-000000000002
logsource: {category: process_creation, product: windows}
detection:
  sel: {CommandLine|contains: 'no such command line anywhere'}
  condition: sel
level: high
`,
		"broken.yml": `title: broken
id: 7f4a5f52-0d59-4c7e-9b6e-000000000003
logsource: {category: process_creation, product: windows}
detection:
  sel: {Image|nosuchmodifier: x}
  condition: sel
level: high
`,
		"cmd.tests.yml": `not a rule: [`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDetectBenchSmoke runs `wfbench detect` briefly on a rule folder whose
// match rate is known: one image in ten is cmd.exe, so about a tenth of the
// events raise one finding, in both sets, and the figures are consistent.
func TestDetectBenchSmoke(t *testing.T) {
	cfg := defaultDetectConfig()
	cfg.Rules, cfg.Events, cfg.Duration = detectRules(t), 2000, 200*time.Millisecond
	cfg.Small = 1
	cfg.Out = filepath.Join(t.TempDir(), "detect.json")
	var stdout, stderr bytes.Buffer
	if err := runDetect(context.Background(), []string{
		"--rules", cfg.Rules, "--events", "2000", "--duration", "200ms", "--small", "1", "--out", cfg.Out,
	}, &stdout, &stderr); err != nil {
		t.Fatalf("wfbench detect: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(cfg.Out)
	if err != nil {
		t.Fatal(err)
	}
	var res DetectResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("result JSON: %v", err)
	}
	if res.RulesLoaded != 2 || res.RulesSkipped != 1 {
		t.Errorf("loaded %d rules, skipped %d; want 2 and 1", res.RulesLoaded, res.RulesSkipped)
	}
	if len(res.Sets) != 2 || res.Sets[0].Rules != 1 || res.Sets[1].Rules != 2 {
		t.Fatalf("sets = %+v, want small (1 rule) and all (2 rules)", res.Sets)
	}
	for _, s := range res.Sets {
		if s.Events == 0 || s.EventsPerSec <= 0 {
			t.Errorf("%s: %d events at %.0f/s", s.Name, s.Events, s.EventsPerSec)
		}
		if s.FindingsPerEv < 0.05 || s.FindingsPerEv > 0.2 {
			t.Errorf("%s: %.3f findings/event, want about 0.1 (one image in ten is cmd.exe)", s.Name, s.FindingsPerEv)
		}
	}
	if want := res.Sets[1].EventsPerSec / res.Sets[0].EventsPerSec; res.Ratio != want {
		t.Errorf("ratio %.3f, want %.3f", res.Ratio, want)
	}
	if !strings.Contains(stdout.String(), "all-rules rate / small-set rate") || !strings.Contains(stderr.String(), "100.0%") {
		t.Errorf("report:\n%s\nprogress:\n%s", stdout.String(), stderr.String())
	}
}

func TestDetectBenchNoProcessRule(t *testing.T) {
	dir := t.TempDir()
	rule := `title: dns
id: 7f4a5f52-0d59-4c7e-9b6e-000000000004
logsource: {category: dns}
detection:
  sel: {QueryName|endswith: '.example'}
  condition: sel
level: low
`
	if err := os.WriteFile(filepath.Join(dir, "dns.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runDetect(context.Background(), []string{"--rules", dir, "--duration", "100ms"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no process_creation rule") {
		t.Errorf("err = %v, want one saying no process_creation rule compiles", err)
	}
}
