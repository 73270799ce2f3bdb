package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/encoding/json"

	"github.com/watchfloor/watchfloor/ingest/sensor"
)

// Result is what one run measured; it is written as OUT.json.
type Result struct {
	Config       Config    `json:"config"`
	Started      time.Time `json:"started"`
	PublishStart time.Time `json:"publish_start"`
	PublishEnd   time.Time `json:"publish_end"`
	DrainEnd     time.Time `json:"drain_end"`
	Formats      []string  `json:"formats"`
	Skipped      []string  `json:"formats_not_registered,omitempty"`

	Sent           uint64       `json:"records_sent"`
	Events         uint64       `json:"events"`
	DistinctEvents uint64       `json:"distinct_event_ids"`
	DeadLetters    uint64       `json:"dead_letters"`
	Detections     uint64       `json:"detections"`
	Exact          bool         `json:"exact"`
	Sensor         sensor.Stats `json:"sensor"`

	OfferedPerSec   float64 `json:"offered_per_sec"`
	SustainedPerSec float64 `json:"sustained_per_sec"`
	BytesPerEvent   float64 `json:"bytes_on_disk_per_event"`

	Queryable  Latency `json:"publish_to_queryable"`
	Detection  Latency `json:"publish_to_detection"`
	ProbesLost uint64  `json:"probes_without_detection"`

	Processes       []ProcResult       `json:"processes"`
	PipelineMetrics map[string]float64 `json:"pipeline_metrics,omitempty"`
	Timeline        []Point            `json:"timeline"`
}

// Point is one second of the run.
type Point struct {
	T            float64 `json:"t"`
	Phase        string  `json:"phase"`
	Sent         uint64  `json:"sent"`
	Stored       uint64  `json:"stored"`
	StoredPerSec float64 `json:"stored_per_sec"`
	QueryableP99 float64 `json:"queryable_p99_s"`
	DetectionP99 float64 `json:"detection_p99_s"`
}

// Latency summarizes probe latencies in seconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_s"`
	P99 float64 `json:"p99_s"`
	Max float64 `json:"max_s"`
}

func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	q := func(p float64) float64 { return d[min(len(d)-1, int(p*float64(len(d))))].Seconds() }
	return Latency{N: len(d), P50: q(0.50), P99: q(0.99), Max: d[len(d)-1].Seconds()}
}

// proc follows one process's CPU time and peak RSS through /proc.
type proc struct {
	name      string
	pid       int
	cpu0, cpu float64 // seconds of user+system time: first and last sample
	first     bool
	rssPeak   uint64 // bytes (VmHWM)
	rssLast   uint64
}

// ProcResult is a process's share of the run.
type ProcResult struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Cores      float64 `json:"cores"` // average cores busy over the run
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	LastRSSMiB float64 `json:"last_rss_mib"`
}

func (p *proc) sample() {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return
	}
	// Fields after the command name, which may hold spaces: utime is the
	// 14th field, stime the 15th, in clock ticks (100 Hz on Linux).
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		if len(f) > 13 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			p.cpu = (u + st) / 100
			if !p.first {
				p.cpu0, p.first = p.cpu, true
			}
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return
	}
	sc := bufio.NewScanner(strings.NewReader(string(status)))
	for sc.Scan() {
		line := sc.Text()
		kb := func() uint64 {
			f := strings.Fields(line)
			if len(f) < 2 {
				return 0
			}
			n, _ := strconv.ParseUint(f[1], 10, 64)
			return n << 10
		}
		switch {
		case strings.HasPrefix(line, "VmHWM:"):
			p.rssPeak = max(p.rssPeak, kb())
		case strings.HasPrefix(line, "VmRSS:"):
			p.rssLast = kb()
			p.rssPeak = max(p.rssPeak, p.rssLast)
		}
	}
}

func (p *proc) result(elapsed float64) ProcResult {
	cpu := p.cpu - p.cpu0
	return ProcResult{Name: p.name, PID: p.pid, CPUSeconds: cpu, Cores: cpu / elapsed,
		PeakRSSMiB: float64(p.rssPeak) / (1 << 20), LastRSSMiB: float64(p.rssLast) / (1 << 20)}
}

// scrapeMetrics keeps the pipeline's counters and histogram sums: the time
// spent storing, per stage where the pipeline exports it.
func scrapeMetrics(addr string) map[string]float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "watchfloor_") || strings.Contains(line, "_bucket{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] += v
	}
	return out
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "\nwfbench: %d agencies, formats %s, rules %s, %s publishing at %s\n",
		r.Config.Agencies, strings.Join(r.Formats, ","), r.Config.Rules, r.Config.Duration, rateName(r.Config.Rate))
	fmt.Fprintf(w, "  records sent       %d (sensor: %d batches, %d retries)\n", r.Sent, r.Sensor.Batches, r.Sensor.Retries)
	fmt.Fprintf(w, "  stored             %d events (%d distinct ids) + %d dead letters   exact: %v\n", r.Events, r.DistinctEvents, r.DeadLetters, r.Exact)
	fmt.Fprintf(w, "  detections         %d\n", r.Detections)
	fmt.Fprintf(w, "  offered            %.0f records/s\n", r.OfferedPerSec)
	fmt.Fprintf(w, "  sustained          %.0f events/s end to end (publish start to last row stored)\n", r.SustainedPerSec)
	fmt.Fprintf(w, "  publish→queryable  p50 %.3fs  p99 %.3fs  max %.3fs  (%d probes)\n", r.Queryable.P50, r.Queryable.P99, r.Queryable.Max, r.Queryable.N)
	fmt.Fprintf(w, "  publish→detection  p50 %.3fs  p99 %.3fs  max %.3fs  (%d probes, %d without detection)\n", r.Detection.P50, r.Detection.P99, r.Detection.Max, r.Detection.N, r.ProbesLost)
	fmt.Fprintf(w, "  disk               %.1f bytes per event (active parts of events)\n", r.BytesPerEvent)
	if st := r.stages(); len(st) > 0 {
		fmt.Fprintf(w, "  pipeline stages    ")
		for _, s := range st {
			fmt.Fprintf(w, "%s %.1fs  ", s.name, s.seconds)
		}
		fmt.Fprintf(w, "(summed over workers; store is the serial insert)\n")
	}
	for _, p := range r.Processes {
		fmt.Fprintf(w, "  %-38s cpu %7.1fs (%.2f cores)  peak RSS %6.0f MiB  last %6.0f MiB\n", p.Name, p.CPUSeconds, p.Cores, p.PeakRSSMiB, p.LastRSSMiB)
	}
}

func rateName(r int) string {
	if r == 0 {
		return "max rate"
	}
	return fmt.Sprintf("%d records/s", r)
}

func (r *Result) write(out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := writeJSON(out+".json", r); err != nil {
		return err
	}
	return os.WriteFile(out+".svg", []byte(plotSVG(r)), 0o644)
}

// writeJSON writes v to path as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// plotSVG draws stored records/s (left axis) and the per-second p99
// latencies (right axis) over time.
func plotSVG(r *Result) string {
	const W, H, L, R, T, B = 900.0, 420.0, 70.0, 70.0, 40.0, 50.0
	pw, ph := W-L-R, H-T-B
	var maxT, maxRate, maxLat float64 = 1, 1, 0.5
	for _, p := range r.Timeline {
		maxT = max(maxT, p.T)
		maxRate = max(maxRate, p.StoredPerSec)
		maxLat = max(maxLat, p.QueryableP99, p.DetectionP99)
	}
	x := func(t float64) float64 { return L + t/maxT*pw }
	yr := func(v float64) float64 { return T + ph - v/maxRate*ph }
	yl := func(v float64) float64 { return T + ph - v/maxLat*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="20" font-size="14">wfbench: sustained %.0f events/s, queryable p99 %.2fs, detection p99 %.2fs</text>`+"\n", L, r.SustainedPerSec, r.Queryable.P99, r.Detection.P99)
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", L, T, pw, ph)
	for i := 0; i <= 4; i++ {
		f := float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end" fill="#1f77b4">%.0f</text>`, L-5, yr(f*maxRate)+4, f*maxRate)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#d62728">%.2fs</text>`, W-R+5, yl(f*maxLat)+4, f*maxLat)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%.0fs</text>`+"\n", x(f*maxT), H-B+18, f*maxT)
	}
	line := func(color string, y func(Point) (float64, bool)) {
		var pts []string
		for _, p := range r.Timeline {
			if v, ok := y(p); ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), v))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
	}
	line("#1f77b4", func(p Point) (float64, bool) { return yr(p.StoredPerSec), true })
	line("#d62728", func(p Point) (float64, bool) { return yl(p.QueryableP99), p.QueryableP99 > 0 })
	line("#ff7f0e", func(p Point) (float64, bool) { return yl(p.DetectionP99), p.DetectionP99 > 0 })
	if r.PublishEnd.After(r.PublishStart) {
		xe := x(r.PublishEnd.Sub(r.PublishStart).Seconds())
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#999" stroke-dasharray="4"/><text x="%.1f" y="%.0f" fill="#666">publishing ends</text>`+"\n", xe, T, xe, T+ph, xe+4, T+14)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="#1f77b4">stored records/s</text><text x="%.0f" y="%.0f" fill="#d62728">queryable p99</text><text x="%.0f" y="%.0f" fill="#ff7f0e">detection p99</text>`+"\n",
		L, H-10, L+160, H-10, L+290, H-10)
	b.WriteString("</svg>\n")
	return b.String()
}

// bar draws progress on stderr: elapsed of the publishing time, then the
// drain of the backlog.
type bar struct {
	w     io.Writer
	total time.Duration
}

func newBar(w io.Writer, total time.Duration) *bar { return &bar{w: w, total: total} }

func (b *bar) draw(phase string, elapsed time.Duration, p Point) {
	frac := min(elapsed.Seconds()/b.total.Seconds(), 1)
	if phase == "drain" && p.Sent > 0 {
		frac = min(float64(p.Stored)/float64(p.Sent), 1)
	}
	fmt.Fprintf(b.w, "\r%-7s %s  sent %d  stored %d  %.0f/s  p99 q %.2fs d %.2fs   ",
		phase, barCells(frac), p.Sent, p.Stored, p.StoredPerSec, p.QueryableP99, p.DetectionP99)
}

// barCells draws frac (0..1) as a bar of 30 cells and a percentage.
func barCells(frac float64) string {
	const width = 30
	frac = max(0, min(frac, 1))
	n := int(frac * width)
	return fmt.Sprintf("[%s%s] %5.1f%%", strings.Repeat("=", n), strings.Repeat(" ", width-n), 100*frac)
}

func (b *bar) done() { fmt.Fprintln(b.w) }

type stageTime struct {
	name    string
	seconds float64
}

// stages reads the per-stage time the pipeline exports: decode, normalize
// and detect from watchfloor.stage.duration, store from flush.duration.
func (r *Result) stages() []stageTime {
	var out []stageTime
	for _, name := range []string{"decode", "normalize", "detect"} {
		for k, v := range r.PipelineMetrics {
			if strings.HasPrefix(k, "watchfloor_stage_duration_seconds_sum{") && strings.Contains(k, `stage="`+name+`"`) {
				out = append(out, stageTime{name, v})
			}
		}
	}
	for k, v := range r.PipelineMetrics {
		if strings.HasPrefix(k, "watchfloor_flush_duration_seconds_sum{") {
			out = append(out, stageTime{"store", v})
		}
	}
	return out
}
