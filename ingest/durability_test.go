package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

// deliverTimes has the durable consumer deliver the one pending message n
// times without settling it, as n crashed pipeline instances would.
func deliverTimes(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	ctx := context.Background()
	cc := ingest.DefaultPipelineConfig().ConsumerConfig()
	cons, err := js.CreateOrUpdateConsumer(ctx, ingest.StreamRaw, cc)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range b.Messages() {
			_ = m.Nak()
			got++
		}
		if got == 0 {
			t.Fatalf("delivery %d: nothing delivered", i+1)
		}
	}
}

// TestPipelineMaxDeliverBecomesDeadLetters: a batch delivered more than
// pipeline.max_deliver times is not normalized again; every record becomes
// a dead letter naming the limit, and the counts still add up.
func TestPipelineMaxDeliverBecomesDeadLetters(t *testing.T) {
	h := newHarness(t)
	lines := readLines(t, "../normalize/testdata/zeek/zat_dns.log") // TSV with directives
	h.publish(t, "agency-a", "zeek_dns", "poison:1", lines, nil)
	deliverTimes(t, h.js, ingest.DefaultPipelineConfig().MaxDeliver)
	h.publish(t, "agency-a", "zeek_dns", "clean:1", lines, nil)
	stop := h.run(t)
	h.waitStored(t, 30*time.Second)
	stop()
	perBatch := uint64(h.sent / 2)
	if got := h.count(t, "SELECT count() FROM $db.dead_letters WHERE msg_id = 'poison:1' AND reason LIKE 'exceeded pipeline.max_deliver (10): delivered 11 times%'"); got != perBatch {
		t.Errorf("dead letters of the poison batch naming the limit = %d, want %d", got, perBatch)
	}
	if got := h.count(t, "SELECT count() FROM $db.events"); got != perBatch {
		t.Errorf("events = %d, want %d (the clean batch)", got, perBatch)
	}
}

type failingStore struct{}

func (failingStore) Write(context.Context, *sink.Rows) error { return errors.New("clickhouse is down") }

// TestPipelineMaxDeliverToDLQStream: when the dead letters of such a batch
// cannot be stored either, the raw batch goes to soc.dlq.<agency>.<format>
// with the reason, and is acked: not dropped, not blocking.
func TestPipelineMaxDeliverToDLQStream(t *testing.T) {
	_, js := startJetStream(t)
	h := &harness{js: js}
	h.publish(t, "agency-b", "syslog", "poison:2", []string{"<13>Oct 11 22:14:16 host sshd[1]: x", "<13>Oct 11 22:14:17 host sshd[1]: y"}, nil)
	deliverTimes(t, js, ingest.DefaultPipelineConfig().MaxDeliver)

	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultPipelineConfig()
	cfg.FlushInterval = 100 * time.Millisecond
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := ingest.NewPipeline(cfg, js, normalize.Builtin(), failingStore{}, rules, &ingest.JetStreamFindings{JS: js}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	st, err := js.Stream(context.Background(), ingest.StreamDeadLetters)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := st.GetLastMsgForSubject(context.Background(), "soc.dlq.agency-b.syslog")
		if err == nil {
			reason := m.Header.Get(ingest.HeaderReason)
			if !strings.Contains(reason, "exceeded pipeline.max_deliver") || !strings.Contains(reason, "clickhouse is down") {
				t.Errorf("Wf-Reason = %q, want the limit and the store error", reason)
			}
			if got := m.Header.Get(ingest.HeaderOrigSubject); got != "soc.raw.agency-b.syslog" {
				t.Errorf("Wf-Subject = %q", got)
			}
			if !strings.Contains(string(m.Data), "sshd[1]: y") {
				t.Errorf("dlq payload %q is not the raw batch", m.Data)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message on soc.dlq.agency-b.syslog after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cons, err := js.Consumer(context.Background(), ingest.StreamRaw, cfg.Durable)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		info, err := cons.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumAckPending != 0 || info.NumPending != 0 {
			return fmt.Errorf("consumer still holds %d unacked, %d pending", info.NumAckPending, info.NumPending)
		}
		return nil
	})
}

func waitFor(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAgencyFromSubjectOnly: a payload that claims another agency (a field
// named agency, a spoofed Wf-Sensor header) is stored under the agency of
// its subject, which the server's permissions bind to the sensor.
func TestAgencyFromSubjectOnly(t *testing.T) {
	h := newHarness(t)
	spoof := []string{
		`{"ts":1575413122.764317,"uid":"Cspoof1","agency":"agency-b","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp","query":"spoof.example","rcode":0}`,
		`{"ts":1575413122.764318,"uid":"Cspoof2","Agency":"agency-b","_agency":"agency-b","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp","query":"spoof2.example","rcode":0}`,
	}
	h.publish(t, "agency-a", "zeek_dns", "spoof:1", spoof, map[string]string{"Wf-Agency": "agency-b"})
	stop := h.run(t)
	h.waitStored(t, 30*time.Second)
	stop()
	if n := h.count(t, "SELECT count() FROM $db.events WHERE agency = 'agency-a'"); n != 2 {
		t.Errorf("events of agency-a = %d, want 2", n)
	}
	if n := h.count(t, "SELECT count() FROM $db.events WHERE agency != 'agency-a'") + h.count(t, "SELECT count() FROM $db.dead_letters WHERE agency != 'agency-a'"); n != 0 {
		t.Errorf("%d rows stored under another agency than the subject's", n)
	}
}

// TestPipelineLimits: client-controlled sizes past their limits become dead
// letters whose reason names the limit.
func TestPipelineLimits(t *testing.T) {
	h := newHarness(t)
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	bomb := enc.EncodeAll(bytes.Repeat([]byte("A"), ingest.MaxDecodedBatchBytes+1<<20), nil) // tiny, expands past the limit
	enc.Close()
	msg := nats.NewMsg(ingest.RawSubject("agency-a", "syslog"))
	msg.Data = bomb
	msg.Header.Set(ingest.HeaderMsgID, "limit:bomb")
	msg.Header.Set(ingest.HeaderEncoding, "zstd")
	msg.Header.Set(ingest.HeaderCount, "50000000") // claims far more than a batch may hold
	if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	h.sent += ingest.MaxBatchRecords

	many := make([]string, ingest.MaxBatchRecords+3)
	for i := range many {
		many[i] = "r" + strconv.Itoa(i) // short: the batch stays under 1 MiB
	}
	h.publish(t, "agency-a", "syslog", "limit:many", many, nil)
	stop := h.run(t)
	h.waitStored(t, 60*time.Second)
	stop()
	if n := h.count(t, "SELECT count() FROM $db.dead_letters WHERE msg_id = 'limit:bomb' AND reason LIKE 'decompressed batch exceeds the limit of 67108864 bytes%'"); n != ingest.MaxBatchRecords {
		t.Errorf("zstd bomb: %d dead letters naming the limit, want %d (Wf-Count capped)", n, ingest.MaxBatchRecords)
	}
	if n := h.count(t, "SELECT count() FROM $db.dead_letters WHERE msg_id = 'limit:many' AND reason LIKE 'batch holds more than 100000 records%'"); n != 3 {
		t.Errorf("records past ingest.MaxBatchRecords: %d dead letters, want 3", n)
	}
}
