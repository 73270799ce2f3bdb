package sink_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/sink"
)

// TestRedeliveryOfALargeBatch: the stored-id lookup of a redelivered batch
// bigger than one query can carry (ids are bound into the query text, and
// max_query_size is 256 KiB) still stores every row exactly once.
func TestRedeliveryOfALargeBatch(t *testing.T) {
	addr, db := chtest.Database(t)
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	ctx := context.Background()
	s, err := sink.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	rows := &sink.Rows{}
	for i := 0; i < n; i++ {
		rows.Events = append(rows.Events, sampleEvent(i))
	}
	half := &sink.Rows{Events: rows.Events[:n/2]}
	if err := s.Write(ctx, half); err != nil {
		t.Fatal(err)
	}
	rows.Redelivered = true // half of it is stored already
	if err := s.Write(ctx, rows); err != nil {
		t.Fatalf("write a redelivered batch of %d rows: %v", n, err)
	}
	if got := chtest.Count(t, s.Conn(), "SELECT count() FROM "+db+".events"); got != n {
		t.Errorf("events count() = %d, want %d", got, n)
	}
}
