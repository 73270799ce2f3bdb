// Package sink stores events, detections and dead letters in ClickHouse.
//
// A Write is a transaction in the Prometheus Appender sense: the three tables
// are written as native batches, and only when every Send has returned nil
// may the caller acknowledge the raw messages the rows came from. Rows carry
// deterministic ids, so a write that is retried after a crash is harmless:
// for redelivered input the sink first asks which ids are already stored and
// skips them, and the tables' ReplacingMergeTree engine collapses whatever a
// race lets through (docs/storage.md, "Dedupe"). Errors are classified in
// one place, IsPermanent.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/watchfloor/watchfloor/schemas"
)

// Config configures the ClickHouse connection and the schema.
type Config struct {
	Addr     []string // host:port of the native protocol
	Database string
	Username string
	Password string // never logged
	// DialTimeout bounds connecting; QueryTimeout bounds one statement.
	DialTimeout  time.Duration
	QueryTimeout time.Duration
	// Retention in days per table (0 keeps forever).
	EventRetentionDays      int
	DetectionRetentionDays  int
	DeadLetterRetentionDays int
	// Compression of the native protocol's data blocks: "lz4", "zstd",
	// "none", or "auto": none when every server is on loopback, else lz4.
	Compression string
	// InsertConns is how many INSERTs one Write runs at once on separate
	// connections, so client encoding and the server's insert work use
	// several cores. A Write of fewer than 2×BlockRows rows is one INSERT.
	InsertConns int
	// BlockRows is the rows per native block inside one INSERT: the client
	// sends a block and reuses its column buffers for the next (bounded
	// memory); the server squashes the blocks of one INSERT into one part
	// (up to min_insert_block_size_rows, about a million rows).
	BlockRows int
}

// DefaultConfig is a local server on the native port.
func DefaultConfig() Config {
	return Config{
		Addr:                    []string{"127.0.0.1:9000"},
		Database:                "watchfloor",
		Username:                "default",
		DialTimeout:             5 * time.Second,
		QueryTimeout:            60 * time.Second,
		EventRetentionDays:      365,
		DetectionRetentionDays:  3 * 365,
		DeadLetterRetentionDays: 90,
		Compression:             "auto",
		InsertConns:             1,
		BlockRows:               8192,
	}
}

// Validate reports the first bad setting, naming its key.
func (c Config) Validate() error {
	if len(c.Addr) == 0 {
		return errors.New("clickhouse.addr must name at least one host:port")
	}
	for _, a := range c.Addr {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("clickhouse.addr %q must be host:port: %w", a, err)
		}
	}
	if !validIdent(c.Database) {
		return fmt.Errorf("clickhouse.database %q must be an identifier of [A-Za-z0-9_] starting with a letter or _", c.Database)
	}
	if c.DialTimeout <= 0 || c.QueryTimeout <= 0 {
		return fmt.Errorf("clickhouse.dial_timeout and clickhouse.query_timeout must be positive, got %s and %s", c.DialTimeout, c.QueryTimeout)
	}
	for key, d := range map[string]int{
		"clickhouse.event_retention_days":       c.EventRetentionDays,
		"clickhouse.detection_retention_days":   c.DetectionRetentionDays,
		"clickhouse.dead_letter_retention_days": c.DeadLetterRetentionDays,
	} {
		if d < 0 || d > 36500 {
			return fmt.Errorf("%s must be between 0 (keep forever) and 36500, got %d", key, d)
		}
	}
	if _, ok := compressionMethods[c.Compression]; !ok && c.Compression != "auto" {
		return fmt.Errorf("clickhouse.compression must be auto, lz4, zstd or none, got %q", c.Compression)
	}
	if c.InsertConns < 1 || c.InsertConns > 8 {
		return fmt.Errorf("clickhouse.insert_conns must be between 1 and 8, got %d", c.InsertConns)
	}
	if c.BlockRows < 1000 || c.BlockRows > 1000000 {
		return fmt.Errorf("clickhouse.block_rows must be between 1000 and 1000000, got %d", c.BlockRows)
	}
	return nil
}

// compression resolves "auto": no compression when every server is on
// loopback, where LZ4 only costs both ends CPU (the sink benchmark wrote
// 58% more rows/s without it), LZ4 across a network.
func (c Config) compression() string {
	if c.Compression != "auto" {
		return c.Compression
	}
	for _, a := range c.Addr {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return "lz4"
		}
		if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
			return "lz4"
		}
	}
	return "none"
}

var compressionMethods = map[string]clickhouse.CompressionMethod{
	"lz4":  clickhouse.CompressionLZ4,
	"zstd": clickhouse.CompressionZSTD,
	"none": clickhouse.CompressionNone,
}

func validIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Sink writes rows to one ClickHouse database. Safe for concurrent use.
type Sink struct {
	conn     driver.Conn
	cfg      Config
	features schemas.Features
	log      *slog.Logger

	insertEvents, insertFindings, insertDeadLetters string

	// scratch holds column buffers reused across inserts (*scratch), one
	// per insert in flight.
	scratch sync.Pool
}

// Open connects and reads the server version. It does not change the schema:
// call Migrate for that.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: cfg.Addr,
		// No login database: an agency analyst on 18.16 may use only its own.
		Auth:        clickhouse.Auth{Username: cfg.Username, Password: cfg.Password},
		DialTimeout: cfg.DialTimeout,
		// Every INSERT of up to 16 concurrent Writes (pipeline.flushers'
		// limit), plus queries beside them: a Write never waits for a
		// connection another Write holds.
		MaxOpenConns: 16*cfg.InsertConns + 4,
		MaxIdleConns: 2*cfg.InsertConns + 2,
		Compression:  &clickhouse.Compression{Method: compressionMethods[cfg.compression()]},
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %s: %w", strings.Join(cfg.Addr, ","), err)
	}
	s := &Sink{conn: conn, cfg: cfg, log: log}
	s.scratch.New = func() any { return new(scratch) }
	if err := s.readVersion(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	db := cfg.Database
	s.insertEvents = fmt.Sprintf("INSERT INTO %s.events (%s)", db, schemas.ColumnNames(schemas.EventColumns))
	s.insertFindings = fmt.Sprintf("INSERT INTO %s.detections (%s)", db, schemas.ColumnNames(schemas.FindingColumns))
	s.insertDeadLetters = fmt.Sprintf("INSERT INTO %s.dead_letters (%s)", db, schemas.ColumnNames(schemas.DeadLetterColumns))
	return s, nil
}

func (s *Sink) readVersion(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout+s.cfg.QueryTimeout)
	defer cancel()
	v, err := s.conn.ServerVersion()
	if err != nil {
		return fmt.Errorf("connect clickhouse %s: %w", strings.Join(s.cfg.Addr, ","), err)
	}
	_ = ctx
	f, err := schemas.FeaturesFor(fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch))
	if err != nil {
		return err
	}
	s.features = f
	return nil
}

// Features are the capabilities of the connected server.
func (s *Sink) Features() schemas.Features { return s.features }

// Database is the database the sink writes to.
func (s *Sink) Database() string { return s.cfg.Database }

// Conn exposes the connection for queries (status, tests).
func (s *Sink) Conn() driver.Conn { return s.conn }

// Ping checks that the server answers.
func (s *Sink) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the connection.
func (s *Sink) Close() error { return s.conn.Close() }

// Rows is one unit of work: everything a set of raw messages produced.
type Rows struct {
	Events      []schemas.Event
	Findings    []schemas.Finding
	DeadLetters []schemas.DeadLetter
	// Redelivered marks rows that may already be stored (their message was
	// delivered before). Write skips ids that are already there.
	Redelivered bool
}

// Len is the number of rows of all kinds.
func (r *Rows) Len() int { return len(r.Events) + len(r.Findings) + len(r.DeadLetters) }

// Reset empties r, keeping capacity.
func (r *Rows) Reset() {
	r.Events, r.Findings, r.DeadLetters, r.Redelivered = r.Events[:0], r.Findings[:0], r.DeadLetters[:0], false
}

// Write stores rows. When it returns nil every row is durably in ClickHouse.
// On error part of the rows may have landed (one of the concurrent INSERTs,
// events before dead letters, a lost reply), so Write sets rows.Redelivered
// and leaves the rows otherwise unchanged: writing them again skips the ids
// already stored. IsPermanent tells whether retrying can help (the sink's own
// rows are typed, so in practice its errors are retryable: server down,
// timeouts, too many parts).
//
// Events are split into up to InsertConns contiguous slices inserted at once
// on separate connections; each INSERT sends blocks of BlockRows rows.
func (s *Sink) Write(ctx context.Context, rows *Rows) (err error) {
	defer func() {
		if err != nil {
			rows.Redelivered = true
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	events, findings, dls := rows.Events, rows.Findings, rows.DeadLetters
	if rows.Redelivered {
		var err error
		if events, findings, dls, err = s.skipStored(ctx, events, findings, dls); err != nil {
			return err
		}
	}
	if len(events) > 0 {
		if err := s.writeEvents(ctx, events); err != nil {
			return err
		}
	}
	if len(findings) > 0 {
		if err := s.send(ctx, s.insertFindings, len(findings), func(b driver.Batch, sc *scratch, lo, hi int) error { return appendFindings(b, sc, findings[lo:hi]) }); err != nil {
			return fmt.Errorf("insert %d detections: %w", len(findings), err)
		}
	}
	if len(dls) > 0 {
		if err := s.send(ctx, s.insertDeadLetters, len(dls), func(b driver.Batch, sc *scratch, lo, hi int) error { return appendDeadLetters(b, sc, dls[lo:hi]) }); err != nil {
			return fmt.Errorf("insert %d dead letters: %w", len(dls), err)
		}
	}
	return nil
}

// writeEvents inserts events as up to InsertConns concurrent INSERTs and
// waits for all of them, so nothing of this Write is still in flight when it
// returns.
func (s *Sink) writeEvents(ctx context.Context, evs []schemas.Event) error {
	n := min(s.cfg.InsertConns, len(evs)/s.cfg.BlockRows)
	if n <= 1 {
		if err := s.send(ctx, s.insertEvents, len(evs), func(b driver.Batch, sc *scratch, lo, hi int) error { return appendEvents(b, sc, evs[lo:hi]) }); err != nil {
			return fmt.Errorf("insert %d events: %w", len(evs), err)
		}
		return nil
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		part := evs[i*len(evs)/n : (i+1)*len(evs)/n]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.send(ctx, s.insertEvents, len(part), func(b driver.Batch, sc *scratch, lo, hi int) error { return appendEvents(b, sc, part[lo:hi]) }); err != nil {
				errs[i] = fmt.Errorf("insert %d of %d events (INSERT %d of %d): %w", len(part), len(evs), i+1, n, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// send runs one INSERT of n rows: fill appends rows [lo, hi) to the batch's
// columns, and every BlockRows rows the block is sent (Flush) and its column
// buffers are reused for the next.
func (s *Sink) send(ctx context.Context, query string, n int, fill func(b driver.Batch, sc *scratch, lo, hi int) error) error {
	sc := s.scratch.Get().(*scratch)
	defer func() {
		sc.release()
		s.scratch.Put(sc)
	}()
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare batch: %w", err)
	}
	defer b.Close()
	for lo := 0; lo < n; lo += s.cfg.BlockRows {
		hi := min(lo+s.cfg.BlockRows, n)
		if err := fill(b, sc, lo, hi); err != nil {
			_ = b.Abort()
			return err
		}
		if hi < n {
			if err := b.Flush(); err != nil {
				return fmt.Errorf("send block of rows %d-%d: %w", lo, hi, err)
			}
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return nil
}
