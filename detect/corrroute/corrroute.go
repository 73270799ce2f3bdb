// Package corrroute runs Sigma correlations across several `watchfloor run`
// instances with one owner per correlation group, as detect's package doc
// describes: every instance publishes the correlation inputs of its hits
// (detect.CorrInput) to soc.corr.<agency>.<partition>, partition = hash of
// the group key; stream SOC_CORR keeps them; each partition has one durable
// pull consumer with the "pinned_client" priority policy, so the server
// delivers a partition to exactly one instance at a time and moves it when
// that instance stops pulling. The owner feeds its partition's Correlator,
// and rebuilds it from the stream whenever it gains the partition (start,
// failover) or the rule set changes.
package corrroute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc/pool"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/schemas"
)

// Config configures the correlation routing.
type Config struct {
	Stream        string        // stream name, "SOC_CORR"
	SubjectPrefix string        // "soc.corr"
	Partitions    int           // fixed per deployment: changing it moves groups
	MaxAge        time.Duration // ≥ the longest correlation timespan + lateness
	Replicas      int
	Duplicates    time.Duration // Nats-Msg-Id window: longer than the raw consumer's ack wait
	PinnedTTL     time.Duration // how long a silent owner keeps its partitions
	Group         string        // priority group name
	FetchWait     time.Duration
}

// DefaultConfig returns 16 partitions, 25 h of retention, one replica, a
// 10 min duplicate window and a 10 s pin timeout.
func DefaultConfig() Config {
	return Config{Stream: "SOC_CORR", SubjectPrefix: "soc.corr", Partitions: 16, MaxAge: 25 * time.Hour,
		Replicas: 1, Duplicates: 10 * time.Minute, PinnedTTL: 10 * time.Second, Group: "owner", FetchWait: time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Stream == "" || c.SubjectPrefix == "" || c.Group == "":
		return errors.New("corr.stream, corr.subject_prefix and corr.group are required")
	case c.Partitions < 1 || c.Partitions > 1024:
		return fmt.Errorf("corr.partitions must be between 1 and 1024, got %d", c.Partitions)
	case c.MaxAge < time.Minute:
		return fmt.Errorf("corr.max_age must be at least 1m, got %s", c.MaxAge)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("corr.replicas must be between 1 and 5, got %d", c.Replicas)
	case c.Duplicates < time.Second || c.Duplicates > c.MaxAge:
		return fmt.Errorf("corr.duplicates must be between 1s and corr.max_age, got %s", c.Duplicates)
	case c.PinnedTTL < time.Second:
		return fmt.Errorf("corr.pinned_ttl must be at least 1s, got %s", c.PinnedTTL)
	case c.FetchWait <= 0 || c.FetchWait >= c.PinnedTTL:
		return fmt.Errorf("corr.fetch_wait must be positive and below corr.pinned_ttl, got %s", c.FetchWait)
	}
	return nil
}

// Partition returns the partition of a group key.
func (c Config) Partition(key string) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(c.Partitions))
}

func (c Config) consumerName(p int) string { return "corr-" + strconv.Itoa(p) }

func (c Config) partitionSubject(p int) string { return fmt.Sprintf("%s.*.%d", c.SubjectPrefix, p) }

// Ensure creates or updates the stream and the partition consumers.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: c.Stream, Subjects: []string{c.SubjectPrefix + ".>"}, Storage: jetstream.FileStorage,
		MaxAge: c.MaxAge, Replicas: c.Replicas, Duplicates: c.Duplicates,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", c.Stream, err)
	}
	for p := 0; p < c.Partitions; p++ {
		_, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
			Durable: c.consumerName(p), FilterSubject: c.partitionSubject(p),
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second, MaxAckPending: 10_000,
			PriorityPolicy: jetstream.PriorityPolicyPinned, PinnedTTL: c.PinnedTTL, PriorityGroups: []string{c.Group},
		})
		if err != nil {
			return fmt.Errorf("ensure consumer %s: %w", c.consumerName(p), err)
		}
	}
	return nil
}

// Publisher publishes correlation inputs; it is safe for concurrent use.
type Publisher struct {
	js  jetstream.JetStream
	cfg Config
}

// NewPublisher returns a Publisher.
func NewPublisher(js jetstream.JetStream, cfg Config) (*Publisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{js: js, cfg: cfg}, nil
}

// MsgID is the Nats-Msg-Id of an input: the event id, the correlation and
// the position of the matching rule, so a redelivered batch's inputs are
// duplicates that the stream drops and the owner skips.
func MsgID(in *detect.CorrInput) string {
	return in.Event.String() + ":" + in.Corr + ":" + strconv.Itoa(in.Ref)
}

// Publish publishes the inputs and waits for the stream's acknowledgements.
func (p *Publisher) Publish(ctx context.Context, ins []detect.CorrInput) error {
	futs := make([]jetstream.PubAckFuture, 0, len(ins))
	for i := range ins {
		in := &ins[i]
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode correlation input: %w", err)
		}
		subj := p.cfg.SubjectPrefix + "." + in.Agency + "." + strconv.Itoa(p.cfg.Partition(in.Key()))
		f, err := p.js.PublishAsync(subj, data, jetstream.WithMsgID(MsgID(in)))
		if err != nil {
			return fmt.Errorf("publish correlation input to %s: %w", subj, err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish correlation input to %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("publish correlation inputs: wait for acks: %w", ctx.Err())
		}
	}
	return nil
}

// Handler receives the findings of an owned partition and stores and
// publishes them; it must be idempotent (the same finding id may come again
// after a takeover or a rule swap). An error is retried with back-off; the
// partition's inputs stay unacknowledged meanwhile.
type Handler func(ctx context.Context, findings []schemas.Finding) error

// OwnerConfig is what an Owner evaluates and where its findings go.
type OwnerConfig struct {
	Rules *detect.RuleSet
	// Span is the longest correlation timespan of Rules: a partition gained
	// is rebuilt from the inputs stored in the last 2·Span + Lateness. Zero
	// replays the stream's whole retention (Config.MaxAge).
	Span       time.Duration
	Correlator detect.CorrelatorConfig
	Handle     Handler
	// Clock, when not nil, dates the start of a rebuild (now − Span −
	// Lateness of stream time); nil replays the whole retention.
	Clock func() time.Time
	// AdvanceWithClock also moves each partition's watermark on with Clock
	// between inputs (Correlator.Advance), so windows with upper-bound
	// conditions close on idle partitions. The price: a match further than
	// the lateness behind the clock (a backlog after an outage, a sensor that
	// spooled) is late and does not count. Off, the watermark follows event
	// time only, as in one in-process Correlator.
	AdvanceWithClock bool
	Log              *slog.Logger // nil discards
}

// Owner pulls every partition under the priority group; the server pins
// each partition to one Owner at a time, and that Owner's per-partition
// Correlator decides its groups.
type Owner struct {
	js  jetstream.JetStream
	cfg Config
	oc  OwnerConfig
	log *slog.Logger

	mu    sync.Mutex
	rules *detect.RuleSet
	span  time.Duration
	gen   atomic.Uint64 // bumped by SetRules: owned partitions rebuild

	rebuilds, replayed, dupes, observed atomic.Uint64
}

// NewOwner returns an Owner.
func NewOwner(js jetstream.JetStream, cfg Config, oc OwnerConfig) (*Owner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := oc.Correlator.Validate(); err != nil {
		return nil, err
	}
	if js == nil || oc.Rules == nil || oc.Handle == nil {
		return nil, errors.New("new correlation owner: js, rules and handler are required")
	}
	log := oc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Owner{js: js, cfg: cfg, oc: oc, log: log, rules: oc.Rules, span: oc.Span}, nil
}

// SetRules swaps the rule set. Every partition this Owner holds throws its
// windows away and rebuilds them by replaying the stored inputs under the
// new rules, so windows of unchanged correlations survive the swap; inputs
// of a correlation the new set no longer has are ignored.
func (o *Owner) SetRules(rs *detect.RuleSet, span time.Duration) {
	o.mu.Lock()
	o.rules, o.span = rs, span
	o.mu.Unlock()
	o.gen.Add(1)
}

func (o *Owner) current() (*detect.RuleSet, time.Duration, uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rules, o.span, o.gen.Load()
}

// OwnerStats counts what an Owner did.
type OwnerStats struct {
	Rebuilds   uint64 // partitions rebuilt from the stream (gained, or rules swapped)
	Replayed   uint64 // inputs read while rebuilding
	Duplicates uint64 // inputs skipped because their id was already observed
	Observed   uint64 // distinct inputs fed to a Correlator, live or replayed
}

// Stats returns the counters.
func (o *Owner) Stats() OwnerStats {
	return OwnerStats{Rebuilds: o.rebuilds.Load(), Replayed: o.replayed.Load(), Duplicates: o.dupes.Load(), Observed: o.observed.Load()}
}

// Run pulls all partitions until ctx ends.
func (o *Owner) Run(ctx context.Context) error {
	p := pool.New().WithContext(ctx).WithCancelOnError()
	for part := 0; part < o.cfg.Partitions; part++ {
		p.Go(func(ctx context.Context) error { return o.runPartition(ctx, part) })
	}
	err := p.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// headerPinID is the header the server sets on messages it delivers to the
// pinned client of a priority group.
const headerPinID = "Nats-Pin-Id"

// maxSeen bounds the ids a partition remembers for dedupe (those not yet
// behind the watermark).
const maxSeen = 1 << 20

// minPrune is the smallest seen-id set that is pruned.
const minPrune = 4096

// partition is the state of one owned partition.
type partition struct {
	n       int
	corr    *detect.Correlator // nil: not owned (or not yet rebuilt)
	pin     string             // pin id the state was built under
	gen     uint64             // rule generation it was built with
	seen    map[seenKey]time.Time
	pruneAt int // prune the seen ids when there are this many
	newest  time.Time
	late    time.Duration
}

type seenKey struct {
	ev schemas.ID
	h  uint64 // correlation id and rule position
}

func keyOf(in *detect.CorrInput) seenKey {
	h := fnv.New64a()
	h.Write([]byte(in.Corr))
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(in.Ref), byte(in.Ref>>8), byte(in.Ref>>16), byte(in.Ref>>24)
	h.Write(b[:])
	return seenKey{ev: in.Event, h: h.Sum64()}
}

// admit reports whether in is new to the partition's Correlator and
// remembers it. Ids behind the watermark are forgotten: the Correlator
// rejects such inputs as late anyway.
func (st *partition) admit(in *detect.CorrInput) bool {
	k := keyOf(in)
	if _, dup := st.seen[k]; dup {
		return false
	}
	if in.Time.After(st.newest) {
		st.newest = in.Time
	}
	if len(st.seen) >= st.pruneAt {
		wm := st.newest.Add(-st.late)
		for k, t := range st.seen {
			if t.Before(wm) {
				delete(st.seen, k)
			}
		}
		// Amortized: the next prune waits until the set has doubled.
		st.pruneAt = min(max(minPrune, 2*len(st.seen)), maxSeen)
	}
	if len(st.seen) < maxSeen {
		st.seen[k] = in.Time
	}
	return true
}

func (o *Owner) runPartition(ctx context.Context, part int) error {
	cons, err := o.js.Consumer(ctx, o.cfg.Stream, o.cfg.consumerName(part))
	if err != nil {
		return fmt.Errorf("corr partition %d: %w", part, err)
	}
	st := &partition{n: part, late: o.oc.Correlator.Lateness}
	for ctx.Err() == nil {
		if st.corr != nil && st.gen != o.gen.Load() {
			if err := o.rebuild(ctx, st); err != nil {
				o.log.Warn("rebuild correlation partition after a rule swap", "partition", part, "err", err)
				st.corr, st.pin = nil, "" // rebuilt with the next input
			}
		}
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(o.cfg.FetchWait), jetstream.FetchPriorityGroup(o.cfg.Group))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			sleep(ctx, 100*time.Millisecond) // the server is away: retry
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if errors.Is(batch.Error(), jetstream.ErrPinIDMismatch) && st.corr != nil {
			// Another instance holds the partition now: its state is the
			// one that counts; ours would only be stale.
			o.log.Info("correlation partition lost", "partition", part)
			st.corr, st.pin, st.seen = nil, "", nil
		}
		if len(msgs) == 0 {
			if st.corr != nil && o.oc.AdvanceWithClock && o.oc.Clock != nil {
				if fs := st.corr.Advance(o.oc.Clock(), nil); len(fs) > 0 {
					if err := o.deliver(ctx, part, fs); err != nil {
						return nil // ctx ended
					}
				}
			}
			continue
		}
		if pin := msgs[0].Headers().Get(headerPinID); st.corr == nil || pin != st.pin {
			// Gained the partition (start, failover, or a pin that timed
			// out and came back): what the previous owner acked is only in
			// the stream.
			if err := o.rebuild(ctx, st); err != nil {
				o.log.Warn("rebuild correlation partition", "partition", part, "err", err)
				st.corr, st.pin = nil, ""
				for _, m := range msgs {
					_ = m.NakWithDelay(time.Second)
				}
				sleep(ctx, time.Second)
				continue
			}
			st.pin = pin
		}
		ins := make([]detect.CorrInput, 0, len(msgs))
		for _, m := range msgs {
			var in detect.CorrInput
			if err := o.decode(m, &in); err != nil {
				o.log.Warn("dropping correlation input", "subject", m.Subject(), "err", err)
				_ = m.Term() // a record no version of this code wrote: never redeliver
				continue
			}
			if !st.admit(&in) {
				o.dupes.Add(1)
				continue
			}
			ins = append(ins, in)
		}
		o.observed.Add(uint64(len(ins)))
		findings := st.corr.ObserveInputs(ins, nil)
		if o.oc.AdvanceWithClock && o.oc.Clock != nil {
			findings = st.corr.Advance(o.oc.Clock(), findings)
		}
		if len(findings) > 0 {
			if err := o.deliver(ctx, part, findings); err != nil {
				return nil // ctx ended: unacked, the next owner replays them
			}
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil && ctx.Err() == nil {
				o.log.Warn("ack correlation input", "partition", part, "err", err)
			}
		}
	}
	return nil
}

// decode reads an input. Its agency must be the subject's: the agency
// token is what publish permissions control.
func (o *Owner) decode(m jetstream.Msg, in *detect.CorrInput) error {
	if err := json.Unmarshal(m.Data(), in); err != nil {
		return fmt.Errorf("decode correlation input: %w", err)
	}
	subj := m.Subject()
	want := o.cfg.SubjectPrefix + "." + in.Agency + "."
	if in.Agency == "" || !strings.HasPrefix(subj, want) || strings.Contains(subj[len(want):], ".") {
		return fmt.Errorf("correlation input of agency %q on subject %s", in.Agency, subj)
	}
	return nil
}

// rebuild replaces the partition's Correlator with one fed the inputs
// stored since now − (2·span + lateness), in stream order, under the current
// rules. Findings raised again are handed to the Handler: their ids are the
// ones the previous owner raised, so the sink and SOC_DETECTIONS drop them.
func (o *Owner) rebuild(ctx context.Context, st *partition) error {
	rs, span, gen := o.current()
	corr, err := detect.NewCorrelator(rs, o.oc.Correlator)
	if err != nil {
		return err
	}
	st.corr, st.gen, st.seen, st.pruneAt, st.newest = corr, gen, map[seenKey]time.Time{}, minPrune, time.Time{}
	start := time.Now()
	cc := jetstream.ConsumerConfig{
		FilterSubject: o.cfg.partitionSubject(st.n), AckPolicy: jetstream.AckNonePolicy,
		InactiveThreshold: time.Minute, MemoryStorage: true, DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if o.oc.Clock != nil && span > 0 {
		// Two spans: a window still open now started at most one span ago,
		// and the matches that a window fired just before it consumed (so
		// that they do not count again) lie within the span before that.
		from := o.oc.Clock().Add(-2*span - o.oc.Correlator.Lateness)
		cc.DeliverPolicy, cc.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := o.js.CreateConsumer(ctx, o.cfg.Stream, cc)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("corr partition %d: replay consumer: %w", st.n, err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = o.js.DeleteConsumer(dctx, o.cfg.Stream, name)
		cancel()
	}()
	pending := cons.CachedInfo().NumPending
	var read uint64
	var findings []schemas.Finding
	for read < pending && ctx.Err() == nil {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("corr partition %d: replay: %w", st.n, err)
		}
		ins := make([]detect.CorrInput, 0, 1000)
		done := false
		for m := range batch.Messages() {
			read++
			var in detect.CorrInput
			if o.decode(m, &in) == nil && st.admit(&in) {
				ins = append(ins, in)
			}
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				done = true
			}
		}
		o.observed.Add(uint64(len(ins)))
		findings = st.corr.ObserveInputs(ins, findings)
		if done || len(ins) == 0 && batch.Error() != nil {
			break
		}
	}
	o.rebuilds.Add(1)
	o.replayed.Add(read)
	if d := time.Since(start); d > o.cfg.PinnedTTL/2 {
		o.log.Warn("correlation partition rebuild took more than half of corr.pinned_ttl; raise it", "partition", st.n, "inputs", read, "took", d)
	}
	o.log.Info("correlation partition rebuilt", "partition", st.n, "inputs", read, "findings", len(findings))
	if len(findings) > 0 {
		if err := o.deliver(ctx, st.n, findings); err != nil {
			return nil // ctx ended
		}
	}
	return nil
}

// deliver hands findings to the Handler, retrying with back-off until it
// succeeds or ctx ends.
func (o *Owner) deliver(ctx context.Context, part int, fs []schemas.Finding) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := o.oc.Handle(ctx, fs)
		if err == nil {
			return nil
		}
		if attempt == 1 || attempt%10 == 0 {
			o.log.Warn("store correlation findings failed, retrying", "partition", part, "findings", len(fs), "attempt", attempt, "err", err)
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
