// Package corrroute runs Sigma correlations across several `watchfloor run`
// instances with one owner per correlation group, as detect's package doc
// describes: every instance publishes the correlation inputs of its hits
// (detect.CorrInput) to soc.corr.<agency>.<partition>, partition = hash of
// the group key; stream SOC_CORR keeps them; each partition has one durable
// pull consumer with the "pinned_client" priority policy, so the server
// delivers a partition to exactly one instance at a time and moves it when
// that instance stops pulling. The owner feeds its partition's Correlator.
package corrroute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
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
	PinnedTTL     time.Duration // how long a silent owner keeps its partitions
	Group         string        // priority group name
	FetchWait     time.Duration
}

// DefaultConfig returns 16 partitions, 25 h of retention, one replica and a
// 10 s pin timeout.
func DefaultConfig() Config {
	return Config{Stream: "SOC_CORR", SubjectPrefix: "soc.corr", Partitions: 16, MaxAge: 25 * time.Hour,
		Replicas: 1, PinnedTTL: 10 * time.Second, Group: "owner", FetchWait: time.Second}
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

// Ensure creates or updates the stream and the partition consumers.
func Ensure(ctx context.Context, js jetstream.JetStream, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: c.Stream, Subjects: []string{c.SubjectPrefix + ".>"}, Storage: jetstream.FileStorage,
		MaxAge: c.MaxAge, Replicas: c.Replicas, Duplicates: 2 * time.Minute,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", c.Stream, err)
	}
	for p := 0; p < c.Partitions; p++ {
		_, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
			Durable: c.consumerName(p), FilterSubject: fmt.Sprintf("%s.*.%d", c.SubjectPrefix, p),
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

// Publish publishes the inputs and waits for the stream's acknowledgements.
// The message id (event id, correlation, rule position) makes a
// redelivered batch's inputs duplicates the stream drops.
func (p *Publisher) Publish(ctx context.Context, ins []detect.CorrInput) error {
	var futs []jetstream.PubAckFuture
	for i := range ins {
		in := &ins[i]
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode correlation input: %w", err)
		}
		subj := fmt.Sprintf("%s.%s.%d", p.cfg.SubjectPrefix, in.Agency, p.cfg.Partition(in.Key()))
		id := in.Event.String() + ":" + in.Corr + ":" + strconv.Itoa(in.Ref)
		f, err := p.js.PublishAsync(subj, data, jetstream.WithMsgID(id))
		if err != nil {
			return fmt.Errorf("publish correlation input to %s: %w", subj, err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish correlation input: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Handler receives the findings of an owned partition. An error leaves the
// inputs unacknowledged, to be redelivered.
type Handler func(ctx context.Context, findings []schemas.Finding) error

// Owner pulls every partition under the priority group; the server pins
// each partition to one Owner at a time, and that Owner's per-partition
// Correlator decides its groups.
type Owner struct {
	js     jetstream.JetStream
	cfg    Config
	rs     *detect.RuleSet
	ccfg   detect.CorrelatorConfig
	handle Handler
	clock  func() time.Time
}

// NewOwner returns an Owner. clock, when not nil, advances the watermark
// of idle partitions (Correlator.Advance) so windows with upper-bound
// conditions close without new inputs; leave it nil for replays of old
// data.
func NewOwner(js jetstream.JetStream, cfg Config, rs *detect.RuleSet, ccfg detect.CorrelatorConfig, handle Handler, clock func() time.Time) (*Owner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ccfg.Validate(); err != nil {
		return nil, err
	}
	return &Owner{js: js, cfg: cfg, rs: rs, ccfg: ccfg, handle: handle, clock: clock}, nil
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

func (o *Owner) runPartition(ctx context.Context, part int) error {
	cons, err := o.js.Consumer(ctx, o.cfg.Stream, o.cfg.consumerName(part))
	if err != nil {
		return fmt.Errorf("corr partition %d: %w", part, err)
	}
	corr, err := detect.NewCorrelator(o.rs, o.ccfg)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(o.cfg.FetchWait), jetstream.FetchPriorityGroup(o.cfg.Group))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond) // not pinned, or the server is away: retry
			continue
		}
		var msgs []jetstream.Msg
		var ins []detect.CorrInput
		for m := range batch.Messages() {
			var in detect.CorrInput
			if err := json.Unmarshal(m.Data(), &in); err != nil {
				_ = m.Term() // a record no version of this code wrote: never redeliver
				continue
			}
			msgs = append(msgs, m)
			ins = append(ins, in)
		}
		findings := corr.ObserveInputs(ins, nil)
		if o.clock != nil {
			findings = corr.Advance(o.clock(), findings)
		}
		if len(findings) > 0 {
			if err := o.handle(ctx, findings); err != nil {
				for _, m := range msgs {
					_ = m.NakWithDelay(time.Second)
				}
				continue
			}
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil && ctx.Err() == nil {
				return fmt.Errorf("corr partition %d: ack: %w", part, err)
			}
		}
	}
	return nil
}
