package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

type dashTarget struct {
	Datasource struct{ UID string } `json:"datasource"`
	RawSQL     string               `json:"rawSql"`
	Expr       string               `json:"expr"`
	RefID      string               `json:"refId"`
}

type dashPanel struct {
	ID         int                  `json:"id"`
	Title      string               `json:"title"`
	Type       string               `json:"type"`
	Datasource struct{ UID string } `json:"datasource"`
	Targets    []dashTarget         `json:"targets"`
}

type dashboard struct {
	UID        string      `json:"uid"`
	Title      string      `json:"title"`
	Panels     []dashPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string               `json:"name"`
			Query      string               `json:"query"`
			Datasource struct{ UID string } `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	out := map[string]dashboard{}
	for _, name := range []string{"analysts", "operators"} {
		var d dashboard
		if err := json.Unmarshal(readFile(t, "grafana/dashboards/"+name+".json"), &d); err != nil {
			t.Fatalf("%s.json: %v", name, err)
		}
		out[name] = d
	}
	return out
}

// TestDashboardsStructure checks uids, panel ids and that every data source
// a panel uses is provisioned.
func TestDashboardsStructure(t *testing.T) {
	provisioned := map[string]string{} // uid -> type
	for _, ds := range yamlDocs(t, "grafana/provisioning/datasources/watchfloor.yaml")[0]["datasources"].([]any) {
		m := asMap(ds)
		provisioned[toString(m["uid"])] = toString(m["type"])
	}
	if provisioned["watchfloor-clickhouse"] != "grafana-clickhouse-datasource" || provisioned["watchfloor-prometheus"] != "prometheus" {
		t.Fatalf("provisioned data sources %v: want the ClickHouse plugin and Prometheus", provisioned)
	}
	prov := yamlDocs(t, "grafana/provisioning/dashboards/watchfloor.yaml")[0]
	path := toString(asMap(asMap(prov["providers"].([]any)[0])["options"])["path"])
	compose := readFile(t, "compose/compose.yaml")
	if !bytes.Contains(compose, []byte("../grafana/dashboards:"+path+":ro")) {
		t.Errorf("the dashboards provider reads %s, which compose does not mount from ../grafana/dashboards", path)
	}
	uids := map[string]bool{}
	for name, d := range loadDashboards(t) {
		if d.UID == "" || uids[d.UID] {
			t.Errorf("%s: uid %q empty or reused", name, d.UID)
		}
		uids[d.UID] = true
		ids := map[int]bool{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d reused", name, p.ID)
			}
			ids[p.ID] = true
			if len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, p.Title)
			}
			for _, tg := range p.Targets {
				uid := tg.Datasource.UID
				if _, ok := provisioned[uid]; !ok {
					t.Errorf("%s: panel %q uses data source %q, which is not provisioned", name, p.Title, uid)
				}
				if (tg.RawSQL == "") == (tg.Expr == "") {
					t.Errorf("%s: panel %q target %s needs exactly one of rawSql and expr", name, p.Title, tg.RefID)
				}
			}
		}
	}
}

var promName = regexp.MustCompile(`\b(watchfloor_[a-z_]+)\b`)

// TestOperatorsDashboardMetrics checks that every series the operators'
// dashboard queries is one the pipeline exports: the list in
// ingest/testdata/prometheus_metrics.txt comes from a real scrape
// (ingest's TestStageMetrics).
func TestOperatorsDashboardMetrics(t *testing.T) {
	exported := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "../ingest/testdata/prometheus_metrics.txt")))
	for sc.Scan() {
		if l := sc.Text(); l != "" && !strings.HasPrefix(l, "#") {
			exported[l] = true
		}
	}
	used := 0
	for name, d := range loadDashboards(t) {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				for _, m := range promName.FindAllStringSubmatch(tg.Expr, -1) {
					used++
					if !exported[m[1]] {
						t.Errorf("%s: panel %q queries %s, which the pipeline does not export", name, p.Title, m[1])
					}
				}
			}
		}
	}
	if used < 10 {
		t.Errorf("the dashboards query %d pipeline series; the operators' dashboard is missing", used)
	}
}

// expandMacros does what the ClickHouse data source plugin does with the
// macros the dashboards use, for the time range [from, to].
func expandMacros(sql string, from, to time.Time, vars map[string]string) string {
	r := regexp.MustCompile(`\$__timeFilter\(([a-z_]+)\)`)
	sql = r.ReplaceAllString(sql, fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", from.Unix(), to.Unix()))
	sql = strings.ReplaceAll(sql, "$__interval_s", "3600")
	for k, v := range vars {
		sql = strings.ReplaceAll(sql, "${"+k+":singlequote}", v)
	}
	return sql
}

// loadSamples stores deploy/samples through the real normalizers and rules,
// plus two dead letters, so the dashboard queries return rows.
func loadSamples(t *testing.T, s *sink.Sink) {
	t.Helper()
	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var rows sink.Rows
	for _, src := range []struct{ agency, format, path string }{
		{"demo", "zeek_dns", "samples/zeek_dns.json.log"},
		{"doj", "zeek_dns", "samples/zeek_dns.tsv.log"},
		{"doj", "syslog", "samples/auth.log"},
	} {
		f, ok := normalize.Builtin().Lookup(src.format)
		if !ok {
			t.Fatalf("no format %s", src.format)
		}
		dec := f.NewDecoder(normalize.BatchInfo{Received: time.Now().UTC()})
		sc := bufio.NewScanner(bytes.NewReader(readFile(t, src.path)))
		for i := 0; sc.Scan(); {
			line := sc.Bytes()
			if len(line) == 0 {
				continue
			}
			if f.Directive(line) {
				if err := dec.Directive(line); err != nil {
					t.Fatalf("%s: %v", src.path, err)
				}
				continue
			}
			var ev schemas.Event
			if err := dec.Record(line, &ev); err != nil {
				t.Fatalf("%s record %d: %v", src.path, i, err)
			}
			ev.ID = schemas.EventID("dash:"+src.path, i)
			ev.Agency, ev.Sensor, ev.Format = src.agency, "dash-test", src.format
			rows.Events = append(rows.Events, ev)
			i++
		}
	}
	for i := range rows.Events {
		rows.Findings = rules.Eval(&rows.Events[i], rows.Findings)
	}
	for i, reason := range []string{"parse zeek dns: not JSON", "record is not valid UTF-8 (first bad byte at offset 3)"} {
		rows.DeadLetters = append(rows.DeadLetters, schemas.DeadLetter{
			ID: schemas.EventID("dash:dead", i), Agency: "demo", Sensor: "dash-test", Format: "zeek_dns",
			Subject: "soc.raw.demo.zeek_dns", MsgID: "dash:dead", Index: uint32(i), Reason: reason, Raw: "garbage", Received: time.Now().UTC(),
		})
	}
	if err := s.Write(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("stored %d events, %d detections, %d dead letters from deploy/samples", len(rows.Events), len(rows.Findings), len(rows.DeadLetters))
}

// TestDashboardSQL runs every ClickHouse query of the dashboards (and the
// agency variable's) against the real schema, created by sink.Migrate in a
// fresh database, over the sample telemetry. The queries must be valid on
// the server at hand (Debian's 18.16 in CI) as well as current releases, so
// they avoid functions 18.16 lacks (toStartOfInterval).
func TestDashboardSQL(t *testing.T) {
	addr, db := chtest.Database(t)
	ctx := context.Background()
	cfg := sink.DefaultConfig()
	cfg.Addr, cfg.Database = []string{addr}, db
	s, err := sink.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	loadSamples(t, s)

	// The data source's default database: the queries name tables bare.
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: db}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	from, to := time.Unix(946684800, 0), time.Now().Add(400*24*time.Hour)

	run := func(where, sql string) (rows int, cols []string) {
		t.Helper()
		if strings.Contains(sql, "$") {
			t.Errorf("%s: macro left after expansion:\n%s", where, sql)
			return 0, nil
		}
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, err := conn.Query(qctx, sql)
		if err != nil {
			t.Errorf("%s: %v\n%s", where, err, sql)
			return 0, nil
		}
		defer r.Close()
		cols = r.Columns()
		for r.Next() {
			rows++
		}
		if err := r.Err(); err != nil {
			t.Errorf("%s: reading rows: %v", where, err)
		}
		return rows, cols
	}

	dashboards := loadDashboards(t)
	vars := map[string]string{}
	for _, v := range dashboards["analysts"].Templating.List {
		qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		r, err := conn.Query(qctx, v.Query)
		if err != nil {
			cancel()
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		var vals []string
		for r.Next() {
			var s string
			if err := r.Scan(&s); err != nil {
				t.Fatal(err)
			}
			vals = append(vals, "'"+s+"'")
		}
		r.Close()
		cancel()
		if len(vals) != 2 {
			t.Errorf("variable %s = %v, want the 2 sample agencies", v.Name, vals)
		}
		vars[v.Name] = strings.Join(vals, ",")
	}

	// Panels over data the samples certainly contain must return rows.
	mustHaveRows := map[string]bool{
		"Events per agency": true, "Events per class": true, "Events by agency and class": true,
		"NXDOMAIN rate": true, "Top queried domains": true, "Rare domains (queried at most twice)": true,
		"Top NXDOMAIN clients": true, "Detections by level": true, "Detections by rule": true,
		"Dead letters by reason (ClickHouse)": true,
	}
	queries := 0
	for name, d := range dashboards {
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				if tg.RawSQL == "" {
					continue
				}
				queries++
				where := fmt.Sprintf("%s: %q", name, p.Title)
				n, cols := run(where, expandMacros(tg.RawSQL, from, to, vars))
				t.Logf("%-50s %4d rows %v", where, n, cols)
				if mustHaveRows[p.Title] && n == 0 {
					t.Errorf("%s: no rows over the sample telemetry", where)
				}
				if strings.Contains(tg.RawSQL, "AS t,") && (len(cols) == 0 || cols[0] != "t") {
					t.Errorf("%s: a time series query must return its time bucket first, got %v", where, cols)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("ran %d dashboard queries, want the analysts' and operators' SQL panels", queries)
	}
	if os.Getenv("WATCHFLOOR_KEEP_TEST_DB") == "1" {
		t.Logf("database %s kept", db)
	}
}
