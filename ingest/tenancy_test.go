package ingest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest"
)

// tenantServer starts a real nats-server from the authorization block that
// Users.NATSConfig generates, as an operator would.
func tenantServer(t *testing.T, users *ingest.Users) *server.Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("listen: 127.0.0.1:-1\njetstream { store_dir: "+
		`"`+filepath.Join(dir, "js")+`"`+" }\n"+users.NATSConfig()), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the generated config: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	mu   sync.Mutex
	errs []error
}

func (c *client) permErrors() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, e := range c.errs {
		b.WriteString(e.Error() + "\n")
	}
	return b.String()
}

func dial(t *testing.T, url, user, password, inbox string) (*client, error) {
	t.Helper()
	c := &client{}
	opts := []nats.Option{nats.UserInfo(user, password), nats.MaxReconnects(0),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err)
			c.mu.Unlock()
		})}
	if inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(inbox))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return c, nil
}

func TestTenancy(t *testing.T) {
	users := &ingest.Users{}
	_, pwA, err := users.Add(ingest.RoleSensor, "agency-a")
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = users.Add(ingest.RoleSensor, "agency-b")
	_, pwPipe, _ := users.Add(ingest.RolePipeline, "pipeline")
	_, pwEng, _ := users.Add(ingest.RoleEngineer, "alice")
	// The file round-trips and never holds a password in clear.
	path := filepath.Join(t.TempDir(), "users.json")
	if err := users.SaveUsers(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, pw := range []string{pwA, pwPipe, pwEng} {
		if strings.Contains(string(b), pw) || strings.Contains(users.NATSConfig(), pw) {
			t.Fatal("a clear-text password was written")
		}
	}
	if users, err = ingest.LoadUsers(path); err != nil {
		t.Fatal(err)
	}
	srv := tenantServer(t, users)
	url := srv.ClientURL()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	pipe, err := dial(t, url, "pipeline", pwPipe, "")
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	if err := ingest.EnsureStreams(ctx, pipe.js, ingest.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	if _, err := pipe.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: ingest.RulesBucket}); err != nil {
		t.Fatal(err)
	}

	sensorA, err := dial(t, url, "sensor-agency-a", pwA, ingest.SensorInboxPrefix("agency-a"))
	if err != nil {
		t.Fatalf("sensor of agency-a: %v", err)
	}
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Second) }

	t.Run("wrong password refused", func(t *testing.T) {
		_, err := dial(t, url, "sensor-agency-a", pwA+"x", "")
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("connect with a wrong password: err = %v, want an authorization violation", err)
		}
	})
	t.Run("publishes to its own agency", func(t *testing.T) {
		c, cancel := short()
		defer cancel()
		if _, err := sensorA.js.Publish(c, ingest.RawSubject("agency-a", "zeek_dns"), []byte("{}\n")); err != nil {
			t.Errorf("publish to soc.raw.agency-a: %v", err)
		}
	})
	t.Run("cannot publish for another agency", func(t *testing.T) {
		c, cancel := short()
		defer cancel()
		if _, err := sensorA.js.Publish(c, ingest.RawSubject("agency-b", "zeek_dns"), []byte("{}\n")); err == nil {
			t.Error("sensor of agency-a published to soc.raw.agency-b")
		}
		if _, err := sensorA.js.Publish(c, "soc.detections.agency-a.high", []byte("{}")); err == nil {
			t.Error("sensor published a detection")
		}
		st, err := pipe.js.Stream(ctx, ingest.StreamRaw)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(ingest.RawSubjectsAll))
		if err != nil {
			t.Fatal(err)
		}
		if n := info.State.Subjects["soc.raw.agency-b.zeek_dns"]; n != 0 {
			t.Errorf("soc.raw.agency-b holds %d messages from agency-a's sensor", n)
		}
		if !strings.Contains(sensorA.permErrors(), `Permissions Violation for Publish to "soc.raw.agency-b.zeek_dns"`) {
			t.Errorf("no permission violation reported; got %q", sensorA.permErrors())
		}
	})
	t.Run("cannot read raw data", func(t *testing.T) {
		sub, err := sensorA.nc.SubscribeSync(ingest.RawSubjectsAll)
		if err == nil {
			_ = sensorA.nc.Flush()
			if _, err := sub.NextMsg(500 * time.Millisecond); err == nil {
				t.Error("sensor received a raw message")
			}
		}
		_, _ = sensorA.nc.SubscribeSync("_INBOX.>") // the pipeline's replies carry raw data
		_ = sensorA.nc.Flush()
		time.Sleep(100 * time.Millisecond)
		for _, subj := range []string{"soc.raw.>", "_INBOX.>"} {
			if !strings.Contains(sensorA.permErrors(), `Permissions Violation for Subscription to "`+subj+`"`) {
				t.Errorf("subscribing to %s was not refused; errors %q", subj, sensorA.permErrors())
			}
		}
		c, cancel := short()
		defer cancel()
		if _, err := sensorA.js.CreateConsumer(c, ingest.StreamRaw, jetstream.ConsumerConfig{Durable: "steal"}); err == nil {
			t.Error("sensor created a consumer on SOC_RAW")
		}
	})
	t.Run("cannot write rules", func(t *testing.T) {
		c, cancel := short()
		defer cancel()
		if _, err := sensorA.nc.Request("$KV."+ingest.RulesBucket+".evil", []byte("title: x"), 500*time.Millisecond); err == nil {
			t.Error("sensor wrote into the rules bucket")
		}
		kv, err := pipe.js.KeyValue(c, ingest.RulesBucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(c, "evil"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("rules bucket key written by a sensor: get err = %v", err)
		}
	})
	t.Run("engineer writes rules only", func(t *testing.T) {
		eng, err := dial(t, url, "alice", pwEng, ingest.EngineerInboxPrefix("alice"))
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := short()
		defer cancel()
		kv, err := eng.js.KeyValue(c, ingest.RulesBucket)
		if err != nil {
			t.Fatalf("engineer opens the rules bucket: %v", err)
		}
		if _, err := kv.Put(c, "rule-1", []byte("title: test")); err != nil {
			t.Errorf("engineer puts a rule: %v", err)
		}
		if e, err := kv.Get(c, "rule-1"); err != nil || string(e.Value()) != "title: test" {
			t.Errorf("engineer reads the rule back: %v", err)
		}
		if _, err := eng.js.Publish(c, ingest.RawSubject("agency-a", "zeek_dns"), []byte("x\n")); err == nil {
			t.Error("engineer published raw telemetry")
		}
	})
}
