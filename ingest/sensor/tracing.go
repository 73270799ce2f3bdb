package sensor

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/watchfloor/watchfloor/ingest"
)

// SpanPublish is the sensor's span of one traced batch: from the moment the
// batch closes to its PubAck, retries included. The pipeline's batch span
// is its child.
const SpanPublish = "wfsensor publish"

// Option configures a Publisher beyond its Config.
type Option func(*Publisher)

// WithTracerProvider records a SpanPublish span per traced batch with tp
// and propagates that span in the batch's traceparent header. Which batches
// are traced is Config.TraceSample's decision, so tp should sample every
// span it is given (sdktrace.AlwaysSample). Without this option a traced
// batch still carries a sampled traceparent with fresh ids, so the pipeline
// records its part of the trace even when the sensor exports nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(p *Publisher) {
		if tp != nil {
			p.tracer = tp.Tracer("github.com/watchfloor/watchfloor/ingest/sensor")
		}
	}
}

// traceBatch decides whether b is traced and, if so, adds its traceparent.
// It runs under p.mu when the batch closes.
func (p *Publisher) traceBatch(b *batch) {
	if p.cfg.TraceSample <= 0 || (p.cfg.TraceSample < 1 && rand.Float64() >= p.cfg.TraceSample) {
		return
	}
	ctx := context.Background()
	if p.tracer != nil {
		ctx, b.span = p.tracer.Start(ctx, SpanPublish,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.destination.name", b.msg.Subject),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.message.id", b.msg.Header.Get(ingest.HeaderMsgID)),
				ingest.AttrRecords.Int(b.records),
				attribute.Int("messaging.message.body.size", len(b.msg.Data)),
			))
	} else {
		var tid trace.TraceID
		var sid trace.SpanID
		_, _ = crand.Read(tid[:])
		_, _ = crand.Read(sid[:])
		ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
		}))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && sc.IsSampled() {
		ingest.InjectTraceContext(ctx, b.msg.Header)
	}
}

// endBatchSpan ends b's span with the outcome of its publication.
func endBatchSpan(b *batch, ack *jetstream.PubAck, err error) {
	if b.span == nil {
		return
	}
	if err != nil {
		b.span.RecordError(err)
		b.span.SetStatus(codes.Error, "batch not published")
	} else if ack != nil {
		b.span.SetAttributes(
			attribute.Int64("messaging.nats.stream.sequence", int64(ack.Sequence)),
			attribute.Bool("messaging.nats.duplicate", ack.Duplicate),
		)
	}
	b.span.End()
	b.span = nil
}
