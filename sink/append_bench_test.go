package sink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
)

// BenchmarkAppendEvents measures the client's share of an insert: filling
// a 50,000-row native batch (no Send). Compare with BenchmarkWriteDNS.
func BenchmarkAppendEvents(b *testing.B) {
	addr, db := chtest.Database(b)
	cfg := DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	ctx := context.Background()
	s, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	const n = 50000
	evs := make([]schemas.Event, n)
	for i := range evs {
		e := &evs[i]
		e.ID = schemas.EventID("s:1", i)
		e.Agency, e.Format, e.Time, e.ClassUID = "doj", "zeek_dns", time.Now(), schemas.ClassDNS
		e.DNS.QueryHostname = fmt.Sprintf("host%d.example.com", i%500)
		e.DNS.Answers, e.DNS.TTLs = []string{"192.0.2.1"}, []uint32{300}
		e.AddObservable(schemas.ObservableHostname, "query.hostname", e.DNS.QueryHostname)
		e.AddUnmapped("AA", "F")
		e.Raw = fmt.Sprintf(`{"query":"%s","padding":"%0400d"}`, e.DNS.QueryHostname, i)
	}
	sc := new(scratch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch, err := s.conn.PrepareBatch(ctx, s.insertEvents)
		if err != nil {
			b.Fatal(err)
		}
		if err := appendEvents(batch, sc, evs); err != nil {
			b.Fatal(err)
		}
		_ = batch.Abort()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
}
