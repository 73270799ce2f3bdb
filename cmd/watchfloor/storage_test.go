package main

import (
	"bytes"
	"context"
	"encoding/json"
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

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), err
}

func TestDDLCommand(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		want    []string
		wantErr string
	}{
		{"single", []string{"ddl"}, []string{"-- step 3:", "CREATE TABLE IF NOT EXISTS watchfloor.events (", "DateTime64(3, 'UTC')"}, ""},
		{"cluster", []string{"ddl", "--cluster", "soc"}, []string{"ON CLUSTER soc", "ReplicatedReplacingMergeTree", "ENGINE = Distributed(soc, watchfloor, events_local"}, ""},
		{"18.16", []string{"ddl", "--server-version", "18.16", "--clickhouse.database", "wf"}, []string{"CREATE TABLE IF NOT EXISTS wf.events (", "time DateTime('UTC')"}, ""},
		{"bad cluster", []string{"ddl", "--cluster", "a;b"}, nil, "cluster"},
		{"bad version", []string{"ddl", "--server-version", "new"}, nil, "server-version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runCmd(t, tt.give...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}

func TestBuildQuery(t *testing.T) {
	since := time.Unix(1700000000, 0)
	tests := []struct {
		name       string
		give       []string
		agency     string
		wantSQL    string
		wantParams string
		wantErr    string
	}{
		{"top domains scoped", []string{"top-domains"}, "doj", "FROM wf.dns_per_domain_hour WHERE hour >= toStartOfHour(toDateTime(?)) AND agency = ?", "[1700000000 doj 20]", ""},
		{"detections all", []string{"detections"}, "", "FROM wf.detections WHERE time >= toDateTime(?)\nORDER BY", "[1700000000 20]", ""},
		{"event", []string{"event", "3f1c2d4e-0000-4000-8000-000000000001"}, "", "WHERE event_id = toUUID(?) LIMIT ?", "[3f1c2d4e-0000-4000-8000-000000000001 20]", ""},
		{"event bad id", []string{"event", "x"}, "", "", "", "not an event id"},
		{"event no id", []string{"event"}, "", "", "", "one argument"},
		{"raw select", []string{"SELECT 1"}, "", "SELECT 1", "[]", ""},
		{"raw with agency", []string{"SELECT 1"}, "doj", "", "", "scoped by the login"},
		{"raw insert", []string{"INSERT INTO x VALUES (1)"}, "", "", "", "must be a SELECT"},
		{"unknown name", []string{"top-domain"}, "", "", "", "unknown named query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sql, params, _, err := buildQuery(tt.give, "wf", tt.agency, since, 20)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(sql, tt.wantSQL) {
				t.Errorf("sql = %q, want it to contain %q", sql, tt.wantSQL)
			}
			if got := fmt.Sprint(params); got != tt.wantParams && !(tt.wantParams == "[]" && len(params) == 0) {
				t.Errorf("params = %s, want %s", got, tt.wantParams)
			}
		})
	}
}

func TestQueryCommand(t *testing.T) {
	addr, db := chtest.Database(t)
	ctx := context.Background()
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	s, err := sink.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows := &sink.Rows{}
	now := time.Now().UTC().Add(-time.Minute)
	for i := 0; i < 30; i++ {
		agency := []string{"agency-a", "agency-b"}[i%2]
		ev := schemas.Event{ID: schemas.EventID("s:1", i), Agency: agency, Format: "zeek_dns", Time: now, ClassUID: schemas.ClassDNS,
			DNS: schemas.DNS{QueryHostname: fmt.Sprintf("d%d.example", i%3), RCodeID: int32(3 * (i % 2))}}
		rows.Events = append(rows.Events, ev)
	}
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--clickhouse.addr", addr, "--clickhouse.database", db}

	out, err := runCmd(t, append([]string{"query", "top-domains", "--agency", "agency-a", "--format", "json"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Domain            string
		Queries, Nxdomain uint64
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var total uint64
	for _, g := range got {
		total += g.Queries
		if g.Nxdomain != 0 {
			t.Errorf("agency-a has no NXDOMAIN answers, got %+v", g)
		}
	}
	if len(got) != 3 || total != 15 {
		t.Errorf("top-domains for agency-a = %+v, want 3 domains, 15 queries", got)
	}

	out, err = runCmd(t, append([]string{"query", "nxdomain", "--format", "csv"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if want := "agency,total_queries,total_nxdomain,nxdomain_rate\nagency-b,15,15,1\nagency-a,15,0,0\n"; out != want {
		t.Errorf("nxdomain csv =\n%s\nwant\n%s", out, want)
	}

	id := rows.Events[4].ID.String()
	out, err = runCmd(t, append([]string{"query", "event", id}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "event_id") || !strings.Contains(out, id) || !strings.Contains(out, "d1.example") {
		t.Errorf("event output lacks the event:\n%s", out)
	}

	out, err = runCmd(t, append([]string{"query", "SELECT agency, count() AS n FROM " + db + ".events GROUP BY agency ORDER BY agency"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "agency-a  15") || !strings.Contains(out, "(2 rows)") {
		t.Errorf("raw SQL table output:\n%s", out)
	}
}
