CREATE DATABASE IF NOT EXISTS watchfloor ON CLUSTER soc;

CREATE TABLE IF NOT EXISTS watchfloor.events_local ON CLUSTER soc (
    event_id UUID,
    agency LowCardinality(String),
    sensor LowCardinality(String),
    format LowCardinality(String),
    time DateTime64(3, 'UTC') CODEC(Delta, LZ4),
    class_uid UInt32,
    category_uid UInt32,
    activity_id UInt32,
    type_uid UInt32,
    severity_id UInt8,
    status_id UInt8,
    message String CODEC(ZSTD(1)),
    metadata_product LowCardinality(String),
    metadata_vendor LowCardinality(String),
    metadata_log_name LowCardinality(String),
    metadata_original_time String,
    metadata_uid String,
    src_ip String,
    src_port UInt16,
    src_hostname String,
    dst_ip String,
    dst_port UInt16,
    dst_hostname String,
    device_hostname String,
    process_name String,
    process_pid UInt32,
    user_name String,
    protocol LowCardinality(String),
    dns_query_hostname String,
    dns_query_type LowCardinality(String),
    dns_query_class LowCardinality(String),
    dns_rcode LowCardinality(String),
    dns_rcode_id Int32,
    dns_transaction_id UInt32,
    dns_answers Array(String),
    dns_ttls Array(UInt32),
    dns_rtt Float64,
    observables_type_id Array(UInt8),
    observables_name Array(String),
    observables_value Array(String),
    unmapped_keys Array(String),
    unmapped_values Array(String),
    raw_data String CODEC(ZSTD(3)),
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/watchfloor/events_local', '{replica}')
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, class_uid, time, event_id)
TTL toDateTime(time) + INTERVAL 365 DAY DELETE;

CREATE TABLE IF NOT EXISTS watchfloor.events ON CLUSTER soc AS watchfloor.events_local
ENGINE = Distributed(soc, watchfloor, events_local, cityHash64(toString(event_id)));

CREATE TABLE IF NOT EXISTS watchfloor.detections_local ON CLUSTER soc (
    detection_id UUID,
    event_id UUID,
    agency LowCardinality(String),
    time DateTime64(3, 'UTC') CODEC(Delta, LZ4),
    rule_id String,
    rule_title String,
    rule_level LowCardinality(String),
    rule_revision UInt64,
    severity_id UInt8,
    event_class_uid UInt32,
    tags Array(String),
    created_at DateTime DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/watchfloor/detections_local', '{replica}')
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, time, rule_id, detection_id)
TTL toDateTime(time) + INTERVAL 1095 DAY DELETE;

CREATE TABLE IF NOT EXISTS watchfloor.detections ON CLUSTER soc AS watchfloor.detections_local
ENGINE = Distributed(soc, watchfloor, detections_local, cityHash64(toString(event_id)));

CREATE TABLE IF NOT EXISTS watchfloor.dead_letters_local ON CLUSTER soc (
    dead_letter_id UUID,
    agency LowCardinality(String),
    sensor LowCardinality(String),
    format LowCardinality(String),
    subject String,
    msg_id String,
    record_index UInt32,
    reason String,
    raw String CODEC(ZSTD(3)),
    received DateTime64(3, 'UTC') CODEC(Delta, LZ4),
    stored_at DateTime DEFAULT now()
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/watchfloor/dead_letters_local', '{replica}')
PARTITION BY toYYYYMMDD(received)
ORDER BY (agency, received, dead_letter_id)
TTL toDateTime(received) + INTERVAL 90 DAY DELETE;

CREATE TABLE IF NOT EXISTS watchfloor.dead_letters ON CLUSTER soc AS watchfloor.dead_letters_local
ENGINE = Distributed(soc, watchfloor, dead_letters_local, cityHash64(toString(dead_letter_id)));

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_direction LowCardinality(String);

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_direction LowCardinality(String);

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_bytes_in UInt64;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_bytes_in UInt64;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_bytes_out UInt64;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_bytes_out UInt64;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_packets_in UInt64;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_packets_in UInt64;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_packets_out UInt64;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS net_packets_out UInt64;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_method LowCardinality(String);

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_method LowCardinality(String);

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_url String CODEC(ZSTD(1));

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_url String CODEC(ZSTD(1));

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_hostname String;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_hostname String;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_status UInt16;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_status UInt16;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_user_agent String;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_user_agent String;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_referrer String;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS http_referrer String;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS auth_protocol LowCardinality(String);

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS auth_protocol LowCardinality(String);

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS auth_logon_type LowCardinality(String);

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS auth_logon_type LowCardinality(String);

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS auth_service String;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS auth_service String;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_cmd_line String CODEC(ZSTD(1));

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_cmd_line String CODEC(ZSTD(1));

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_path String;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_path String;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_parent_name String;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_parent_name String;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_parent_pid UInt32;

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS process_parent_pid UInt32;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD INDEX IF NOT EXISTS idx_dns_query dns_query_hostname TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD INDEX IF NOT EXISTS idx_src_ip src_ip TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD INDEX IF NOT EXISTS idx_dst_ip dst_ip TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD INDEX IF NOT EXISTS idx_device device_hostname TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD INDEX IF NOT EXISTS idx_http_host http_hostname TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD INDEX IF NOT EXISTS idx_user user_name TYPE bloom_filter(0.01) GRANULARITY 4;

ALTER TABLE watchfloor.events_local ON CLUSTER soc ADD COLUMN IF NOT EXISTS unmapped Map(String, String) ALIAS mapFromArrays(unmapped_keys, unmapped_values);

ALTER TABLE watchfloor.events ON CLUSTER soc ADD COLUMN IF NOT EXISTS unmapped Map(String, String) ALIAS mapFromArrays(unmapped_keys, unmapped_values);

CREATE TABLE IF NOT EXISTS watchfloor.events_per_minute_local ON CLUSTER soc (agency LowCardinality(String), class_uid UInt32, minute DateTime('UTC'), events UInt64)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/watchfloor/events_per_minute_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (agency, class_uid, minute);

CREATE TABLE IF NOT EXISTS watchfloor.events_per_minute ON CLUSTER soc AS watchfloor.events_per_minute_local
ENGINE = Distributed(soc, watchfloor, events_per_minute_local, cityHash64(agency));

CREATE MATERIALIZED VIEW IF NOT EXISTS watchfloor.events_per_minute_mv ON CLUSTER soc TO watchfloor.events_per_minute_local AS
SELECT agency, class_uid, toStartOfMinute(time) AS minute, count() AS events FROM watchfloor.events_local GROUP BY agency, class_uid, minute;

CREATE TABLE IF NOT EXISTS watchfloor.dns_per_domain_hour_local ON CLUSTER soc (agency LowCardinality(String), hour DateTime('UTC'), domain String, queries UInt64, nxdomain UInt64)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/watchfloor/dns_per_domain_hour_local', '{replica}')
PARTITION BY toYYYYMM(hour)
ORDER BY (agency, hour, domain);

CREATE TABLE IF NOT EXISTS watchfloor.dns_per_domain_hour ON CLUSTER soc AS watchfloor.dns_per_domain_hour_local
ENGINE = Distributed(soc, watchfloor, dns_per_domain_hour_local, cityHash64(agency));

CREATE MATERIALIZED VIEW IF NOT EXISTS watchfloor.dns_per_domain_hour_mv ON CLUSTER soc TO watchfloor.dns_per_domain_hour_local AS
SELECT agency, toStartOfHour(time) AS hour, dns_query_hostname AS domain, count() AS queries, countIf(dns_rcode_id = 3) AS nxdomain FROM watchfloor.events_local WHERE class_uid = 4003 GROUP BY agency, hour, domain;

CREATE TABLE IF NOT EXISTS watchfloor.detections_per_rule_day_local ON CLUSTER soc (agency LowCardinality(String), day Date, rule_id String, rule_level LowCardinality(String), detections UInt64)
ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/watchfloor/detections_per_rule_day_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (agency, day, rule_id, rule_level);

CREATE TABLE IF NOT EXISTS watchfloor.detections_per_rule_day ON CLUSTER soc AS watchfloor.detections_per_rule_day_local
ENGINE = Distributed(soc, watchfloor, detections_per_rule_day_local, cityHash64(agency));

CREATE MATERIALIZED VIEW IF NOT EXISTS watchfloor.detections_per_rule_day_mv ON CLUSTER soc TO watchfloor.detections_per_rule_day_local AS
SELECT agency, toDate(time) AS day, rule_id, rule_level, count() AS detections FROM watchfloor.detections_local GROUP BY agency, day, rule_id, rule_level;

ALTER TABLE watchfloor.events_local ON CLUSTER soc MODIFY TTL toDateTime(time) + INTERVAL 365 DAY DELETE;

ALTER TABLE watchfloor.detections_local ON CLUSTER soc MODIFY TTL toDateTime(time) + INTERVAL 1095 DAY DELETE;

ALTER TABLE watchfloor.dead_letters_local ON CLUSTER soc MODIFY TTL toDateTime(received) + INTERVAL 90 DAY DELETE;

ALTER TABLE watchfloor.events_per_minute_local ON CLUSTER soc MODIFY TTL minute + INTERVAL 365 DAY DELETE;

ALTER TABLE watchfloor.dns_per_domain_hour_local ON CLUSTER soc MODIFY TTL hour + INTERVAL 365 DAY DELETE;

ALTER TABLE watchfloor.detections_per_rule_day_local ON CLUSTER soc MODIFY TTL toDateTime(day) + INTERVAL 1095 DAY DELETE;

