package ingest

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/watchfloor/watchfloor/sink"
)

// Metrics are the pipeline's OpenTelemetry instruments.
type Metrics struct {
	records     metric.Int64Counter
	events      metric.Int64Counter
	deadLetters metric.Int64Counter
	findings    metric.Int64Counter
	acks        metric.Int64Counter
	retries     metric.Int64Counter
	flushRows   metric.Int64Histogram
	flushTime   metric.Float64Histogram

	stages stageMetrics

	lagPending    atomic.Int64
	lagAckPending atomic.Int64
}

// NopMetrics records nothing.
func NopMetrics() *Metrics {
	m, _ := NewMetrics(noop.NewMeterProvider().Meter("watchfloor"))
	return m
}

// NewMetrics creates the instruments on meter.
func NewMetrics(meter metric.Meter) (*Metrics, error) {
	m := &Metrics{}
	var err error
	must := func(e error) {
		if err == nil {
			err = e
		}
	}
	var e error
	m.records, e = meter.Int64Counter("watchfloor.records.in", metric.WithDescription("Raw records received from sensors."), metric.WithUnit("{record}"))
	must(e)
	m.events, e = meter.Int64Counter("watchfloor.events.stored", metric.WithDescription("Events stored in ClickHouse."), metric.WithUnit("{event}"))
	must(e)
	m.deadLetters, e = meter.Int64Counter("watchfloor.dead_letters", metric.WithDescription("Records stored as dead letters."), metric.WithUnit("{record}"))
	must(e)
	m.findings, e = meter.Int64Counter("watchfloor.detections", metric.WithDescription("Detections stored and published."), metric.WithUnit("{detection}"))
	must(e)
	m.acks, e = meter.Int64Counter("watchfloor.batches.acked", metric.WithDescription("Raw batches acknowledged after their rows were stored."), metric.WithUnit("{batch}"))
	must(e)
	m.retries, e = meter.Int64Counter("watchfloor.retries", metric.WithDescription("Failed store or publish attempts that are retried."), metric.WithUnit("{attempt}"))
	must(e)
	m.flushRows, e = meter.Int64Histogram("watchfloor.flush.rows", metric.WithDescription("Rows per ClickHouse flush."), metric.WithUnit("{row}"),
		metric.WithExplicitBucketBoundaries(10, 100, 1000, 5000, 10000, 25000, 50000, 100000))
	must(e)
	m.flushTime, e = meter.Float64Histogram("watchfloor.flush.duration", metric.WithDescription("Time to store one flush in ClickHouse, retries included."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
	must(e)
	_, e = meter.Int64ObservableGauge("watchfloor.consumer.pending", metric.WithDescription("Raw batches not yet delivered to the pipeline (consumer lag)."), metric.WithUnit("{batch}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(m.lagPending.Load())
			return nil
		}))
	must(e)
	_, e = meter.Int64ObservableGauge("watchfloor.consumer.ack_pending", metric.WithDescription("Raw batches delivered but not yet acknowledged."), metric.WithUnit("{batch}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(m.lagAckPending.Load())
			return nil
		}))
	must(e)
	m.stages, e = newStageMetrics(meter)
	must(e)
	return m, err
}

func (m *Metrics) processed(p *processed) {
	ctx := context.Background()
	m.records.Add(ctx, int64(p.records))
	m.stages.processed(p)
}

func (m *Metrics) stored(ctx context.Context, rows *sink.Rows, d time.Duration) {
	ctx = context.WithoutCancel(ctx)
	m.events.Add(ctx, int64(len(rows.Events)))
	m.deadLetters.Add(ctx, int64(len(rows.DeadLetters)))
	m.findings.Add(ctx, int64(len(rows.Findings)))
	m.flushRows.Record(ctx, int64(rows.Len()))
	m.flushTime.Record(ctx, d.Seconds())
	m.stages.stored(ctx, rows)
}

func (m *Metrics) acked(ctx context.Context, n int) {
	m.acks.Add(context.WithoutCancel(ctx), int64(n))
}

func (m *Metrics) retried(ctx context.Context, what string) {
	m.retries.Add(context.WithoutCancel(ctx), 1, metric.WithAttributes(attribute.String("op", what)))
}

func (m *Metrics) setLag(pending, ackPending int64) {
	m.lagPending.Store(pending)
	m.lagAckPending.Store(ackPending)
}
