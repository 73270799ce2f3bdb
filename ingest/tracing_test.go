package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/ingest/sensor"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

func embeddedJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest.EnsureStreams(context.Background(), js, ingest.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return js
}

// TestTraceOfOneBatch follows batches from the sensor's publish through
// every pipeline stage: a traced batch's spans form the tree
// wfsensor publish → watchfloor batch → decode, normalize, detect, publish
// detections, store, ack, in that order and inside their parent; an
// untraced batch records nothing in the pipeline.
func TestTraceOfOneBatch(t *testing.T) {
	js := embeddedJS(t)
	addr, db := chtest.Database(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	scfg := sink.DefaultConfig()
	scfg.Addr, scfg.Database = []string{addr}, db
	store, err := sink.Open(context.Background(), scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}

	exp := tracetest.NewInMemoryExporter()
	// The pipeline samples only what the sensor sampled; the sensor samples
	// whatever its TraceSample picked.
	pipelineTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	sensorTP := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() {
		_ = pipelineTP.Shutdown(context.Background())
		_ = sensorTP.Shutdown(context.Background())
	})

	cfg := ingest.DefaultPipelineConfig()
	cfg.FlushInterval = 50 * time.Millisecond
	p, err := ingest.NewPipeline(cfg, js, normalize.Builtin(), store, rules, &ingest.JetStreamFindings{JS: js}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	p.SetTracerProvider(pipelineTP)

	lines := []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		"<13>Oct 11 22:14:16 mymachine sshd[42]: Failed password for invalid user admin from 198.51.100.7 port 4242 ssh2",
		"<13>Oct 11 22:14:17 mymachine cron[7]: (root) CMD (run-parts /etc/cron.hourly)",
	}
	f, _ := normalize.Builtin().Lookup("syslog")
	publish := func(key string, sample float64) {
		t.Helper()
		c := sensor.DefaultConfig()
		c.SensorID, c.Agency, c.Linger, c.TraceSample = "trace-sensor", "agency-t", 0, sample
		pub, err := sensor.NewPublisher(js, c, sensor.Source{Format: f, Key: key}, log, sensor.WithTracerProvider(sensorTP))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if err := pub.Add(context.Background(), sensor.Line{Data: []byte(l)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	publish("traced", 1)
	publish("untraced", 0)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	// Stop only once both batches are acked, so every stage has run.
	for !settled(t, js) || chtest.Count(t, store.Conn(), "SELECT count() FROM "+db+".events") < uint64(2*len(lines)) {
		if time.Now().After(deadline) {
			t.Fatal("batches not stored and acked within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("pipeline Run: %v", err)
	}

	spans := exp.GetSpans()
	var root, batch *tracetest.SpanStub
	children := map[string]*tracetest.SpanStub{}
	batches := 0
	for i := range spans {
		s := &spans[i]
		switch s.Name {
		case sensor.SpanPublish:
			if root != nil {
				t.Fatalf("two %q spans; only the traced publisher records one", s.Name)
			}
			root = s
		case ingest.SpanBatch:
			batches++
			batch = s
		}
	}
	if root == nil || batch == nil || batches != 1 {
		t.Fatalf("want one sensor span and one batch span, got %d spans: %v", len(spans), spanNames(spans))
	}
	if batch.Parent.SpanID() != root.SpanContext.SpanID() || batch.SpanContext.TraceID() != root.SpanContext.TraceID() {
		t.Errorf("batch span's parent is %s/%s, want the sensor span %s/%s", batch.Parent.TraceID(), batch.Parent.SpanID(), root.SpanContext.TraceID(), root.SpanContext.SpanID())
	}
	for i := range spans {
		s := &spans[i]
		if s.Parent.SpanID() == batch.SpanContext.SpanID() {
			if children[s.Name] != nil {
				t.Errorf("two %q children", s.Name)
			}
			children[s.Name] = s
		}
	}
	order := []string{ingest.SpanDecode, ingest.SpanNormalize, ingest.SpanDetect, ingest.SpanPublish, ingest.SpanStore, ingest.SpanAck}
	if len(children) != len(order) {
		t.Errorf("batch span children %v, want %v", keys(children), order)
	}
	var prev *tracetest.SpanStub
	for _, name := range order {
		c := children[name]
		if c == nil {
			t.Errorf("no %q span under the batch span", name)
			continue
		}
		if c.StartTime.Before(batch.StartTime) || c.EndTime.After(batch.EndTime) {
			t.Errorf("%q [%s, %s] is not inside the batch span [%s, %s]", name, c.StartTime, c.EndTime, batch.StartTime, batch.EndTime)
		}
		if c.EndTime.Before(c.StartTime) {
			t.Errorf("%q ends before it starts", name)
		}
		if prev != nil && c.StartTime.Before(prev.EndTime) {
			t.Errorf("%q starts at %s, before %q ends at %s", name, c.StartTime, prev.Name, prev.EndTime)
		}
		t.Logf("%-20s %8s", name, c.EndTime.Sub(c.StartTime))
		prev = c
	}
	want := map[attribute.Key]attribute.Value{
		ingest.AttrAgency:      attribute.StringValue("agency-t"),
		ingest.AttrFormat:      attribute.StringValue("syslog"),
		ingest.AttrRecords:     attribute.IntValue(len(lines)),
		ingest.AttrEvents:      attribute.IntValue(len(lines)),
		ingest.AttrDeadLetters: attribute.IntValue(0),
		ingest.AttrFindings:    attribute.IntValue(1),
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range batch.Attributes {
		got[kv.Key] = kv.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("batch span %s = %v, want %v", k, got[k].Emit(), v.Emit())
		}
	}
	if id := got[ingest.AttrBatch].AsString(); !strings.HasPrefix(id, "trace-sensor:traced-") {
		t.Errorf("batch span %s = %q, want the traced publisher's batch", ingest.AttrBatch, id)
	}
}

// settled reports whether the pipeline's consumer has acked everything.
func settled(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	c, err := js.Consumer(context.Background(), ingest.StreamRaw, ingest.DefaultPipelineConfig().Durable)
	if err != nil {
		return false
	}
	info, err := c.Info(context.Background())
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= 2
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func keys(m map[string]*tracetest.SpanStub) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
