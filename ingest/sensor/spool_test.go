package sensor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/watchfloor/watchfloor/ingest"
)

func spoolConfig(t testing.TB, dir string) Config {
	cfg := testConfig()
	cfg.BatchRecords = 100
	cfg.MaxInFlight = 8
	cfg.AckTimeout = 300 * time.Millisecond
	cfg.Spool = DefaultSpoolConfig()
	cfg.Spool.Dir = dir
	return cfg
}

func TestSpoolEntryRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		give *nats.Msg
	}{
		{"headers", &nats.Msg{Subject: "soc.raw.a.b", Header: nats.Header{"Nats-Msg-Id": {"s:k-1"}, "Wf-Count": {"2"}}, Data: []byte("x\ny\n")}},
		{"no headers", &nats.Msg{Subject: "soc.raw.a.b", Header: nats.Header{}, Data: []byte("x")}},
		{"empty data", &nats.Msg{Subject: "s", Header: nats.Header{"A": {"1", "2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := encodeEntry(tt.give, 7)
			got, n, err := decodeEntry(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != 7 || got.Subject != tt.give.Subject || string(got.Data) != string(tt.give.Data) {
				t.Errorf("got %q %d %q, want %q 7 %q", got.Subject, n, got.Data, tt.give.Subject, tt.give.Data)
			}
			for k, v := range tt.give.Header {
				if !slices.Equal(got.Header[k], v) {
					t.Errorf("header %s = %v, want %v", k, got.Header[k], v)
				}
			}
			for cut := 0; cut < len(b); cut++ {
				if _, _, err := decodeEntry(b[:cut]); !errors.Is(err, errTorn) {
					t.Fatalf("entry cut at %d of %d: err = %v, want errTorn", cut, len(b), err)
				}
			}
			flip := slices.Clone(b)
			flip[len(flip)-5] ^= 0x40
			if _, _, err := decodeEntry(flip); !errors.Is(err, errTorn) {
				t.Errorf("flipped bit: err = %v, want errTorn", err)
			}
		})
	}
}

func FuzzSpoolEntry(f *testing.F) {
	f.Add(encodeEntry(&nats.Msg{Subject: "soc.raw.a.b", Header: nats.Header{"K": {"v"}}, Data: []byte("d\n")}, 1))
	f.Add([]byte("WFSP1\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := decodeEntry(b)
		if err != nil {
			return
		}
		again, n2, err := decodeEntry(encodeEntry(m, n))
		if err != nil || n2 != n || again.Subject != m.Subject || string(again.Data) != string(m.Data) {
			t.Fatalf("re-encoded entry differs: %v", err)
		}
	})
}

// TestSpoolServerDownThenUp: with the server down, Add does not wait for
// acknowledgements (batches go to disk); when the server is back the spool
// drains in order and every record is stored exactly once.
func TestSpoolServerDownThenUp(t *testing.T) {
	storeDir := t.TempDir()
	s := startServer(t, -1, storeDir)
	port := s.Addr().(*net.TCPAddr).Port
	_, js := connect(t, s.ClientURL(), true)
	stopServer(s)

	cfg := spoolConfig(t, t.TempDir())
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain"), Name: "down-up"})
	give := lines(20000, 60, "d")
	start := time.Now()
	addAll(t, p, give) // 200 batches, 25 times max_in_flight: would block without the spool
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("adding with the server down took %s; the spool should absorb it", d)
	}
	if st := p.Stats(); st.Spooled < 19000 {
		t.Errorf("spooled %d records while the server was down, want nearly all 20000", st.Spooled)
	}
	s2, err := runServer(port, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(s2) })
	closePub(t, p)

	msgs := readStream(t, js)
	got := allRecords(t, msgs, false)
	if !slices.Equal(got, give) {
		t.Errorf("stored %d records, want the %d given, once each, in order", len(got), len(give))
	}
	st := p.Stats()
	if st.Records != 20000 || st.Failed != 0 || st.Dropped != 0 || st.Spooled != 0 {
		t.Errorf("stats = %+v", st)
	}
	if left := spoolFiles(t, cfg.Spool.Dir, entrySuffix); len(left) != 0 {
		t.Errorf("spool still holds %d entries after every batch was acknowledged", len(left))
	}
}

func spoolFiles(t testing.TB, root, suffix string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestSpoolSurvivesRestart: a sensor that stops with batches unacknowledged
// leaves them on disk; the next run sends them first with their original
// ids and numbers its new batches after them, so no id repeats.
func TestSpoolSurvivesRestart(t *testing.T) {
	storeDir := t.TempDir()
	s := startServer(t, -1, storeDir)
	port := s.Addr().(*net.TCPAddr).Port
	_, js := connect(t, s.ClientURL(), true)
	stopServer(s)

	cfg := spoolConfig(t, t.TempDir())
	src := Source{Format: lookup(t, "fake_plain"), Name: "restart"}
	nc1, js1 := connect(t, s.ClientURL(), false)
	first := newPub(t, js1, cfg, src)
	give := lines(3000, 40, "r")
	addAll(t, first, give[:2000])
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err := first.Close(ctx) // the server is down: the batches stay spooled
	cancel()
	if err == nil || !strings.Contains(err.Error(), "kept in spool") {
		t.Fatalf("close with the server down: err = %v, want one naming the spool", err)
	}
	if st := first.Stats(); st.Spooled != 2000 || st.Failed != 0 {
		t.Fatalf("first run stats = %+v, want 2000 spooled, 0 failed", st)
	}
	nc1.Close()

	s2, err := runServer(port, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(s2) })
	second := newPub(t, js, cfg, src)
	addAll(t, second, give[2000:])
	closePub(t, second)

	msgs := readStream(t, js)
	got := allRecords(t, msgs, false)
	if !slices.Equal(got, give) {
		t.Errorf("stored %d records, want %d in order", len(got), len(give))
	}
	ids := map[string]bool{}
	for _, m := range msgs {
		id := m.Header.Get(ingest.HeaderMsgID)
		if ids[id] {
			t.Errorf("message id %s used twice", id)
		}
		ids[id] = true
	}
	if len(msgs) != 30 {
		t.Errorf("stream holds %d batches, want 30", len(msgs))
	}
}

// TestSpoolTornEntry: a damaged entry is quarantined as *.bad, counted as
// dropped, and does not stop the others.
func TestSpoolTornEntry(t *testing.T) {
	storeDir := t.TempDir()
	s := startServer(t, -1, storeDir)
	port := s.Addr().(*net.TCPAddr).Port
	_, js := connect(t, s.ClientURL(), true)
	stopServer(s)

	cfg := spoolConfig(t, t.TempDir())
	src := Source{Format: lookup(t, "fake_plain"), Name: "torn"}
	// The first run has its own connection that dies with it: a shared one
	// would buffer its publishes and send them on reconnect.
	nc1, js1 := connect(t, s.ClientURL(), false)
	first := newPub(t, js1, cfg, src)
	give := lines(1000, 40, "t")
	addAll(t, first, give)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = first.Close(ctx)
	cancel()
	nc1.Close()
	entries := spoolFiles(t, cfg.Spool.Dir, entrySuffix)
	if len(entries) != 10 {
		t.Fatalf("spool holds %d entries, want 10", len(entries))
	}
	slices.Sort(entries)
	fi, err := os.Stat(entries[3])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(entries[3], fi.Size()/2); err != nil { // a torn write
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(entries[0]), ".tmp-99"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}

	s2, err := runServer(port, storeDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopServer(s2) })
	second := newPub(t, js, cfg, src)
	closePub(t, second)
	got := allRecords(t, readStream(t, js), false)
	want := slices.Concat(give[:300], give[400:])
	if !slices.Equal(got, want) {
		t.Errorf("stored %d records, want %d (all but the torn batch)", len(got), len(want))
	}
	if bad := spoolFiles(t, cfg.Spool.Dir, badSuffix); len(bad) != 1 {
		t.Errorf("quarantined files = %v, want one", bad)
	}
	if tmp := spoolFiles(t, cfg.Spool.Dir, ".tmp-99"); len(tmp) != 0 {
		t.Errorf("half-written file %v not removed", tmp)
	}
	if st := second.Stats(); st.Records != 900 || st.Dropped == 0 {
		t.Errorf("stats = %+v, want 900 records and the torn entry counted as dropped", st)
	}
}

// TestSpoolFull covers both policies with the server down: drop-oldest
// keeps the newest batches and counts what it deleted; block makes Add wait.
func TestSpoolFull(t *testing.T) {
	storeDir := t.TempDir()
	s := startServer(t, -1, storeDir)
	port := s.Addr().(*net.TCPAddr).Port
	_, js := connect(t, s.ClientURL(), true)
	stopServer(s)
	give := lines(4000, 2000, "f") // 8 MB in 40 batches of 200 KB, spool limit 4 MiB

	t.Run("drop-oldest", func(t *testing.T) {
		cfg := spoolConfig(t, t.TempDir())
		cfg.Spool.MaxBytes = 4 << 20
		p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain"), Name: "drop"})
		addAll(t, p, give)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = p.Close(ctx)
		cancel()
		st := p.Stats()
		if st.Dropped == 0 || st.Dropped+st.Spooled+st.Records != uint64(len(give)) {
			t.Errorf("stats = %+v: want dropped > 0 and dropped+spooled+records = %d", st, len(give))
		}
		var size int64
		for _, f := range spoolFiles(t, cfg.Spool.Dir, entrySuffix) {
			fi, _ := os.Stat(f)
			size += fi.Size()
		}
		if size > cfg.Spool.MaxBytes {
			t.Errorf("spool holds %d bytes, limit %d", size, cfg.Spool.MaxBytes)
		}
	})
	t.Run("block", func(t *testing.T) {
		cfg := spoolConfig(t, t.TempDir())
		cfg.Spool.MaxBytes = 4 << 20
		cfg.Spool.Policy = SpoolBlock
		p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain"), Name: "block"})
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		var err error
		for _, l := range give {
			if err = p.Add(ctx, Line{Data: []byte(l)}); err != nil {
				break
			}
		}
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("add into a full blocking spool: err = %v, want the context's deadline", err)
		}
		if st := p.Stats(); st.Dropped != 0 {
			t.Errorf("block policy dropped %d records", st.Dropped)
		}
		s2, err := runServer(port, storeDir)
		if err != nil {
			t.Fatal(err)
		}
		defer stopServer(s2)
		closePub(t, p)
		if st := p.Stats(); st.Records != st.Added || st.Dropped != 0 || st.Failed != 0 {
			t.Errorf("after the server came back: stats = %+v, want every added record acknowledged", st)
		}
	})
}

// BenchmarkSpoolPutRemove is the spool's cost per batch: encode, write a
// file, rename, read it back, delete (no fsync).
func BenchmarkSpoolPutRemove(b *testing.B) {
	sp, err := openSpool(SpoolConfig{MaxBytes: 1 << 30, Policy: SpoolDropOldest}, b.TempDir(), "bench", testLogger(b))
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(strings.Repeat(strings.Repeat("x", 199)+"\n", 1000)) // 1000 records of 200 bytes
	m := &nats.Msg{Subject: "soc.raw.a.zeek_dns", Header: nats.Header{"Nats-Msg-Id": {"s:k-1"}, "Wf-Count": {"1000"}}, Data: data}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := sp.put(ctx, m, 1000); err != nil {
			b.Fatal(err)
		}
		seq, _, _, err := sp.nextEntry(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sp.remove(seq)
	}
}
