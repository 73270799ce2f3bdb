package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

type nopDecoder struct{}

func (nopDecoder) Directive([]byte) error              { return nil }
func (nopDecoder) Record([]byte, *schemas.Event) error { return nil }

func testRegistry() *normalize.Registry {
	r, err := normalize.NewRegistry(normalize.Format{
		Name:        "fake_tsv",
		IsDirective: func(l []byte) bool { return len(l) > 0 && l[0] == '#' },
		NewDecoder:  func(normalize.BatchInfo) normalize.Decoder { return nopDecoder{} },
	})
	if err != nil {
		panic(err)
	}
	return r
}

func runTest(ctx context.Context, args []string, getenv map[string]string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = runWith(ctx, env{
		args: args, getenv: func(k string) string { return getenv[k] },
		stdout: &out, stderr: &errb, formats: testRegistry,
	})
	return out.String(), errb.String(), err
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		wantErr string
	}{
		{name: "no command", give: nil, wantErr: "a command is required"},
		{name: "unknown command", give: []string{"ship"}, wantErr: `unknown command "ship"`},
		{name: "no agency", give: []string{"replay", "--format", "fake_tsv", "f"}, wantErr: "--agency is required"},
		{name: "bad agency", give: []string{"replay", "--agency", "DOJ", "--format", "fake_tsv", "f"}, wantErr: "--agency"},
		{name: "no format", give: []string{"replay", "--agency", "doj", "f"}, wantErr: "--format is required; accepted values: fake_tsv"},
		{name: "bad format", give: []string{"tail", "--agency", "doj", "--format", "cef", "f"}, wantErr: `--format "cef" is not a registered format; accepted values: auto, fake_tsv`},
		{name: "batch records", give: []string{"replay", "--agency", "doj", "--format", "fake_tsv", "--batch-records", "0", "f"}, wantErr: "--batch-records: sensor.batch_records must be between 1 and 100000"},
		{name: "linger", give: []string{"tail", "--agency", "doj", "--format", "fake_tsv", "--linger", "2m", "f"}, wantErr: "--linger: sensor.linger"},
		{name: "timeout", give: []string{"tail", "--agency", "doj", "--format", "fake_tsv", "--timeout", "1ms", "f"}, wantErr: "--timeout: sensor.ack_timeout"},
		{name: "sensor id", give: []string{"syslog", "--agency", "doj", "--sensor-id", "a:b"}, wantErr: "--sensor-id"},
		{name: "max message", give: []string{"syslog", "--agency", "doj", "--max-message", "10"}, wantErr: "--max-message: syslog.max_message must be between 480"},
		{name: "no listener", give: []string{"syslog", "--agency", "doj", "--udp", "", "--tcp", ""}, wantErr: "--udp/--tcp"},
		{name: "no files", give: []string{"replay", "--agency", "doj", "--format", "fake_tsv"}, wantErr: "at least one FILE"},
		{name: "unknown flag", give: []string{"replay", "--bogus"}, wantErr: "flag provided but not defined: -bogus"},
		{name: "password without user", give: []string{"syslog", "--agency", "doj", "--password", "pw"}, wantErr: "--password"},
		{name: "log level", give: []string{"syslog", "--agency", "doj", "--log-level", "loud"}, wantErr: "--log-level \"loud\": accepted values"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runTest(context.Background(), tt.give, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			var ue usageError
			if !asUsage(err, &ue) {
				t.Errorf("err %v is not a usage error (exit 2)", err)
			}
		})
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}

func TestHelp(t *testing.T) {
	for _, cmd := range []string{"replay", "tail", "syslog"} {
		t.Run(cmd, func(t *testing.T) {
			out, _, err := runTest(context.Background(), []string{cmd, "--help"}, map[string]string{"WFSENSOR_PASSWORD": "hunter2"})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Usage: wfsensor " + cmd, "--nats", "--agency", "--batch-records", "(default 1000)", "--compress", "--timeout", "Examples:"} {
				if !strings.Contains(out, want) {
					t.Errorf("help lacks %q", want)
				}
			}
			if strings.Contains(out, "hunter2") {
				t.Error("help shows the password from the environment")
			}
			if cmd != "syslog" && !strings.Contains(out, "Formats accepted by --format: fake_tsv") {
				t.Error("help does not list the formats")
			}
		})
	}
	out, _, err := runTest(context.Background(), []string{"version"}, nil)
	if err != nil || !strings.HasPrefix(out, "wfsensor ") {
		t.Errorf("version = %q, %v", out, err)
	}
}

func startServer(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ingest.EnsureStreams(context.Background(), js, ingest.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), js
}

func streamCounts(t *testing.T, js jetstream.JetStream) (msgs, records int) {
	t.Helper()
	ctx := context.Background()
	st, err := js.Stream(ctx, ingest.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(m.Header.Get(ingest.HeaderCount))
		records += n
	}
	return int(info.State.Msgs), records
}

func TestReplayCommand(t *testing.T) {
	url, js := startServer(t)
	path := filepath.Join(t.TempDir(), "dns.log")
	var b strings.Builder
	b.WriteString("#fields\tts\tquery\n")
	for i := range 2500 {
		b.WriteString(strconv.Itoa(i) + "\texample.org\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"replay", "--agency", "doj", "--format", "fake_tsv", "--sensor-id", "s1", "--compress", path}
	env := map[string]string{"WFSENSOR_NATS": url}
	out, _, err := runTest(context.Background(), args, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2500 records sent in 3 batches (0 already stored), 0 retries") {
		t.Errorf("summary = %q", out)
	}
	msgs, recs := streamCounts(t, js)
	if msgs != 3 || recs != 2500 {
		t.Errorf("stream holds %d messages, %d records; want 3, 2500", msgs, recs)
	}
	out, _, err = runTest(context.Background(), args, env)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "(3 already stored)") {
		t.Errorf("second summary = %q", out)
	}
	if msgs2, _ := streamCounts(t, js); msgs2 != 3 {
		t.Errorf("second replay grew the stream to %d messages", msgs2)
	}
}

// Cancelling the context (SIGTERM) flushes what was read and waits for acks.
func TestTailCommandFlushesOnSignal(t *testing.T) {
	url, js := startServer(t)
	path := filepath.Join(t.TempDir(), "eve.json")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var out string
	var err error
	wg.Go(func() {
		out, _, err = runTest(ctx, []string{"tail", "--nats", url, "--agency", "doj", "--format", "fake_tsv",
			"--linger", "1m", "--poll", "10ms", path}, nil)
	})
	time.Sleep(200 * time.Millisecond)
	f, ferr := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if ferr != nil {
		t.Fatal(ferr)
	}
	for i := range 10 {
		f.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	f.Close()
	time.Sleep(200 * time.Millisecond) // read, but the batch lingers for a minute
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, recs := streamCounts(t, js); recs != 10 {
		t.Errorf("stream holds %d records, want 10 (summary %q)", recs, out)
	}
}
