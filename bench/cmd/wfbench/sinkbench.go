package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/watchfloor/watchfloor/bench/gen"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// `wfbench sink` measures the sink alone: DNS events (Zeek dns.log records
// from bench/gen, normalized once up front) written by sink.Sink as fast as
// it takes them into a fresh database, with the rollup views on. It reports
// rows/s, the CPU and peak RSS of this process (the client) and of the
// server, the CPU per row of each, the largest number of active parts in one
// partition of events over time (ClickHouse refuses inserts with "too many
// parts" at 300 by default), and the compression ClickHouse reports.

const sinkUsage = `Usage: wfbench sink [flags]

Writes DNS events through the sink (sink.Sink.Write, as watchfloor run does)
into a fresh database for --duration and measures throughput, CPU per row of
client and server, memory, parts and compression. ClickHouse must be running.

Flags:
`

// SinkConfig is one `wfbench sink` run.
type SinkConfig struct {
	ClickHouse   string
	CHPidFile    string
	Database     string
	KeepDatabase bool
	Duration     time.Duration
	BatchRows    int // rows per Write (pipeline.flush_rows)
	Writers      int // concurrent Writes (pipeline.flushers)
	Agencies     int
	Rollups      bool
	Sink         sink.Config // compression, insert conns, block rows
	Out          string      // JSON result path; empty writes none
}

func defaultSinkConfig() SinkConfig {
	return SinkConfig{
		ClickHouse: "127.0.0.1:19000",
		CHPidFile:  ".data/clickhouse/pid",
		Database:   "wfsinkbench_" + time.Now().UTC().Format("20060102_150405"),
		Duration:   30 * time.Second,
		BatchRows:  50000,
		Writers:    1,
		Agencies:   8,
		Rollups:    true,
		Sink:       sink.DefaultConfig(),
	}
}

func (c *SinkConfig) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("wfbench sink", flag.ContinueOnError)
	fs.StringVar(&c.ClickHouse, "clickhouse", c.ClickHouse, "ClickHouse native host:port")
	fs.StringVar(&c.CHPidFile, "clickhouse-pid-file", c.CHPidFile, "pid file of that ClickHouse server, to report its CPU and RSS (empty skips)")
	fs.StringVar(&c.Database, "database", c.Database, "ClickHouse database for the run (dropped first if it exists, and after the run)")
	fs.BoolVar(&c.KeepDatabase, "keep-database", false, "keep the run's database for inspection")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to write (1s to 24h)")
	fs.IntVar(&c.BatchRows, "batch-rows", c.BatchRows, "rows per Write, like pipeline.flush_rows (1000 to 1000000)")
	fs.IntVar(&c.Writers, "writers", c.Writers, "concurrent Writes, like pipeline.flushers (1 to 16)")
	fs.IntVar(&c.Agencies, "agencies", c.Agencies, "agencies the events are spread over (1 to 1000)")
	fs.BoolVar(&c.Rollups, "rollups", c.Rollups, "keep the rollup views on events (false drops them: the bare insert)")
	fs.StringVar(&c.Sink.Compression, "compression", c.Sink.Compression, "clickhouse.compression: lz4, zstd or none")
	fs.IntVar(&c.Sink.InsertConns, "insert-conns", c.Sink.InsertConns, "clickhouse.insert-conns: concurrent INSERTs per Write")
	fs.IntVar(&c.Sink.BlockRows, "block-rows", c.Sink.BlockRows, "clickhouse.block-rows: rows per native block within an INSERT")
	fs.StringVar(&c.Out, "out", "", "write the result as JSON to this file")
	return fs
}

// Validate names the flag that is wrong.
func (c *SinkConfig) Validate() error {
	var errs []error
	if strings.Trim(c.Database, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" || c.Database == "" {
		errs = append(errs, fmt.Errorf("--database %q must be [a-z0-9_]+", c.Database))
	}
	if c.Duration < time.Second || c.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--duration must be between 1s and 24h, got %s", c.Duration))
	}
	if c.BatchRows < 1000 || c.BatchRows > 1000000 {
		errs = append(errs, fmt.Errorf("--batch-rows must be between 1000 and 1000000, got %d", c.BatchRows))
	}
	if c.Writers < 1 || c.Writers > 16 {
		errs = append(errs, fmt.Errorf("--writers must be between 1 and 16, got %d", c.Writers))
	}
	if c.Agencies < 1 || c.Agencies > 1000 {
		errs = append(errs, fmt.Errorf("--agencies must be between 1 and 1000, got %d", c.Agencies))
	}
	sc := c.Sink
	sc.Addr, sc.Database = []string{c.ClickHouse}, c.Database
	if err := sc.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--clickhouse, --compression, --insert-conns or --block-rows: %w", err))
	}
	return errors.Join(errs...)
}

// SinkResult is what one `wfbench sink` run measured.
type SinkResult struct {
	Config        SinkConfig   `json:"config"`
	Seconds       float64      `json:"seconds"`
	Rows          uint64       `json:"rows_written"`
	RowsStored    uint64       `json:"rows_in_events"`
	Writes        uint64       `json:"writes"`
	Errors        uint64       `json:"write_errors"`
	FirstError    string       `json:"first_error,omitempty"`
	RowsPerSec    float64      `json:"rows_per_sec"`
	ClientUSRow   float64      `json:"client_cpu_us_per_row"`
	ServerUSRow   float64      `json:"server_cpu_us_per_row"`
	MaxParts      uint64       `json:"max_active_parts_per_partition"`
	Parts         uint64       `json:"active_parts_at_end"`
	Compression   float64      `json:"compression_ratio"` // uncompressed / compressed bytes of events
	DiskBytesRow  float64      `json:"disk_bytes_per_row"`
	RawBytesRow   float64      `json:"uncompressed_bytes_per_row"`
	RowsPerByte   float64      `json:"rows_per_disk_byte"`
	Processes     []ProcResult `json:"processes"`
	Timeline      []SinkPoint  `json:"timeline"`
	ServerVersion string       `json:"server_version"`
}

// SinkPoint is one second of the run.
type SinkPoint struct {
	T          float64 `json:"t"`
	Rows       uint64  `json:"rows"`
	RowsPerSec float64 `json:"rows_per_sec"`
	MaxParts   uint64  `json:"max_parts_per_partition"`
	ClientRSS  float64 `json:"client_rss_mib"`
}

func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := defaultSinkConfig()
	if err := parseFlags(cfg.flags(), sinkUsage, args, stderr); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	res, err := benchSink(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	res.print(stdout)
	if cfg.Out != "" {
		if err := writeJSON(cfg.Out, res); err != nil {
			return err
		}
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d of %d writes failed, first: %s", res.Errors, res.Writes+res.Errors, res.FirstError)
	}
	return nil
}

// poolSpacing is the time between two generated events: the run moves
// through time at rows/s × poolSpacing, well inside one day's partition.
const poolSpacing = time.Microsecond

// dnsPool normalizes n generated Zeek DNS records into events.
func dnsPool(n, agencies int) ([]schemas.Event, error) {
	var g gen.Generator
	for _, m := range gen.Mix() {
		if m.Format == "zeek_dns" {
			g = m
		}
	}
	format, ok := normalize.Builtin().Lookup("zeek_dns")
	if !ok || g.Append == nil {
		return nil, errors.New("zeek_dns is not registered in this build")
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	evs := make([]schemas.Event, n)
	var line []byte
	dec := format.NewDecoder(normalize.BatchInfo{Received: now})
	for i := range evs {
		agency := "agency" + strconv.Itoa(i%agencies)
		line = g.Append(line[:0], r, uint64(i), now.Add(time.Duration(i)*poolSpacing))
		ev := &evs[i]
		ev.Reset()
		if err := dec.Record(line, ev); err != nil {
			return nil, fmt.Errorf("normalize generated record %d: %w", i, err)
		}
		ev.Agency, ev.Sensor, ev.Format = agency, "sinkbench", "zeek_dns"
	}
	return evs, nil
}

func benchSink(ctx context.Context, cfg SinkConfig, progressOut io.Writer) (*SinkResult, error) {
	res := &SinkResult{Config: cfg}
	scfg := cfg.Sink
	scfg.Addr, scfg.Database = []string{cfg.ClickHouse}, cfg.Database
	log := slog.New(slog.NewTextHandler(progressOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := sink.Open(ctx, scfg, log)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ch := s.Conn()
	if v, err := ch.ServerVersion(); err == nil {
		res.ServerVersion = fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)
	}
	if err := ch.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
		return nil, fmt.Errorf("drop database %s: %w", cfg.Database, err)
	}
	if err := ch.Exec(ctx, "CREATE DATABASE "+cfg.Database); err != nil {
		return nil, fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	if !cfg.KeepDatabase {
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_ = ch.Exec(dctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		}()
	}
	if _, err := s.Migrate(ctx); err != nil {
		return nil, err
	}
	if !cfg.Rollups {
		for _, v := range []string{"events_per_minute_mv", "dns_per_domain_hour_mv"} {
			if err := ch.Exec(ctx, "DROP TABLE IF EXISTS "+cfg.Database+"."+v); err != nil {
				return nil, err
			}
		}
	}

	fmt.Fprintf(progressOut, "wfbench sink: normalizing %d generated Zeek DNS records...\n", cfg.BatchRows)
	pool, err := dnsPool(cfg.BatchRows, cfg.Agencies)
	if err != nil {
		return nil, err
	}
	// Each writer owns a copy of the pool (the strings are shared) and gives
	// every batch fresh ids, so no two rows of the run share an id, and later
	// times, so copies of a record never sit side by side in the sort order
	// (that would flatter the compression ratio).
	batches := make([]*sink.Rows, cfg.Writers)
	for w := range batches {
		batches[w] = &sink.Rows{Events: append([]schemas.Event(nil), pool...)}
	}

	procs := []*proc{{name: "wfbench sink (client)", pid: os.Getpid()}}
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

	var rows, writes, errs atomic.Uint64
	var firstErr atomic.Value
	runCtx, stop := context.WithTimeout(ctx, cfg.Duration)
	defer stop()
	start := time.Now()
	var wg sync.WaitGroup
	for w, rs := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(0); runCtx.Err() == nil; seq++ {
				shift := time.Duration(seq*uint64(cfg.Writers)+uint64(w)) * time.Duration(len(rs.Events)) * poolSpacing
				for i := range rs.Events {
					ev := &rs.Events[i]
					binary.BigEndian.PutUint64(ev.ID[:8], uint64(w)<<48|seq)
					binary.BigEndian.PutUint32(ev.ID[8:12], uint32(i))
					ev.Time = pool[i].Time.Add(shift)
				}
				rs.Redelivered = false
				if err := s.Write(ctx, rs); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if ctx.Err() != nil {
						return
					}
					continue
				}
				writes.Add(1)
				rows.Add(uint64(len(rs.Events)))
			}
		}()
	}

	partsQ := "SELECT max(c), sum(c) FROM (SELECT partition, count() AS c FROM system.parts WHERE database = ? AND table = 'events' AND active GROUP BY partition)"
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last uint64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			for _, p := range procs {
				p.sample()
			}
			var maxParts, parts uint64
			_ = ch.QueryRow(ctx, partsQ, cfg.Database).Scan(&maxParts, &parts)
			res.MaxParts = max(res.MaxParts, maxParts)
			n := rows.Load()
			pt := SinkPoint{T: time.Since(start).Seconds(), Rows: n, RowsPerSec: float64(n - last), MaxParts: maxParts,
				ClientRSS: float64(procs[0].rssLast) / (1 << 20)}
			last = n
			res.Timeline = append(res.Timeline, pt)
			fmt.Fprintf(progressOut, "\rsink %5.0fs  rows %10d  %7.0f rows/s now  %7.0f avg  parts %3d (max/partition %3d)  client RSS %5.0f MiB  errors %d   ",
				pt.T, n, pt.RowsPerSec, float64(n)/pt.T, parts, maxParts, pt.ClientRSS, errs.Load())
		}
	}
	fmt.Fprintln(progressOut)
	res.Seconds = time.Since(start).Seconds()
	for _, p := range procs {
		p.sample()
		res.Processes = append(res.Processes, p.result(res.Seconds))
	}
	res.Rows, res.Writes, res.Errors = rows.Load(), writes.Load(), errs.Load()
	if e, ok := firstErr.Load().(string); ok {
		res.FirstError = e
	}
	res.RowsPerSec = float64(res.Rows) / res.Seconds
	if res.Rows > 0 {
		res.ClientUSRow = res.Processes[0].CPUSeconds / float64(res.Rows) * 1e6
		if len(res.Processes) > 1 {
			res.ServerUSRow = res.Processes[1].CPUSeconds / float64(res.Rows) * 1e6
		}
	}
	var compressed, uncompressed uint64
	err = ch.QueryRow(ctx, "SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes), count() FROM system.parts WHERE database = ? AND table = 'events' AND active", cfg.Database).
		Scan(&res.RowsStored, &compressed, &uncompressed, &res.Parts)
	if err != nil {
		return nil, fmt.Errorf("read system.parts: %w", err)
	}
	if compressed > 0 && res.RowsStored > 0 {
		res.Compression = float64(uncompressed) / float64(compressed)
		res.DiskBytesRow = float64(compressed) / float64(res.RowsStored)
		res.RawBytesRow = float64(uncompressed) / float64(res.RowsStored)
		res.RowsPerByte = float64(res.RowsStored) / float64(compressed)
	}
	return res, nil
}

func (r *SinkResult) print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\nwfbench sink: ClickHouse %s, %d writer(s) x %d rows per Write, compression %s, %d INSERT(s) per Write, blocks of %d rows, rollups %v, %.0fs\n",
		r.ServerVersion, c.Writers, c.BatchRows, c.Sink.Compression, c.Sink.InsertConns, c.Sink.BlockRows, c.Rollups, r.Seconds)
	fmt.Fprintf(w, "  throughput         %.0f rows/s (%d rows in %d writes, %d failed)\n", r.RowsPerSec, r.Rows, r.Writes, r.Errors)
	fmt.Fprintf(w, "  cpu per row        client %.2f us, server %.2f us (server includes its merges during the run)\n", r.ClientUSRow, r.ServerUSRow)
	fmt.Fprintf(w, "  parts              at most %d active in one partition of events (too many parts at 300), %d at the end\n", r.MaxParts, r.Parts)
	fmt.Fprintf(w, "  events on disk     %d rows, %.1f bytes/row compressed (%.0f uncompressed), compression %.2fx, %.4f rows per byte\n",
		r.RowsStored, r.DiskBytesRow, r.RawBytesRow, r.Compression, r.RowsPerByte)
	for _, p := range r.Processes {
		fmt.Fprintf(w, "  %-38s cpu %7.1fs (%.2f cores)  peak RSS %6.0f MiB  last %6.0f MiB\n", p.Name, p.CPUSeconds, p.Cores, p.PeakRSSMiB, p.LastRSSMiB)
	}
}
