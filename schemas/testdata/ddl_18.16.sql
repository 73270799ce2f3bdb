CREATE DATABASE IF NOT EXISTS watchfloor;

CREATE TABLE IF NOT EXISTS watchfloor.events (
    event_id UUID,
    agency String,
    sensor String,
    format String,
    time DateTime('UTC'),
    class_uid UInt32,
    category_uid UInt32,
    activity_id UInt32,
    type_uid UInt32,
    severity_id UInt8,
    status_id UInt8,
    message String,
    metadata_product String,
    metadata_vendor String,
    metadata_log_name String,
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
    protocol String,
    dns_query_hostname String,
    dns_query_type String,
    dns_query_class String,
    dns_rcode String,
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
    raw_data String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, class_uid, time, event_id);

CREATE TABLE IF NOT EXISTS watchfloor.detections (
    detection_id UUID,
    event_id UUID,
    agency String,
    time DateTime('UTC'),
    rule_id String,
    rule_title String,
    rule_level String,
    rule_revision UInt64,
    severity_id UInt8,
    event_class_uid UInt32,
    tags Array(String),
    created_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (agency, time, rule_id, detection_id);

CREATE TABLE IF NOT EXISTS watchfloor.dead_letters (
    dead_letter_id UUID,
    agency String,
    sensor String,
    format String,
    subject String,
    msg_id String,
    record_index UInt32,
    reason String,
    raw String,
    received DateTime('UTC'),
    stored_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(received)
ORDER BY (agency, received, dead_letter_id);

ALTER TABLE watchfloor.events ADD COLUMN net_direction String;

ALTER TABLE watchfloor.events ADD COLUMN net_bytes_in UInt64;

ALTER TABLE watchfloor.events ADD COLUMN net_bytes_out UInt64;

ALTER TABLE watchfloor.events ADD COLUMN net_packets_in UInt64;

ALTER TABLE watchfloor.events ADD COLUMN net_packets_out UInt64;

ALTER TABLE watchfloor.events ADD COLUMN http_method String;

ALTER TABLE watchfloor.events ADD COLUMN http_url String;

ALTER TABLE watchfloor.events ADD COLUMN http_hostname String;

ALTER TABLE watchfloor.events ADD COLUMN http_status UInt16;

ALTER TABLE watchfloor.events ADD COLUMN http_user_agent String;

ALTER TABLE watchfloor.events ADD COLUMN http_referrer String;

ALTER TABLE watchfloor.events ADD COLUMN auth_protocol String;

ALTER TABLE watchfloor.events ADD COLUMN auth_logon_type String;

ALTER TABLE watchfloor.events ADD COLUMN auth_service String;

ALTER TABLE watchfloor.events ADD COLUMN process_cmd_line String;

ALTER TABLE watchfloor.events ADD COLUMN process_path String;

ALTER TABLE watchfloor.events ADD COLUMN process_parent_name String;

ALTER TABLE watchfloor.events ADD COLUMN process_parent_pid UInt32;

CREATE TABLE IF NOT EXISTS watchfloor.events_per_minute (agency String, class_uid UInt32, minute DateTime('UTC'), events UInt64)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(minute)
ORDER BY (agency, class_uid, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS watchfloor.events_per_minute_mv TO watchfloor.events_per_minute AS
SELECT agency, class_uid, toStartOfMinute(time) AS minute, count() AS events FROM watchfloor.events GROUP BY agency, class_uid, minute;

CREATE TABLE IF NOT EXISTS watchfloor.dns_per_domain_hour (agency String, hour DateTime('UTC'), domain String, queries UInt64, nxdomain UInt64)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (agency, hour, domain);

CREATE MATERIALIZED VIEW IF NOT EXISTS watchfloor.dns_per_domain_hour_mv TO watchfloor.dns_per_domain_hour AS
SELECT agency, toStartOfHour(time) AS hour, dns_query_hostname AS domain, count() AS queries, countIf(dns_rcode_id = 3) AS nxdomain FROM watchfloor.events WHERE class_uid = 4003 GROUP BY agency, hour, domain;

CREATE TABLE IF NOT EXISTS watchfloor.detections_per_rule_day (agency String, day Date, rule_id String, rule_level String, detections UInt64)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (agency, day, rule_id, rule_level);

CREATE MATERIALIZED VIEW IF NOT EXISTS watchfloor.detections_per_rule_day_mv TO watchfloor.detections_per_rule_day AS
SELECT agency, toDate(time) AS day, rule_id, rule_level, count() AS detections FROM watchfloor.detections GROUP BY agency, day, rule_id, rule_level;

