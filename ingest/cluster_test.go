package ingest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
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
	"github.com/watchfloor/watchfloor/ingest/sensor"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

// clusterPortBase is the first of the loopback ports the cluster test may
// use for its route listeners (WATCHFLOOR_TEST_CLUSTER_PORT overrides it).
const clusterPortBase = 14800

// jsCluster is a 3-node JetStream cluster running in the test process.
type jsCluster struct {
	servers []*server.Server
	opts    []*server.Options
}

// freePorts returns n loopback ports from [base, base+30] that accept a listener now.
func freePorts(t *testing.T, base, n int) []int {
	t.Helper()
	var ports []int
	for p := base; p <= base+30 && len(ports) < n; p++ {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		ln.Close()
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("need %d free ports in %d-%d, found %v", n, base, base+30, ports)
	}
	return ports
}

func startCluster(t *testing.T, n int) *jsCluster {
	t.Helper()
	base := clusterPortBase
	if v := os.Getenv("WATCHFLOOR_TEST_CLUSTER_PORT"); v != "" {
		var err error
		if base, err = strconv.Atoi(v); err != nil {
			t.Fatalf("WATCHFLOOR_TEST_CLUSTER_PORT=%q: %v", v, err)
		}
	}
	ports := freePorts(t, base, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &jsCluster{}
	for i := 0; i < n; i++ {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "wf-test",
				Host: "127.0.0.1",
				Port: ports[i],
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		c.servers = append(c.servers, s)
		c.opts = append(c.opts, o)
	}
	t.Cleanup(func() {
		for _, s := range c.servers {
			s.Shutdown()
		}
		for _, s := range c.servers {
			s.WaitForShutdown()
		}
	})
	for _, s := range c.servers {
		if !s.ReadyForConnections(20 * time.Second) {
			t.Fatalf("nats node %s not ready", s.Name())
		}
	}
	// Wait until the meta group has a leader and every node has joined.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := 0
		for _, s := range c.servers {
			if s.JetStreamIsClustered() && s.JetStreamIsCurrent() && s.NumRoutes() >= n-1 {
				ready++
			}
		}
		leader := false
		for _, s := range c.servers {
			leader = leader || s.JetStreamIsLeader()
		}
		if ready == n && leader {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not formed after 30s (%d of %d nodes current, meta leader %v)", ready, n, leader)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}

// urls lists the client URLs, first the node at index first, so a client
// starts on a chosen node and fails over to the others.
func (c *jsCluster) urls(first int) string {
	var u []string
	for i := range c.servers {
		u = append(u, c.servers[(first+i)%len(c.servers)].ClientURL())
	}
	return strings.Join(u, ",")
}

func (c *jsCluster) index(name string) int {
	for i, s := range c.servers {
		if s.Name() == name {
			return i
		}
	}
	return -1
}

func (c *jsCluster) connect(t *testing.T, first int, name string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(c.urls(first), nats.Name(name), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Timeout(2*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			t.Logf("nats client %s: %v (subscription %q)", name, err, subj)
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// clusterInstance is one `watchfloor run` in the test: its own connection,
// its own pipeline, the shared durable consumer.
type clusterInstance struct {
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
	killed bool
}

func startInstance(t *testing.T, c *jsCluster, first int, name string, s *sink.Sink, rules ingest.Rules) *clusterInstance {
	t.Helper()
	nc, js := c.connect(t, first, name)
	cfg := ingest.DefaultPipelineConfig()
	cfg.Workers = 2
	cfg.FetchBatch = 16
	cfg.MaxAckPending = 64
	cfg.AckWait = 10 * time.Second // the shortest allowed: what the killed instance held comes back after it
	cfg.FlushRows = 4000
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.RetryMax = time.Second
	log := slog.New(slog.NewTextHandler(io.Discard, nil)).With("instance", name)
	if testing.Verbose() && os.Getenv("WATCHFLOOR_TEST_LOG") == "1" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("instance", name)
	}
	p, err := ingest.NewPipeline(cfg, js, normalize.Builtin(), s, rules, &ingest.JetStreamFindings{JS: js}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &clusterInstance{nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		in.err = p.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-in.done:
			if in.err != nil && !in.killed {
				t.Errorf("pipeline instance %s: Run: %v", name, in.err)
			}
		case <-time.After(30 * time.Second):
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Errorf("pipeline instance did not stop within 30s; goroutines:\n%s", b.String())
		}
	})
	return in
}

// kill stops the instance the hard way: its connection goes first, so what
// it holds is neither acked nor nacked and comes back after AckWait.
func (in *clusterInstance) kill(t *testing.T) {
	t.Helper()
	in.killed = true
	in.nc.Close()
	in.cancel()
	select {
	case <-in.done:
	case <-time.After(30 * time.Second):
		t.Fatal("killed pipeline instance did not return within 30s")
	}
}

// TestClusterFailover runs the pipeline against a 3-node JetStream cluster
// with R3 streams: two instances share the durable consumer while a sensor
// publishes; mid-stream the stream leader's node stops and one instance is
// killed. Every record must end up in ClickHouse exactly once (after
// dedupe): events FINAL and distinct event ids equal the clean records sent,
// and each garbage record is exactly one dead letter.
func TestClusterFailover(t *testing.T) {
	addr, db := chtest.Database(t)
	start := time.Now()
	c := startCluster(t, 3)
	t.Logf("cluster formed in %s", time.Since(start).Round(time.Millisecond))

	_, adminJS := c.connect(t, 0, "admin")
	sc := ingest.DefaultStreamConfig()
	sc.Replicas = 3
	sc.RawMaxBytes = 256 << 20
	// One deadline for the whole test: failover waits out an AckWait or two,
	// so a short one would expire before the final consumer check.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := retryJS(ctx, func() error { return ingest.EnsureStreams(ctx, adminJS, sc) }); err != nil {
		t.Fatal(err)
	}
	st, err := adminJS.Stream(ctx, ingest.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("SOC_RAW replicas = %d, cluster %+v; want R3 with 2 followers", info.Config.Replicas, info.Cluster)
	}
	leader := c.index(info.Cluster.Leader)
	if leader < 0 {
		t.Fatalf("stream leader %q is not one of the nodes", info.Cluster.Leader)
	}

	scfg := sink.DefaultConfig()
	scfg.Addr, scfg.Database = []string{addr}, db
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sink.Open(ctx, scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}

	// Instance a starts on the leader's node (it must fail over), b on another;
	// b is the one killed.
	startInstance(t, c, leader, "a", store, rules) // the survivor
	b := startInstance(t, c, leader+1, "b", store, rules)

	const (
		total    = 40000
		perBatch = 100
		badEvery = 997 // every 997th record is garbage: a dead letter
	)
	// The sensor publishes through the leader's node too.
	_, sensorJS := c.connect(t, leader, "sensor")
	scfgSensor := sensor.DefaultConfig()
	scfgSensor.SensorID, scfgSensor.Agency = "cluster-sensor", "agency-c"
	scfgSensor.BatchRecords = perBatch
	scfgSensor.Linger = 0
	scfgSensor.MaxInFlight = 32
	scfgSensor.AckTimeout = 2 * time.Second
	f, _ := normalize.Builtin().Lookup("zeek_dns")
	pub, err := sensor.NewPublisher(sensorJS, scfgSensor, sensor.Source{Format: f, Key: "dns"}, log)
	if err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	nodeDown := make(chan struct{})
	instanceDown := make(chan struct{})
	var pubErr error
	bad := 0
	wg.Go(func() {
		base := 1764770000.0
		var line []byte
		for i := 0; i < total; i++ {
			switch i {
			case total / 3:
				close(nodeDown)
			case total / 2:
				close(instanceDown)
			}
			line = line[:0]
			if i%badEvery == badEvery-1 {
				line = fmt.Appendf(line, "garbage record %d {", i)
				bad++
			} else {
				line = fmt.Appendf(line, `{"ts":%.6f,"uid":"C%d","id.orig_h":"10.0.%d.%d","id.orig_p":%d,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":%d,"query":"host%d.example.org","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR"}`,
					base+float64(i)/1000, i, (i/256)%256, i%256, 1024+i%60000, i%65536, i)
			}
			if err := pub.Add(ctx, sensor.Line{Data: line}); err != nil {
				pubErr = err
				return
			}
			if i%(10*perBatch) == 0 {
				time.Sleep(20 * time.Millisecond) // spread the publishing over a few seconds
			}
		}
		pubErr = pub.Close(ctx)
	})

	<-nodeDown
	t.Logf("stopping stream leader %s after %s", c.servers[leader].Name(), time.Since(start).Round(time.Millisecond))
	c.servers[leader].Shutdown()
	<-instanceDown
	t.Logf("killing pipeline instance b after %s", time.Since(start).Round(time.Millisecond))
	b.kill(t)
	wg.Wait()
	if pubErr != nil {
		t.Fatalf("sensor publish: %v", pubErr)
	}
	ps := pub.Stats()
	if ps.Records != total || ps.Failed != 0 {
		t.Fatalf("sensor stats %+v: want %d records acknowledged, none failed", ps, total)
	}
	t.Logf("published %d records in %d batches (%d retries, %d duplicates) after %s", ps.Records, ps.Batches, ps.Retries, ps.Duplicates, time.Since(start).Round(time.Millisecond))

	wantEvents, wantDead := uint64(total-bad), uint64(bad)
	count := func(q string) uint64 { return chtest.Count(t, store.Conn(), strings.ReplaceAll(q, "$db", db)) }
	deadline := time.Now().Add(90 * time.Second)
	for {
		ev, dl := count("SELECT uniqExact(event_id) FROM $db.events"), count("SELECT uniqExact(dead_letter_id) FROM $db.dead_letters")
		if ev == wantEvents && dl == wantDead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90s: %d distinct events (want %d), %d distinct dead letters (want %d)", ev, wantEvents, dl, wantDead)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("all records stored after %s", time.Since(start).Round(time.Millisecond))

	// The survivor settles everything: nothing pending or unacked remains.
	_, checkJS := c.connect(t, leader+1, "check")
	deadline = time.Now().Add(30 * time.Second)
	for {
		ci, err := checkJS.Consumer(ctx, ingest.StreamRaw, "watchfloor")
		var pending, ackPending uint64
		var cinfo *jetstream.ConsumerInfo
		if err == nil {
			if cinfo, err = ci.Info(ctx); err == nil {
				pending, ackPending = cinfo.NumPending, uint64(cinfo.NumAckPending)
			}
		}
		if err == nil && pending == 0 && ackPending == 0 {
			leaderNow := ""
			if cinfo.Cluster != nil {
				leaderNow = cinfo.Cluster.Leader
			}
			t.Logf("consumer settled: stream sequence %d delivered, leader now %s", cinfo.Delivered.Stream, leaderNow)
			if leaderNow == c.servers[leader].Name() {
				t.Errorf("consumer leader is still the stopped node %s", leaderNow)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer after 30s: pending %d, ack pending %d, err %v", pending, ackPending, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	raw := count("SELECT count() FROM $db.events")
	if got := count("SELECT count() FROM $db.events FINAL"); got != wantEvents {
		t.Errorf("events FINAL = %d, want %d", got, wantEvents)
	}
	if got := count("SELECT count() FROM $db.dead_letters FINAL"); got != wantDead {
		t.Errorf("dead letters FINAL = %d, want %d", got, wantDead)
	}
	if got := count("SELECT count() FROM $db.dead_letters FINAL WHERE raw LIKE 'garbage record %' AND agency = 'agency-c'"); got != wantDead {
		t.Errorf("garbage dead letters = %d, want %d", got, wantDead)
	}
	if got := count("SELECT count() FROM $db.events FINAL WHERE agency != 'agency-c' OR sensor != 'cluster-sensor'"); got != 0 {
		t.Errorf("%d events with the wrong agency or sensor", got)
	}
	if got := count("SELECT uniqExact(dns_query_hostname) FROM $db.events FINAL"); got != wantEvents {
		t.Errorf("distinct DNS queries = %d, want %d", got, wantEvents)
	}
	t.Logf("events: %d rows before dedupe, %d after; dead letters %d; elapsed %s", raw, wantEvents, wantDead, time.Since(start).Round(time.Millisecond))
}

// retryJS retries fn while the cluster is still electing leaders.
func retryJS(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
