package ingest_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/internal/chtest"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/sink"
)

// sshdRuleID is the id of the bundled rule detect/rules/linux/sshd_auth_failure.yml.
const sshdRuleID = "eec6b424-dc86-40c5-bfd4-568201a99281"

// TestStageMetrics sends batches whose records fail in every way a record
// can and checks the per-stage instruments: dead letters by reason class,
// rule hits by rule, batch sizes, stage timings.
func TestStageMetrics(t *testing.T) {
	js := embeddedJS(t)
	addr, db := chtest.Database(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	scfg := sink.DefaultConfig()
	scfg.Addr, scfg.Database = []string{addr}, db
	store, err := sink.Open(context.Background(), scfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rules, err := detect.LoadDir("../detect/rules", detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	reg := prometheus.NewRegistry()
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithReader(promExp))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	metrics, err := ingest.NewMetrics(mp.Meter("test"))
	if err != nil {
		t.Fatal(err)
	}

	send := func(subject, id string, data string, hdr map[string]string) {
		t.Helper()
		m := nats.NewMsg(subject)
		m.Data = []byte(data)
		m.Header.Set(ingest.HeaderMsgID, id)
		for k, v := range hdr {
			m.Header.Set(k, v)
		}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	sshd := "<13>Oct 11 22:14:16 mymachine sshd[42]: Failed password for invalid user admin from 198.51.100.7 port 4242 ssh2\n"
	send(ingest.RawSubject("agency-m", "syslog"), "m:1",
		sshd+sshd+"not syslog at all\n"+"<13>Oct 11 22:14:16 host app: bad \xff byte\n"+"<13>"+strings.Repeat("x", ingest.MaxRecordBytes+1)+"\n", nil)
	send(ingest.RawSubject("agency-m", "no_such_format"), "m:2", "a\nb\n", nil)
	send(ingest.RawSubject("agency-m", "syslog"), "m:3", "not zstd", map[string]string{ingest.HeaderEncoding: "zstd", ingest.HeaderCount: "3"})
	send(ingest.RawSubject("agency-m", "syslog"), "m:4", "x\n", map[string]string{ingest.HeaderEncoding: "gzip"})

	cfg := ingest.DefaultPipelineConfig()
	cfg.FlushInterval = 50 * time.Millisecond
	p, err := ingest.NewPipeline(cfg, js, normalize.Builtin(), store, rules, &ingest.JetStreamFindings{JS: js}, metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for !settled(t, js) || chtest.Count(t, store.Conn(), "SELECT count() FROM "+db+".dead_letters") < 9 {
		if time.Now().After(deadline) {
			t.Fatal("batches not settled within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}        // name{attr=value} -> sum
	histCounts := map[string]uint64{} // name{attr=value} -> count
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					sums[m.Name+label(dp.Attributes.ToSlice())] += dp.Value
				}
			case metricdata.Histogram[int64]:
				for _, dp := range d.DataPoints {
					histCounts[m.Name+label(dp.Attributes.ToSlice())] += dp.Count
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					histCounts[m.Name+label(dp.Attributes.ToSlice())] += dp.Count
				}
			}
		}
	}
	wantSums := map[string]int64{
		"watchfloor.records.in":                                       5 + 2 + 3 + 1,
		"watchfloor.dead_letters":                                     9,
		"watchfloor.dead_letters.by_reason{reason=parse}":             1,
		"watchfloor.dead_letters.by_reason{reason=utf8}":              1,
		"watchfloor.dead_letters.by_reason{reason=oversize}":          1,
		"watchfloor.dead_letters.by_reason{reason=unknown_format}":    2,
		"watchfloor.dead_letters.by_reason{reason=decode}":            3,
		"watchfloor.dead_letters.by_reason{reason=encoding}":          1,
		"watchfloor.rules.evaluated":                                  2,
		"watchfloor.rules.hits{level=low,rule_id=" + sshdRuleID + "}": 2,
		"watchfloor.batches.acked":                                    4,
	}
	for k, want := range wantSums {
		if got := sums[k]; got != want {
			t.Errorf("%s = %d, want %d", k, got, want)
		}
	}
	if got := histCounts["watchfloor.batch.records"]; got != 4 {
		t.Errorf("watchfloor.batch.records count = %d, want 4 batches", got)
	}
	for _, st := range []string{"decode", "normalize", "detect"} {
		if got := histCounts["watchfloor.stage.duration{stage="+st+"}"]; got == 0 {
			t.Errorf("watchfloor.stage.duration{stage=%s} has no observations", st)
		}
	}
	if t.Failed() {
		t.Logf("sums: %v\nhistograms: %v", sums, histCounts)
	}
	checkPrometheusNames(t, reg)
}

var updateNames = flag.Bool("update-metric-names", false, "rewrite "+promNamesFile)

// promNamesFile lists the Prometheus series names the pipeline exports
// (what /metrics shows). The operators' Grafana dashboard is checked
// against it (deploy/deploy_test.go), so a renamed metric cannot silently
// leave a panel empty.
const promNamesFile = "testdata/prometheus_metrics.txt"

func checkPrometheusNames(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		name := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			names = append(names, name+"_bucket", name+"_count", name+"_sum")
		default:
			names = append(names, name)
		}
	}
	// Counted only when something fails, so absent from this run's scrape.
	names = append(names, "watchfloor_retries_total")
	sort.Strings(names)
	got := "# Prometheus series of `watchfloor run` (generated by `go test ./ingest -run TestStageMetrics -update-metric-names`)\n" + strings.Join(names, "\n") + "\n"
	if *updateNames {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(promNamesFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(promNamesFile)
	if err != nil {
		t.Fatalf("%v (run with -update-metric-names)", err)
	}
	if string(want) != got {
		t.Errorf("%s is stale, run `go test ./ingest -run TestStageMetrics -update-metric-names`:\n got %q\nwant %q", promNamesFile, got, want)
	}
}

// label renders attributes as {k=v,...} in key order ("" when none).
func label(kvs []attribute.KeyValue) string {
	if len(kvs) == 0 {
		return ""
	}
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = string(kv.Key) + "=" + kv.Value.Emit()
	}
	return "{" + strings.Join(parts, ",") + "}"
}
