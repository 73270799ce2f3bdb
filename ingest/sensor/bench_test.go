package sensor

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// BenchmarkPublisher replays 200k 300-byte lines into an embedded JetStream
// server (file storage) and reports records/s end to end, acks included.
func BenchmarkPublisher(b *testing.B) {
	const n, size = 200_000, 300
	var in bytes.Buffer
	for _, l := range lines(n, size-1, "r") {
		in.WriteString(l)
		in.WriteByte('\n')
	}
	for _, compress := range []bool{false, true} {
		name := "plain"
		if compress {
			name = "zstd"
		}
		b.Run(name, func(b *testing.B) {
			_, js := newJS(b)
			cfg := testConfig()
			cfg.Compress = compress
			cfg.AckTimeout = 10 * time.Second
			b.SetBytes(int64(in.Len()))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				p, err := NewPublisher(js, cfg, Source{Format: lookup(b, "fake_plain")}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := Replay(context.Background(), bytes.NewReader(in.Bytes()), p, nil); err != nil {
					b.Fatal(err)
				}
				if err := p.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				if st := p.Stats(); st.Records != n {
					b.Fatalf("sent %d records, want %d", st.Records, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/time.Since(start).Seconds(), "records/s")
		})
	}
}
