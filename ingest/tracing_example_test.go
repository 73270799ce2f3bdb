package ingest_test

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/watchfloor/watchfloor/ingest"
)

// A sensor puts the W3C trace context of its publish on the raw message;
// the pipeline reads it back from the same header.
func ExampleInjectTraceContext() {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled,
	}))
	h := nats.Header{}
	ingest.InjectTraceContext(ctx, h)
	fmt.Println(h.Get(ingest.HeaderTraceparent))

	got := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), ingest.HeaderCarrier(h)))
	fmt.Println(got.TraceID(), got.IsSampled())
	// Output:
	// 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
	// 4bf92f3577b34da6a3ce929d0e0e4736 true
}
