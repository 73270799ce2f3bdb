package sensor

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/watchfloor/watchfloor/ingest"
)

func TestPublisherBatching(t *testing.T) {
	_, js := newJS(t)
	tests := []struct {
		name         string
		batchRecords int
		give         []string
		wantCounts   []int
	}{
		{name: "by count", batchRecords: 100, give: lines(250, 20, "c"), wantCounts: []int{100, 100, 50}},
		{name: "one partial", batchRecords: 1000, give: lines(7, 20, "p"), wantCounts: []int{7}},
		// 1000-byte records + '\n': 1031 fit under MaxBatchBytes.
		{name: "by bytes", batchRecords: 100000, give: lines(3000, 1000, "b"), wantCounts: []int{1031, 1031, 938}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Agency = "agency-" + strconv.Itoa(i)
			cfg.BatchRecords = tt.batchRecords
			cfg.Linger = 0
			p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
			addAll(t, p, tt.give)
			closePub(t, p)

			var msgs []stored
			for _, m := range readStream(t, js) {
				if m.Subject == ingest.RawSubject(cfg.Agency, "fake_plain") {
					msgs = append(msgs, m)
				}
			}
			var counts []int
			for _, m := range msgs {
				if len(m.Payload) > ingest.MaxBatchBytes {
					t.Errorf("batch of %d bytes, over MaxBatchBytes", len(m.Payload))
				}
				if m.Header.Get(ingest.HeaderSensor) != "sensor-1" {
					t.Errorf("Wf-Sensor = %q", m.Header.Get(ingest.HeaderSensor))
				}
				counts = append(counts, len(m.records()))
			}
			if !slices.Equal(counts, tt.wantCounts) {
				t.Errorf("batch sizes = %v, want %v", counts, tt.wantCounts)
			}
			if got := allRecords(t, msgs, true); !slices.Equal(got, tt.give) {
				t.Errorf("records differ: got %d, want %d", len(got), len(tt.give))
			}
			st := p.Stats()
			if st.Records != uint64(len(tt.give)) || st.Batches != uint64(len(tt.wantCounts)) || st.Pending != 0 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestPublisherLinger(t *testing.T) {
	_, js := newJS(t)
	cfg := testConfig()
	cfg.Linger = 100 * time.Millisecond
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
	defer closePub(t, p)
	start := time.Now()
	addAll(t, p, []string{"a", "b", "c"})
	waitStream(t, js, 1, 3*time.Second)
	if el := time.Since(start); el < cfg.Linger {
		t.Errorf("batch published after %s, before linger %s", el, cfg.Linger)
	}
	addAll(t, p, []string{"d"})
	waitStream(t, js, 2, 3*time.Second)
	msgs := readStream(t, js)
	if got, want := allRecords(t, msgs, true), []string{"a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("records = %q, want %q", got, want)
	}
}

func TestPublisherDirectives(t *testing.T) {
	_, js := newJS(t)
	cfg := testConfig()
	cfg.BatchRecords = 3
	cfg.Linger = 0
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_tsv")})
	addAll(t, p, []string{
		"#separator \\x09", "#fields\ta\tb", "", "r1", "r2", "r3", "r4", "", "r5",
		"#close", "#fields\tc\td", "r6", "r7", "r8",
		"#close",
	})
	closePub(t, p)
	var got []string
	for _, m := range readStream(t, js) {
		got = append(got, m.Payload)
		if c, want := m.Header.Get(ingest.HeaderCount), strconv.Itoa(countNonDirective(m.records())); c != want {
			t.Errorf("Wf-Count = %s, want %s", c, want)
		}
	}
	want := []string{
		"#separator \\x09\n#fields\ta\tb\nr1\nr2\nr3\n",
		"#separator \\x09\n#fields\ta\tb\nr4\nr5\n#close\n#fields\tc\td\nr6\n",
		"#close\n#fields\tc\td\nr7\nr8\n#close\n", // a directive after records passes through
	}
	if !slices.Equal(got, want) {
		t.Errorf("payloads:\n%q\nwant\n%q", got, want)
	}
}

func countNonDirective(recs []string) int {
	n := 0
	for _, r := range recs {
		if !strings.HasPrefix(r, "#") {
			n++
		}
	}
	return n
}

func TestPublisherOversize(t *testing.T) {
	_, js := newJS(t)
	big := strings.Repeat("A", ingest.MaxRecordBytes+10)
	exact := strings.Repeat("B", ingest.MaxRecordBytes)
	path := filepath.Join(t.TempDir(), "big.log")
	writeFile(t, path, []string{"#h", "small", big, exact, "tail"})

	cfg := testConfig()
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_tsv"), Key: "k", Positional: true})
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Replay(context.Background(), f, p, nil); err != nil {
		t.Fatal(err)
	}
	closePub(t, p)
	msgs := readStream(t, js)
	if len(msgs) != 1 {
		t.Fatalf("%d batches, want 1", len(msgs))
	}
	m := msgs[0]
	if got, want := m.Header.Get(ingest.HeaderOversize), "1:"+strconv.Itoa(len(big)); got != want {
		t.Errorf("Wf-Oversize = %q, want %q", got, want)
	}
	recs := m.records()
	want := []string{"#h", "small", big[:ingest.OversizePrefix], exact, "tail"}
	if !slices.Equal(recs, want) {
		t.Errorf("records differ: got lengths %v", lens(recs))
	}
	if got := m.Header.Get(ingest.HeaderCount); got != "4" {
		t.Errorf("Wf-Count = %s, want 4", got)
	}
	if st := p.Stats(); st.Oversize != 1 {
		t.Errorf("Stats.Oversize = %d, want 1", st.Oversize)
	}
}

func lens(ss []string) []int {
	out := make([]int, len(ss))
	for i, s := range ss {
		out[i] = len(s)
	}
	return out
}

func TestPublisherZstd(t *testing.T) {
	_, js := newJS(t)
	cfg := testConfig()
	cfg.Compress = true
	cfg.BatchRecords = 500
	give := lines(1200, 300, "z")
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
	addAll(t, p, give)
	closePub(t, p)
	msgs := readStream(t, js)
	if len(msgs) != 3 {
		t.Fatalf("%d batches, want 3", len(msgs))
	}
	for _, m := range msgs {
		if m.Header.Get(ingest.HeaderEncoding) != "zstd" {
			t.Errorf("Content-Encoding = %q, want zstd", m.Header.Get(ingest.HeaderEncoding))
		}
	}
	if got := allRecords(t, msgs, true); !slices.Equal(got, give) {
		t.Errorf("records differ after zstd round trip")
	}
	if st := p.Stats(); st.Bytes*5 > uint64(1200*301) {
		t.Errorf("sent %d bytes for %d raw: not compressed", st.Bytes, 1200*301)
	}
}

func TestReplayDeterministicIDs(t *testing.T) {
	_, js := newJS(t)
	path := filepath.Join(t.TempDir(), "dns.log")
	give := append([]string{"#fields\ta\tb"}, lines(5000, 100, "r")...)
	writeFile(t, path, give)
	key, err := FileKey(path)
	if err != nil {
		t.Fatal(err)
	}
	replay := func() (Stats, []string) {
		cfg := testConfig()
		p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_tsv"), Key: key, Positional: true})
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := Replay(context.Background(), f, p, nil); err != nil {
			t.Fatal(err)
		}
		closePub(t, p)
		var ids []string
		for _, m := range readStream(t, js) {
			ids = append(ids, m.Header.Get(ingest.HeaderMsgID))
		}
		return p.Stats(), ids
	}
	st1, ids1 := replay()
	st2, ids2 := replay()
	if len(ids1) != 5 {
		t.Fatalf("first replay stored %d batches, want 5", len(ids1))
	}
	if !slices.Equal(ids1, ids2) {
		t.Errorf("second replay changed the stream: %d then %d messages", len(ids1), len(ids2))
	}
	if st1.Duplicates != 0 || st2.Duplicates != 5 || st2.Records != 5000 {
		t.Errorf("stats: first %+v, second %+v", st1, st2)
	}
	// The first batch starts at offset 0; the second at the offset of record 1000.
	wantSecond := "sensor-1:" + key + "-" + strconv.Itoa(len("#fields\ta\tb\n")+1000*101)
	if ids1[1] != wantSecond {
		t.Errorf("second msg id = %s, want %s", ids1[1], wantSecond)
	}
	if got := allRecords(t, readStream(t, js), true); !slices.Equal(got, give[1:]) {
		t.Errorf("records differ")
	}
}

// TestPublisherServerRestart publishes while the server is stopped and
// restarted on the same port and store: every record is stored exactly once.
func TestPublisherServerRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, -1, dir)
	url := s.ClientURL()
	_, js := connect(t, url, true)

	cfg := testConfig()
	cfg.BatchRecords = 50
	cfg.MaxInFlight = 16
	cfg.AckTimeout = 500 * time.Millisecond
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
	give := lines(20000, 50, "s")
	ctx := context.Background()

	addAll(t, p, give[:5000])
	tcpPort := s.Addr().(*net.TCPAddr).Port
	stopServer(s)
	type result struct {
		s   *server.Server
		err error
	}
	restarted := make(chan result, 1)
	go func() {
		time.Sleep(time.Second)
		s, err := runServer(tcpPort, dir)
		restarted <- result{s, err}
	}()
	for _, l := range give[5000:] {
		if err := p.Add(ctx, Line{Data: []byte(l)}); err != nil {
			t.Fatal(err)
		}
	}
	r := <-restarted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { stopServer(r.s) })
	closePub(t, p)

	msgs := readStream(t, js)
	got := allRecords(t, msgs, true)
	slices.Sort(got)
	want := slices.Clone(give)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("stored %d records, want %d exactly once", len(got), len(want))
	}
	st := p.Stats()
	if st.Retries == 0 {
		t.Errorf("no retries counted: %+v", st)
	}
	if st.Records != 20000 || st.Failed != 0 {
		t.Errorf("stats = %+v", st)
	}
	t.Logf("stats after restart: %+v", st)
}

func TestPublisherRejectsNewline(t *testing.T) {
	_, js := newJS(t)
	p := newPub(t, js, testConfig(), Source{Format: lookup(t, "fake_plain")})
	defer closePub(t, p)
	if err := p.Add(context.Background(), Line{Data: []byte("a\nb")}); err == nil {
		t.Error("Add accepted a record with a newline")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    func(*Config)
		wantErr string
	}{
		{name: "default ok", give: func(*Config) {}},
		{name: "batch records", give: func(c *Config) { c.BatchRecords = 0 }, wantErr: "sensor.batch_records"},
		{name: "batch bytes", give: func(c *Config) { c.BatchBytes = 2 << 20 }, wantErr: "sensor.batch_bytes"},
		{name: "linger", give: func(c *Config) { c.Linger = -time.Second }, wantErr: "sensor.linger"},
		{name: "in flight", give: func(c *Config) { c.MaxInFlight = 0 }, wantErr: "sensor.max_in_flight"},
		{name: "ack timeout", give: func(c *Config) { c.AckTimeout = 0 }, wantErr: "sensor.ack_timeout"},
		{name: "retry max", give: func(c *Config) { c.RetryMax = time.Millisecond }, wantErr: "sensor.retry_max"},
		{name: "agency", give: func(c *Config) { c.Agency = "Bad Agency" }, wantErr: "sensor.agency"},
		{name: "sensor id", give: func(c *Config) { c.SensorID = "a:b" }, wantErr: "sensor.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig()
			tt.give(&c)
			err := c.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

var _ = bytes.Equal

// With the server gone, Close gives up when its context ends and says how
// many records were not acknowledged.
func TestPublisherCloseTimeout(t *testing.T) {
	s := startServer(t, -1, t.TempDir())
	_, js := connect(t, s.ClientURL(), true)
	stopServer(s)
	cfg := testConfig()
	cfg.BatchRecords = 10
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
	addAll(t, p, lines(25, 10, "t"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := p.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "25 records not acknowledged") {
		t.Errorf("Close = %v, want 25 records not acknowledged", err)
	}
	if st := p.Stats(); st.Failed != 25 || st.Records != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// A batch the server can never take (over its max payload) is a permanent
// error: Flush reports it instead of retrying forever.
func TestPublisherPermanentError(t *testing.T) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, MaxPayload: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	t.Cleanup(func() { stopServer(s) })
	_, js := connect(t, s.ClientURL(), true)
	p := newPub(t, js, testConfig(), Source{Format: lookup(t, "fake_plain")})
	addAll(t, p, lines(40, 1000, "big"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err == nil || !strings.Contains(err.Error(), "maximum payload") {
		t.Errorf("Flush = %v, want a max payload error", err)
	}
	if err := p.Add(ctx, Line{Data: []byte("more")}); err == nil {
		t.Error("Add after a permanent error succeeded")
	}
	if err := p.Close(ctx); err == nil {
		t.Error("Close after a permanent error returned nil")
	}
	if st := p.Stats(); st.Failed != 40 {
		t.Errorf("stats = %+v", st)
	}
}

// A sensor started before its server (and before SOC_RAW exists) delivers
// everything once both are up.
func TestPublisherServerDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	_, js := connect(t, "nats://127.0.0.1:"+strconv.Itoa(port), false)
	cfg := testConfig()
	cfg.BatchRecords = 100
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
	give := lines(1000, 30, "d")
	addAll(t, p, give)

	time.Sleep(300 * time.Millisecond)
	s := startServer(t, port, t.TempDir())
	_, admin := connect(t, s.ClientURL(), false)
	time.Sleep(300 * time.Millisecond) // publishes find no stream yet: retried
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ingest.EnsureStreams(ctx, admin, ingest.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	closePub(t, p)
	got := allRecords(t, readStream(t, admin), true)
	slices.Sort(got)
	want := slices.Clone(give)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("stored %d records, want %d exactly once", len(got), len(want))
	}
	if st := p.Stats(); st.Retries == 0 || st.Records != 1000 {
		t.Errorf("stats = %+v", st)
	}
}
