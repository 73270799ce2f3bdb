package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"
	"github.com/sourcegraph/conc/pool"
	"go.opentelemetry.io/otel/trace"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// Store is where settled rows go. A nil error means the rows are durable;
// any error is treated as retryable (ClickHouse down, timeout).
type Store interface {
	Write(ctx context.Context, rows *sink.Rows) error
}

// Rules evaluates one event. Implementations are safe for concurrent use.
type Rules interface {
	Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding
}

// FindingPublisher publishes findings to soc.detections.<agency>.<level>.
type FindingPublisher interface {
	Publish(ctx context.Context, findings []schemas.Finding) error
}

// PipelineConfig sizes the consumer, the worker pool and the flushes.
type PipelineConfig struct {
	Durable       string        // durable consumer name shared by all instances
	Workers       int           // goroutines decoding, normalizing and evaluating batches
	FetchBatch    int           // messages pulled per request
	MaxAckPending int           // unacknowledged messages the server hands this consumer
	AckWait       time.Duration // redelivery after this long without ack or progress
	MaxDeliver    int           // a batch delivered more often than this becomes dead letters (it crashes or stalls us)
	FlushRows     int           // rows that trigger a ClickHouse insert
	FlushInterval time.Duration // longest wait before an insert of whatever is pending
	Flushers      int           // inserts in flight at once; the collector fills the next one meanwhile
	RetryMax      time.Duration // ceiling of the backoff between failed inserts
	DrainTimeout  time.Duration // how long a shutdown may spend storing what is in flight
}

// earlyPublishTimeout bounds how long a worker waits for the stream to
// acknowledge a batch's findings before leaving them to settle.
const earlyPublishTimeout = 2 * time.Second

// DefaultPipelineConfig suits one instance on a small machine.
func DefaultPipelineConfig() PipelineConfig {
	return PipelineConfig{
		Durable:       "watchfloor",
		Workers:       runtime.GOMAXPROCS(0),
		FetchBatch:    64,
		MaxAckPending: 1024,
		AckWait:       2 * time.Minute,
		MaxDeliver:    10,
		FlushRows:     50000,
		FlushInterval: time.Second,
		Flushers:      1,
		RetryMax:      30 * time.Second,
		DrainTimeout:  60 * time.Second,
	}
}

// Validate reports the first bad setting, naming its key.
func (c PipelineConfig) Validate() error {
	switch {
	case c.Durable == "" || len(c.Durable) > 64:
		return fmt.Errorf("pipeline.durable must be 1 to 64 characters, got %q", c.Durable)
	case c.Workers < 1 || c.Workers > 1024:
		return fmt.Errorf("pipeline.workers must be between 1 and 1024, got %d", c.Workers)
	case c.FetchBatch < 1 || c.FetchBatch > 10000:
		return fmt.Errorf("pipeline.fetch_batch must be between 1 and 10000, got %d", c.FetchBatch)
	case c.MaxAckPending < c.FetchBatch:
		return fmt.Errorf("pipeline.max_ack_pending must be at least pipeline.fetch_batch (%d), got %d", c.FetchBatch, c.MaxAckPending)
	case c.AckWait < 10*time.Second:
		return fmt.Errorf("pipeline.ack_wait must be at least 10s, got %s", c.AckWait)
	case c.MaxDeliver < 2 || c.MaxDeliver > 1000:
		return fmt.Errorf("pipeline.max_deliver must be between 2 and 1000, got %d", c.MaxDeliver)
	case c.FlushRows < 1 || c.FlushRows > 1000000:
		return fmt.Errorf("pipeline.flush_rows must be between 1 and 1000000, got %d", c.FlushRows)
	case c.FlushInterval < 10*time.Millisecond || c.FlushInterval > c.AckWait/4:
		return fmt.Errorf("pipeline.flush_interval must be between 10ms and a quarter of pipeline.ack_wait, got %s", c.FlushInterval)
	case c.Flushers < 1 || c.Flushers > 16:
		return fmt.Errorf("pipeline.flushers must be between 1 and 16, got %d", c.Flushers)
	case c.RetryMax < 100*time.Millisecond:
		return fmt.Errorf("pipeline.retry_max must be at least 100ms, got %s", c.RetryMax)
	case c.DrainTimeout < time.Second:
		return fmt.Errorf("pipeline.drain_timeout must be at least 1s, got %s", c.DrainTimeout)
	}
	return nil
}

// Pipeline consumes SOC_RAW and settles each message once its rows are
// stored. It is one JetStream hop: decode, normalize, detect and the sink
// hand-off run in-process on the same batch.
type Pipeline struct {
	cfg      PipelineConfig
	js       jetstream.JetStream
	formats  *normalize.Registry
	store    Store
	findings FindingPublisher
	corr     CorrPublisher // nil: correlations run inside Rules (in-process)
	log      *slog.Logger
	metrics  *Metrics
	now      func() time.Time

	tracer  trace.Tracer // nil: no tracing (see SetTracerProvider)
	rules   atomic.Pointer[rulesHolder]
	ready   atomic.Bool
	pending atomic.Int64 // consumer lag seen at the last poll

	heldMu sync.Mutex
	held   map[jetstream.Msg]time.Time // delivered, not yet settled: kept alive with InProgress
}

type rulesHolder struct{ r Rules }

// NewPipeline wires a pipeline. metrics may be nil (no-op).
func NewPipeline(cfg PipelineConfig, js jetstream.JetStream, formats *normalize.Registry, store Store, rules Rules, findings FindingPublisher, metrics *Metrics, log *slog.Logger) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil || formats == nil || store == nil || rules == nil || findings == nil || log == nil {
		return nil, errors.New("new pipeline: js, formats, store, rules, findings and log are required")
	}
	if metrics == nil {
		metrics = NopMetrics()
	}
	p := &Pipeline{cfg: cfg, js: js, formats: formats, store: store, findings: findings, log: log, metrics: metrics, now: time.Now,
		held: make(map[jetstream.Msg]time.Time)}
	p.SetRules(rules)
	return p, nil
}

// SetRules swaps the rule set. Each batch is evaluated by the one set that
// was current when its processing began.
func (p *Pipeline) SetRules(r Rules) { p.rules.Store(&rulesHolder{r}) }

// Ready reports whether the consumer is running.
func (p *Pipeline) Ready() bool { return p.ready.Load() }

// ConsumerConfig is the durable consumer every instance shares.
func (c PipelineConfig) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "watchfloor pipeline: normalize, detect, store",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		// Unlimited deliveries on the server: it would drop a message that
		// exceeds its limit. The pipeline applies pipeline.max_deliver itself
		// and turns such a batch into dead letters with the reason.
		MaxDeliver:    -1,
		FilterSubject: RawSubjectsAll,
		MaxAckPending: c.MaxAckPending,
	}
}

// Run consumes until ctx ends, then drains: no new messages are taken,
// in-flight batches are processed, stored and acked, and Run returns.
func (p *Pipeline) Run(ctx context.Context) error {
	cons, err := p.js.CreateOrUpdateConsumer(ctx, StreamRaw, p.cfg.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", p.cfg.Durable, StreamRaw, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(p.cfg.FetchBatch))
	if err != nil {
		return fmt.Errorf("consume %s: %w", StreamRaw, err)
	}
	stopOnCancel := context.AfterFunc(ctx, it.Drain)
	defer stopOnCancel()

	results := make(chan *processed, p.cfg.Workers)
	var bg conc.WaitGroup
	var collectErr error
	bg.Go(func() { collectErr = p.collect(ctx, results) })
	lagCtx, stopLag := context.WithCancel(context.Background())
	bg.Go(func() { p.pollLag(lagCtx, cons) })
	bg.Go(func() { p.keepAlive(lagCtx) })

	p.ready.Store(true)
	p.log.Info("pipeline consuming", "stream", StreamRaw, "durable", p.cfg.Durable, "workers", p.cfg.Workers)
	workers := pool.New().WithMaxGoroutines(p.cfg.Workers)
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			p.log.Warn("next raw message", "err", err)
			continue
		}
		p.hold(msg)
		workers.Go(func() { results <- p.process(msg) })
	}
	p.ready.Store(false)
	workers.Wait()
	close(results)
	stopLag()
	bg.Wait()
	p.log.Info("pipeline drained")
	return collectErr
}

func (p *Pipeline) hold(m jetstream.Msg) {
	p.heldMu.Lock()
	p.held[m] = p.now()
	p.heldMu.Unlock()
}

func (p *Pipeline) release(m jetstream.Msg) {
	p.heldMu.Lock()
	delete(p.held, m)
	p.heldMu.Unlock()
}

// keepAlive tells the server that messages held longer than a quarter of
// the ack wait (queued behind a slow flush, a ClickHouse outage, a slow
// batch) are still in progress, so they are not redelivered meanwhile and
// their delivery count does not grow towards pipeline.max_deliver.
func (p *Pipeline) keepAlive(ctx context.Context) {
	every := p.cfg.AckWait / 4
	t := time.NewTicker(every)
	defer t.Stop()
	var due []jetstream.Msg
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := p.now()
		due = due[:0]
		p.heldMu.Lock()
		for m, since := range p.held {
			if now.Sub(since) >= every {
				due = append(due, m)
				p.held[m] = now
			}
		}
		p.heldMu.Unlock()
		for _, m := range due {
			if err := m.InProgress(); err != nil {
				p.log.Debug("in progress", "subject", m.Subject(), "err", err)
			}
		}
	}
}

func (p *Pipeline) pollLag(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			info, err := cons.Info(ctx)
			if err != nil {
				continue
			}
			p.pending.Store(int64(info.NumPending))
			p.metrics.setLag(int64(info.NumPending), int64(info.NumAckPending))
		}
	}
}

// processed is everything one raw message produced.
type processed struct {
	msg         jetstream.Msg
	events      []schemas.Event
	findings    []schemas.Finding
	deadLetters []schemas.DeadLetter
	corrInputs  []detect.CorrInput // routed correlations: published before the ack
	redelivered bool
	records     int
	span        trace.Span // the batch span, ended once the message is settled
	exceeded    bool       // delivered more than pipeline.max_deliver times: dead letters only
	seq         uint64     // stream sequence, 0 if unknown
	published   bool       // its findings are published (acknowledged by the stream)
	// corrPublished: its correlation inputs are published (routed mode).
	corrPublished bool
	// Where this message's rows sit in its flush's Rows, so a flush the
	// store refuses can be retried message by message.
	evs, fis, dls [2]int
}

// seqRing remembers the stream sequences of the last settled messages, so
// a late second copy of one (redelivered after its ack wait while it sat in
// the pull buffer) is written with the stored-id check.
type seqRing struct {
	mu   sync.Mutex
	ring []uint64
	next int
	set  map[uint64]struct{}
}

func newSeqRing(n int) *seqRing {
	return &seqRing{ring: make([]uint64, n), set: make(map[uint64]struct{}, n)}
}

func (r *seqRing) add(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[seq]; ok || seq == 0 {
		return
	}
	if old := r.ring[r.next]; old != 0 {
		delete(r.set, old)
	}
	r.ring[r.next] = seq
	r.next = (r.next + 1) % len(r.ring)
	r.set[seq] = struct{}{}
}

func (r *seqRing) has(seq uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[seq]
	return ok
}

// flushJob is one insert: the messages and the rows they produced.
type flushJob struct {
	batch []*processed
	rows  *sink.Rows
}

// collect owns the pending rows: it cuts them into flushes on size or time
// and hands each to one of cfg.Flushers settling goroutines, which ack the
// messages only after the store accepted their rows. The hand-off is
// unbuffered, so when every flusher is busy the collector blocks, results
// back up into the workers and the consumer's MaxAckPending bounds the rest:
// at most Flushers+1 flushes of rows are in memory.
//
// Acks of different flushes may land in any order: each message is acked on
// its own (AckExplicit), never cumulatively.
func (p *Pipeline) collect(ctx context.Context, results <-chan *processed) error {
	// Flushes in progress when ctx ends get DrainTimeout more to finish.
	fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer fcancel()
	stopDrainClock := context.AfterFunc(ctx, func() { time.AfterFunc(p.cfg.DrainTimeout, fcancel) })
	defer stopDrainClock()

	jobs := make(chan flushJob)
	free := make(chan *sink.Rows, p.cfg.Flushers+1)
	for range p.cfg.Flushers + 1 {
		free <- new(sink.Rows)
	}
	var flushers conc.WaitGroup
	var errOnce sync.Once
	var flushErr error
	recent := newSeqRing(1 << 16)
	for range p.cfg.Flushers {
		flushers.Go(func() {
			for j := range jobs {
				if err := p.settle(fctx, j.batch, j.rows); err != nil {
					// Only a context that ended stops settle; the messages
					// stay unacked and are redelivered.
					errOnce.Do(func() { flushErr = err })
				} else {
					for _, r := range j.batch {
						recent.add(r.seq)
					}
				}
				j.rows.Reset()
				free <- j.rows
			}
		})
	}
	stopFlushers := sync.OnceFunc(func() {
		close(jobs)
		flushers.Wait()
	})
	defer stopFlushers()

	var (
		batch   []*processed
		rows    = <-free
		oldest  time.Time
		inBatch = map[uint64]struct{}{}
	)
	tick := time.NewTicker(p.cfg.FlushInterval / 4)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		jobs <- flushJob{batch: batch, rows: rows}
		batch = make([]*processed, 0, cap(batch))
		rows = <-free
		clear(inBatch)
	}
	for {
		select {
		case r, ok := <-results:
			if !ok {
				flush()
				stopFlushers()
				if ctx.Err() != nil && errors.Is(flushErr, context.Canceled) {
					return nil
				}
				return flushErr
			}
			if r.exceeded {
				if err := p.settleExceeded(ctx, r); err != nil && ctx.Err() == nil {
					return err
				}
				continue
			}
			if len(batch) == 0 {
				oldest = p.now()
			}
			if r.seq != 0 {
				if _, dup := inBatch[r.seq]; dup {
					// A second copy of a message already in this flush
					// (redelivered while the first waited): ack it, store
					// its rows once.
					batch = append(batch, &processed{msg: r.msg, seq: r.seq})
					continue
				}
				inBatch[r.seq] = struct{}{}
				if recent.has(r.seq) {
					r.redelivered = true
				}
			}
			batch = append(batch, r)
			r.evs[0], r.fis[0], r.dls[0] = len(rows.Events), len(rows.Findings), len(rows.DeadLetters)
			rows.Events = append(rows.Events, r.events...)
			rows.Findings = append(rows.Findings, r.findings...)
			rows.DeadLetters = append(rows.DeadLetters, r.deadLetters...)
			r.evs[1], r.fis[1], r.dls[1] = len(rows.Events), len(rows.Findings), len(rows.DeadLetters)
			rows.Redelivered = rows.Redelivered || r.redelivered
			// The rows now live in rows; only the message is still needed
			// (for its ack), so let the per-message copies go to the GC.
			r.events, r.findings, r.deadLetters = nil, nil, nil
			if rows.Len() >= p.cfg.FlushRows {
				flush()
			}
		case <-tick.C:
			if len(batch) > 0 && p.now().Sub(oldest) >= p.cfg.FlushInterval {
				flush()
			}
		}
	}
}

// settle publishes the findings, stores the rows (retrying with backoff
// while the store is down and telling the server the messages are still in
// progress), then acks. If ctx ends first the messages stay unacked and the
// server redelivers them; their deterministic ids make that harmless.
//
// Findings go first so an analyst is paged without waiting for the insert:
// a redelivery republishes them under the same Nats-Msg-Id (the finding id),
// which SOC_DETECTIONS' duplicate window drops, and the ack still waits for
// both, so nothing is lost if either fails.
func (p *Pipeline) settle(ctx context.Context, batch []*processed, rows *sink.Rows) (err error) {
	defer func() { endBatches(batch, err) }()
	flushAttrs := flushAttributes(batch, rows)
	// The workers published most findings already; what failed there is
	// published now, before anything is acked.
	var unpublished []schemas.Finding
	for _, r := range batch {
		if !r.published && r.fis[1] > r.fis[0] {
			unpublished = append(unpublished, rows.Findings[r.fis[0]:r.fis[1]]...)
		}
	}
	if len(unpublished) > 0 {
		if err := p.traceSettle(batch, SpanPublish, func() error {
			return p.retry(ctx, batch, "publish findings", func(ctx context.Context) error { return p.findings.Publish(ctx, unpublished) })
		}, flushAttrs...); err != nil {
			return err
		}
	}
	if p.corr != nil {
		var ins []detect.CorrInput
		for _, r := range batch {
			if !r.corrPublished {
				ins = append(ins, r.corrInputs...)
			}
		}
		if len(ins) > 0 {
			if err := p.retry(ctx, batch, "publish correlation inputs", func(ctx context.Context) error { return p.corr.Publish(ctx, ins) }); err != nil {
				return err
			}
		}
	}
	start := p.now()
	store := func(ctx context.Context) error {
		err := p.store.Write(ctx, rows)
		if err != nil {
			// Part of the rows may have been stored (events before dead
			// letters, or a lost reply): the next attempt skips stored ids.
			rows.Redelivered = true
		}
		return err
	}
	if err := p.traceSettle(batch, SpanStore, func() error {
		return p.retry(ctx, batch, "store rows", store)
	}, flushAttrs...); err != nil {
		if errors.Is(err, errRefused) {
			return p.settleRefused(ctx, batch, rows, err)
		}
		return err
	}
	p.metrics.stored(ctx, rows, p.now().Sub(start))
	_ = p.traceSettle(batch, SpanAck, func() error {
		for _, r := range batch {
			p.release(r.msg)
			if err := r.msg.Ack(); err != nil {
				// The rows are stored; a lost ack means a redelivery that the
				// sink's id check turns into a no-op.
				p.log.Warn("ack raw message", "subject", r.msg.Subject(), "err", err)
			}
		}
		return nil
	})
	p.metrics.acked(ctx, len(batch))
	return nil
}

func (p *Pipeline) retry(ctx context.Context, batch []*processed, what string, fn func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				p.log.Info(what+" recovered", "attempts", attempt)
			}
			return nil
		}
		if sink.IsPermanent(err) {
			// Retrying the same rows cannot succeed (bad data, schema
			// mismatch): the caller splits them or dead-letters them.
			return fmt.Errorf("%s: %w: %w", what, errRefused, err)
		}
		p.metrics.retried(ctx, what)
		if attempt == 1 || attempt%10 == 0 {
			p.log.Warn(what+" failed, retrying", "attempt", attempt, "backoff", backoff, "messages", len(batch), "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: gave up after %d attempts: %w", what, attempt, errors.Join(ctx.Err(), err))
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, p.cfg.RetryMax)
	}
}

// errRefused marks a store error that retrying cannot fix (sink.IsPermanent
// decides, in one place).
var errRefused = errors.New("refused by the store")

// settleRefused handles a flush the store refused for good. The flush is
// stored again message by message, so one bad message does not hold back
// the rest; a message whose own rows are refused has every record stored as
// a dead letter with the store's reason, or, if even that is refused, its raw
// batch goes to soc.dlq.<agency>.<format> (see settleExceeded). Its findings
// were already published.
func (p *Pipeline) settleRefused(ctx context.Context, batch []*processed, rows *sink.Rows, cause error) error {
	p.log.Error("the store refused a flush; storing it message by message", "messages", len(batch), "err", cause)
	for _, r := range batch {
		one := sink.Rows{
			Events:      rows.Events[r.evs[0]:r.evs[1]],
			Findings:    rows.Findings[r.fis[0]:r.fis[1]],
			DeadLetters: rows.DeadLetters[r.dls[0]:r.dls[1]],
			Redelivered: true, // part of the flush may have landed
		}
		err := p.retry(ctx, []*processed{r}, "store rows of one message", func(ctx context.Context) error { return p.store.Write(ctx, &one) })
		if err == nil {
			p.metrics.stored(ctx, &one, 0)
			p.release(r.msg)
			if err := r.msg.Ack(); err != nil {
				p.log.Warn("ack raw message", "subject", r.msg.Subject(), "err", err)
			}
			p.metrics.acked(ctx, 1)
			continue
		}
		if !errors.Is(err, errRefused) {
			return err // ctx ended: left for redelivery
		}
		reason := truncate("the store refused this batch's rows: "+err.Error(), 1024)
		msgID := r.msg.Headers().Get(HeaderMsgID)
		received := p.now().UTC()
		if md, err := r.msg.Metadata(); err == nil {
			received = md.Timestamp.UTC()
		}
		dls := append([]schemas.DeadLetter{}, one.DeadLetters...)
		for i := range one.Events {
			ev := &one.Events[i]
			dls = append(dls, schemas.DeadLetter{
				ID: ev.ID, Agency: ev.Agency, Sensor: ev.Sensor, Format: ev.Format,
				Subject: r.msg.Subject(), MsgID: msgID,
				// The record's position among the batch's events: the id,
				// which is what dedupe uses, is exact.
				Index: uint32(i), Reason: reason, Raw: ev.Raw, Received: received,
			})
		}
		r.deadLetters = dls
		if err := p.settleExceeded(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// settleExceeded stores the dead letters of a batch that exceeded
// pipeline.max_deliver. ClickHouse gets one bounded attempt; if that fails
// the raw batch goes to soc.dlq.<agency>.<format> with the reason in
// Wf-Reason, so a batch that keeps failing is never dropped and never blocks
// the rest. If both fail the message is left for redelivery.
func (p *Pipeline) settleExceeded(ctx context.Context, r *processed) error {
	defer p.release(r.msg)
	rows := sink.Rows{DeadLetters: r.deadLetters, Redelivered: true}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := p.store.Write(sctx, &rows)
	cancel()
	if err == nil {
		p.metrics.stored(ctx, &rows, 0)
		if err := r.msg.Ack(); err != nil {
			p.log.Warn("ack raw message", "subject", r.msg.Subject(), "err", err)
		}
		p.metrics.acked(ctx, 1)
		return nil
	}
	reason := "exceeded pipeline.max_deliver"
	if len(r.deadLetters) > 0 {
		reason = r.deadLetters[0].Reason
	}
	subj := DeadLetterSubject(r.msg.Subject())
	m := nats.NewMsg(subj)
	for k, v := range r.msg.Headers() {
		m.Header[k] = v
	}
	m.Header.Del(HeaderMsgID)
	m.Header.Set(HeaderReason, truncate(reason+"; storing the dead letters failed: "+err.Error(), 1024))
	m.Header.Set(HeaderOrigSubject, r.msg.Subject())
	m.Data = r.msg.Data()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, perr := p.js.PublishMsg(pctx, m)
	cancel()
	if perr != nil {
		p.log.Error("dead letter batch neither stored nor published; left for redelivery", "subject", r.msg.Subject(), "dlq", subj, "store_err", err, "err", perr)
		_ = r.msg.NakWithDelay(p.cfg.RetryMax)
		return nil
	}
	p.log.Warn("batch sent to the dead-letter stream", "subject", r.msg.Subject(), "dlq", subj, "reason", reason)
	if err := r.msg.Ack(); err != nil {
		p.log.Warn("ack raw message", "subject", r.msg.Subject(), "err", err)
	}
	return nil
}
