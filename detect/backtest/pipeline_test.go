package backtest_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/backtest"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

// TestBacktestAgreesWithPipelineDetections replays the repository's
// samples through a real pipeline (embedded JetStream, ClickHouse) with the
// bundled rules and the agreement rules, then checks that for every rule
// the detections the streaming engine stored name exactly the events the
// backtest SQL finds in the stored events.
func TestBacktestAgreesWithPipelineDetections(t *testing.T) {
	addr, db := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := ingest.EnsureStreams(ctx, js, ingest.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	scfg := sink.DefaultConfig()
	scfg.Addr, scfg.Database = []string{addr}, db
	log := quiet()
	s, err := sink.Open(ctx, scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	rules, err := rulebook.LoadBase("../rules")
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range agreementRules {
		r, err := detect.ParseRule([]byte("title: agree " + name + "\nid: agree-" + name + "\nlevel: low\n" + body + "\n"))
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	set, err := rulebook.StaticSet(rules, detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	pcfg := ingest.DefaultPipelineConfig()
	pcfg.FlushInterval = 50 * time.Millisecond
	p, err := ingest.NewPipeline(pcfg, js, normalize.Builtin(), s, set, &ingest.JetStreamFindings{JS: js}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()

	records := 0
	for i, src := range []struct{ agency, format, path string }{
		{"agency-a", "zeek_dns", "../../deploy/samples/zeek_dns.json.log"},
		{"agency-b", "zeek_dns", "../../deploy/samples/zeek_dns.tsv.log"},
		{"agency-a", "syslog", "../../deploy/samples/auth.log"},
	} {
		records += publishFile(t, js, src.agency, src.format, src.path, "replay:"+strconv.Itoa(i))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := chtest.Count(t, s.Conn(), "SELECT count() FROM "+db+".events") + chtest.Count(t, s.Conn(), "SELECT count() FROM "+db+".dead_letters")
		if n >= uint64(records) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored %d of %d records after 60s", n, records)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	since := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	total := 0
	for _, r := range rules {
		q, err := backtest.Compile(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := backtest.MatchingIDs(ctx, s.Conn(), q, backtest.Config{Database: db, Since: since})
		if err != nil {
			t.Fatal(err)
		}
		want := detectedIDs(t, ctx, s, db, r.ID)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("rule %s: backtest differs from the pipeline's detections (-pipeline +backtest):\n%s\nWHERE %s", r.ID, diff, q.Where)
		}
		total += len(want)
	}
	t.Logf("%d records replayed, %d rules, %d detections, all found by backtest", records, len(rules), total)
	if total < 20 {
		t.Errorf("only %d detections: the replay does not exercise the rules", total)
	}
}

func detectedIDs(t *testing.T, ctx context.Context, s *sink.Sink, db, rule string) []string {
	t.Helper()
	rows, err := s.Conn().Query(ctx, fmt.Sprintf("SELECT DISTINCT toString(event_id) AS id FROM %s.detections WHERE rule_id = %s ORDER BY id", db, backtest.Quote(rule)))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// publishFile sends a sample file as one batch, as wfsensor would, and
// returns its record count.
func publishFile(t *testing.T, js jetstream.JetStream, agency, format, path, msgID string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := normalize.Builtin().Lookup(format)
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if l := sc.Bytes(); len(l) > 0 && !f.Directive(l) {
			n++
		}
	}
	msg := nats.NewMsg(ingest.RawSubject(agency, format))
	msg.Data = data
	msg.Header.Set(ingest.HeaderMsgID, msgID)
	msg.Header.Set(ingest.HeaderSensor, "replay")
	msg.Header.Set(ingest.HeaderCount, strconv.Itoa(n))
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	return n
}
