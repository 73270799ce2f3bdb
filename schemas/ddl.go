package schemas

import (
	"fmt"
	"strconv"
	"strings"
)

// Features are the server capabilities the DDL adapts to.
type Features struct {
	Version        [3]int
	DateTime64     bool // DateTime64(3) for millisecond event times (19.19+)
	LowCardinality bool // LowCardinality(String) without the experimental setting (19.9+)
	TTL            bool // table TTL for retention (19.6+)
	Codecs         bool // column compression codecs (19.1+)
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
	return f, nil
}

// DDLOptions select what the generated DDL looks like.
type DDLOptions struct {
	Database string
	Features Features
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
}

// EventColumns lists the events table columns in the order the sink writes
// them. The sink's appendEvent follows this order; a test checks both
// against DESCRIBE TABLE.
var EventColumns = []Column{
	{"event_id", "UUID"},
	{"agency", "LowCardinality(String)"},
	{"sensor", "LowCardinality(String)"},
	{"format", "LowCardinality(String)"},
	{"time", "DateTime64(3, 'UTC')"},
	{"class_uid", "UInt32"},
	{"category_uid", "UInt32"},
	{"activity_id", "UInt32"},
	{"type_uid", "UInt32"},
	{"severity_id", "UInt8"},
	{"status_id", "UInt8"},
	{"message", "String"},
	{"metadata_product", "LowCardinality(String)"},
	{"metadata_vendor", "LowCardinality(String)"},
	{"metadata_log_name", "LowCardinality(String)"},
	{"metadata_original_time", "String"},
	{"metadata_uid", "String"},
	{"src_ip", "String"},
	{"src_port", "UInt16"},
	{"src_hostname", "String"},
	{"dst_ip", "String"},
	{"dst_port", "UInt16"},
	{"dst_hostname", "String"},
	{"device_hostname", "String"},
	{"process_name", "String"},
	{"process_pid", "UInt32"},
	{"user_name", "String"},
	{"protocol", "LowCardinality(String)"},
	{"dns_query_hostname", "String"},
	{"dns_query_type", "LowCardinality(String)"},
	{"dns_query_class", "LowCardinality(String)"},
	{"dns_rcode", "LowCardinality(String)"},
	{"dns_rcode_id", "Int32"},
	{"dns_transaction_id", "UInt32"},
	{"dns_answers", "Array(String)"},
	{"dns_ttls", "Array(UInt32)"},
	{"dns_rtt", "Float64"},
	{"observables_type_id", "Array(UInt8)"},
	{"observables_name", "Array(String)"},
	{"observables_value", "Array(String)"},
	{"unmapped_keys", "Array(String)"},
	{"unmapped_values", "Array(String)"},
	{"raw_data", "String"},
}

// FindingColumns lists the detections table columns in write order.
var FindingColumns = []Column{
	{"detection_id", "UUID"},
	{"event_id", "UUID"},
	{"agency", "LowCardinality(String)"},
	{"time", "DateTime64(3, 'UTC')"},
	{"rule_id", "String"},
	{"rule_title", "String"},
	{"rule_level", "LowCardinality(String)"},
	{"rule_revision", "UInt64"},
	{"severity_id", "UInt8"},
	{"event_class_uid", "UInt32"},
	{"tags", "Array(String)"},
}

// DeadLetterColumns lists the dead_letters table columns in write order.
var DeadLetterColumns = []Column{
	{"dead_letter_id", "UUID"},
	{"agency", "LowCardinality(String)"},
	{"sensor", "LowCardinality(String)"},
	{"format", "LowCardinality(String)"},
	{"subject", "String"},
	{"msg_id", "String"},
	{"record_index", "UInt32"},
	{"reason", "String"},
	{"raw", "String"},
	{"received", "DateTime64(3, 'UTC')"},
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

func columnsDDL(f Features, cols []Column, extra map[string]string) string {
	var b strings.Builder
	for i, c := range cols {
		if i > 0 {
			b.WriteString(",\n")
		}
		b.WriteString("    ")
		b.WriteString(c.Name)
		b.WriteByte(' ')
		b.WriteString(f.TypeFor(c.Type))
		if f.Codecs {
			if codec, ok := extra[c.Name]; ok {
				b.WriteString(" CODEC(")
				b.WriteString(codec)
				b.WriteByte(')')
			}
		}
	}
	return b.String()
}

func ttl(f Features, column string, days int) string {
	if !f.TTL || days <= 0 {
		return ""
	}
	col := column
	if f.DateTime64 {
		col = "toDateTime(" + column + ")"
	}
	return fmt.Sprintf("\nTTL %s + INTERVAL %d DAY DELETE", col, days)
}

// CreateStatements returns the DDL of the tables, in order. Every statement
// is idempotent (IF NOT EXISTS).
func CreateStatements(o DDLOptions) []string {
	f := o.Features
	db := o.Database
	codecs := map[string]string{"raw_data": "ZSTD(3)", "raw": "ZSTD(3)", "message": "ZSTD(1)"}
	return []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", db),
		// ReplacingMergeTree collapses rows with the same sorting key; the
		// key ends in the event id and every column before it is derived
		// from the record, so a redelivered event lands on the same key.
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.events (
%s,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, class_uid, time, event_id)%s`, db, columnsDDL(f, EventColumns, codecs), ttl(f, "time", o.EventRetentionDays)),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.detections (
%s,
    created_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, time, rule_id, detection_id)%s`, db, columnsDDL(f, FindingColumns, codecs), ttl(f, "time", o.DetectionRetentionDays)),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.dead_letters (
%s,
    stored_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(received)
ORDER BY (agency, received, dead_letter_id)%s`, db, columnsDDL(f, DeadLetterColumns, codecs), ttl(f, "received", o.DeadLetterRetentionDays)),
	}
}
