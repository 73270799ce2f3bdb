package ingest

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/watchfloor/watchfloor/sink"
)

// TracerName is the instrumentation scope of the pipeline's spans.
const TracerName = "github.com/watchfloor/watchfloor/ingest"

// Span names of one raw batch. The batch span is the child of the
// sensor's publish span when the message carries a traceparent header;
// the stage spans are its children:
//
//	watchfloor batch
//	├── decode              decompression and header checks
//	├── normalize           records into events or dead letters
//	├── detect              rule evaluation over the batch's events
//	├── publish detections  (only when the flush has detections; before the insert)
//	├── store               the ClickHouse insert the batch was part of
//	└── ack
//
// Store, publish and ack are shared by every batch of one flush: each batch
// gets its own span with the flush's timing and the flush size as attributes.
const (
	SpanBatch     = "watchfloor batch"
	SpanDecode    = "decode"
	SpanNormalize = "normalize"
	SpanDetect    = "detect"
	SpanStore     = "store"
	SpanPublish   = "publish detections"
	SpanAck       = "ack"
)

// Attribute keys on the pipeline's spans.
const (
	AttrAgency      = attribute.Key("watchfloor.agency")
	AttrFormat      = attribute.Key("watchfloor.format")
	AttrBatch       = attribute.Key("watchfloor.batch.id")
	AttrRecords     = attribute.Key("watchfloor.batch.records")
	AttrEvents      = attribute.Key("watchfloor.batch.events")
	AttrDeadLetters = attribute.Key("watchfloor.batch.dead_letters")
	AttrFindings    = attribute.Key("watchfloor.batch.detections")
	AttrFlushRows   = attribute.Key("watchfloor.flush.rows")
	AttrFlushBatch  = attribute.Key("watchfloor.flush.batches")
	AttrDelivery    = attribute.Key("messaging.nats.delivery_count")
)

// HeaderCarrier adapts NATS headers to OpenTelemetry propagators. NATS
// header names are case-sensitive, unlike HTTP's, so the W3C names are used
// exactly as written ("traceparent", "tracestate").
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values with value.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// traceContext is the W3C propagator; it has no state.
var traceContext propagation.TraceContext

// SetTracerProvider makes the pipeline record spans with tp (nil turns
// tracing off). Call it before Run. Without it the pipeline traces nothing.
func (p *Pipeline) SetTracerProvider(tp trace.TracerProvider) {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	p.tracer = tp.Tracer(TracerName)
}

func (p *Pipeline) tracerOrNoop() trace.Tracer {
	if p.tracer == nil {
		return noopTracer
	}
	return p.tracer
}

var noopTracer = noop.NewTracerProvider().Tracer(TracerName)

// startBatch starts the span of one raw message, continuing the sensor's
// trace when the message has a traceparent header.
func (p *Pipeline) startBatch(msg jetstream.Msg) (context.Context, trace.Span) {
	ctx := context.Background()
	if h := msg.Headers(); h.Get(HeaderTraceparent) != "" {
		ctx = traceContext.Extract(ctx, HeaderCarrier(h))
	}
	return p.tracerOrNoop().Start(ctx, SpanBatch,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.destination.name", msg.Subject()),
			attribute.String("messaging.operation.type", "process"),
		))
}

// stageSpan times one processing stage of a batch: a child span of the
// batch span when the batch is sampled, and always the stage histogram.
type stageSpan struct {
	p     *Pipeline
	name  string
	span  trace.Span
	start time.Time
	done  bool
}

// stage starts timing a stage. End it once; later calls do nothing.
func (p *Pipeline) stage(ctx context.Context, name string) *stageSpan {
	s := &stageSpan{p: p, name: name, start: p.now()}
	if trace.SpanFromContext(ctx).IsRecording() {
		_, s.span = p.tracerOrNoop().Start(ctx, name, trace.WithTimestamp(s.start))
	}
	return s
}

// End ends the stage.
func (s *stageSpan) End() {
	if s.done {
		return
	}
	s.done = true
	end := s.p.now()
	if s.span != nil {
		s.span.End(trace.WithTimestamp(end))
	}
	s.p.metrics.stage(s.name, end.Sub(s.start))
}

// finishProcessing ends the processing part of a batch span: it records
// what the batch became. The span itself ends when the batch is settled.
func finishProcessing(span trace.Span, m *batchMeta, out *processed) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(
		AttrAgency.String(m.agency), AttrFormat.String(m.format), AttrBatch.String(m.msgID),
		AttrRecords.Int(out.records), AttrEvents.Int(len(out.events)),
		AttrDeadLetters.Int(len(out.deadLetters)), AttrFindings.Int(len(out.findings)),
	)
	if out.redelivered {
		span.SetAttributes(attribute.Bool("watchfloor.redelivered", true))
	}
}

// flushSpans records one shared step (store, publish, ack) of a flush as a
// child span of every batch in it, with the step's real timing.
func flushSpans(tracer trace.Tracer, batch []*processed, name string, start, end time.Time, err error, attrs ...attribute.KeyValue) {
	for _, r := range batch {
		if r.span == nil || !r.span.IsRecording() {
			continue
		}
		ctx := trace.ContextWithSpan(context.Background(), r.span)
		_, s := tracer.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End(trace.WithTimestamp(end))
	}
}

// endBatches ends the batch spans of a flush; err marks them failed (the
// messages were not acked and will be redelivered).
func endBatches(batch []*processed, err error) {
	for _, r := range batch {
		if r.span == nil {
			continue
		}
		if err != nil && r.span.IsRecording() {
			r.span.RecordError(err)
			r.span.SetStatus(codes.Error, "not settled, left for redelivery")
		}
		r.span.End()
		r.span = nil
	}
}

// traceSettle wraps one settle step of a flush in spans when any batch of
// the flush is traced. It returns fn's error.
func (p *Pipeline) traceSettle(batch []*processed, name string, fn func() error, attrs ...attribute.KeyValue) error {
	traced := false
	for _, r := range batch {
		if r.span != nil && r.span.IsRecording() {
			traced = true
			break
		}
	}
	if !traced {
		return fn()
	}
	start := p.now()
	err := fn()
	flushSpans(p.tracerOrNoop(), batch, name, start, p.now(), err, attrs...)
	return err
}

func flushAttributes(batch []*processed, rows *sink.Rows) []attribute.KeyValue {
	return []attribute.KeyValue{AttrFlushRows.Int(rows.Len()), AttrFlushBatch.Int(len(batch))}
}

// InjectTraceContext writes the span context of ctx into h as W3C
// traceparent (and tracestate) headers.
func InjectTraceContext(ctx context.Context, h nats.Header) {
	traceContext.Inject(ctx, HeaderCarrier(h))
}
