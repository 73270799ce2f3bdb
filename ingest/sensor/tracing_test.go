package sensor

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/watchfloor/watchfloor/ingest"
)

// TestTraceSample checks the traceparent header a sensor without its own
// exporter sends: present and sampled on every batch at 1, absent at 0, a
// share in between, and always a valid W3C value.
func TestTraceSample(t *testing.T) {
	tests := []struct {
		name     string
		give     float64
		min, max int // batches of 200 with a traceparent
	}{
		{"off", 0, 0, 0},
		{"all", 1, 200, 200},
		{"half", 0.5, 60, 140},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := newJS(t)
			cfg := testConfig()
			cfg.BatchRecords, cfg.Linger, cfg.TraceSample = 1, 0, tt.give
			p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain"), Key: "k"})
			for _, l := range lines(200, 20, "r") {
				if err := p.Add(context.Background(), Line{Data: []byte(l)}); err != nil {
					t.Fatal(err)
				}
			}
			closePub(t, p)
			traced := 0
			seen := map[trace.TraceID]bool{}
			for _, m := range readStream(t, js) {
				tp := m.Header.Get(ingest.HeaderTraceparent)
				if tp == "" {
					continue
				}
				traced++
				sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), ingest.HeaderCarrier(m.Header)))
				if !sc.IsValid() || !sc.IsSampled() {
					t.Fatalf("traceparent %q: not a valid sampled span context", tp)
				}
				if seen[sc.TraceID()] {
					t.Fatalf("trace id %s used by two batches", sc.TraceID())
				}
				seen[sc.TraceID()] = true
			}
			if traced < tt.min || traced > tt.max {
				t.Errorf("%d of 200 batches traced, want %d to %d", traced, tt.min, tt.max)
			}
		})
	}
}

func TestTraceSampleValidate(t *testing.T) {
	for _, give := range []float64{-0.1, 1.5} {
		c := testConfig()
		c.TraceSample = give
		if err := c.Validate(); err == nil {
			t.Errorf("TraceSample %g: Validate() = nil, want an error naming sensor.trace_sample", give)
		}
	}
}
