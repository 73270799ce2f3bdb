package corrroute

import (
	"context"
	"encoding/json"
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

// collector records which owner raised each distinct finding (a takeover
// may hand the same finding id over again: the sink drops it).
type collector struct {
	mu  sync.Mutex
	got map[string]map[schemas.ID]bool // owner → finding ids
	all map[schemas.ID]bool
}

func (c *collector) handler(owner string) Handler {
	return func(_ context.Context, fs []schemas.Finding) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.got[owner] == nil {
			c.got[owner] = map[schemas.ID]bool{}
		}
		for _, f := range fs {
			if !c.all[f.ID] {
				c.got[owner][f.ID] = true
			}
			c.all[f.ID] = true
		}
		return nil
	}
}

func (c *collector) count() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	per := map[string]int{}
	for o, l := range c.got {
		per[o] = len(l)
	}
	return len(c.all), per
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
	col := &collector{got: map[string]map[schemas.ID]bool{}, all: map[schemas.ID]bool{}}
	ctxA, stopA := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		o, err := NewOwner(connect(t, srv), cfg, OwnerConfig{Rules: rs, Correlator: detect.DefaultCorrelatorConfig(), Handle: col.handler(name)})
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

func compileRules(t *testing.T, src string) *detect.RuleSet {
	t.Helper()
	rr, err := detect.ParseRules([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := detect.Compile(rr, detect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// whoami returns the correlation inputs of user u's n-th whoami event.
func whoami(t *testing.T, rs *detect.RuleSet, u, n int, at time.Time) []detect.CorrInput {
	t.Helper()
	ev := &schemas.Event{ID: schemas.EventID(fmt.Sprintf("takeover:%d", u), n), Agency: "doj",
		Time: at, ClassUID: schemas.ClassProcess, ActivityID: 1,
		Unmapped: []schemas.KV{{Key: "CommandLine", Value: "whoami /all"}, {Key: "User", Value: fmt.Sprint("user", u)}}}
	ins := rs.CorrInputs(ev, rs.EvalHits(ev, nil), nil)
	if len(ins) != 1 {
		t.Fatalf("CorrInputs() = %d inputs, want 1", len(ins))
	}
	return ins
}

// idCollector keeps every finding id a handler was given.
type idCollector struct {
	mu    sync.Mutex
	total int
	ids   map[schemas.ID]int
}

func (c *idCollector) handle(_ context.Context, fs []schemas.Finding) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range fs {
		c.total++
		c.ids[f.ID]++
	}
	return nil
}

func (c *idCollector) counts() (total, unique int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, len(c.ids)
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type runningOwner struct {
	*Owner
	stop func()
}

func startOwner(t *testing.T, ctx context.Context, srv *server.Server, cfg Config, oc OwnerConfig) *runningOwner {
	t.Helper()
	o, err := NewOwner(connect(t, srv), cfg, oc)
	if err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := o.Run(octx); err != nil {
			t.Errorf("owner: %v", err)
		}
	}()
	r := &runningOwner{Owner: o, stop: func() { cancel(); <-done }}
	t.Cleanup(r.stop)
	return r
}

// TestTakeoverRebuildsWindows stops the owner of every partition in the
// middle of its windows (two of three matches acked); the instance that
// takes over rebuilds the windows from the stream, so the third match fires
// each group's correlation exactly once. A rule swap on the new owner
// rebuilds again and must not fire a second time.
func TestTakeoverRebuildsWindows(t *testing.T) {
	srv := startServer(t)
	cfg := DefaultConfig()
	cfg.Partitions, cfg.PinnedTTL, cfg.FetchWait = 4, 2*time.Second, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js := connect(t, srv)
	if err := Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	rs := compileRules(t, rules)
	pub, err := NewPublisher(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	col := &idCollector{ids: map[schemas.ID]int{}}
	oc := OwnerConfig{Rules: rs, Span: 10 * time.Minute, Correlator: detect.DefaultCorrelatorConfig(), Handle: col.handle, Clock: time.Now}
	const users = 6
	t0 := time.Now().UTC()

	a := startOwner(t, ctx, srv, cfg, oc)
	for n := 0; n < 2; n++ {
		for u := 0; u < users; u++ {
			if err := pub.Publish(ctx, whoami(t, rs, u, n, t0.Add(time.Duration(n)*time.Second))); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "owner a to observe the first matches", 10*time.Second, func() bool { return a.Stats().Observed == 2*users })
	// Let a's acks land, then stop it mid-window.
	time.Sleep(300 * time.Millisecond)
	a.stop()
	if total, _ := col.counts(); total != 0 {
		t.Fatalf("%d findings before the threshold", total)
	}

	b := startOwner(t, ctx, srv, cfg, oc)
	// A redelivered batch republishes the first matches: duplicates.
	for u := 0; u < users; u++ {
		if err := pub.Publish(ctx, whoami(t, rs, u, 1, t0.Add(time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	for u := 0; u < users; u++ {
		if err := pub.Publish(ctx, whoami(t, rs, u, 2, t0.Add(2*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "one finding per user after the takeover", 15*time.Second, func() bool { _, u := col.counts(); return u == users })
	st := b.Stats()
	if st.Rebuilds == 0 || st.Replayed < 2*users {
		t.Errorf("owner b stats %+v: want rebuilds and at least %d inputs replayed", st, 2*users)
	}

	// A rule swap rebuilds b's partitions from the stream: the consumed
	// windows must not fire again (same finding ids at most).
	b.SetRules(compileRules(t, rules), 10*time.Minute)
	for u := 0; u < users; u++ { // a fresh first match for each group
		if err := pub.Publish(ctx, whoami(t, rs, u, 3, t0.Add(3*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the swap's rebuild", 10*time.Second, func() bool { return b.Stats().Rebuilds > st.Rebuilds })
	time.Sleep(500 * time.Millisecond)
	total, unique := col.counts()
	if unique != users {
		t.Errorf("%d distinct findings (%d handed over), want %d: one per user", unique, total, users)
	}
	t.Logf("findings handed to the handler: %d, distinct: %d; owner b: %+v", total, unique, b.Stats())
}

// TestOwnerRejectsForeignAgency publishes an input whose payload names
// another agency than its subject: the owner must not count it.
func TestOwnerRejectsForeignAgency(t *testing.T) {
	srv := startServer(t)
	cfg := DefaultConfig()
	cfg.Partitions, cfg.PinnedTTL, cfg.FetchWait = 1, 2*time.Second, 200*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := connect(t, srv)
	if err := Ensure(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	rs := compileRules(t, rules)
	col := &idCollector{ids: map[schemas.ID]int{}}
	o := startOwner(t, ctx, srv, cfg, OwnerConfig{Rules: rs, Correlator: detect.DefaultCorrelatorConfig(), Handle: col.handle})
	t0 := time.Now().UTC()
	for n := 0; n < 3; n++ {
		ins := whoami(t, rs, 0, n, t0.Add(time.Duration(n)*time.Second))
		data, _ := json.Marshal(ins[0])
		subj := "soc.corr.dhs.0" // the payload says doj
		if n == 2 {
			subj = "soc.corr.doj.0"
		}
		if _, err := js.Publish(ctx, subj, data); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the owner to take the valid input", 10*time.Second, func() bool { return o.Stats().Observed >= 1 })
	time.Sleep(300 * time.Millisecond)
	if got := o.Stats().Observed; got != 1 {
		t.Errorf("observed %d inputs, want 1: inputs whose agency is not their subject's are dropped", got)
	}
	if total, _ := col.counts(); total != 0 {
		t.Errorf("%d findings from foreign inputs", total)
	}
}
