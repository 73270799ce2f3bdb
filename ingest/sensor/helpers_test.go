package sensor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testFormats is a registry of fake formats: fake_tsv has Zeek-like '#'
// directives, fake_plain has none.
func testFormats(t testing.TB) *normalize.Registry {
	t.Helper()
	r, err := normalize.NewRegistry(
		normalize.Format{
			Name:        "fake_tsv",
			IsDirective: func(l []byte) bool { return len(l) > 0 && l[0] == '#' },
			NewDecoder:  func(normalize.BatchInfo) normalize.Decoder { return nopDecoder{} },
		},
		normalize.Format{
			Name:       "fake_plain",
			NewDecoder: func(normalize.BatchInfo) normalize.Decoder { return nopDecoder{} },
		},
		normalize.Format{
			Name:       "syslog",
			NewDecoder: func(normalize.BatchInfo) normalize.Decoder { return nopDecoder{} },
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type nopDecoder struct{}

func (nopDecoder) Directive([]byte) error              { return nil }
func (nopDecoder) Record([]byte, *schemas.Event) error { return nil }

func lookup(t testing.TB, name string) *normalize.Format {
	t.Helper()
	f, ok := testFormats(t).Lookup(name)
	if !ok {
		t.Fatalf("format %s not registered", name)
	}
	return f
}

// startServer runs an embedded JetStream server; port -1 picks one.
func startServer(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	s, err := runServer(port, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(s) })
	return s
}

func runServer(port int, dir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		stopServer(s)
		return nil, errors.New("nats server not ready")
	}
	return s, nil
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// connect returns a JetStream client that keeps reconnecting, with SOC_RAW
// created.
func connect(t testing.TB, url string, ensure bool) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if ensure {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ingest.EnsureStreams(ctx, js, ingest.DefaultStreamConfig()); err != nil {
			t.Fatal(err)
		}
	}
	return nc, js
}

// newJS starts a server and returns a connected client.
func newJS(t testing.TB) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s := startServer(t, -1, t.TempDir())
	_, js := connect(t, s.ClientURL(), true)
	return s, js
}

func testConfig() Config {
	c := DefaultConfig()
	c.SensorID = "sensor-1"
	c.Agency = "agency-a"
	c.AckTimeout = 2 * time.Second
	c.RetryMin = 20 * time.Millisecond
	c.RetryMax = 200 * time.Millisecond
	return c
}

func newPub(t testing.TB, js jetstream.JetStream, cfg Config, src Source) *Publisher {
	t.Helper()
	p, err := NewPublisher(js, cfg, src, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// stored is one message of SOC_RAW, payload decompressed.
type stored struct {
	Subject string
	Header  nats.Header
	Payload string
}

func (s stored) records() []string {
	var out []string
	_ = ingest.ForEachLine([]byte(s.Payload), func(l []byte) error {
		out = append(out, string(l))
		return nil
	})
	return out
}

// idN is the number after the last '-' of the message id.
func (s stored) idN(t testing.TB) uint64 {
	id := s.Header.Get(ingest.HeaderMsgID)
	n, err := strconv.ParseUint(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	if err != nil {
		t.Fatalf("msg id %q: %v", id, err)
	}
	return n
}

// readStream returns every message of SOC_RAW in stream order.
func readStream(t testing.TB, js jetstream.JetStream) []stored {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, ingest.StreamRaw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var out []stored
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		data := m.Data
		if m.Header.Get(ingest.HeaderEncoding) == "zstd" {
			if data, err = dec.DecodeAll(m.Data, nil); err != nil {
				t.Fatalf("zstd decode msg %d: %v", seq, err)
			}
		}
		out = append(out, stored{Subject: m.Subject, Header: m.Header, Payload: string(data)})
	}
	return out
}

// waitStream waits until SOC_RAW holds at least n messages.
func waitStream(t testing.TB, js jetstream.JetStream, n uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		st, err := js.Stream(ctx, ingest.StreamRaw)
		var got uint64
		if err == nil {
			if info, err := st.Info(ctx); err == nil {
				got = info.State.Msgs
			}
		}
		cancel()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds %d messages after %s, want %d", got, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allRecords returns every record of msgs, batches ordered by msg id number,
// directives (lines starting with '#') left out when skipDirectives.
func allRecords(t testing.TB, msgs []stored, skipDirectives bool) []string {
	t.Helper()
	msgs = slices.Clone(msgs)
	slices.SortFunc(msgs, func(a, b stored) int {
		return int(a.idN(t)) - int(b.idN(t))
	})
	var out []string
	for _, m := range msgs {
		recs := m.records()
		n := 0
		for _, r := range recs {
			if skipDirectives && strings.HasPrefix(r, "#") {
				continue
			}
			out = append(out, r)
			n++
		}
		if got, want := m.Header.Get(ingest.HeaderCount), strconv.Itoa(n); skipDirectives && got != want {
			t.Errorf("batch %s: Wf-Count = %s, want %s", m.Header.Get(ingest.HeaderMsgID), got, want)
		}
	}
	return out
}

func lines(n, size int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		s := prefix + strconv.Itoa(i) + " "
		out[i] = s + strings.Repeat("x", max(0, size-len(s)))
	}
	return out
}

func closePub(t testing.TB, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func addAll(t testing.TB, p *Publisher, ls []string) {
	t.Helper()
	for _, l := range ls {
		if err := p.Add(context.Background(), Line{Data: []byte(l)}); err != nil {
			t.Fatalf("add %q: %v", l, err)
		}
	}
}

func writeFile(t testing.TB, path string, ls []string) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range ls {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

var _ io.Reader = (*bytes.Reader)(nil)
