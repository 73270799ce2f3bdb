package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/watchfloor/watchfloor/internal/chtest"
)

func TestSummarize(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	got := summarize(d)
	if got.N != 100 || got.P50 != 0.051 || got.P99 != 0.1 || got.Max != 0.1 {
		t.Errorf("summarize(1..100ms) = %+v, want n=100 p50=0.051 p99=0.1 max=0.1", got)
	}
	if (summarize(nil) != Latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", summarize(nil))
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"agencies", func(c *Config) { c.Agencies = 0 }, "--agencies"},
		{"duration", func(c *Config) { c.Duration = time.Millisecond }, "--duration"},
		{"rate", func(c *Config) { c.Rate = -1 }, "--rate"},
		{"database", func(c *Config) { c.Database = "x; DROP" }, "--database"},
		{"binary", func(c *Config) { c.Watchfloor = "/nope" }, "--watchfloor"},
		{"probe rules", func(c *Config) { c.ProbeRules = "/nope" }, "--probe-rules"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := defaultConfig()
			c.Watchfloor = os.Args[0] // any existing file
			c.Rules, c.ProbeRules = "../../../detect/rules", "../../../detect/rules"
			tt.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

// TestBenchSmoke runs the harness for a few seconds against the real
// pipeline binary and ClickHouse: it must end with an exact count, probes
// that were detected, and a JSON result and an SVG plot.
func TestBenchSmoke(t *testing.T) {
	addr, db := chtest.Database(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "watchfloor")
	build := exec.Command("go", "build", "-o", bin, "../../../cmd/watchfloor")
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build watchfloor: %v\n%s", err, out)
	}
	cfg := defaultConfig()
	cfg.Watchfloor = bin
	cfg.Rules, cfg.ProbeRules = "../../../detect/rules", "../../../detect/rules"
	cfg.ClickHouse = addr
	cfg.CHPidFile = ""
	cfg.Database = db
	cfg.Agencies = 3
	cfg.Duration = 3 * time.Second
	cfg.Rate = 5000
	cfg.BatchRecords = 200
	cfg.Publishers = 2
	cfg.ProbeEvery = 100 * time.Millisecond
	cfg.Drain = time.Minute
	cfg.Out = filepath.Join(dir, "result")
	cfg.DataDir = filepath.Join(dir, "data")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res, err := bench(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exact || res.Sent < 5000 {
		t.Errorf("sent %d, stored %d events (%d ids) + %d dead letters; want an exact count of at least 5000",
			res.Sent, res.Events, res.DistinctEvents, res.DeadLetters)
	}
	if res.Detection.N == 0 || res.Queryable.N == 0 || res.ProbesLost != 0 {
		t.Errorf("probes: %d queryable, %d detected, %d never detected", res.Queryable.N, res.Detection.N, res.ProbesLost)
	}
	if err := res.write(cfg.Out); err != nil {
		t.Fatal(err)
	}
	var back Result
	b, _ := os.ReadFile(cfg.Out + ".json")
	if err := json.Unmarshal(b, &back); err != nil || back.Sent != res.Sent {
		t.Errorf("result JSON does not round-trip: %v", err)
	}
	svg, _ := os.ReadFile(cfg.Out + ".svg")
	if !strings.HasPrefix(string(svg), "<svg") || !strings.Contains(string(svg), "<polyline") {
		t.Errorf("plot is not an SVG with lines: %.80s", svg)
	}
}

func TestRunRulesAddsProbeRules(t *testing.T) {
	dir := t.TempDir()
	sigma, probe := filepath.Join(dir, "sigma"), filepath.Join(dir, "probe")
	for d, f := range map[string]string{sigma: "a.yml", probe: "wpad.yml"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, f), []byte("title: "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := defaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Rules, cfg.ProbeRules = sigma, probe
	got, err := runRules(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rules/a.yml", "probe/wpad.yml"} {
		if _, err := os.Stat(filepath.Join(got, f)); err != nil {
			t.Errorf("combined rules dir %s lacks %s: %v", got, f, err)
		}
	}
	cfg.ProbeRules = sigma + "/"
	if got, _ := runRules(cfg); got != sigma {
		t.Errorf("runRules(same dir) = %s, want --rules itself", got)
	}
	cfg.ProbeRules = ""
	if got, _ := runRules(cfg); got != sigma {
		t.Errorf("runRules(no probe rules) = %s, want --rules itself", got)
	}
}
