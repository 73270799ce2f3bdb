package sink_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

func openSink(t testing.TB) *sink.Sink { t.Helper(); return openSinkWith(t, nil) }

// openSinkWith opens a sink on a fresh migrated database; edit, if not nil,
// changes the default config first.
func openSinkWith(t testing.TB, edit func(*sink.Config)) *sink.Sink {
	t.Helper()
	addr, db := chtest.Database(t)
	cfg := sink.DefaultConfig()
	cfg.Addr = []string{addr}
	cfg.Database = db
	if edit != nil {
		edit(&cfg)
	}
	ctx := context.Background()
	s, err := sink.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMigrateIsIdempotent(t *testing.T) {
	s := openSink(t) // first run applied every step
	res, err := s.Migrate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", res.Applied)
	}
	if res.Current < 1 {
		t.Errorf("current version = %d, want >= 1", res.Current)
	}
}

// TestColumnsMatchTable keeps the Go column lists and the live tables in
// step: every column the sink writes exists with the expected type.
func TestColumnsMatchTable(t *testing.T) {
	s := openSink(t)
	for table, cols := range map[string][]schemas.Column{
		"events":       schemas.EventColumns,
		"detections":   schemas.FindingColumns,
		"dead_letters": schemas.DeadLetterColumns,
	} {
		rows, err := s.Conn().Query(context.Background(), fmt.Sprintf("DESCRIBE TABLE %s.%s", s.Database(), table))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			vals := make([]any, len(rows.Columns()))
			var name, typ string
			vals[0], vals[1] = &name, &typ
			for i := 2; i < len(vals); i++ {
				vals[i] = new(string)
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			got[name] = typ
		}
		rows.Close()
		for _, c := range cols {
			want := s.Features().TypeFor(c.Type)
			if got[c.Name] != want {
				t.Errorf("%s.%s: table type %q, sink writes %q", table, c.Name, got[c.Name], want)
			}
		}
	}
}

func sampleEvent(i int) schemas.Event {
	ev := schemas.Event{
		ID:          schemas.EventID("sensor-1:1", i),
		Agency:      "agency-a",
		Sensor:      "sensor-1",
		Format:      "zeek_dns",
		Time:        time.Date(2026, 11, 23, 10, 0, i, 123e6, time.UTC),
		ClassUID:    schemas.ClassDNS,
		CategoryUID: 4,
		ActivityID:  6,
		SeverityID:  1,
		Src:         schemas.Endpoint{IP: "10.0.0.1", Port: 5353},
		DNS: schemas.DNS{
			QueryHostname: fmt.Sprintf("host%d.example.com", i),
			QueryType:     "A",
			Answers:       []string{"192.0.2.1", "192.0.2.2"},
			TTLs:          []uint32{60, 120},
			RCodeID:       0,
		},
		Raw: fmt.Sprintf(`{"n":%d}`, i),
	}
	ev.AddObservable(schemas.ObservableHostname, "query.hostname", ev.DNS.QueryHostname)
	ev.AddUnmapped("AA", "false")
	return ev
}

func TestWriteRoundTrip(t *testing.T) {
	s := openSink(t)
	ctx := context.Background()
	rows := &sink.Rows{}
	for i := 0; i < 10; i++ {
		rows.Events = append(rows.Events, sampleEvent(i))
	}
	rows.Findings = append(rows.Findings, schemas.Finding{
		ID: schemas.FindingID(rows.Events[0].ID, "rule-1"), EventID: rows.Events[0].ID, Agency: "agency-a",
		Time: rows.Events[0].Time, RuleID: "rule-1", RuleTitle: "t", RuleLevel: "high", SeverityID: 4, Tags: []string{"attack.t1071"},
	})
	rows.DeadLetters = append(rows.DeadLetters, schemas.DeadLetter{
		ID: schemas.EventID("sensor-1:1", 10), Agency: "agency-a", Format: "zeek_dns", Index: 10,
		Reason: "parse zeek dns json: invalid character", Raw: "not json\xff", Received: time.Now(),
	})
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	conn := s.Conn()
	db := s.Database()
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".events"); n != 10 {
		t.Errorf("events = %d, want 10", n)
	}
	var host, answers, obs string
	var id string
	err := conn.QueryRow(ctx, "SELECT toString(event_id), dns_query_hostname, arrayStringConcat(dns_answers, ','), arrayStringConcat(observables_value, ',') FROM "+db+".events WHERE dns_query_hostname = 'host3.example.com'").Scan(&id, &host, &answers, &obs)
	if err != nil {
		t.Fatal(err)
	}
	if want := rows.Events[3].ID.String(); id != want {
		t.Errorf("event_id = %s, want %s", id, want)
	}
	if answers != "192.0.2.1,192.0.2.2" || obs != "host3.example.com" {
		t.Errorf("answers = %q, observables = %q", answers, obs)
	}
	var raw, reason string
	if err := conn.QueryRow(ctx, "SELECT raw, reason FROM "+db+".dead_letters").Scan(&raw, &reason); err != nil {
		t.Fatal(err)
	}
	if raw != "not json\xff" || !strings.Contains(reason, "invalid character") {
		t.Errorf("dead letter raw=%q reason=%q", raw, reason)
	}
	if n := chtest.Count(t, conn, "SELECT count() FROM "+db+".detections WHERE rule_id = 'rule-1'"); n != 1 {
		t.Errorf("detections = %d, want 1", n)
	}

	// A redelivery of the same rows plus new ones stores only the new ones.
	rows.Redelivered = true
	rows.Events = append(rows.Events, sampleEvent(11))
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for table, want := range map[string]uint64{"events": 11, "detections": 1, "dead_letters": 1} {
		if n := chtest.Count(t, conn, "SELECT count() FROM "+db+"."+table); n != want {
			t.Errorf("after redelivery %s = %d, want %d", table, n, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		give    func(*sink.Config)
		wantKey string
	}{
		{"no addr", func(c *sink.Config) { c.Addr = nil }, "clickhouse.addr"},
		{"bad addr", func(c *sink.Config) { c.Addr = []string{"localhost"} }, "clickhouse.addr"},
		{"bad database", func(c *sink.Config) { c.Database = "a-b" }, "clickhouse.database"},
		{"bad retention", func(c *sink.Config) { c.EventRetentionDays = -1 }, "clickhouse.event_retention_days"},
		{"bad compression", func(c *sink.Config) { c.Compression = "gzip" }, "clickhouse.compression"},
		{"no insert conns", func(c *sink.Config) { c.InsertConns = 0 }, "clickhouse.insert_conns"},
		{"too many insert conns", func(c *sink.Config) { c.InsertConns = 9 }, "clickhouse.insert_conns"},
		{"tiny blocks", func(c *sink.Config) { c.BlockRows = 10 }, "clickhouse.block_rows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := sink.DefaultConfig()
			tt.give(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantKey)
			}
		})
	}
	if err := sink.DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

// TestWriteRetryAfterPartialFailure: a Write split into concurrent INSERTs
// (each sent in several blocks) where one INSERT fails and the other lands.
// The failure is real and server-side: a materialized view that throws on a
// marked row, standing in for any error the server raises mid-insert (on
// 18.16 the block may already be in events when a view throws). The retry of
// the unchanged rows, once the failure is gone, must leave every event
// exactly once, without FINAL or a merge.
func TestWriteRetryAfterPartialFailure(t *testing.T) {
	const n = 6000 // two INSERTs of 3000 rows, blocks of 1000
	for _, tt := range []struct {
		name   string
		poison int // index of the row the server refuses
	}{
		{"second INSERT fails in its last block", n - 1},
		{"first INSERT fails in its first block", 0},
		{"first INSERT fails in its last block", n/2 - 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := openSinkWith(t, func(c *sink.Config) { c.InsertConns, c.BlockRows = 2, 1000 })
			ctx := context.Background()
			conn, db := s.Conn(), s.Database()
			for _, q := range []string{
				"CREATE TABLE $db.poison (x UInt8) ENGINE = Null",
				"CREATE MATERIALIZED VIEW $db.poison_mv TO $db.poison AS SELECT throwIf(message = 'poison') AS x FROM $db.events",
			} {
				if err := conn.Exec(ctx, replaceDB(q, db)); err != nil {
					t.Fatal(err)
				}
			}
			rows := &sink.Rows{Events: dnsBatch(n, 0)}
			rows.Events[tt.poison].Message = "poison"
			err := s.Write(ctx, rows)
			if err == nil {
				t.Fatal("Write with a refused row returned nil")
			}
			if !rows.Redelivered {
				t.Error("a failed Write left rows.Redelivered false: a retry would not skip the rows that landed")
			}
			landed := chtest.Count(t, conn, "SELECT count() FROM "+db+".events")
			if landed < n/2 {
				t.Errorf("after the failure %d events are stored, want at least the %d of the INSERT that succeeded", landed, n/2)
			}
			t.Logf("failure: %v; %d of %d events had landed", err, landed, n)

			if err := conn.Exec(ctx, replaceDB("DROP TABLE $db.poison_mv", db)); err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, rows); err != nil {
				t.Fatalf("retry: %v", err)
			}
			total := chtest.Count(t, conn, "SELECT count() FROM "+db+".events")
			distinct := chtest.Count(t, conn, "SELECT uniqExact(event_id) FROM "+db+".events")
			if total != n || distinct != n {
				t.Errorf("after the retry events hold %d rows with %d distinct ids, want %d and %d", total, distinct, n, n)
			}
		})
	}
}

func replaceDB(q, db string) string { return strings.ReplaceAll(q, "$db", db) }

// TestWriteArraysRoundTrip stores rows whose array columns differ in
// length and content from row to row (the sink reuses one row buffer per
// length) and reads every one back.
func TestWriteArraysRoundTrip(t *testing.T) {
	s := openSink(t)
	ctx := context.Background()
	rows := &sink.Rows{}
	want := map[string]string{}
	for i := 0; i < 300; i++ {
		ev := sampleEvent(i)
		ev.DNS.Answers, ev.DNS.TTLs, ev.Unmapped, ev.Observables = nil, nil, nil, nil
		for j := 0; j < i%5; j++ {
			ev.DNS.Answers = append(ev.DNS.Answers, fmt.Sprintf("192.0.%d.%d", i%250, j))
			ev.DNS.TTLs = append(ev.DNS.TTLs, uint32(1000*i+j))
			ev.AddUnmapped(fmt.Sprintf("k%d", j), fmt.Sprintf("v%d-%d", i, j))
		}
		for j := 0; j < i%3; j++ {
			ev.AddObservable(schemas.ObservableIP, "answers.rdata", fmt.Sprintf("o%d-%d", i, j))
		}
		rows.Events = append(rows.Events, ev)
		want[ev.DNS.QueryHostname] = fmt.Sprint(ev.DNS.Answers, ev.DNS.TTLs, ev.Unmapped, ev.Observables)
	}
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	r, err := s.Conn().Query(ctx, "SELECT dns_query_hostname, dns_answers, dns_ttls, unmapped_keys, unmapped_values, observables_type_id, observables_name, observables_value FROM "+s.Database()+".events")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		var host string
		var answers, uk, uv, on, ov []string
		var ttls []uint32
		var ot []uint8
		if err := r.Scan(&host, &answers, &ttls, &uk, &uv, &ot, &on, &ov); err != nil {
			t.Fatal(err)
		}
		var ev schemas.Event
		ev.DNS.Answers, ev.DNS.TTLs = answers, ttls
		for j := range uk {
			ev.AddUnmapped(uk[j], uv[j])
		}
		for j := range ot {
			ev.AddObservable(ot[j], on[j], ov[j])
		}
		if len(answers) == 0 {
			ev.DNS.Answers, ev.DNS.TTLs = nil, nil
		}
		if got := fmt.Sprint(ev.DNS.Answers, ev.DNS.TTLs, ev.Unmapped, ev.Observables); got != want[host] {
			t.Errorf("%s: stored %s, wrote %s", host, got, want[host])
		}
		n++
	}
	if n != 300 {
		t.Errorf("read back %d rows, want 300", n)
	}
}
