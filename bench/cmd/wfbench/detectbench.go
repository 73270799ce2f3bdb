package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/watchfloor/watchfloor/bench/gen"
	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

// `wfbench detect` measures the rule engine alone, on one core: Sysmon
// process-creation records from bench/gen, normalized once up front, run
// through detect.RuleSet.Eval with the whole rule folder loaded and with
// its first --small process-creation rules, for --duration each. It reports
// events/s, ns and allocations per event and the ratio of the two rates:
// the figures issue #5 sets targets for (≥ 500,000 events/s with all
// rules, all-rules rate ≥ 1/3 of the small set's, no allocation on a miss).

const detectUsage = `Usage: wfbench detect [flags]

Runs Sysmon process-creation events through the Sigma engine on one core,
with every rule of --rules that compiles and with its first --small process
creation rules, and reports events/s per core for both. Needs no server.

  wfbench detect --rules ../shared/corpus/sigma/rules/windows --duration 10s

Flags:
`

// DetectConfig is one `wfbench detect` run.
type DetectConfig struct {
	Rules    string
	Small    int
	Events   int
	Duration time.Duration
	Out      string
	Profile  string // CPU profile of the all-rules run
}

func defaultDetectConfig() DetectConfig {
	return DetectConfig{Rules: "../shared/corpus/sigma/rules/windows", Small: 30, Events: 20000, Duration: 10 * time.Second}
}

func (c *DetectConfig) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("wfbench detect", flag.ContinueOnError)
	fs.StringVar(&c.Rules, "rules", c.Rules, "folder of Sigma rules (every rule that compiles is loaded; the others are counted)")
	fs.IntVar(&c.Small, "small", c.Small, "size of the small rule set: the first process_creation rules of --rules")
	fs.IntVar(&c.Events, "events", c.Events, "distinct generated events, cycled through: the default outgrows the CPU caches; 500 is about one sensor batch of Sysmon records (a batch closes near 1 MiB), as warm as the pipeline sees them")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measuring time per rule set")
	fs.StringVar(&c.Out, "out", c.Out, "write the result as JSON to this file")
	fs.StringVar(&c.Profile, "cpuprofile", c.Profile, "write a CPU profile of the all-rules run to this file (go tool pprof)")
	return fs
}

// Validate checks the configuration before anything is loaded.
func (c *DetectConfig) Validate() error {
	var errs []error
	if c.Rules == "" {
		errs = append(errs, errors.New("--rules: a rule folder is required"))
	} else if st, err := os.Stat(c.Rules); err != nil {
		errs = append(errs, fmt.Errorf("--rules %s: %w", c.Rules, err))
	} else if !st.IsDir() {
		errs = append(errs, fmt.Errorf("--rules %s: not a folder", c.Rules))
	}
	if c.Small < 1 {
		errs = append(errs, fmt.Errorf("--small %d: must be at least 1", c.Small))
	}
	if c.Events < 1 || c.Events > 10_000_000 {
		errs = append(errs, fmt.Errorf("--events %d: must be 1..10000000", c.Events))
	}
	if c.Duration < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--duration %s: must be at least 100ms", c.Duration))
	}
	return errors.Join(errs...)
}

// DetectResult is what `wfbench detect` reports.
type DetectResult struct {
	Config       DetectConfig
	RulesLoaded  int // rules of --rules that compiled
	RulesSkipped int // rules that did not (rules check says why)
	Sets         []DetectSet
	// Ratio is the all-rules rate over the small set's.
	Ratio float64
}

// DetectSet is one rule set's run.
type DetectSet struct {
	Name           string
	Rules          int
	Events         uint64
	Seconds        float64
	EventsPerSec   float64
	NsPerEvent     float64
	AllocsPerEvent float64
	FindingsPerEv  float64
}

func runDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultDetectConfig()
	if err := parseFlags(cfg.flags(), detectUsage, args, stderr); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := benchDetect(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	res.print(stdout)
	if cfg.Out != "" {
		return writeJSON(cfg.Out, res)
	}
	return nil
}

func benchDetect(ctx context.Context, cfg DetectConfig, progressOut io.Writer) (*DetectResult, error) {
	rules, skipped, err := compilableRules(cfg.Rules)
	if err != nil {
		return nil, err
	}
	var small []*detect.Rule
	for _, r := range rules {
		if r.Logsource.Category == "process_creation" && len(small) < cfg.Small {
			small = append(small, r)
		}
	}
	if len(small) == 0 {
		return nil, fmt.Errorf("--rules %s: no process_creation rule compiles", cfg.Rules)
	}
	evs, err := sysmonPool(cfg.Events)
	if err != nil {
		return nil, err
	}
	res := &DetectResult{Config: cfg, RulesLoaded: len(rules), RulesSkipped: skipped}
	for _, set := range []struct {
		name  string
		rules []*detect.Rule
	}{{"small", small}, {"all", rules}} {
		rs, err := detect.Compile(set.rules, detect.DefaultConfig())
		if err != nil {
			return nil, fmt.Errorf("compile the %s rule set: %w", set.name, err)
		}
		stopProfile := func() {}
		if set.name == "all" && cfg.Profile != "" {
			f, err := os.Create(cfg.Profile)
			if err != nil {
				return nil, fmt.Errorf("--cpuprofile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return nil, fmt.Errorf("--cpuprofile: %w", err)
			}
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		}
		s, err := runSet(ctx, rs, evs, cfg.Duration, progressOut, set.name)
		stopProfile()
		if err != nil {
			return nil, err
		}
		s.Name, s.Rules = set.name, len(set.rules)
		res.Sets = append(res.Sets, s)
	}
	if res.Sets[0].EventsPerSec > 0 {
		res.Ratio = res.Sets[1].EventsPerSec / res.Sets[0].EventsPerSec
	}
	return res, nil
}

// compilableRules parses every rule file under dir and keeps the rules that
// compile on their own, counting the others.
func compilableRules(dir string) ([]*detect.Rule, int, error) {
	parsed, errs := detect.ParseDir(dir)
	skipped := len(errs)
	cfg := detect.DefaultConfig()
	var rules []*detect.Rule
	for _, r := range parsed {
		if _, err := detect.Compile([]*detect.Rule{r}, cfg); err != nil {
			skipped++
			continue
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return nil, 0, fmt.Errorf("read rules from %s: no rule compiles (%d do not)", dir, skipped)
	}
	return rules, skipped, nil
}

// sysmonPool normalizes n generated Sysmon process-creation records.
func sysmonPool(n int) ([]schemas.Event, error) {
	var g gen.Generator
	for _, m := range gen.Mix() {
		if m.Format == "winevent_json" {
			g = m
		}
	}
	format, ok := normalize.Builtin().Lookup("winevent_json")
	if !ok || g.Append == nil {
		return nil, errors.New("winevent_json is not registered in this build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	evs := make([]schemas.Event, n)
	var line []byte
	dec := format.NewDecoder(normalize.BatchInfo{Received: now})
	for i := range evs {
		line = g.Append(line[:0], r, uint64(i), now.Add(time.Duration(i)*time.Millisecond))
		ev := &evs[i]
		ev.Reset()
		if err := dec.Record(line, ev); err != nil {
			return nil, fmt.Errorf("normalize generated record %d: %w", i, err)
		}
		ev.Agency, ev.Sensor, ev.Format = "agency0", "detectbench", "winevent_json"
	}
	return evs, nil
}

// runSet evaluates the pool in a loop on this goroutine, locked to one OS
// thread, for d.
func runSet(ctx context.Context, rs *detect.RuleSet, evs []schemas.Event, d time.Duration, pw io.Writer, name string) (DetectSet, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var out []schemas.Finding
	// Warm up: the first pass grows the pooled scratch and out.
	for i := range evs {
		out = rs.Eval(&evs[i], out[:0])
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	var n, findings uint64
	next := start.Add(200 * time.Millisecond)
	for {
		// Check the clock once per 1024 events: time.Now is not free.
		for k := 0; k < 1024; k++ {
			out = rs.Eval(&evs[n%uint64(len(evs))], out[:0])
			findings += uint64(len(out))
			n++
		}
		now := time.Now()
		if now.Sub(start) >= d {
			break
		}
		if now.After(next) {
			next = now.Add(200 * time.Millisecond)
			el := now.Sub(start)
			drawDetect(pw, name, el, d, n)
			if err := ctx.Err(); err != nil {
				fmt.Fprintln(pw)
				return DetectSet{}, err
			}
		}
	}
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	drawDetect(pw, name, el, d, n)
	fmt.Fprintln(pw)
	return DetectSet{
		Events:         n,
		Seconds:        el.Seconds(),
		EventsPerSec:   float64(n) / el.Seconds(),
		NsPerEvent:     float64(el.Nanoseconds()) / float64(n),
		AllocsPerEvent: float64(after.Mallocs-before.Mallocs) / float64(n),
		FindingsPerEv:  float64(findings) / float64(n),
	}, nil
}

// drawDetect draws the progress line of one rule set's run.
func drawDetect(w io.Writer, name string, el, total time.Duration, n uint64) {
	fmt.Fprintf(w, "\r%-5s %s  %d events  %.0f/s   ", name, barCells(el.Seconds()/total.Seconds()), n, float64(n)/el.Seconds())
}

func (r *DetectResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nwfbench detect: %s, %d rules compile (%d do not), %d distinct Sysmon process-creation events, one core\n",
		r.Config.Rules, r.RulesLoaded, r.RulesSkipped, r.Config.Events)
	for _, s := range r.Sets {
		fmt.Fprintf(w, "  %-5s %5d rules  %9.0f events/s  %7.0f ns/event  %.3f allocs/event  %.3f findings/event\n",
			s.Name, s.Rules, s.EventsPerSec, s.NsPerEvent, s.AllocsPerEvent, s.FindingsPerEv)
	}
	fmt.Fprintf(w, "  all-rules rate / small-set rate = %.2f\n", r.Ratio)
}
