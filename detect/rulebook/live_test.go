package rulebook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

const (
	liveRule     = "live-push-rule"
	liveBatchLen = 20
)

// TestLivePushWhileEventsFlow runs a real pipeline (embedded JetStream,
// ClickHouse) while a sensor publishes a batch every 20ms whose every
// record matches liveRule. The rule is pushed, rolled back (a new rule:
// removed), rolled back again (back), and updated, all without a restart.
// It checks that each change is live within 5s, that every batch was
// evaluated by exactly one rule set (all its records have a finding of one
// revision, or none has), and that no event is lost or stored twice.
func TestLivePushWhileEventsFlow(t *testing.T) {
	srv := startServer(t, nil)
	js := connect(t, srv.ClientURL())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := ingest.EnsureStreams(ctx, js, ingest.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	store, err := rulebook.EnsureBucket(ctx, js, rulebook.DefaultBucketConfig())
	if err != nil {
		t.Fatal(err)
	}
	addr, db := chtest.Database(t)
	scfg := sink.DefaultConfig()
	scfg.Addr, scfg.Database = []string{addr}, db
	snk, err := sink.Open(ctx, scfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer snk.Close()
	if _, err := snk.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	base, err := rulebook.LoadBase("../rules")
	if err != nil {
		t.Fatal(err)
	}
	var p atomic.Pointer[ingest.Pipeline]
	w, err := rulebook.NewWatcher(store, rulebook.WatcherConfig{Base: base, Compile: detect.DefaultConfig(),
		OnSwap: func(s *rulebook.Set) {
			if pl := p.Load(); pl != nil {
				pl.SetRules(s)
			}
		}}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pcfg := ingest.DefaultPipelineConfig()
	pcfg.Workers, pcfg.FlushInterval, pcfg.FetchBatch = 2, 50*time.Millisecond, 8
	pl, err := ingest.NewPipeline(pcfg, js, normalize.Builtin(), snk, w.Current(), &ingest.JetStreamFindings{JS: js}, nil, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	p.Store(pl)
	runCtx, stopRun := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	var runErr error
	go func() { defer wg.Done(); runErr = pl.Run(runCtx) }()
	go func() { defer wg.Done(); _ = w.Run(runCtx) }()

	// The sensor.
	var sent atomic.Int64
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- publishLoop(pubCtx, js, &sent) }()

	conn := snk.Conn()
	// Detections as analysts' alerting sees them: published on
	// soc.detections.> (the pipeline publishes before it stores).
	var seenMu sync.Mutex
	seen := map[uint64]bool{}
	sub, err := js.Conn().Subscribe("soc.detections.>", func(m *nats.Msg) {
		var f struct {
			FindingInfo struct {
				Analytic struct{ UID, Version string }
			} `json:"finding_info"`
		}
		if json.Unmarshal(m.Data, &f) == nil && f.FindingInfo.Analytic.UID == liveRule {
			rev, _ := strconv.ParseUint(f.FindingInfo.Analytic.Version, 10, 64)
			seenMu.Lock()
			seen[rev] = true
			seenMu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	waitRevision := func(what string, rev uint64, since time.Time) {
		t.Helper()
		deadline := since.Add(5 * time.Second)
		for w.Current().Revision() < rev && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		swapped := time.Since(since)
		for {
			seenMu.Lock()
			ok := seen[rev]
			seenMu.Unlock()
			if ok {
				t.Logf("%s: revision %d swapped in after %s, its detections published after %s", what, rev,
					swapped.Round(time.Millisecond), time.Since(since).Round(time.Millisecond))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no detection of revision %d within 5s", what, rev)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// waitQuiet waits for a batch published after the change to carry no
	// finding of the rule.
	waitQuiet := func(what string, since time.Time) {
		t.Helper()
		// This waits for ClickHouse to hold the batch, which on a loaded
		// machine takes longer than the swap itself.
		deadline := since.Add(20 * time.Second)
		target := sent.Load() + 1 // the first batch published after the change
		for time.Now().Before(deadline) {
			time.Sleep(25 * time.Millisecond)
			ev := chtest.Count(t, conn, fmt.Sprintf("SELECT uniqExact(event_id) FROM %s.events WHERE metadata_uid LIKE 'b%d-%%'", db, target))
			if ev < liveBatchLen {
				continue // not stored yet
			}
			det := chtest.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.detections WHERE rule_id = '%s' AND event_id IN (SELECT event_id FROM %s.events WHERE metadata_uid LIKE 'b%d-%%')", db, liveRule, db, target))
			if det == 0 {
				t.Logf("%s: rule gone, batch %d (published after the change) raised nothing, seen after %s", what, target, time.Since(since).Round(time.Millisecond))
				return
			}
			target = sent.Load() + 1
		}
		t.Fatalf("%s: batches published after the change still raise findings of %s after 20s", what, liveRule)
	}

	time.Sleep(300 * time.Millisecond) // events flow without the rule first
	t0 := time.Now()
	rev1, err := store.Put(ctx, liveRule, ruleYAML(liveRule, "live push v1", "livepush"))
	if err != nil {
		t.Fatal(err)
	}
	waitRevision("push", rev1, t0)

	t0 = time.Now()
	rb, err := store.Rollback(ctx, liveRule, 0)
	if err != nil || !rb.Disabled {
		t.Fatalf("Rollback of a new rule = %+v, %v; want it disabled", rb, err)
	}
	waitQuiet("rollback", t0)

	t0 = time.Now()
	rb, err = store.Rollback(ctx, liveRule, 0)
	if err != nil || rb.To != rev1 {
		t.Fatalf("Rollback of the disabled rule = %+v, %v; want revision %d back", rb, err, rev1)
	}
	waitRevision("rollback of the disable", rb.Revision, t0)
	revBack := rb.Revision

	t0 = time.Now()
	rev4, err := store.Put(ctx, liveRule, ruleYAML(liveRule, "live push v2", "LIVEPUSH.example"))
	if err != nil {
		t.Fatal(err)
	}
	waitRevision("update", rev4, t0)
	time.Sleep(200 * time.Millisecond)

	stopPub()
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	// Let the pipeline store everything, then drain it.
	total := uint64(sent.Load()) * liveBatchLen
	deadline := time.Now().Add(20 * time.Second)
	for chtest.Count(t, conn, "SELECT uniqExact(event_id) FROM "+db+".events") < total && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stopRun()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("pipeline Run: %v", runErr)
	}

	// Nothing lost, nothing doubled.
	if got := chtest.Count(t, conn, "SELECT count() FROM "+db+".events FINAL"); got != total {
		t.Errorf("stored %d events, sent %d", got, total)
	}
	var rowsN, ids uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(detection_id) FROM "+db+".detections").Scan(&rowsN, &ids); err != nil {
		t.Fatal(err)
	}
	if rowsN != ids {
		t.Errorf("detections: %d rows for %d ids: a finding was raised twice", rowsN, ids)
	}

	// Every batch saw one rule set.
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT e.metadata_uid, d.rule_revision FROM %s.events AS e
		ANY LEFT JOIN (SELECT event_id, rule_revision FROM %s.detections WHERE rule_id = '%s') AS d USING event_id`, db, db, liveRule))
	if err != nil {
		t.Fatal(err)
	}
	type batchSeen struct {
		records int
		revs    map[uint64]int // revision -> findings (0: none)
	}
	batches := map[string]*batchSeen{}
	for rows.Next() {
		var uid string
		var rev uint64
		if err := rows.Scan(&uid, &rev); err != nil {
			t.Fatal(err)
		}
		b := strings.SplitN(uid, "-", 2)[0]
		bs := batches[b]
		if bs == nil {
			bs = &batchSeen{revs: map[uint64]int{}}
			batches[b] = bs
		}
		bs.records++
		bs.revs[rev]++
	}
	rows.Close()
	perRev := map[uint64]int{}
	for id, bs := range batches {
		if bs.records != liveBatchLen || len(bs.revs) != 1 {
			t.Errorf("batch %s: %d records, revisions seen %v: want %d records under one rule set", id, bs.records, bs.revs, liveBatchLen)
		}
		for rev := range bs.revs {
			perRev[rev]++
			if rev != 0 && rev != rev1 && rev != revBack && rev != rev4 {
				t.Errorf("batch %s: findings of revision %d, which was never live", id, rev)
			}
		}
	}
	t.Logf("%d batches of %d events; batches per rule revision (0 = rule not live): %v; swaps %d", len(batches), liveBatchLen, perRev, w.Swaps())
	if perRev[0] == 0 || perRev[rev1] == 0 || perRev[revBack] == 0 || perRev[rev4] == 0 {
		t.Errorf("batches per revision %v: want some under every phase", perRev)
	}
}

// publishLoop sends a batch every 20ms until ctx ends. Record i of batch n
// has Zeek uid "b<n>-<i>" (stored as metadata_uid) so the test can group
// stored events by batch.
func publishLoop(ctx context.Context, js jetstream.JetStream, sent *atomic.Int64) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := int64(1); ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var b strings.Builder
		ts := float64(time.Now().UnixMilli()) / 1000
		for i := 0; i < liveBatchLen; i++ {
			fmt.Fprintf(&b, `{"ts":%.3f,"uid":"b%d-%d","id.orig_h":"10.0.0.%d","id.orig_p":5000,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","query":"h%d.livepush.example","qtype_name":"A"}`+"\n", ts, n, i, i+1, i)
		}
		msg := nats.NewMsg(ingest.RawSubject("agency-a", "zeek_dns"))
		msg.Data = []byte(b.String())
		msg.Header.Set(ingest.HeaderMsgID, "live-sensor:"+strconv.FormatInt(n, 10))
		msg.Header.Set(ingest.HeaderSensor, "live-sensor")
		msg.Header.Set(ingest.HeaderCount, strconv.Itoa(liveBatchLen))
		if _, err := js.PublishMsg(context.WithoutCancel(ctx), msg); err != nil {
			return fmt.Errorf("publish batch %d: %w", n, err)
		}
		sent.Store(n)
	}
}
