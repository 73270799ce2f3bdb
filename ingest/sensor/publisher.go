package sensor

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/normalize"
)

// maxDirectiveBlock bounds the directive block repeated at the start of
// every batch. With a record of at most ingest.MaxRecordBytes a batch then
// always stays under ingest.MaxBatchBytes.
const maxDirectiveBlock = 256 << 10

// Errors a Publisher returns.
var (
	ErrClosed       = errors.New("publisher closed")
	ErrNewline      = errors.New("record contains a newline")
	ErrAckTimeout   = errors.New("no PubAck before sensor.ack_timeout")
	errNotAcked     = errors.New("not acknowledged")
	errFatalPublish = errors.New("publish failed permanently")
)

// Line is one line of input without its newline.
type Line struct {
	// Data is the line, or the kept prefix of a line the reader cut short.
	// It is only valid until the reader's next call; Add copies it.
	Data []byte
	// Size is the original length of the line. Size > len(Data) means the
	// reader truncated it: the record is listed in Wf-Oversize.
	Size int
	// Offset is the byte offset of the line in its source, used for
	// positional message ids (see Source.Positional).
	Offset int64
}

// Source says what a Publisher carries and how it names its batches.
type Source struct {
	// Format supplies the subject's format token (Name) and the directive
	// rule (Directive). Only those two are used.
	Format *normalize.Format
	// Key names the source in message ids: "<sensor-id>:<Key>-<n>". Empty
	// means a random key for this Publisher, so ids of different runs and
	// different publishers of one sensor never collide.
	Key string
	// Positional makes n the Offset of the batch's first line instead of a
	// batch counter, so reading the same input twice produces the same
	// ids and the stream's duplicate window drops the second copy. Batch
	// boundaries must not depend on timing then, so Linger is ignored.
	Positional bool
	// Name names the source's spool directory (with the agency and
	// format) when Config.Spool is on; it must be the same on every run of
	// the same source. Empty means Key. With a spool and no Key, the key is
	// made once and kept in the spool, and batch numbers continue across
	// restarts, so ids of a restarted sensor never repeat earlier ones.
	Name string
}

// Stats is a snapshot of a Publisher's counters.
type Stats struct {
	Added      uint64 // records accepted by Add
	Records    uint64 // records in acknowledged batches
	Batches    uint64 // acknowledged batches
	Bytes      uint64 // payload bytes of acknowledged batches, as sent (after compression)
	Duplicates uint64 // acknowledged batches the stream already held (a resend or a re-run)
	Retries    uint64 // publish attempts after the first
	Oversize   uint64 // records truncated and listed in Wf-Oversize
	Failed     uint64 // records given up on (permanent error, or Close ran out of time without a spool)
	Dropped    uint64 // records the full spool deleted (drop-oldest) or found torn
	Spooled    uint64 // records on disk not yet acknowledged (sent on the next start)
	Pending    int    // batches closed and not yet acknowledged
}

// Add sums two snapshots.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Added: s.Added + o.Added, Records: s.Records + o.Records, Batches: s.Batches + o.Batches,
		Bytes: s.Bytes + o.Bytes, Duplicates: s.Duplicates + o.Duplicates, Retries: s.Retries + o.Retries,
		Oversize: s.Oversize + o.Oversize, Failed: s.Failed + o.Failed, Pending: s.Pending + o.Pending,
		Dropped: s.Dropped + o.Dropped, Spooled: s.Spooled + o.Spooled,
	}
}

// batch is one closed batch waiting for a slot or its PubAck.
type batch struct {
	msg      *nats.Msg
	records  int
	spooled  bool       // the batch is in the spool as entry spoolSeq
	spoolSeq uint64     // spool entry, when spooled
	span     trace.Span // nil unless the batch is traced
}

// Publisher batches the lines of one source of one (agency, format) and
// publishes them to ingest.RawSubject(agency, format).
//
// Add, Flush, Stats and Close are safe for concurrent use, but lines from
// concurrent Add calls interleave, so a source with directives (whose order
// matters) must be fed by one goroutine. Close must be called to release the
// Publisher's goroutines.
type Publisher struct {
	js      jetstream.JetStream
	cfg     Config
	src     Source
	log     *slog.Logger
	subject string
	key     string
	enc     *zstd.Encoder

	ctx    context.Context // ends when Close gives up: deliveries stop
	cancel context.CancelFunc
	slots  chan struct{} // one token per batch in flight
	wg     sync.WaitGroup
	stop   context.Context // ends when Close starts: the linger loop stops
	halt   context.CancelFunc
	lingWG sync.WaitGroup

	mu            sync.Mutex
	buf           []byte // current batch payload
	count         int    // records in buf
	firstOff      int64
	started       time.Time
	oversize      []ingest.Oversize
	block         []byte // latest directive block, newline-terminated lines
	lastDirective bool
	seq           uint64
	backlog       []*batch // closed batches whose submission was interrupted
	pending       int      // closed batches not yet settled
	idle          chan struct{}
	closed        bool
	fatal         error

	spool  *spool // nil without Config.Spool
	sendWG sync.WaitGroup

	tracer trace.Tracer // nil: traceparent with fresh ids, no span recorded here

	added, records, batches, bytes, dups, retries, over, failed, dropped atomic.Uint64
	lastWarn                                                             atomic.Int64
}

// NewPublisher returns a Publisher for src. js should be created with
// jetstream.WithPublishAsyncTimeout (about cfg.AckTimeout) so futures the
// Publisher stops waiting for are released.
func NewPublisher(js jetstream.JetStream, cfg Config, src Source, log *slog.Logger, opts ...Option) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("new publisher: nil JetStream")
	}
	if src.Format == nil {
		return nil, errors.New("new publisher: source format is required")
	}
	if err := ingest.ValidateFormatName(src.Format.Name); err != nil {
		return nil, fmt.Errorf("new publisher: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := src.Key
	if key == "" {
		var b [4]byte
		_, _ = crand.Read(b[:])
		key = hex.EncodeToString(b[:])
	}
	if err := ValidateSensorID(key); err != nil {
		return nil, fmt.Errorf("new publisher: source key: %w", err)
	}
	p := &Publisher{
		js:      js,
		cfg:     cfg,
		src:     src,
		subject: ingest.RawSubject(cfg.Agency, src.Format.Name),
		key:     key,
		slots:   make(chan struct{}, cfg.MaxInFlight),
		idle:    make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	p.log = log.With("agency", cfg.Agency, "format", src.Format.Name, "source", key)
	close(p.idle)
	if cfg.Compress {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("new publisher: zstd: %w", err)
		}
		p.enc = enc
	}
	if cfg.Spool.Dir != "" {
		name := src.Name
		if name == "" {
			name = src.Key
		}
		if name == "" {
			return nil, errors.New("new publisher: a spool needs a stable Source.Name or Source.Key")
		}
		if err := ValidateSensorID(name); err != nil {
			return nil, fmt.Errorf("new publisher: source name: %w", err)
		}
		dir := filepath.Join(cfg.Spool.Dir, cfg.Agency+"."+src.Format.Name+"."+name)
		sp, err := openSpool(cfg.Spool, dir, src.Key, p.log)
		if err != nil {
			return nil, fmt.Errorf("new publisher: %w", err)
		}
		p.spool, p.key = sp, sp.key
		if n, _, _ := sp.stats(); n > 0 {
			p.pending = n
			p.idle = make(chan struct{})
			p.log.Info("resending spooled batches", "spool", dir, "batches", n, "records", sp.records())
		}
		p.dropped.Add(uint64(sp.torn))
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.stop, p.halt = context.WithCancel(p.ctx)
	if p.spool != nil {
		p.sendWG.Go(p.sendLoop)
	}
	if cfg.Linger > 0 && !src.Positional {
		p.lingWG.Go(p.lingerLoop)
	}
	return p, nil
}

// Subject is where the Publisher publishes.
func (p *Publisher) Subject() string { return p.subject }

// Add adds one line: a directive (per the source format), a record, or
// nothing if it is empty. A record longer than ingest.MaxRecordBytes is cut to
// ingest.OversizePrefix bytes and listed in Wf-Oversize. Add blocks while
// sensor.max_in_flight batches await their PubAck; ctx bounds that wait. A
// batch closed by an interrupted Add is kept and sent by Flush or Close.
// l.Data is copied; the caller keeps it.
func (p *Publisher) Add(ctx context.Context, l Line) error {
	data := l.Data
	size := max(l.Size, len(data))
	if len(data) == 0 {
		return nil
	}
	if bytes.IndexByte(data, '\n') >= 0 {
		return fmt.Errorf("add line at offset %d: %w", l.Offset, ErrNewline)
	}
	if len(data) > ingest.MaxRecordBytes {
		data = data[:ingest.OversizePrefix]
	}
	truncated := size > len(data)

	p.mu.Lock()
	if err := p.usableLocked(); err != nil {
		p.mu.Unlock()
		return err
	}
	var full []*batch
	if !truncated && p.src.Format.Directive(data) {
		full = p.addDirectiveLocked(data)
	} else {
		full = p.addRecordLocked(data, size, truncated, l.Offset)
	}
	p.mu.Unlock()
	for _, b := range full {
		if err := p.submit(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) usableLocked() error {
	if p.fatal != nil {
		return p.fatal
	}
	if p.closed {
		return ErrClosed
	}
	return nil
}

func (p *Publisher) addDirectiveLocked(d []byte) []*batch {
	if !p.lastDirective {
		p.block = p.block[:0]
	}
	p.lastDirective = true
	if len(p.block)+len(d)+1 > maxDirectiveBlock {
		p.warn("directive block exceeds limit; keeping only the latest directive", "limit", maxDirectiveBlock)
		p.block = p.block[:0]
	}
	p.block = append(append(p.block, d...), '\n')
	if p.count == 0 {
		return nil // the batch starts with the block once it has a record
	}
	var full []*batch
	if len(p.buf)+len(d)+1 > p.cfg.BatchBytes {
		full = append(full, p.sealLocked()) // the next batch repeats the block, this directive included
		return full
	}
	p.buf = append(append(p.buf, d...), '\n')
	return nil
}

func (p *Publisher) addRecordLocked(r []byte, size int, truncated bool, off int64) []*batch {
	p.lastDirective = false
	var full []*batch
	if p.count > 0 && len(p.buf)+len(r)+1 > p.cfg.BatchBytes {
		full = append(full, p.sealLocked())
	}
	if p.count == 0 {
		p.buf = append(p.buf[:0], p.block...)
		p.firstOff = off
		p.started = time.Now()
	}
	if truncated {
		p.oversize = append(p.oversize, ingest.Oversize{Index: p.count, Size: size})
		p.over.Add(1)
	}
	p.buf = append(append(p.buf, r...), '\n')
	p.count++
	p.added.Add(1)
	if p.count >= p.cfg.BatchRecords {
		full = append(full, p.sealLocked())
	}
	return full
}

// sealLocked closes the current batch (count > 0) into a message.
func (p *Publisher) sealLocked() *batch {
	n := p.seq
	p.seq++
	if p.src.Positional {
		n = uint64(p.firstOff)
	} else if p.spool != nil {
		var err error
		if n, err = p.spool.nextBatchSeq(); err != nil && p.fatal == nil {
			p.fatal = fmt.Errorf("%w: %w", errFatalPublish, err)
		}
	}
	id := make([]byte, 0, len(p.cfg.SensorID)+len(p.key)+22)
	id = append(append(append(id, p.cfg.SensorID...), ':'), p.key...)
	id = strconv.AppendUint(append(id, '-'), n, 10)

	h := nats.Header{}
	h.Set(ingest.HeaderMsgID, string(id))
	h.Set(ingest.HeaderSensor, p.cfg.SensorID)
	h.Set(ingest.HeaderCount, strconv.Itoa(p.count))
	if len(p.oversize) > 0 {
		h.Set(ingest.HeaderOversize, ingest.FormatOversize(p.oversize))
	}
	var data []byte
	if p.enc != nil {
		data = p.enc.EncodeAll(p.buf, make([]byte, 0, len(p.buf)/4))
		h.Set(ingest.HeaderEncoding, "zstd")
	} else {
		data = bytes.Clone(p.buf)
	}
	b := &batch{msg: &nats.Msg{Subject: p.subject, Header: h, Data: data}, records: p.count}
	p.traceBatch(b)
	p.buf = p.buf[:0]
	p.count = 0
	p.oversize = p.oversize[:0]
	if p.pending == 0 {
		p.idle = make(chan struct{})
	}
	p.pending++
	return b
}

// submit waits for an in-flight slot and sends b's first attempt from the
// caller's goroutine, so batches reach the server in the order they closed;
// a goroutine then waits for the PubAck and retries. If ctx ends before a
// slot frees, b goes to the backlog that Flush sends.
func (p *Publisher) submit(ctx context.Context, b *batch) error {
	if p.spool != nil {
		return p.spoolBatch(ctx, b)
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		p.mu.Lock()
		p.backlog = append(p.backlog, b)
		p.mu.Unlock()
		return ctx.Err()
	}
	f, err := p.js.PublishMsgAsync(b.msg)
	p.wg.Go(func() { p.deliver(b, f, err) })
	return nil
}

// spoolBatch writes b to the spool; sendLoop publishes it from there.
func (p *Publisher) spoolBatch(ctx context.Context, b *batch) error {
	_, dropped, err := p.spool.put(ctx, b.msg, b.records)
	if err == nil {
		// The batch now lives on disk and is sent from there (its
		// traceparent header with it); this span covers batching only.
		endBatchSpan(b, nil, nil)
	}
	if len(dropped) > 0 {
		var recs int
		for _, e := range dropped {
			recs += e.records
		}
		p.dropped.Add(uint64(recs))
		p.mu.Lock()
		p.pending -= len(dropped)
		if p.pending == 0 {
			close(p.idle)
		}
		p.mu.Unlock()
		p.warn("spool full: dropped the oldest batches", "spool", p.spool.dir, "batches", len(dropped), "records", recs,
			"dropped_records_total", p.dropped.Load(), "limit_bytes", p.cfg.Spool.MaxBytes)
	}
	if err != nil {
		p.mu.Lock()
		p.backlog = append(p.backlog, b)
		p.mu.Unlock()
		return err
	}
	return nil
}

// sendLoop publishes spooled entries oldest first, at most
// sensor.max_in_flight at a time, until Close gives up or finishes.
func (p *Publisher) sendLoop() {
	for {
		seq, m, records, err := p.spool.nextEntry(p.ctx)
		if p.ctx.Err() != nil {
			return
		}
		if err != nil { // torn entry, quarantined
			p.dropped.Add(uint64(max(records, 0)))
			p.mu.Lock()
			p.pending--
			if p.pending == 0 {
				close(p.idle)
			}
			p.mu.Unlock()
			continue
		}
		select {
		case p.slots <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		b := &batch{msg: m, records: records, spooled: true, spoolSeq: seq}
		f, err := p.js.PublishMsgAsync(b.msg)
		p.wg.Go(func() { p.deliver(b, f, err) })
	}
}

// deliver waits for b's PubAck and resends b until the stream acknowledges
// it, the error is permanent, or the Publisher gives up (Close out of time).
// f and err are the outcome of the first PublishMsgAsync.
func (p *Publisher) deliver(b *batch, f jetstream.PubAckFuture, err error) {
	defer func() { <-p.slots }()
	backoff := p.cfg.RetryMin
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.retries.Add(1)
			// Full jitter over [backoff/2, backoff].
			d := backoff/2 + rand.N(backoff/2+1)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.ctx.Done():
				t.Stop()
				p.settle(b, nil, p.ctx.Err())
				return
			}
			backoff = min(2*backoff, p.cfg.RetryMax)
			f, err = p.js.PublishMsgAsync(b.msg)
		}
		var ack *jetstream.PubAck
		if err == nil {
			ack, err = p.wait(f)
		}
		if err == nil {
			p.settle(b, ack, nil)
			return
		}
		if p.ctx.Err() != nil {
			p.settle(b, nil, p.ctx.Err())
			return
		}
		if !Retryable(err) {
			p.settle(b, nil, fmt.Errorf("%w: publish %s to %s: %w", errFatalPublish, b.msg.Header.Get(ingest.HeaderMsgID), p.subject, err))
			return
		}
		p.warn("publish failed, retrying", "batch", b.msg.Header.Get(ingest.HeaderMsgID), "attempt", attempt+1, "err", err)
	}
}

// wait waits for the outcome of one publish attempt.
func (p *Publisher) wait(f jetstream.PubAckFuture) (*jetstream.PubAck, error) {
	t := time.NewTimer(p.cfg.AckTimeout)
	defer t.Stop()
	select {
	case ack := <-f.Ok():
		return ack, nil
	case err := <-f.Err():
		return nil, err
	case <-t.C:
		return nil, ErrAckTimeout
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

// settle records the outcome of one batch.
func (p *Publisher) settle(b *batch, ack *jetstream.PubAck, err error) {
	endBatchSpan(b, ack, err)
	if b.spooled {
		kept := err != nil && !errors.Is(err, errFatalPublish) // Close gave up: resent on the next start
		if kept {
			p.mu.Lock()
			p.pending--
			if p.pending == 0 {
				close(p.idle)
			}
			p.mu.Unlock()
			return
		}
		if !p.spool.remove(b.spoolSeq) {
			// Dropped to make room while in flight: already accounted.
			if err == nil {
				p.records.Add(uint64(b.records))
				p.batches.Add(1)
			}
			return
		}
	}
	if err == nil {
		p.records.Add(uint64(b.records))
		p.batches.Add(1)
		p.bytes.Add(uint64(len(b.msg.Data)))
		if ack != nil && ack.Duplicate {
			p.dups.Add(1)
		}
	} else {
		p.failed.Add(uint64(b.records))
		if errors.Is(err, errFatalPublish) {
			p.log.Error("batch not published", "batch", b.msg.Header.Get(ingest.HeaderMsgID), "records", b.records, "err", err)
		}
	}
	p.mu.Lock()
	if err != nil && errors.Is(err, errFatalPublish) && p.fatal == nil {
		p.fatal = err
	}
	p.pending--
	if p.pending == 0 {
		close(p.idle)
	}
	p.mu.Unlock()
}

// Retryable reports whether a publish error is worth resending the same
// message for: the stream pushing back, the connection down or reconnecting,
// a missing PubAck, nats.ErrHeadersNotSupported (what nats.go says before
// it has ever reached a server). Anything the server rejects for the message itself (too
// large, bad subject, a JetStream API error other than push-back) is not.
func Retryable(err error) bool {
	if ingest.IsPushback(err) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.Code == 408
	}
	switch {
	case errors.Is(err, nats.ErrMaxPayload),
		errors.Is(err, nats.ErrBadSubject),
		errors.Is(err, nats.ErrInvalidMsg),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrAsyncPublishReplySubjectSet):
		return false
	}
	return true
}

// Flush closes the current batch and waits until every batch added so far is
// acknowledged (or given up on). It returns the first permanent publish
// error, or ctx's error if ctx ends first; batches still in flight then keep
// being retried.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.fatal != nil {
		err := p.fatal
		p.mu.Unlock()
		return err
	}
	todo := p.backlog
	p.backlog = nil
	if p.count > 0 {
		todo = append(todo, p.sealLocked())
	}
	p.mu.Unlock()
	for i, b := range todo {
		if err := p.submit(ctx, b); err != nil {
			p.mu.Lock()
			p.backlog = append(p.backlog, todo[i+1:]...)
			p.mu.Unlock()
			return fmt.Errorf("flush %s: %w", p.subject, err)
		}
	}
	p.mu.Lock()
	idle := p.idle
	p.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
		return fmt.Errorf("flush %s: %w", p.subject, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fatal
}

// Close flushes, waits for every PubAck, and releases the Publisher. If ctx
// ends first, the batches still unacknowledged are abandoned and counted in
// Stats.Failed, and Close says how many records that was.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.mu.Unlock()
	p.halt()
	p.lingWG.Wait()
	err := p.Flush(ctx)
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.sendWG.Wait()
	p.wg.Wait()
	p.mu.Lock()
	var lost int
	for _, b := range p.backlog {
		lost += b.records
		p.pending--
	}
	p.backlog = nil
	p.mu.Unlock()
	p.failed.Add(uint64(lost))
	if p.enc != nil {
		p.enc.Close()
	}
	if f := p.failed.Load(); f > 0 && err != nil && !errors.Is(err, errFatalPublish) {
		err = fmt.Errorf("close publisher %s: %d records %w: %w", p.subject, f, errNotAcked, err)
	}
	if p.spool != nil && err != nil && !errors.Is(err, errFatalPublish) {
		if n := p.spool.records(); n > 0 {
			err = fmt.Errorf("close publisher %s: %d records %w, kept in spool %s and sent on the next start: %w", p.subject, n, errNotAcked, p.spool.dir, err)
		}
	}
	return err
}

// Stats returns a snapshot of the counters.
func (p *Publisher) Stats() Stats {
	p.mu.Lock()
	pending := p.pending
	p.mu.Unlock()
	var spooled uint64
	if p.spool != nil {
		spooled = uint64(p.spool.records())
	}
	return Stats{
		Added: p.added.Load(), Records: p.records.Load(), Batches: p.batches.Load(), Bytes: p.bytes.Load(),
		Duplicates: p.dups.Load(), Retries: p.retries.Load(), Oversize: p.over.Load(), Failed: p.failed.Load(),
		Dropped: p.dropped.Load(), Spooled: spooled, Pending: pending,
	}
}

// lingerLoop closes a partial batch once its first record is Linger old.
func (p *Publisher) lingerLoop() {
	tick := max(p.cfg.Linger/4, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop.Done():
			return
		case <-t.C:
		}
		var b *batch
		p.mu.Lock()
		if p.count > 0 && p.fatal == nil && time.Since(p.started) >= p.cfg.Linger {
			b = p.sealLocked()
		}
		p.mu.Unlock()
		if b == nil {
			continue
		}
		_ = p.submit(p.stop, b) // interrupted by Close: b is in the backlog Close flushes
	}
}

// warn logs at most one warning per second per Publisher.
func (p *Publisher) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := p.lastWarn.Load()
	if now-last < int64(time.Second) || !p.lastWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn(msg, args...)
}
