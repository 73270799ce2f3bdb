package ingest

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/normalize"
)

// benchMsg is a raw message held in memory: process only reads it.
type benchMsg struct {
	subject string
	data    []byte
	hdr     nats.Header
}

var _ jetstream.Msg = (*benchMsg)(nil)

func (m *benchMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: 1}, NumDelivered: 1, Timestamp: time.Unix(1575413122, 0)}, nil
}
func (m *benchMsg) Data() []byte                     { return m.data }
func (m *benchMsg) Headers() nats.Header             { return m.hdr }
func (m *benchMsg) Subject() string                  { return m.subject }
func (m *benchMsg) Reply() string                    { return "" }
func (m *benchMsg) Ack() error                       { return nil }
func (m *benchMsg) DoubleAck(context.Context) error  { return nil }
func (m *benchMsg) Nak() error                       { return nil }
func (m *benchMsg) NakWithDelay(time.Duration) error { return nil }
func (m *benchMsg) InProgress() error                { return nil }
func (m *benchMsg) Term() error                      { return nil }
func (m *benchMsg) TermWithReason(string) error      { return nil }

// BenchmarkProcessTracing measures one 1000-record Zeek DNS batch through
// decode, normalize and detect with tracing off, with an SDK provider and
// an unsampled batch (the common case in production), and with a sampled
// batch (spans recorded and handed to a discarding exporter).
func BenchmarkProcessTracing(b *testing.B) {
	f, err := os.Open("../normalize/testdata/zeek/zat_json_dns.log")
	if err != nil {
		b.Skip(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	f.Close()
	var payload bytes.Buffer
	for i := 0; i < 1000; i++ {
		payload.Write(lines[i%len(lines)])
		payload.WriteByte('\n')
	}
	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	sampled := nats.Header{}
	sampled.Set(HeaderMsgID, "bench:1")
	sampled.Set(HeaderTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	plain := nats.Header{}
	plain.Set(HeaderMsgID, "bench:1")
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewNoopExporter()), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	defer sdk.Shutdown(context.Background())

	for _, bc := range []struct {
		name string
		tp   trace.TracerProvider
		hdr  nats.Header
	}{
		{"off", nil, plain},
		{"sdk-unsampled", sdk, plain},
		{"sdk-sampled", sdk, sampled},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := &Pipeline{formats: normalize.Builtin(), log: slog.New(slog.DiscardHandler), metrics: NopMetrics(), now: time.Now}
			p.SetRules(rules)
			if bc.tp != nil {
				p.SetTracerProvider(bc.tp)
			}
			msg := &benchMsg{subject: RawSubject("agency-a", "zeek_dns"), data: payload.Bytes(), hdr: bc.hdr}
			b.SetBytes(int64(payload.Len()))
			b.ReportAllocs()
			for b.Loop() {
				out := p.process(msg)
				if len(out.events) != 1000 {
					b.Fatalf("%d events", len(out.events))
				}
				endBatches([]*processed{out}, nil)
			}
		})
	}
}
