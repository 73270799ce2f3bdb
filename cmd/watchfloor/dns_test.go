package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/schemas"
)

// The run wiring: Sigma rules, a feed file, and a feed pushed to the
// soc_intel bucket after start all raise findings through one Rules chain.
func TestDNSDetectionWiring(t *testing.T) {
	dir := t.TempDir()
	feed := filepath.Join(dir, "local-block.txt")
	if err := os.WriteFile(feed, []byte("evil.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	fs := flagSet("run", &cfg, true)
	if err := fs.Parse([]string{"--intel.feeds", "blocklist=" + feed, "--dns.unique-subdomains", "5", "--rules", "../../detect/rules"}); err != nil {
		t.Fatal(err)
	}
	if errs := cfg.DNS.validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := newDNSDetection(cfg.DNS, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.connect(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	stop := d.startReload(ctx)
	defer stop()
	sigma, err := detect.LoadDir(cfg.RulesDir, detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rules := d.rules(sigma)

	eval := func(name string) []string {
		ev := schemas.Event{ID: schemas.EventID("b", 1), ClassUID: schemas.ClassDNS, ActivityID: 1, Agency: "a1", Time: time.Now()}
		ev.DNS.QueryHostname = name
		var ids []string
		for _, f := range rules.Eval(&ev, nil) {
			ids = append(ids, f.RuleID+"|"+strings.Join(f.Tags, ","))
		}
		return ids
	}
	if got := eval("www.evil.example"); len(got) != 1 || !strings.Contains(got[0], "intel.feed:blocklist") || !strings.Contains(got[0], "intel.indicator:evil.example") {
		t.Errorf("file feed: got %v", got)
	}
	if got := eval(strings.Repeat("nbswy3dpeb3w64tmmq", 3) + ".x.exfil.example"); len(got) == 0 || !strings.HasPrefix(got[0], "dns.tunnel.name|") {
		t.Errorf("tunnel analytic: got %v", got)
	}
	time.Sleep(100 * time.Millisecond) // watcher subscribed
	if _, err := d.store.PutString(ctx, "pushed.csv", "domain\npushed.example\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(eval("a.pushed.example")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no detection for a pushed feed within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := eval("a.pushed.example"); !strings.Contains(got[0], "intel.feed:pushed") {
		t.Errorf("pushed feed: got %v", got)
	}
}
