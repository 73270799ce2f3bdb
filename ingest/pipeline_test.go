package ingest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// startJetStream runs a real nats-server in the test process.
func startJetStream(t *testing.T) (*server.Server, jetstream.JetStream) {
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
	return srv, js
}

type harness struct {
	js       jetstream.JetStream
	sink     *sink.Sink
	store    ingest.Store            // the sink unless a test wraps it
	findings ingest.FindingPublisher // JetStream unless a test wraps it
	db       string
	sent     int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	_, js := startJetStream(t)
	addr, db := chtest.Database(t)
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := sink.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &harness{js: js, sink: s, db: db}
}

// run starts a pipeline and returns a stop function that drains it.
func (h *harness) run(t *testing.T) (stop func()) {
	t.Helper()
	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return h.runWith(t, rules, nil)
}

// runWith starts a pipeline with rules, routing correlation inputs to corr
// when it is not nil.
func (h *harness) runWith(t *testing.T, rules ingest.Rules, corr ingest.CorrPublisher) (stop func()) {
	t.Helper()
	cfg := ingest.DefaultPipelineConfig()
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.FlushRows = 500
	// Several inserts in flight, so the tests cover out-of-order acks.
	cfg.Flushers = 3
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var store ingest.Store = h.sink
	if h.store != nil {
		store = h.store
	}
	var findings ingest.FindingPublisher = &ingest.JetStreamFindings{JS: h.js}
	if h.findings != nil {
		findings = h.findings
	}
	p, err := ingest.NewPipeline(cfg, h.js, normalize.Builtin(), store, rules, findings, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	if corr != nil {
		p.RouteCorrelations(corr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pipeline Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("pipeline did not drain within 30s")
		}
	}
}

// publish sends one batch as a sensor would and counts its records.
func (h *harness) publish(t *testing.T, agency, format, msgID string, lines []string, hdr map[string]string) {
	t.Helper()
	f, ok := normalize.Builtin().Lookup(format)
	msg := nats.NewMsg(ingest.RawSubject(agency, format))
	var buf bytes.Buffer
	n := 0
	for _, l := range lines {
		buf.WriteString(l)
		buf.WriteByte('\n')
		if l != "" && !(ok && f.Directive([]byte(l))) {
			n++
		}
	}
	msg.Data = buf.Bytes()
	msg.Header.Set(ingest.HeaderMsgID, msgID)
	msg.Header.Set(ingest.HeaderSensor, "test-sensor")
	msg.Header.Set(ingest.HeaderCount, strconv.Itoa(n))
	for k, v := range hdr {
		msg.Header.Set(k, v)
	}
	if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatalf("publish %s: %v", msgID, err)
	}
	h.sent += n
}

func (h *harness) count(t *testing.T, q string) uint64 {
	t.Helper()
	return chtest.Count(t, h.sink.Conn(), strings.ReplaceAll(q, "$db", h.db))
}

// waitStored waits until events + dead letters account for every record sent.
func (h *harness) waitStored(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := h.count(t, "SELECT count() FROM $db.events") + h.count(t, "SELECT count() FROM $db.dead_letters")
		if got == uint64(h.sent) {
			return
		}
		if got > uint64(h.sent) || time.Now().After(deadline) {
			t.Fatalf("events + dead letters = %d, records sent = %d", got, h.sent)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestPipelineGarbageBecomesDeadLetters sends clean records with garbage
// between them and checks that every record is accounted for: the clean
// ones as events, each bad one as a dead letter with its reason and bytes.
func TestPipelineGarbageBecomesDeadLetters(t *testing.T) {
	h := newHarness(t)
	stop := h.run(t)

	jsonLines := readLines(t, "../normalize/testdata/zeek/zat_json_dns.log")
	tsvLines := readLines(t, "../normalize/testdata/zeek/zat_dns.log")

	bigLine := `{"ts":1575413122.1,"query":"` + strings.Repeat("a", ingest.MaxRecordBytes) + `"}`
	garbage := []struct {
		line   string
		reason string
	}{
		{"this is not json {", "zeek"},
		{"{\"ts\":1575413122.764317,\"query\":\"bad\xff\xfeutf8.example\"}", "not valid UTF-8"},
		{bigLine, "exceeds the limit"},
	}
	mixed := append([]string{}, jsonLines[:10]...)
	for _, g := range garbage {
		mixed = append(mixed, g.line)
	}
	mixed = append(mixed, jsonLines[10:]...)
	h.publish(t, "agency-a", "zeek_dns", "s1:1", mixed, nil)

	// A TSV batch with a truncated record in the middle.
	truncated := tsvLines[12][:len(tsvLines[12])/2]
	tsv := append(append(append([]string{}, tsvLines[:12]...), truncated), tsvLines[12:]...)
	h.publish(t, "agency-a", "zeek_dns", "s1:2", tsv, nil)

	// A record the sensor already cut short (2 MiB line) arrives truncated
	// and listed in Wf-Oversize.
	h.publish(t, "agency-b", "syslog", "s2:1", []string{
		"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
		strings.Repeat("x", ingest.OversizePrefix),
		"<13>Oct 11 22:14:16 mymachine sshd[42]: Failed password for invalid user admin from 198.51.100.7 port 4242 ssh2",
	}, map[string]string{ingest.HeaderOversize: ingest.FormatOversize([]ingest.Oversize{{Index: 1, Size: 2 << 20}})})

	// A format nobody registered.
	h.publish(t, "agency-b", "no_such_format", "s2:2", []string{"a", "b"}, nil)

	h.waitStored(t, 30*time.Second)
	stop()

	wantDead := len(garbage) + 1 + 1 + 2
	if got := h.count(t, "SELECT count() FROM $db.dead_letters"); got != uint64(wantDead) {
		t.Errorf("dead letters = %d, want %d", got, wantDead)
	}
	if got, want := h.count(t, "SELECT count() FROM $db.events"), uint64(h.sent-wantDead); got != want {
		t.Errorf("events = %d, want %d", got, want)
	}
	for _, g := range garbage {
		raw := g.line
		if len(raw) > ingest.MaxRecordBytes {
			raw = raw[:ingest.OversizePrefix]
		}
		var reason string
		err := h.sink.Conn().QueryRow(context.Background(), "SELECT reason FROM "+h.db+".dead_letters WHERE raw = ?", raw).Scan(&reason)
		if err != nil {
			t.Errorf("dead letter for %.40q: %v", g.line, err)
			continue
		}
		if !strings.Contains(reason, g.reason) {
			t.Errorf("dead letter for %.40q: reason %q, want it to mention %q", g.line, reason, g.reason)
		}
	}
	truncIndex := 0 // records before the truncated one; '#' lines are directives
	for _, l := range tsvLines[:12] {
		if !strings.HasPrefix(l, "#") {
			truncIndex++
		}
	}
	if n := h.count(t, fmt.Sprintf("SELECT count() FROM $db.dead_letters WHERE msg_id = 's1:2' AND record_index = %d AND reason LIKE '%%fields%%'", truncIndex)); n != 1 {
		t.Errorf("truncated TSV record: %d dead letters at index %d naming the field count, want 1", n, truncIndex)
	}
	if n := h.count(t, "SELECT count() FROM $db.dead_letters WHERE agency = 'agency-b' AND reason LIKE '%2097152 bytes%' AND length(raw) = 65536"); n != 1 {
		t.Errorf("oversized record: %d dead letters keeping the 64 KiB prefix, want 1", n)
	}
	if n := h.count(t, "SELECT count() FROM $db.dead_letters WHERE format = 'no_such_format' AND reason LIKE 'unknown format%'"); n != 2 {
		t.Errorf("unknown format: %d dead letters, want 2", n)
	}
	// Records around the garbage are stored with the agency from the subject.
	if n := h.count(t, "SELECT count() FROM $db.events WHERE agency = 'agency-b' AND process_name = 'sshd'"); n != 1 {
		t.Errorf("sshd event after the oversized record: %d, want 1", n)
	}
	// The bundled SSH rule fired on it and the finding was published too.
	if n := h.count(t, "SELECT count() FROM $db.detections WHERE agency = 'agency-b'"); n != 1 {
		t.Errorf("detections for agency-b = %d, want 1", n)
	}
	st, err := h.js.Stream(context.Background(), ingest.StreamDetections)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter("soc.detections.>"))
	if err != nil {
		t.Fatal(err)
	}
	if det := h.count(t, "SELECT count() FROM $db.detections"); info.State.Msgs != det || det == 0 {
		t.Errorf("published findings = %d, stored detections = %d; want equal and > 0", info.State.Msgs, det)
	}
	if _, ok := info.State.Subjects["soc.detections.agency-b.low"]; !ok && info.State.Subjects != nil {
		t.Errorf("no finding on soc.detections.agency-b.low; subjects %v", info.State.Subjects)
	}
}

// TestPipelineRedeliveryStoresOnce restarts the pipeline over the same
// stream with the same data published again under the same batch ids and
// checks that no duplicate appears.
func TestPipelineRedeliveryStoresOnce(t *testing.T) {
	h := newHarness(t)
	lines := readLines(t, "../normalize/testdata/zeek/zat_json_dns.log")
	for i := 0; i < 5; i++ {
		h.publish(t, "agency-a", "zeek_dns", fmt.Sprintf("s1:%d", i), lines, nil)
	}
	stop := h.run(t)
	h.waitStored(t, 30*time.Second)
	stop()

	// Replay the consumer from the start: every batch is delivered again.
	if err := h.js.DeleteConsumer(context.Background(), ingest.StreamRaw, "watchfloor"); err != nil {
		t.Fatal(err)
	}
	stop = h.run(t)
	time.Sleep(2 * time.Second)
	stop()
	if got := h.count(t, "SELECT count() FROM $db.events FINAL"); got != uint64(h.sent) {
		t.Errorf("events FINAL = %d, want %d", got, h.sent)
	}
	if got := h.count(t, "SELECT uniqExact(event_id) FROM $db.events"); got != uint64(h.sent) {
		t.Errorf("distinct event ids = %d, want %d", got, h.sent)
	}
}

// refusingStore is the real sink, except that it refuses for good (as
// ClickHouse refuses a value it cannot convert) any write holding an event
// whose raw record contains marker.
type refusingStore struct {
	*sink.Sink
	marker string
}

func (r refusingStore) Write(ctx context.Context, rows *sink.Rows) error {
	for i := range rows.Events {
		if strings.Contains(rows.Events[i].Raw, r.marker) {
			return sink.Permanent(fmt.Errorf("code: 53, message: Type mismatch in row of %s", rows.Events[i].Raw[:20]))
		}
	}
	return r.Sink.Write(ctx, rows)
}

// TestPipelineRefusedFlushIsSplit: when the store refuses a flush for good,
// the other messages of that flush are still stored, and the records of the
// message it refuses become dead letters with the store's reason, instead
// of the flush being retried forever.
func TestPipelineRefusedFlushIsSplit(t *testing.T) {
	h := newHarness(t)
	h.store = refusingStore{Sink: h.sink, marker: "REFUSE-ME"}
	lines := readLines(t, "../normalize/testdata/zeek/zat_json_dns.log")
	poisoned := append([]string{}, lines[:20]...)
	poisoned[7] = strings.Replace(poisoned[7], `"query":"`, `"query":"REFUSE-ME.`, 1)
	// Published before the pipeline starts, so they share one flush.
	h.publish(t, "agency-a", "zeek_dns", "s1:1", lines[:30], nil)
	h.publish(t, "agency-a", "zeek_dns", "s1:2", poisoned, nil)
	h.publish(t, "agency-b", "zeek_dns", "s2:1", lines[30:50], nil)
	stop := h.run(t)
	h.waitStored(t, 30*time.Second)
	stop()
	if got := h.count(t, "SELECT count() FROM $db.events"); got != 50 {
		t.Errorf("events = %d, want the 50 of the two clean batches", got)
	}
	if got := h.count(t, "SELECT count() FROM $db.dead_letters WHERE msg_id = 's1:2' AND positionCaseInsensitive(reason, 'refused') > 0"); got != 20 {
		t.Errorf("dead letters of the refused batch = %d, want all its 20 records, each with the store's reason", got)
	}
	if got := h.count(t, "SELECT count() FROM $db.dead_letters WHERE position(raw, 'REFUSE-ME') > 0"); got != 1 {
		t.Errorf("dead letters keeping the refused record's bytes = %d, want 1", got)
	}
}

// flakyFindings publishes through JetStream but fails every call while
// failing is set, and counts the successful publishes of each finding.
type flakyFindings struct {
	next    ingest.FindingPublisher
	mu      sync.Mutex
	failing bool
	calls   int
	times   map[string]int
}

func (f *flakyFindings) Publish(ctx context.Context, fs []schemas.Finding) error {
	f.mu.Lock()
	f.calls++
	fail := f.failing
	f.mu.Unlock()
	if fail {
		return errors.New("test: detections stream unavailable")
	}
	if err := f.next.Publish(ctx, fs); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range fs {
		f.times[x.ID.String()]++
	}
	return nil
}

// TestFindingsPublishedOnceBeforeAck checks the two publishing paths: the
// worker publishes a batch's findings as soon as they are found, and the
// flush publishes again only what the worker could not. Either way every
// stored detection is published before its batch is acked.
func TestFindingsPublishedOnceBeforeAck(t *testing.T) {
	for _, failEarly := range []bool{false, true} {
		t.Run(fmt.Sprintf("worker publish fails=%v", failEarly), func(t *testing.T) {
			h := newHarness(t)
			ff := &flakyFindings{next: &ingest.JetStreamFindings{JS: h.js}, times: map[string]int{}}
			h.findings = ff
			lines := readLines(t, "../normalize/testdata/zeek/zat_json_dns.log")
			for i := 0; i < 3; i++ {
				h.publish(t, "agency-a", "zeek_dns", fmt.Sprintf("f%v:%d", failEarly, i), lines, nil)
			}
			if failEarly {
				// Fail the workers' attempts, then let the flush's retry through.
				ff.failing = true
				time.AfterFunc(500*time.Millisecond, func() { ff.mu.Lock(); ff.failing = false; ff.mu.Unlock() })
			}
			stop := h.run(t)
			h.waitStored(t, 30*time.Second)
			stop()
			stored := h.count(t, "SELECT uniqExact(detection_id) FROM $db.detections")
			if stored == 0 {
				t.Fatal("no detections stored: the test proves nothing")
			}
			ff.mu.Lock()
			defer ff.mu.Unlock()
			if uint64(len(ff.times)) != stored {
				t.Errorf("%d findings published, %d stored", len(ff.times), stored)
			}
			for id, n := range ff.times {
				if n != 1 {
					t.Errorf("finding %s published %d times, want once", id, n)
				}
			}
			if failEarly && ff.calls <= 3 {
				t.Errorf("%d publish calls: the flush never retried what the workers could not publish", ff.calls)
			}
		})
	}
}
