package intel

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sourcegraph/conc"

	"github.com/watchfloor/watchfloor/schemas"
)

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
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

// A feed pushed to the soc_intel object store raises detections without a
// restart; deleting it stops them; a broken push keeps the other feeds.
func TestReloadFromObjectStore(t *testing.T) {
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: DefaultBucket})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "local.txt")
	if err := os.WriteFile(file, []byte("local-bad.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loader := &Loader{Files: []FileFeed{ParseFileFeed(file)}}
	set, _, _, err := loader.Build(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := NewMatcher(DefaultConfig(), set)
	r := &Reloader{Loader: loader, Store: store, Matcher: m, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Debounce: 50 * time.Millisecond}
	runCtx, stop := context.WithCancel(ctx)
	var wg conc.WaitGroup
	wg.Go(func() {
		if err := r.Run(runCtx); err != nil {
			t.Error(err)
		}
	})
	defer func() { stop(); wg.Wait() }()

	ev := schemas.Event{ID: schemas.EventID("b", 1), ClassUID: schemas.ClassDNS, Agency: "a1"}
	ev.DNS.QueryHostname = "c2.pushed.example"
	feeds := func() []string {
		var out []string
		for _, f := range m.Eval(&ev, nil) {
			out = append(out, f.RuleID+" "+f.Tags[2])
		}
		return out
	}
	if got := feeds(); len(got) != 0 {
		t.Fatalf("before the push: %v", got)
	}
	time.Sleep(100 * time.Millisecond) // let the watcher subscribe
	if _, err := store.PutString(ctx, "acme-c2.txt", "# pushed\npushed.example\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(feeds()) == 1 })
	if got := feeds()[0]; got != "intel.acme-c2 intel.indicator:pushed.example" {
		t.Errorf("after the push: %q", got)
	}
	// A broken STIX push is skipped; the good feeds stay.
	if _, err := store.PutString(ctx, "broken.json", "{not json"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ev.DNS.QueryHostname = "x.local-bad.example"
	if len(feeds()) != 1 {
		t.Errorf("file feed lost after a broken push: %v", feeds())
	}
	ev.DNS.QueryHostname = "c2.pushed.example"
	if err := store.Delete(ctx, "acme-c2.txt"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(feeds()) == 0 })
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
