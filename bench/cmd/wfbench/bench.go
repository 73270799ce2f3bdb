package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/segmentio/encoding/json"
	"github.com/sourcegraph/conc/pool"

	"github.com/watchfloor/watchfloor/bench/gen"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/ingest/sensor"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

const probeAgency = "probe"

// bench runs one measurement and returns its result.
func bench(ctx context.Context, cfg Config, progressOut io.Writer) (*Result, error) {
	res := &Result{Config: cfg, Started: time.Now().UTC()}
	ch, err := clickhouse.Open(&clickhouse.Options{Addr: []string{cfg.ClickHouse}, DialTimeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", cfg.ClickHouse, err)
	}
	defer ch.Close()
	if err := ch.Ping(ctx); err != nil {
		return nil, fmt.Errorf("clickhouse %s does not answer (make clickhouse starts one): %w", cfg.ClickHouse, err)
	}
	if err := ch.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
		return nil, fmt.Errorf("drop database %s: %w", cfg.Database, err)
	}
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		return nil, err
	}

	// The mix: only the formats this build registers.
	reg := normalize.Builtin()
	var mix []gen.Generator
	for _, g := range gen.Mix() {
		if _, ok := reg.Lookup(g.Format); ok {
			mix = append(mix, g)
		} else {
			res.Skipped = append(res.Skipped, g.Format)
		}
	}
	for _, g := range mix {
		res.Formats = append(res.Formats, g.Format)
	}
	if len(res.Skipped) > 0 {
		fmt.Fprintf(progressOut, "wfbench: formats not registered in this build, left out of the mix: %s\n", strings.Join(res.Skipped, ", "))
	}

	natsAddr, metricsAddr := freeAddr(), freeAddr()
	pipe, err := startPipeline(ctx, cfg, natsAddr, metricsAddr)
	if err != nil {
		return nil, err
	}
	defer pipe.stop()

	nc, err := nats.Connect("nats://"+natsAddr, nats.Name("wfbench"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to the pipeline's NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}

	probes := newProbes(js, ch, cfg.Database)
	sub, err := nc.Subscribe(ingest.DetectionPrefix+probeAgency+".>", probes.onDetection)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()

	procs := []*proc{{name: "watchfloor run (incl. embedded NATS)", pid: pipe.cmd.Process.Pid}, {name: "wfbench (sensor)", pid: os.Getpid()}}
	if cfg.CHPidFile != "" {
		if b, err := os.ReadFile(cfg.CHPidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				procs = append(procs, &proc{name: "clickhouse-server", pid: pid})
			}
		}
	}
	for _, p := range procs {
		p.sample()
	}

	var sent, storedNow atomic.Uint64
	// storedNow follows ClickHouse closely for the max-rate backlog bound.
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go func() {
		for followCtx.Err() == nil {
			var ev, dl uint64
			qctx, cancel := context.WithTimeout(followCtx, 5*time.Second)
			_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".events").Scan(&ev)
			_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".dead_letters").Scan(&dl)
			cancel()
			storedNow.Store(ev + dl)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	pubCtx, stopPub := context.WithTimeout(ctx, cfg.Duration)
	defer stopPub()
	start := time.Now()
	res.PublishStart = start

	// Publishers: each goroutine owns its own Publishers (one per agency and
	// format it serves), so nothing is shared on the hot path.
	pubs := pool.New().WithErrors().WithContext(pubCtx)
	var pubStats sync.Mutex
	var total sensor.Stats
	for w := 0; w < cfg.Publishers; w++ {
		pubs.Go(func(ctx context.Context) error {
			st, err := publish(ctx, js, cfg, mix, w, &sent, &storedNow)
			pubStats.Lock()
			total = total.Add(st)
			pubStats.Unlock()
			return err
		})
	}
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		probes.run(pubCtx, cfg.ProbeEvery)
	}()

	// Sample once a second while publishing and draining.
	var timeline []Point
	stored := func() (ev, dl uint64) {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".events").Scan(&ev)
		_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".dead_letters").Scan(&dl)
		return ev, dl
	}
	bar := newBar(progressOut, cfg.Duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastStored uint64
	lastT := start
	sample := func(phase string) uint64 {
		ev, dl := stored()
		now := time.Now()
		for _, p := range procs {
			p.sample()
		}
		pt := Point{
			T: now.Sub(start).Seconds(), Phase: phase, Sent: sent.Load(), Stored: ev + dl,
			StoredPerSec: float64(ev+dl-min(lastStored, ev+dl)) / now.Sub(lastT).Seconds(),
		}
		pt.QueryableP99, pt.DetectionP99 = probes.windowP99(lastT, now)
		lastStored, lastT = ev+dl, now
		timeline = append(timeline, pt)
		bar.draw(phase, now.Sub(start), pt)
		return ev + dl
	}
	for pubCtx.Err() == nil {
		select {
		case <-tick.C:
			sample("publish")
		case <-pubCtx.Done():
		}
	}
	perr := pubs.Wait()
	<-probeDone
	if perr != nil && !errors.Is(perr, context.DeadlineExceeded) && !errors.Is(perr, context.Canceled) {
		return nil, fmt.Errorf("publish: %w", perr)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.PublishEnd = time.Now()
	res.Sensor = total
	want := total.Records + probes.sent.Load()
	res.Sent = want

	// Drain: wait until every record is an event or a dead letter.
	drainBy := time.Now().Add(cfg.Drain)
	for {
		got := sample("drain")
		if got >= want {
			break
		}
		if time.Now().After(drainBy) || ctx.Err() != nil {
			break
		}
		<-tick.C
	}
	res.DrainEnd = time.Now()
	bar.done()
	probes.waitPending(10 * time.Second)

	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".events FINAL").Scan(&res.Events)
	_ = ch.QueryRow(qctx, "SELECT uniqExact(event_id) FROM "+cfg.Database+".events").Scan(&res.DistinctEvents)
	_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".dead_letters FINAL").Scan(&res.DeadLetters)
	_ = ch.QueryRow(qctx, "SELECT count() FROM "+cfg.Database+".detections FINAL").Scan(&res.Detections)
	var bytesOnDisk, rows uint64
	_ = ch.QueryRow(qctx, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE active AND database = ? AND table = 'events'", cfg.Database).Scan(&bytesOnDisk, &rows)
	if rows > 0 {
		res.BytesPerEvent = float64(bytesOnDisk) / float64(rows)
	}
	res.Exact = res.Events+res.DeadLetters == res.Sent && res.DistinctEvents == res.Events
	res.Timeline = timeline
	res.Queryable = summarize(probes.queryable())
	res.Detection = summarize(probes.detection())
	res.ProbesLost = probes.sent.Load() - uint64(len(probes.detection()))
	elapsed := res.DrainEnd.Sub(start).Seconds()
	res.SustainedPerSec = float64(res.Events+res.DeadLetters) / elapsed
	res.OfferedPerSec = float64(res.Sent) / res.PublishEnd.Sub(start).Seconds()
	for _, p := range procs {
		res.Processes = append(res.Processes, p.result(elapsed))
	}
	res.PipelineMetrics = scrapeMetrics(metricsAddr)
	pipe.stop()
	if !cfg.KeepDatabase {
		if err := ch.Exec(qctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			fmt.Fprintf(progressOut, "wfbench: drop database %s: %v\n", cfg.Database, err)
		}
	}
	return res, nil
}

// publish runs one publishing goroutine until ctx ends, pacing itself to
// its share of the offered rate.
func publish(ctx context.Context, js jetstream.JetStream, cfg Config, mix []gen.Generator, w int, sent, stored *atomic.Uint64) (total sensor.Stats, err error) {
	reg := normalize.Builtin()
	type key struct {
		agency int
		format int
	}
	pubs := map[key]*sensor.Publisher{}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.Drain)
		defer cancel()
		for _, p := range pubs {
			_ = p.Close(cctx)
			total = total.Add(p.Stats())
		}
	}()
	get := func(a, f int) (*sensor.Publisher, error) {
		if p := pubs[key{a, f}]; p != nil {
			return p, nil
		}
		sc := sensor.DefaultConfig()
		sc.SensorID = fmt.Sprintf("wfbench-%d", w)
		sc.Agency = fmt.Sprintf("agency%02d", a)
		sc.BatchRecords = cfg.BatchRecords
		sc.MaxInFlight = 16
		format, _ := reg.Lookup(mix[f].Format)
		p, err := sensor.NewPublisher(js, sc, sensor.Source{Format: format}, nil)
		if err != nil {
			return nil, err
		}
		pubs[key{a, f}] = p
		return p, nil
	}
	// Agencies are split among the goroutines; each serves all formats.
	var mine []int
	for a := 0; a < cfg.Agencies; a++ {
		if a%cfg.Publishers == w {
			mine = append(mine, a)
		}
	}
	if len(mine) == 0 {
		mine = []int{w % cfg.Agencies}
	}
	weights := 0
	for _, g := range mix {
		weights += g.Weight
	}
	r := rand.New(rand.NewPCG(uint64(w), 42))
	perSec := float64(cfg.Rate) / float64(cfg.Publishers)
	start := time.Now()
	var n uint64
	var buf []byte
	for ctx.Err() == nil {
		// Pace in chunks of 100 records. At max rate, stay at most
		// MaxBacklog records ahead of what is stored: a sensor that only
		// fills the stream measures JetStream, not the pipeline.
		for perSec == 0 && sent.Load() > stored.Load()+uint64(cfg.MaxBacklog) {
			select {
			case <-ctx.Done():
				return total, nil
			case <-time.After(5 * time.Millisecond):
			}
		}
		if perSec > 0 {
			due := start.Add(time.Duration(float64(n) / perSec * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
					return total, nil
				case <-time.After(d):
				}
			}
		}
		for k := 0; k < 100; k++ {
			pick := r.IntN(weights)
			f := 0
			for ; pick >= mix[f].Weight; f++ {
				pick -= mix[f].Weight
			}
			p, err := get(mine[r.IntN(len(mine))], f)
			if err != nil {
				return total, err
			}
			buf = mix[f].Append(buf[:0], r, n, time.Now())
			if err := p.Add(ctx, sensor.Line{Data: buf, Size: len(buf)}); err != nil {
				if ctx.Err() != nil {
					return total, nil
				}
				return total, err
			}
			n++
			sent.Add(1)
		}
	}
	return total, nil
}

// pipelineProc is the watchfloor run under test.
type pipelineProc struct {
	cmd *exec.Cmd
	log *bytes.Buffer
}

// runRules returns the rules directory for the pipeline: --rules itself, or,
// when the probes' rules live elsewhere, a copy of both side by side, so
// that a run with SigmaHQ's rules still measures publish→detection.
func runRules(cfg Config) (string, error) {
	if cfg.ProbeRules == "" {
		return cfg.Rules, nil
	}
	a, errA := filepath.Abs(cfg.Rules)
	b, errB := filepath.Abs(cfg.ProbeRules)
	if errA != nil || errB != nil || a == b {
		return cfg.Rules, nil
	}
	dir := cfg.DataDir + "-rules"
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	for sub, src := range map[string]string{"rules": cfg.Rules, "probe": cfg.ProbeRules} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(src)); err != nil {
			return "", fmt.Errorf("copy rules %s: %w", src, err)
		}
	}
	return dir, nil
}

func startPipeline(ctx context.Context, cfg Config, natsAddr, metricsAddr string) (*pipelineProc, error) {
	rules, err := runRules(cfg)
	if err != nil {
		return nil, err
	}
	args := append([]string{"run",
		"--data-dir", cfg.DataDir,
		"--nats.listen", natsAddr,
		"--clickhouse.addr", cfg.ClickHouse,
		"--clickhouse.database", cfg.Database,
		"--metrics.listen", metricsAddr,
		"--rules", rules,
		"--clickhouse.event-retention-days", "0",
	}, cfg.RunArgs...)
	p := &pipelineProc{log: new(bytes.Buffer)}
	p.cmd = exec.Command(cfg.Watchfloor, args...)
	if err := os.MkdirAll(filepath.Dir(cfg.Out), 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(cfg.Out + ".pipeline.log")
	if err != nil {
		return nil, err
	}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cfg.Watchfloor, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.stop()
			return nil, fmt.Errorf("watchfloor run not ready within 2m; see %s.pipeline.log", cfg.Out)
		}
		if p.cmd.ProcessState != nil {
			return nil, fmt.Errorf("watchfloor run exited; see %s.pipeline.log", cfg.Out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *pipelineProc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer ln.Close()
	return ln.Addr().String()
}

// probes times single-record batches that the bundled WPAD rule matches,
// from publish to queryable in ClickHouse and to the detection on NATS.
type probes struct {
	js   jetstream.JetStream
	ch   driver.Conn
	db   string
	sent atomic.Uint64

	mu        sync.Mutex
	published map[string]time.Time // event id -> publish time
	seen      map[string]time.Time // event id -> queryable
	detected  map[string]time.Time // event id -> detection received
}

func newProbes(js jetstream.JetStream, ch driver.Conn, db string) *probes {
	return &probes{js: js, ch: ch, db: db, published: map[string]time.Time{}, seen: map[string]time.Time{}, detected: map[string]time.Time{}}
}

func (p *probes) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for n := uint64(0); ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.publish(ctx, n)
			n++
		case <-poll.C:
			p.poll(ctx)
		}
	}
}

func (p *probes) publish(ctx context.Context, n uint64) {
	id := fmt.Sprintf("wfbench-probe:%d-%d", time.Now().UnixNano(), n)
	msg := nats.NewMsg(ingest.RawSubject(probeAgency, "zeek_dns"))
	msg.Header.Set(ingest.HeaderMsgID, id)
	msg.Header.Set(ingest.HeaderSensor, "wfbench-probe")
	msg.Header.Set(ingest.HeaderCount, "1")
	msg.Data = gen.Probe(n, time.Now())
	t := time.Now()
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return // not counted as sent: the stream never took it
	}
	p.sent.Add(1)
	p.mu.Lock()
	p.published[schemas.EventID(id, 0).String()] = t
	p.mu.Unlock()
}

// poll asks ClickHouse which published probes are queryable yet.
func (p *probes) poll(ctx context.Context) {
	p.mu.Lock()
	var ids []string
	for id := range p.published {
		if _, ok := p.seen[id]; !ok {
			ids = append(ids, id)
		}
	}
	p.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := p.ch.Query(qctx, "SELECT toString(event_id) FROM "+p.db+".events WHERE agency = ? AND has(?, toString(event_id))", probeAgency, ids)
	if err != nil {
		return
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			p.mu.Lock()
			if _, ok := p.seen[id]; !ok {
				p.seen[id] = now
			}
			p.mu.Unlock()
		}
	}
}

func (p *probes) onDetection(m *nats.Msg) {
	now := time.Now()
	var f struct {
		Evidences []struct {
			EventUID string `json:"event_uid"`
		} `json:"evidences"`
	}
	if json.Unmarshal(m.Data, &f) != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range f.Evidences {
		if _, ok := p.detected[e.EventUID]; !ok {
			p.detected[e.EventUID] = now
		}
	}
}

// waitPending polls for the last probes' rows after publishing stopped.
func (p *probes) waitPending(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		p.poll(context.Background())
		p.mu.Lock()
		done := len(p.seen) >= len(p.published)
		p.mu.Unlock()
		if done {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *probes) latencies(m map[string]time.Time, from, to time.Time) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []time.Duration
	for id, t := range m {
		pub, ok := p.published[id]
		if !ok || (!from.IsZero() && (t.Before(from) || !t.Before(to))) {
			continue
		}
		out = append(out, t.Sub(pub))
	}
	return out
}

func (p *probes) queryable() []time.Duration { return p.latencies(p.seen, time.Time{}, time.Time{}) }
func (p *probes) detection() []time.Duration {
	return p.latencies(p.detected, time.Time{}, time.Time{})
}

func (p *probes) windowP99(from, to time.Time) (q, d float64) {
	return summarize(p.latencies(p.seen, from, to)).P99, summarize(p.latencies(p.detected, from, to)).P99
}
