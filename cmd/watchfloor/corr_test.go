package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

func TestServerHasPriorityGroups(t *testing.T) {
	for _, tt := range []struct {
		give string
		want bool
	}{{"2.9.10", false}, {"2.10.24", false}, {"2.11.0", true}, {"2.15.2", true}, {"v3.0.0", true}, {"", false}, {"x.y", false}} {
		if got := serverHasPriorityGroups(tt.give); got != tt.want {
			t.Errorf("serverHasPriorityGroups(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestCorrConfigValidate(t *testing.T) {
	c := defaultCorrConfig()
	if errs := c.validate(); len(errs) > 0 {
		t.Fatalf("default config: %v", errs)
	}
	c.Mode = "cluster"
	c.Route.Partitions = 0
	errs := c.validate()
	if len(errs) != 2 {
		t.Fatalf("validate() = %v, want corr.mode and corr.partitions errors", errs)
	}
	for i, key := range []string{"corr.mode", "corr.partitions"} {
		if got := errs[i].Error(); len(got) < len(key) || got[:len(key)] != key {
			t.Errorf("error %d = %q, want it to name %s", i, got, key)
		}
	}
}

// countingStore counts the events one instance stored.
type countingStore struct {
	ingest.Store
	events atomic.Int64
}

func (s *countingStore) Write(ctx context.Context, rows *sink.Rows) error {
	if err := s.Store.Write(ctx, rows); err != nil {
		return err
	}
	s.events.Add(int64(len(rows.Events)))
	return nil
}

// TestRoutedCorrelationAcrossInstances runs two pipeline instances in
// routed mode against one embedded JetStream server and the real
// ClickHouse: an event_count correlation needs all six matching events,
// which the shared consumer spreads over both instances, so neither alone
// reaches the threshold; the finding is stored (and published) exactly once.
func TestRoutedCorrelationAcrossInstances(t *testing.T) {
	addr, db := chtest.Database(t)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(srv.Shutdown)

	dir := t.TempDir()
	for name, body := range map[string]string{
		"invalid_user.yml": `title: sshd invalid user
id: e2e-invalid-user
level: low
logsource: {product: linux, service: sshd}
detection:
  sel: {app: sshd, message|startswith: 'Invalid user '}
  condition: sel
`,
		"guessing.yml": `title: SSH user guessing
id: e2e-guessing
level: high
correlation: {type: event_count, rules: [e2e-invalid-user], group-by: [host], timespan: 10m, condition: {gte: 6}}
`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base, err := rulebook.LoadBase(dir)
	if err != nil {
		t.Fatal(err)
	}
	set, err := rulebook.StaticSet(base, detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	scfg := sink.DefaultConfig()
	scfg.Addr, scfg.Database = []string{addr}, db
	s, err := sink.Open(ctx, scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	cc := defaultCorrConfig()
	cc.Mode = corrRouted
	cc.Route.Partitions, cc.Route.PinnedTTL, cc.Route.FetchWait = 4, 2*time.Second, 200*time.Millisecond
	pcfg := ingest.DefaultPipelineConfig()
	// One raw batch in flight at a time across the shared consumer: the
	// server hands them to the two instances' pull requests in turn.
	pcfg.FetchBatch, pcfg.MaxAckPending, pcfg.FlushInterval, pcfg.Workers = 1, 1, 20*time.Millisecond, 1

	type instance struct {
		store *countingStore
		stop  func()
	}
	var insts []*instance
	var pubJS jetstream.JetStream
	for i := 0; i < 2; i++ {
		nc, err := nats.Connect(srv.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			pubJS = js
			if err := ingest.EnsureStreams(ctx, js, ingest.DefaultStreamConfig()); err != nil {
				t.Fatal(err)
			}
		}
		store := &countingStore{Store: s}
		findings := &ingest.JetStreamFindings{JS: js}
		rc, err := setupCorrelation(ctx, cc, nc, js, set, store, findings, log)
		if err != nil {
			t.Fatal(err)
		}
		if rc == nil {
			t.Fatal("setupCorrelation chose local mode with corr.mode=routed")
		}
		p, err := ingest.NewPipeline(pcfg, js, normalize.Builtin(), store, ingest.RulesChain{set}, findings, nil, log)
		if err != nil {
			t.Fatal(err)
		}
		p.RouteCorrelations(rc.pub)
		pctx, pcancel := context.WithCancel(ctx)
		stopOwner := rc.run(pctx)
		done := make(chan error, 1)
		go func() { done <- p.Run(pctx) }()
		inst := &instance{store: store, stop: func() {
			pcancel()
			if err := <-done; err != nil {
				t.Errorf("pipeline %d: %v", i, err)
			}
			stopOwner()
		}}
		t.Cleanup(inst.stop)
		insts = append(insts, inst)
	}

	const n = 6
	for k := 0; k < n; k++ {
		at := time.Now().UTC().Add(time.Duration(k-n) * time.Second)
		line := fmt.Sprintf("%s bastion01.agency.example sshd[%d]: Invalid user guest%d from 198.51.100.7 port 4000%d",
			at.Format(time.Stamp), 4000+k, k, k)
		msg := nats.NewMsg(ingest.RawSubject("doj", "syslog"))
		msg.Data = []byte(line + "\n")
		msg.Header.Set(ingest.HeaderMsgID, "corr-e2e:"+strconv.Itoa(k))
		msg.Header.Set(ingest.HeaderSensor, "test-sensor")
		msg.Header.Set(ingest.HeaderCount, "1")
		if _, err := pubJS.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	conn := s.Conn()
	q := func(query string) uint64 { return chtest.Count(t, conn, fmt.Sprintf(query, db)) }
	deadline := time.Now().Add(15 * time.Second)
	for q("SELECT count() FROM %s.events") < n || q("SELECT count() FROM %s.detections WHERE rule_id = 'e2e-guessing'") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: %d events, %d correlation findings stored; want %d and 1",
				q("SELECT count() FROM %s.events"), q("SELECT count() FROM %s.detections WHERE rule_id = 'e2e-guessing'"), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	a, b := insts[0].store.events.Load(), insts[1].store.events.Load()
	if a == 0 || b == 0 {
		t.Fatalf("events stored per instance: %d and %d; want both instances to take part", a, b)
	}
	// Give a second finding (another owner, a replay) time to show up.
	time.Sleep(time.Second)
	if got := q("SELECT uniqExact(detection_id) FROM %s.detections WHERE rule_id = 'e2e-guessing'"); got != 1 {
		t.Errorf("distinct correlation findings = %d, want 1", got)
	}
	if got := q("SELECT count() FROM %s.detections FINAL WHERE rule_id = 'e2e-guessing'"); got != 1 {
		t.Errorf("correlation findings (FINAL) = %d, want 1", got)
	}
	if got := q("SELECT count() FROM %s.detections WHERE rule_id = 'e2e-invalid-user'"); got != 0 {
		t.Errorf("the referenced rule raised %d findings of its own, want 0 (no generate: true)", got)
	}
	st, err := pubJS.Stream(ctx, ingest.StreamDetections)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(ingest.DetectionSubject("doj", "high")))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects[ingest.DetectionSubject("doj", "high")]; got != 1 {
		t.Errorf("published correlation findings = %d, want 1", got)
	}
	t.Logf("events per instance: %d and %d; stored detections rows: %d", a, b, q("SELECT count() FROM %s.detections"))
}
