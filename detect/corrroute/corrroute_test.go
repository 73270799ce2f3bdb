package corrroute

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/schemas"
)

const rules = `title: Whoami
id: rule-whoami
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|contains: whoami}
  condition: sel
---
title: Many whoami
id: corr-count
level: high
correlation: {type: event_count, rules: [rule-whoami], group-by: [User], timespan: 10m, condition: {gte: 3}}
`

func startServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func connect(t *testing.T, s *server.Server) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

type collector struct {
	mu  sync.Mutex
	got map[string][]string // owner → users with a finding
}

func (c *collector) handler(owner string) Handler {
	return func(_ context.Context, fs []schemas.Finding) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, f := range fs {
			c.got[owner] = append(c.got[owner], f.Matched[0]+"="+fmt.Sprint(len(f.EventIDs)))
		}
		return nil
	}
}

func (c *collector) count() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, per := 0, map[string]int{}
	for o, l := range c.got {
		n += len(l)
		per[o] = len(l)
	}
	return n, per
}

// TestOneOwnerPerGroup publishes the inputs of each group's matches from
// two instances alternately; each partition is pinned to one owner, so
// every group reaches its threshold exactly once, and after an owner stops
// the other takes its partitions over.
func TestOneOwnerPerGroup(t *testing.T) {
	srv := startServer(t)
	cfg := DefaultConfig()
	cfg.Partitions, cfg.PinnedTTL, cfg.FetchWait = 4, 2*time.Second, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := Ensure(ctx, connect(t, srv), cfg); err != nil {
		t.Fatal(err)
	}
	rr, err := detect.ParseRules([]byte(rules))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := detect.Compile(rr, detect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{got: map[string][]string{}}
	ctxA, stopA := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		o, err := NewOwner(connect(t, srv), cfg, rs, detect.DefaultCorrelatorConfig(), col.handler(name), nil)
		if err != nil {
			t.Fatal(err)
		}
		octx := ctx
		if name == "a" {
			octx = ctxA
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := o.Run(octx); err != nil {
				t.Errorf("owner %s: %v", name, err)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	pubs := []*Publisher{}
	for i := 0; i < 2; i++ {
		p, err := NewPublisher(connect(t, srv), cfg)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, p)
	}
	const users = 8
	send := func(round int) {
		t0 := time.Now().UTC()
		n := 0
		for k := 0; k < 3; k++ {
			for u := 0; u < users; u++ {
				ev := &schemas.Event{ID: schemas.EventID(fmt.Sprintf("s:%d", round), n), Agency: "doj",
					Time: t0.Add(time.Duration(k) * time.Second), ClassUID: schemas.ClassProcess, ActivityID: 1,
					Unmapped: []schemas.KV{{Key: "CommandLine", Value: "whoami /all"}, {Key: "User", Value: fmt.Sprint("user", u)}}}
				n++
				ins := rs.CorrInputs(ev, rs.EvalHits(ev, nil), nil)
				if len(ins) != 1 {
					t.Fatalf("CorrInputs() = %d inputs, want 1", len(ins))
				}
				// Alternate the publishing instance: no instance sees a whole group.
				if err := pubs[n%2].Publish(ctx, ins); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	wait := func(want int) map[string]int {
		deadline := time.Now().Add(20 * time.Second)
		for {
			n, per := col.count()
			if n >= want || time.Now().After(deadline) {
				return per
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Let both owners pull before publishing so pins spread.
	time.Sleep(500 * time.Millisecond)
	send(1)
	per := wait(users)
	if n, _ := col.count(); n != users {
		t.Fatalf("round 1: %d findings (per owner %v), want %d: one per user", n, per, users)
	}
	// Redelivering the same inputs (a crashed batch) is deduped by the stream.
	t.Logf("round 1 findings per owner: %v", per)

	stopA()
	time.Sleep(cfg.PinnedTTL + time.Second)
	send(2)
	per = wait(2 * users)
	if n, _ := col.count(); n != 2*users {
		t.Fatalf("round 2 after owner a stopped: %d findings (per owner %v), want %d", n, per, 2*users)
	}
	t.Logf("after failover, findings per owner: %v", per)
	time.Sleep(300 * time.Millisecond)
	if n, _ := col.count(); n != 2*users {
		t.Errorf("late duplicates: %d findings, want %d", n, 2*users)
	}
}
