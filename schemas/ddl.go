package schemas

import (
	"fmt"
	"strconv"
	"strings"
)

// Features are the server capabilities the DDL adapts to. The thresholds are
// conservative (the release where a feature stopped being experimental);
// production runs 23.8+, where every one of them is on, and CI runs Debian's
// 18.16, where every one of them is off.
type Features struct {
	Version        [3]int
	DateTime64     bool // DateTime64(3) for millisecond event times (20.1+)
	LowCardinality bool // LowCardinality(String) without the experimental setting (19.9+)
	TTL            bool // table TTL for retention (19.6+)
	Codecs         bool // column compression codecs (19.1+)
	SkipIndexes    bool // bloom_filter data-skipping indexes without a setting (20.1+)
	IfNotExists    bool // ALTER ... ADD COLUMN/INDEX IF NOT EXISTS (20.1+)
	Map            bool // Map(String, String) and mapFromArrays (23.3+)
	RowPolicies    bool // SQL users, grants and CREATE ROW POLICY (20.5+)
}

// FeaturesFor derives the features of a server from its version string
// ("18.16.1", "23.8.2.7").
func FeaturesFor(version string) (Features, error) {
	var f Features
	parts := strings.SplitN(version, ".", 4)
	if len(parts) < 2 {
		return f, fmt.Errorf("parse clickhouse version %q: want MAJOR.MINOR[.PATCH]", version)
	}
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return f, fmt.Errorf("parse clickhouse version %q: %w", version, err)
		}
		f.Version[i] = n
	}
	at := func(major, minor int) bool {
		return f.Version[0] > major || f.Version[0] == major && f.Version[1] >= minor
	}
	f.DateTime64 = at(20, 1)
	f.LowCardinality = at(19, 9)
	f.TTL = at(19, 6)
	f.Codecs = at(19, 1)
	f.SkipIndexes = at(20, 1)
	f.IfNotExists = at(20, 1)
	f.Map = at(23, 3)
	f.RowPolicies = at(20, 5)
	return f, nil
}

// DDLOptions select what the generated DDL looks like.
type DDLOptions struct {
	Database string
	Features Features
	// Cluster, when set, produces the cluster variant: every statement ON
	// CLUSTER, Replicated* engines on <table>_local tables, and Distributed
	// tables under the plain names that analysts and the sink use.
	Cluster string
	// EventRetentionDays and friends are applied by TTL where the server has
	// it; on older servers the sink's partition-drop job applies them.
	EventRetentionDays      int
	DetectionRetentionDays  int
	DeadLetterRetentionDays int
}

// Column is one column the sink writes.
type Column struct {
	Name string
	Type string // type on a current server; see Features for fallbacks
	// Since is the migration step that added the column (0 = the first).
	Since int
}

// EventColumns lists the events table columns in the order the sink writes
// them. The sink's appendEvents follows this order; a test checks both
// against DESCRIBE TABLE. New columns go at the end with the migration step
// that adds them in Since.
var EventColumns = []Column{
	{"event_id", "UUID", 0},
	{"agency", "LowCardinality(String)", 0},
	{"sensor", "LowCardinality(String)", 0},
	{"format", "LowCardinality(String)", 0},
	{"time", "DateTime64(3, 'UTC')", 0},
	{"class_uid", "UInt32", 0},
	{"category_uid", "UInt32", 0},
	{"activity_id", "UInt32", 0},
	{"type_uid", "UInt32", 0},
	{"severity_id", "UInt8", 0},
	{"status_id", "UInt8", 0},
	{"message", "String", 0},
	{"metadata_product", "LowCardinality(String)", 0},
	{"metadata_vendor", "LowCardinality(String)", 0},
	{"metadata_log_name", "LowCardinality(String)", 0},
	{"metadata_original_time", "String", 0},
	{"metadata_uid", "String", 0},
	{"src_ip", "String", 0},
	{"src_port", "UInt16", 0},
	{"src_hostname", "String", 0},
	{"dst_ip", "String", 0},
	{"dst_port", "UInt16", 0},
	{"dst_hostname", "String", 0},
	{"device_hostname", "String", 0},
	{"process_name", "String", 0},
	{"process_pid", "UInt32", 0},
	{"user_name", "String", 0},
	{"protocol", "LowCardinality(String)", 0},
	{"dns_query_hostname", "String", 0},
	{"dns_query_type", "LowCardinality(String)", 0},
	{"dns_query_class", "LowCardinality(String)", 0},
	{"dns_rcode", "LowCardinality(String)", 0},
	{"dns_rcode_id", "Int32", 0},
	{"dns_transaction_id", "UInt32", 0},
	{"dns_answers", "Array(String)", 0},
	{"dns_ttls", "Array(UInt32)", 0},
	{"dns_rtt", "Float64", 0},
	{"observables_type_id", "Array(UInt8)", 0},
	{"observables_name", "Array(String)", 0},
	{"observables_value", "Array(String)", 0},
	{"unmapped_keys", "Array(String)", 0},
	{"unmapped_values", "Array(String)", 0},
	{"raw_data", "String", 0},
	// Step 2: class-specific columns for network, HTTP, authentication and
	// process events.
	{"net_direction", "LowCardinality(String)", 2},
	{"net_bytes_in", "UInt64", 2},
	{"net_bytes_out", "UInt64", 2},
	{"net_packets_in", "UInt64", 2},
	{"net_packets_out", "UInt64", 2},
	{"http_method", "LowCardinality(String)", 2},
	{"http_url", "String", 2},
	{"http_hostname", "String", 2},
	{"http_status", "UInt16", 2},
	{"http_user_agent", "String", 2},
	{"http_referrer", "String", 2},
	{"auth_protocol", "LowCardinality(String)", 2},
	{"auth_logon_type", "LowCardinality(String)", 2},
	{"auth_service", "String", 2},
	{"process_cmd_line", "String", 2},
	{"process_path", "String", 2},
	{"process_parent_name", "String", 2},
	{"process_parent_pid", "UInt32", 2},
}

// FindingColumns lists the detections table columns in write order.
var FindingColumns = []Column{
	{"detection_id", "UUID", 0},
	{"event_id", "UUID", 0},
	{"agency", "LowCardinality(String)", 0},
	{"time", "DateTime64(3, 'UTC')", 0},
	{"rule_id", "String", 0},
	{"rule_title", "String", 0},
	{"rule_level", "LowCardinality(String)", 0},
	{"rule_revision", "UInt64", 0},
	{"severity_id", "UInt8", 0},
	{"event_class_uid", "UInt32", 0},
	{"tags", "Array(String)", 0},
}

// DeadLetterColumns lists the dead_letters table columns in write order.
var DeadLetterColumns = []Column{
	{"dead_letter_id", "UUID", 0},
	{"agency", "LowCardinality(String)", 0},
	{"sensor", "LowCardinality(String)", 0},
	{"format", "LowCardinality(String)", 0},
	{"subject", "String", 0},
	{"msg_id", "String", 0},
	{"record_index", "UInt32", 0},
	{"reason", "String", 0},
	{"raw", "String", 0},
	{"received", "DateTime64(3, 'UTC')", 0},
}

// ColumnNames joins the column names for an INSERT column list (18.16 needs
// the list named).
func ColumnNames(cols []Column) string {
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	return strings.Join(names, ", ")
}

// TypeFor returns the column type the server with features f gets.
func (f Features) TypeFor(t string) string {
	if !f.LowCardinality {
		t = strings.ReplaceAll(t, "LowCardinality(String)", "String")
	}
	if !f.DateTime64 {
		t = strings.ReplaceAll(t, "DateTime64(3, 'UTC')", "DateTime('UTC')")
	}
	return t
}

// Statement is one DDL statement of a migration step.
type Statement struct {
	SQL string
	// ExistsOK marks an ALTER ... ADD that a server without IF NOT EXISTS
	// rejects with "already exists" (code 44) when the step is re-run after
	// a crash: the migrator takes that error as done.
	ExistsOK bool
}

// Migration is one versioned schema step. Steps are append-only: a released
// step is never edited, a change is a new step.
type Migration struct {
	Version    int
	Name       string
	Statements func(DDLOptions) []Statement
}

// Migrations lists the schema steps in order.
func Migrations() []Migration {
	return []Migration{
		{1, "events, detections and dead_letters tables", step1Tables},
		{2, "class-specific columns for network, HTTP, authentication and process events; skip indexes; unmapped map", step2ClassColumns},
		{3, "rollups for dashboards: events per minute, DNS per domain and hour, detections per rule and day", step3Rollups},
		// A data step: the migrator runs BackfillStatements with each view's
		// creation time as the cut (stable when the step is re-run).
		{4, BackfillStep, func(DDLOptions) []Statement { return nil }},
	}
}

// BackfillStep names the migration that fills the rollups from the rows
// stored before their views existed.
const BackfillStep = "backfill the rollups from rows stored before their views"

// TenantTables are the tables (and rollups) that hold per-agency rows: every
// one has an agency column, and per-agency isolation covers each of them.
var TenantTables = []string{"events", "detections", "dead_letters", "events_per_minute", "dns_per_domain_hour", "detections_per_rule_day"}

// AllStatements is the whole schema for o: every step in order, what
// `watchfloor ddl` prints.
func AllStatements(o DDLOptions) []Statement {
	var out []Statement
	for _, m := range Migrations() {
		out = append(out, m.Statements(o)...)
	}
	return out
}

func (o DDLOptions) onCluster() string {
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + o.Cluster
}

// local is the name of the table that stores rows: <name>_local on a cluster.
func (o DDLOptions) local(name string) string {
	if o.Cluster == "" {
		return name
	}
	return name + "_local"
}

// engine returns the storage engine, replicated on a cluster.
func (o DDLOptions) engine(kind, table string) string {
	if o.Cluster == "" {
		return kind + "()"
	}
	return fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}')", kind, o.Database, o.local(table))
}

// distributed returns the Distributed table in front of a local table on a
// cluster, or nothing. The sharding key hashes the row's id so that every
// copy of a redelivered row lands on the same shard, where
// ReplacingMergeTree can collapse it.
func (o DDLOptions) distributed(table, shardKey string) []Statement {
	if o.Cluster == "" {
		return nil
	}
	return []Statement{{SQL: fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed(%s, %s, %s, %s)",
		o.Database, table, o.onCluster(), o.Database, o.local(table), o.Cluster, o.Database, o.local(table), shardKey)}}
}

func columnsDDL(f Features, cols []Column, maxSince int, codecs map[string]string) string {
	var b strings.Builder
	for _, c := range cols {
		if c.Since > maxSince {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("    ")
		b.WriteString(columnDef(f, c, codecs))
	}
	return b.String()
}

func columnDef(f Features, c Column, codecs map[string]string) string {
	s := c.Name + " " + f.TypeFor(c.Type)
	if f.Codecs {
		if codec, ok := codecs[c.Name]; ok {
			s += " CODEC(" + codec + ")"
		}
	}
	return s
}

var codecs = map[string]string{
	"raw_data": "ZSTD(3)", "raw": "ZSTD(3)", "message": "ZSTD(1)", "http_url": "ZSTD(1)",
	"process_cmd_line": "ZSTD(1)", "time": "Delta, LZ4", "received": "Delta, LZ4",
}

func ttl(f Features, column string, days int) string {
	if !f.TTL || days <= 0 {
		return ""
	}
	return "\nTTL " + Retention{Column: column, Days: days, Kind: "time"}.ttlExpr(f)
}

// RetentionStatements re-apply the configured retention by TTL on servers
// that have it (nil elsewhere: the partition-drop job does it there).
func RetentionStatements(o DDLOptions) []Statement {
	if !o.Features.TTL {
		return nil
	}
	var out []Statement
	for _, r := range Retentions(o) {
		action := "REMOVE TTL"
		if r.Days > 0 {
			action = "MODIFY TTL " + r.ttlExpr(o.Features)
		}
		out = append(out, Statement{SQL: fmt.Sprintf("ALTER TABLE %s.%s%s %s", o.Database, o.local(r.Table), o.onCluster(), action)})
	}
	return out
}

// Retention is the retention of one table: rows whose Column is older than
// Days are deleted (by TTL or by dropping their partition).
type Retention struct {
	Table  string
	Column string
	Days   int
	// Kind is the type of Column: "time" for the DateTime64 event times,
	// "datetime" or "date" for rollup buckets.
	Kind string
	// PartitionMonthly is true for tables partitioned by toYYYYMM (rollups);
	// the rest are partitioned by toYYYYMMDD.
	PartitionMonthly bool
}

func (r Retention) ttlExpr(f Features) string {
	col := r.Column
	if r.Kind == "date" || r.Kind == "time" && f.DateTime64 {
		col = "toDateTime(" + col + ")"
	}
	return fmt.Sprintf("%s + INTERVAL %d DAY DELETE", col, r.Days)
}

// Retentions lists the retention of every table. Rollups keep as long as the
// table they summarize.
func Retentions(o DDLOptions) []Retention {
	return []Retention{
		{"events", "time", o.EventRetentionDays, "time", false},
		{"detections", "time", o.DetectionRetentionDays, "time", false},
		{"dead_letters", "received", o.DeadLetterRetentionDays, "time", false},
		{"events_per_minute", "minute", o.EventRetentionDays, "datetime", true},
		{"dns_per_domain_hour", "hour", o.EventRetentionDays, "datetime", true},
		{"detections_per_rule_day", "day", o.DetectionRetentionDays, "date", true},
	}
}

func step1Tables(o DDLOptions) []Statement {
	f := o.Features
	db := o.Database
	on := o.onCluster()
	out := []Statement{{SQL: fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s%s", db, on)}}
	// ReplacingMergeTree collapses rows with the same sorting key; the key
	// ends in the event id and every column before it is derived from the
	// record, so a redelivered event lands on the same key.
	out = append(out, Statement{SQL: fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s%s (
%s,
    ingested_at DateTime DEFAULT now()
) ENGINE = %s
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, class_uid, time, event_id)%s`, db, o.local("events"), on, columnsDDL(f, EventColumns, 1, codecs),
		o.engine("ReplacingMergeTree", "events"), ttl(f, "time", o.EventRetentionDays))})
	out = append(out, o.distributed("events", "cityHash64(toString(event_id))")...)
	out = append(out, Statement{SQL: fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s%s (
%s,
    created_at DateTime DEFAULT now()
) ENGINE = %s
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, time, rule_id, detection_id)%s`, db, o.local("detections"), on, columnsDDL(f, FindingColumns, 1, codecs),
		o.engine("ReplacingMergeTree", "detections"), ttl(f, "time", o.DetectionRetentionDays))})
	out = append(out, o.distributed("detections", "cityHash64(toString(event_id))")...)
	out = append(out, Statement{SQL: fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.%s%s (
%s,
    stored_at DateTime DEFAULT now()
) ENGINE = %s
PARTITION BY toYYYYMMDD(received)
ORDER BY (agency, received, dead_letter_id)%s`, db, o.local("dead_letters"), on, columnsDDL(f, DeadLetterColumns, 1, codecs),
		o.engine("ReplacingMergeTree", "dead_letters"), ttl(f, "received", o.DeadLetterRetentionDays))})
	out = append(out, o.distributed("dead_letters", "cityHash64(toString(dead_letter_id))")...)
	return out
}

// alterBoth applies an ALTER to the local table and, on a cluster, to the
// Distributed table in front of it (which must list the same columns).
func (o DDLOptions) alterBoth(table, action string, existsOK bool) []Statement {
	out := []Statement{{SQL: fmt.Sprintf("ALTER TABLE %s.%s%s %s", o.Database, o.local(table), o.onCluster(), action), ExistsOK: existsOK}}
	if o.Cluster != "" {
		out = append(out, Statement{SQL: fmt.Sprintf("ALTER TABLE %s.%s%s %s", o.Database, table, o.onCluster(), action), ExistsOK: existsOK})
	}
	return out
}

func step2ClassColumns(o DDLOptions) []Statement {
	f := o.Features
	ine := ""
	if f.IfNotExists {
		ine = "IF NOT EXISTS "
	}
	var out []Statement
	for _, c := range EventColumns {
		if c.Since != 2 {
			continue
		}
		out = append(out, o.alterBoth("events", "ADD COLUMN "+ine+columnDef(f, c, codecs), !f.IfNotExists)...)
	}
	if f.SkipIndexes {
		// Bloom filters let "this agency, this domain/host/IP" skip granules
		// that the sort key (agency, class_uid, time) cannot.
		for _, ix := range []struct{ name, expr string }{
			{"idx_dns_query", "dns_query_hostname"},
			{"idx_src_ip", "src_ip"},
			{"idx_dst_ip", "dst_ip"},
			{"idx_device", "device_hostname"},
			{"idx_http_host", "http_hostname"},
			{"idx_user", "user_name"},
		} {
			out = append(out, Statement{SQL: fmt.Sprintf("ALTER TABLE %s.%s%s ADD INDEX IF NOT EXISTS %s %s TYPE bloom_filter(0.01) GRANULARITY 4",
				o.Database, o.local("events"), o.onCluster(), ix.name, ix.expr)})
		}
	}
	if f.Map {
		// Analysts write unmapped['key']; the arrays stay the stored form.
		out = append(out, o.alterBoth("events", "ADD COLUMN IF NOT EXISTS unmapped Map(String, String) ALIAS mapFromArrays(unmapped_keys, unmapped_values)", false)...)
	}
	return out
}

// Rollup describes one materialized-view rollup.
type Rollup struct {
	Table   string // target table (SummingMergeTree)
	TimeCol string // the time bucket, also the monthly partition key
	Source  string // table the view reads
	Columns string
	OrderBy string
	Select  string // SELECT ... FROM {src} ... : {src} is replaced
	Cutoff  string // column of Source compared to the backfill cut
}

// Rollups lists the dashboard rollups. Query them with sum() and GROUP BY:
// SummingMergeTree adds up rows of one key only when it merges parts.
func Rollups(f Features) []Rollup {
	lc := f.TypeFor("LowCardinality(String)")
	return []Rollup{
		{
			Table: "events_per_minute", TimeCol: "minute", Source: "events",
			Columns: fmt.Sprintf("agency %s, class_uid UInt32, minute DateTime('UTC'), events UInt64", lc),
			OrderBy: "(agency, class_uid, minute)",
			Select:  "SELECT agency, class_uid, toStartOfMinute(time) AS minute, count() AS events FROM {src} GROUP BY agency, class_uid, minute",
			Cutoff:  "ingested_at",
		},
		{
			Table: "dns_per_domain_hour", TimeCol: "hour", Source: "events",
			Columns: fmt.Sprintf("agency %s, hour DateTime('UTC'), domain String, queries UInt64, nxdomain UInt64", lc),
			OrderBy: "(agency, hour, domain)",
			Select:  "SELECT agency, toStartOfHour(time) AS hour, dns_query_hostname AS domain, count() AS queries, countIf(dns_rcode_id = 3) AS nxdomain FROM {src} WHERE class_uid = 4003 GROUP BY agency, hour, domain",
			Cutoff:  "ingested_at",
		},
		{
			Table: "detections_per_rule_day", TimeCol: "day", Source: "detections",
			Columns: fmt.Sprintf("agency %s, day Date, rule_id String, rule_level %s, detections UInt64", lc, lc),
			OrderBy: "(agency, day, rule_id, rule_level)",
			Select:  "SELECT agency, toDate(time) AS day, rule_id, rule_level, count() AS detections FROM {src} GROUP BY agency, day, rule_id, rule_level",
			Cutoff:  "created_at",
		},
	}
}

func step3Rollups(o DDLOptions) []Statement {
	db, on := o.Database, o.onCluster()
	var out []Statement
	for _, r := range Rollups(o.Features) {
		out = append(out, Statement{SQL: fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s (%s)\nENGINE = %s\nPARTITION BY toYYYYMM(%s)\nORDER BY %s",
			db, o.local(r.Table), on, r.Columns, o.engine("SummingMergeTree", r.Table), r.TimeCol, r.OrderBy)})
		out = append(out, o.distributed(r.Table, "cityHash64(agency)")...)
		// The view exists before the backfill (step 4), so no insert falls
		// between them; the backfill takes only rows stored before it.
		sel := strings.ReplaceAll(r.Select, "{src}", db+"."+o.local(r.Source))
		out = append(out, Statement{SQL: fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s_mv%s TO %s.%s AS\n%s",
			db, r.Table, on, db, o.local(r.Table), sel)})
	}
	return out
}

// BackfillStatements fill the rollups from the rows stored before their
// views existed: rows whose Cutoff column (the second the row was stored)
// is before cut[rollup table] (the view's creation time). On a fresh
// database they insert nothing. Rows stored during the very second a view
// was created are not backfilled (the view may have counted them): 'run'
// migrates before it consumes, so only another instance writing during a
// migration can lose up to a second of rows from a rollup.
func BackfillStatements(o DDLOptions, cut map[string]string) []Statement {
	var out []Statement
	for _, r := range Rollups(o.Features) {
		src := o.Database + "." + o.local(r.Source)
		sel := r.Select
		before, ok := cut[r.Table]
		if !ok {
			continue
		}
		cond := fmt.Sprintf("%s < toDateTime('%s', 'UTC')", r.Cutoff, before)
		if strings.Contains(sel, " WHERE ") {
			sel = strings.Replace(sel, " WHERE ", " WHERE "+cond+" AND ", 1)
		} else {
			sel = strings.Replace(sel, " GROUP BY ", " WHERE "+cond+" GROUP BY ", 1)
		}
		sel = strings.ReplaceAll(sel, "{src}", src)
		out = append(out, Statement{SQL: fmt.Sprintf("INSERT INTO %s.%s SELECT * FROM (%s)", o.Database, o.local(r.Table), sel)})
	}
	return out
}
