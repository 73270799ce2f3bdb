package sink_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

func recordSteps(t *testing.T, s *sink.Sink, versions ...int) {
	t.Helper()
	ctx := context.Background()
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO "+s.Database()+".schema_migrations (version, name)")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if err := b.Append(uint32(v), "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestMigrateUpgradesAndReruns starts from a database at step 1 holding
// data, migrates it (the new columns appear, the rollups are backfilled with
// the old rows), then re-runs steps 2 and 3 as after a crash before they
// were recorded: nothing fails and nothing is counted twice.
func TestMigrateUpgradesAndReruns(t *testing.T) {
	addr, db := chtest.Database(t)
	ctx := context.Background()
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	s, err := sink.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn := s.Conn()
	exec := func(q string) {
		t.Helper()
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE TABLE " + db + ".schema_migrations (version UInt32, name String, applied_at DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY version")
	for _, st := range schemas.Migrations()[0].Statements(s.DDLOptions()) {
		exec(st.SQL)
	}
	recordSteps(t, s, 1)
	exec("INSERT INTO " + db + ".events (event_id, agency, time, class_uid, dns_query_hostname, dns_rcode_id) " +
		"SELECT generateUUIDv4(), 'agency-a', toDateTime('2026-12-01 10:00:00', 'UTC') + number * 7, 4003, concat('d', toString(number % 5), '.example'), 3 FROM system.numbers LIMIT 100")
	time.Sleep(1100 * time.Millisecond) // the views must be created in a later second than the rows

	res, err := s.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != len(schemas.Migrations())-1 || res.Current != len(schemas.Migrations()) {
		t.Errorf("Migrate = %+v, want every step after 1 applied", res)
	}
	check := func(when string) {
		t.Helper()
		if n := chtest.Count(t, conn, "SELECT sum(events) FROM "+db+".events_per_minute"); n != 100 {
			t.Errorf("%s: events_per_minute sums to %d, want 100", when, n)
		}
		if n := chtest.Count(t, conn, "SELECT sum(nxdomain) FROM "+db+".dns_per_domain_hour"); n != 100 {
			t.Errorf("%s: dns_per_domain_hour nxdomain sums to %d, want 100", when, n)
		}
		if n := chtest.Count(t, conn, "SELECT count() FROM system.columns WHERE database = ? AND table = 'events' AND name = 'process_parent_pid'", db); n != 1 {
			t.Errorf("%s: step 2 columns missing", when)
		}
	}
	check("after upgrade")

	// Steps 2 and 3 ran but were not recorded: a re-run must succeed.
	exec("TRUNCATE TABLE " + db + ".schema_migrations")
	recordSteps(t, s, 1, 4)
	res, err = s.Migrate(ctx)
	if err != nil {
		t.Fatalf("re-running steps 2 and 3: %v", err)
	}
	if len(res.Applied) != 2 {
		t.Errorf("re-run applied %v, want steps 2 and 3", res.Applied)
	}
	check("after re-run")
	if err := s.Write(ctx, &sink.Rows{Events: dnsBatch(10, 9)}); err != nil {
		t.Fatalf("write after re-run: %v", err)
	}
}
