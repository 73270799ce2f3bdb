package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest"
)

// TestNATSUserAddEmbedded: the credentials 'watchfloor nats-user add' prints
// work against the embedded server loading the users file, for the
// agency's own subjects only.
func TestNATSUserAddEmbedded(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	add := func(args ...string) (user, password string) {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), append([]string{"nats-user", "add", "--users", users}, args...), func(string) string { return "" }, &out, &errb); err != nil {
			t.Fatalf("nats-user add %v: %v %s", args, err, errb.String())
		}
		m := regexp.MustCompile(`(?m)^user: (\S+)\npassword: (\S+)$`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("nats-user add output %q has no user and password", out.String())
		}
		return m[1], m[2]
	}
	userA, pwA := add("doj")
	add("dhs")
	if userA != "sensor-doj" {
		t.Errorf("user = %q, want sensor-doj", userA)
	}
	if err := run(context.Background(), []string{"nats-user", "add", "--users", users, "Bad Agency"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("nats-user add accepted an invalid agency")
	}

	u, err := ingest.LoadUsers(users)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ingest.StartEmbedded(ingest.EmbeddedConfig{DataDir: dir, Host: "127.0.0.1", Port: -1, MaxStore: 64 << 20, Users: u.ServerUsers()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	if nc, err := nats.Connect(srv.ClientURL()); err == nil {
		nc.Close()
		t.Error("anonymous connection accepted")
	}
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(userA, "wrong")); err == nil {
		nc.Close()
		t.Error("wrong password accepted")
	}
	violations := make(chan string, 10)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(userA, pwA), nats.CustomInboxPrefix(ingest.SensorInboxPrefix("doj")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case violations <- err.Error():
			default:
			}
		}))
	if err != nil {
		t.Fatalf("sensor connect with the printed password: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// No stream exists, so neither publish is acknowledged; only the one to
	// another agency is a permissions violation.
	_, _ = js.Publish(ctx, ingest.RawSubject("doj", "syslog"), []byte("x\n"))
	_, _ = js.Publish(ctx, ingest.RawSubject("dhs", "syslog"), []byte("x\n"))
	nc.Flush()
	time.Sleep(100 * time.Millisecond)
	var got []string
	for len(violations) > 0 {
		got = append(got, <-violations)
	}
	if len(got) != 1 || !strings.Contains(got[0], `Publish to "soc.raw.dhs.syslog"`) {
		t.Errorf("permission violations = %q, want exactly one, for soc.raw.dhs.syslog", got)
	}
}
