package rulebook_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
)

// asyncErrs records the server's asynchronous errors (permission
// violations arrive that way).
type asyncErrs struct {
	mu   sync.Mutex
	errs []string
}

func (a *asyncErrs) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	a.mu.Lock()
	a.errs = append(a.errs, err.Error())
	a.mu.Unlock()
}

func (a *asyncErrs) has(sub string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range a.errs {
		if strings.Contains(e, sub) {
			return true
		}
	}
	return false
}

func TestPermissionsOnlyEngineerWritesRules(t *testing.T) {
	conf, err := rulebook.AuthorizationConfig([]rulebook.User{
		{Name: "eng", Password: "eng-pw", Role: rulebook.RoleEngineer},
		{Name: "pipe", Password: "pipe-pw", Role: rulebook.RolePipeline},
		{Name: "sensor-a", Password: "sensor-pw", Role: rulebook.RoleSensor, Agency: "agency-a"},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("generated config does not load: %v\n%s", err, conf)
	}
	srv := startServer(t, opts)
	url := srv.ClientURL()
	ctx := ctxT(t)

	// The engineer creates the bucket and deploys.
	engJS := connect(t, url, nats.UserInfo("eng", "eng-pw"))
	eng, err := rulebook.EnsureBucket(ctx, engJS, rulebook.DefaultBucketConfig())
	if err != nil {
		t.Fatalf("engineer EnsureBucket: %v", err)
	}
	rev, err := eng.Put(ctx, "r1", ruleYAML("r1", "t", "x"))
	if err != nil {
		t.Fatalf("engineer Put: %v", err)
	}

	// The pipeline reads and watches, but cannot write.
	var pipeErrs asyncErrs
	pipeJS := connect(t, url, nats.UserInfo("pipe", "pipe-pw"), nats.ErrorHandler(pipeErrs.handler))
	pipe, err := rulebook.OpenStore(ctx, pipeJS)
	if err != nil {
		t.Fatalf("pipeline OpenStore: %v", err)
	}
	if e, err := pipe.Get(ctx, "r1"); err != nil || e.Revision != rev {
		t.Fatalf("pipeline Get = %+v, %v", e, err)
	}
	w, err := rulebook.NewWatcher(pipe, rulebook.WatcherConfig{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatalf("pipeline watch: %v", err)
	}
	if w.Current().Len() != 1 {
		t.Errorf("pipeline watcher sees %d rules, want 1", w.Current().Len())
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := pipe.Put(short, "r1", ruleYAML("r1", "evil", "y")); err == nil {
		t.Fatal("pipeline Put: error = nil, want a refusal")
	}
	if _, err := rulebook.EnsureBucket(short, pipeJS, rulebook.DefaultBucketConfig()); err == nil {
		t.Error("pipeline EnsureBucket (stream update): error = nil, want a refusal")
	}
	waitFor(t, func() bool { return pipeErrs.has("Permissions Violation for Publish to \"$KV.soc_rules.r1\"") })

	// The sensor can do nothing with the bucket.
	var senErrs asyncErrs
	senJS := connect(t, url, nats.UserInfo("sensor-a", "sensor-pw"), nats.ErrorHandler(senErrs.handler), nats.CustomInboxPrefix(ingest.SensorInboxPrefix("agency-a")))
	short2, cancel2 := context.WithTimeout(ctx, time.Second)
	defer cancel2()
	if _, err := senJS.Publish(short2, "$KV.soc_rules.r1", ruleYAML("r1", "evil", "y")); err == nil {
		t.Error("sensor publish to $KV.soc_rules.r1: error = nil")
	}
	waitFor(t, func() bool { return senErrs.has("Permissions Violation for Publish to \"$KV.soc_rules.r1\"") })

	// What the roles are for still works: the pipeline sets up the streams,
	// the sensor publishes its own agency's telemetry, not another's.
	if err := ingest.EnsureStreams(ctx, pipeJS, ingest.DefaultStreamConfig()); err != nil {
		t.Fatalf("pipeline EnsureStreams: %v", err)
	}
	if _, err := senJS.Publish(ctx, ingest.RawSubject("agency-a", "zeek_dns"), []byte("{}\n")); err != nil {
		t.Errorf("sensor publish to its own subject: %v", err)
	}
	short3, cancel3 := context.WithTimeout(ctx, time.Second)
	defer cancel3()
	if _, err := senJS.Publish(short3, ingest.RawSubject("agency-b", "zeek_dns"), []byte("{}\n")); err == nil {
		t.Error("sensor of agency-a published to agency-b's subject")
	}

	if e, err := eng.Get(ctx, "r1"); err != nil || e.Revision != rev || e.Title != "t" {
		t.Errorf("after refused writes Get = %+v, %v; want revision %d unchanged", e, err, rev)
	}
}

func TestPermissionsValidation(t *testing.T) {
	for _, give := range [][]rulebook.User{
		nil,
		{{Name: "s", Password: "p", Role: rulebook.RoleSensor, Agency: "Bad.Agency"}},
		{{Name: "x", Password: "p", Role: "admin"}},
		{{Name: "q\"", Password: "p", Role: rulebook.RoleEngineer}},
		{{Name: "a", Password: "p", Role: rulebook.RoleEngineer}, {Name: "a", Password: "p", Role: rulebook.RolePipeline}},
	} {
		if _, err := rulebook.AuthorizationConfig(give); err == nil {
			t.Errorf("AuthorizationConfig(%+v): error = nil", give)
		}
	}
	if _, err := rulebook.Permissions(rulebook.RolePipeline, ""); err != nil {
		t.Error(err)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
