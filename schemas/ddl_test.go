package schemas_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/watchfloor/watchfloor/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func ddl(t *testing.T, version, cluster string) string {
	t.Helper()
	f, err := schemas.FeaturesFor(version)
	if err != nil {
		t.Fatal(err)
	}
	o := schemas.DDLOptions{Database: "watchfloor", Features: f, Cluster: cluster,
		EventRetentionDays: 365, DetectionRetentionDays: 1095, DeadLetterRetentionDays: 90}
	var b strings.Builder
	for _, st := range append(schemas.AllStatements(o), schemas.RetentionStatements(o)...) {
		b.WriteString(st.SQL)
		b.WriteString(";\n\n")
	}
	return b.String()
}

// TestDDLGolden pins the generated DDL. No server of 23.8+ is available
// here: the modern branch is checked only by these reviewed golden files
// (and the 18.16 branch also against the real server in package sink).
func TestDDLGolden(t *testing.T) {
	tests := []struct{ name, version, cluster string }{
		{"ddl_23.8", "23.8.2.7", ""},
		{"ddl_23.8_cluster", "23.8.2.7", "soc"},
		{"ddl_18.16", "18.16.1", ""},
		{"ddl_18.16_cluster", "18.16.1", "soc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ddl(t, tt.version, tt.cluster)
			path := filepath.Join("testdata", tt.name+".sql")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("DDL differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestDDLFeatures(t *testing.T) {
	tests := []struct {
		name, version, cluster string
		want, notWant          []string
	}{
		{"modern", "23.8", "", []string{
			"LowCardinality(String)", "DateTime64(3, 'UTC')", "TTL toDateTime(time) + INTERVAL 365 DAY DELETE",
			"CODEC(ZSTD(3))", "TYPE bloom_filter(0.01)", "ADD COLUMN IF NOT EXISTS net_bytes_in UInt64",
			"unmapped Map(String, String) ALIAS mapFromArrays(unmapped_keys, unmapped_values)",
			"ENGINE = ReplacingMergeTree()", "ENGINE = SummingMergeTree()",
			"ORDER BY (agency, class_uid, time, event_id)", "PARTITION BY toYYYYMMDD(time)",
		}, []string{"ON CLUSTER", "Distributed", "Replicated"}},
		{"18.16 fallback", "18.16.1", "", []string{"DateTime('UTC')", "ADD COLUMN net_bytes_in UInt64", "ENGINE = ReplacingMergeTree()"},
			[]string{"LowCardinality", "DateTime64", "TTL", "CODEC", "bloom_filter", "IF NOT EXISTS net_", "Map("}},
		{"cluster", "23.8", "soc", []string{
			"CREATE DATABASE IF NOT EXISTS watchfloor ON CLUSTER soc",
			"watchfloor.events_local ON CLUSTER soc (",
			"ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/watchfloor/events_local', '{replica}')",
			"ENGINE = Distributed(soc, watchfloor, events_local, cityHash64(toString(event_id)))",
			"ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_bytes_in",
			"ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/watchfloor/events_per_minute_local', '{replica}')",
			"TO watchfloor.events_per_minute_local AS\nSELECT agency, class_uid, toStartOfMinute(time) AS minute, count() AS events FROM watchfloor.events_local",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ddl(t, tt.version, tt.cluster)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("DDL lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("DDL has %q, which this server does not support", w)
				}
			}
		})
	}
}

func TestFeaturesFor(t *testing.T) {
	tests := []struct {
		give    string
		want    schemas.Features
		wantErr bool
	}{
		{give: "18.16.1", want: schemas.Features{Version: [3]int{18, 16, 1}}},
		{give: "23.8.2.7", want: schemas.Features{Version: [3]int{23, 8, 2}, DateTime64: true, LowCardinality: true, TTL: true, Codecs: true, SkipIndexes: true, IfNotExists: true, Map: true, RowPolicies: true}},
		{give: "19.9", want: schemas.Features{Version: [3]int{19, 9, 0}, LowCardinality: true, TTL: true, Codecs: true}},
		{give: "x", wantErr: true},
		{give: "23.x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := schemas.FeaturesFor(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("FeaturesFor(%q) error = %v, want error %v", tt.give, err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("FeaturesFor(%q) = %+v, want %+v", tt.give, got, tt.want)
			}
		})
	}
}
