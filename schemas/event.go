// Package schemas holds the common event model every Watchfloor stage speaks:
// the OCSF-shaped Event, the detection Finding, the DeadLetter, the
// deterministic ids that make redelivery harmless, and the ClickHouse DDL
// that stores them. The struct and the tables live side by side so they cannot
// drift (see the sink's DESCRIBE TABLE test).
package schemas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// OCSF class uids used by Watchfloor (OCSF 1.x).
const (
	ClassBase             uint32 = 0
	ClassFileSystem       uint32 = 1001
	ClassProcess          uint32 = 1007
	ClassDetectionFinding uint32 = 2004
	ClassAuthentication   uint32 = 3002
	ClassNetwork          uint32 = 4001
	ClassHTTP             uint32 = 4002
	ClassDNS              uint32 = 4003
	ClassModule           uint32 = 1005 // Module Activity
	ClassAccount          uint32 = 3001 // Account Change
	ClassSSH              uint32 = 4007 // SSH Activity
	ClassNetworkFile      uint32 = 4010 // Network File Activity
	ClassRegistryKey      uint32 = 201001
	ClassRegistryValue    uint32 = 201002
)

// OCSF severity_id values.
const (
	SeverityUnknown       uint8 = 0
	SeverityInformational uint8 = 1
	SeverityLow           uint8 = 2
	SeverityMedium        uint8 = 3
	SeverityHigh          uint8 = 4
	SeverityCritical      uint8 = 5
	SeverityFatal         uint8 = 6
)

// OCSF observable type_id values used here.
const (
	ObservableHostname    uint8 = 1
	ObservableIP          uint8 = 2
	ObservableUserName    uint8 = 4
	ObservableProcessName uint8 = 9
	ObservableMAC         uint8 = 3
	ObservableEmail       uint8 = 5
	ObservableURL         uint8 = 6
	ObservableFileName    uint8 = 7
	ObservableHash        uint8 = 8
	ObservableCmdLine     uint8 = 13
	ObservableUserAgent   uint8 = 16
	ObservableFilePath    uint8 = 45
)

// SchemaVersion is the OCSF version the events follow (metadata.version).
const SchemaVersion = "1.3.0"

// ID is a 128-bit deterministic identifier (events, findings, dead letters).
type ID [16]byte

// String renders the id in the canonical UUID text form, which is how
// ClickHouse shows it to analysts.
func (id ID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:], id[10:])
	return string(b[:])
}

// EventID derives the id of the record at index in the batch whose
// Nats-Msg-Id is msgID. A redelivery or a sensor's resend of the same batch
// yields the same id; two identical lines in one batch stay two events.
func EventID(msgID string, index int) ID {
	h := sha256.New()
	h.Write([]byte(msgID))
	var n [9]byte
	n[0] = 0 // separator: msg ids never contain NUL
	binary.BigEndian.PutUint64(n[1:], uint64(index))
	h.Write(n[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var id ID
	copy(id[:], sum[:16])
	return id
}

// FindingID derives the id of a detection from the event and the rule that
// matched it, so that reprocessing an event never raises a second finding.
func FindingID(event ID, ruleID string) ID {
	h := sha256.New()
	h.Write(event[:])
	h.Write([]byte(ruleID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var id ID
	copy(id[:], sum[:16])
	return id
}

// Endpoint is an OCSF network endpoint (src_endpoint / dst_endpoint).
type Endpoint struct {
	IP       string
	Port     uint16
	Hostname string
}

// Metadata is the OCSF metadata object, trimmed to what the pipeline fills.
type Metadata struct {
	Product      string // metadata.product.name
	Vendor       string // metadata.product.vendor_name
	LogName      string // metadata.log_name (e.g. "dns" for Zeek dns.log)
	OriginalTime string // metadata.original_time, as the source wrote it
	UID          string // metadata.uid: the source's own record id (Zeek uid)
}

// DNS carries the DNS Activity (4003) class attributes.
type DNS struct {
	QueryHostname string   // query.hostname
	QueryType     string   // query.type ("A", "AAAA", "TXT", ...)
	QueryClass    string   // query.class ("IN")
	RCode         string   // rcode ("NoError", "NXDomain", ...)
	RCodeID       int32    // rcode_id (-1 when the record has no response)
	TransactionID uint32   // transaction_id
	Answers       []string // answers[].rdata
	TTLs          []uint32 // answers[].ttl, parallel to Answers
	RTT           float64  // seconds between query and response, 0 if unknown
}

// Network carries Network Activity (4001) traffic figures
// (traffic.bytes_in & co, connection_info.direction).
type Network struct {
	Direction  string // connection_info.direction: "Inbound", "Outbound", "Lateral", ""
	BytesIn    uint64
	BytesOut   uint64
	PacketsIn  uint64
	PacketsOut uint64
}

// HTTP carries HTTP Activity (4002) attributes.
type HTTP struct {
	Method     string // http_request.http_method
	URL        string // http_request.url.url_string
	Hostname   string // http_request.url.hostname
	StatusCode uint16 // http_response.code
	UserAgent  string // http_request.user_agent
	Referrer   string // http_request.referrer
}

// Auth carries Authentication (3002) attributes; the outcome is StatusID
// and the account is UserName.
type Auth struct {
	Protocol  string // auth_protocol ("NTLM", "Kerberos", "password", "publickey")
	LogonType string // logon_type ("Interactive", "Network", ...)
	Service   string // service.name (e.g. "sshd")
}

// Process carries Process Activity (1007) attributes beyond the actor
// process name/pid kept in Event.ProcessName/ProcessPID.
type Process struct {
	CmdLine    string // process.cmd_line
	Path       string // process.file.path
	ParentName string // process.parent_process.name
	ParentPID  uint32 // process.parent_process.pid
}

// Observable is one OCSF observable (type_id, attribute path, value).
type Observable struct {
	TypeID uint8
	Name   string
	Value  string
}

// KV is one source attribute that has no OCSF home (unmapped).
type KV struct {
	Key   string
	Value string
}

// Event is one normalized record in the common schema. Parsers fill it in
// place (the pipeline reuses Events between records; call Reset first).
type Event struct {
	ID     ID
	Agency string // from the subject, never from the payload
	Sensor string // Wf-Sensor header
	Format string // parser name (last subject token)

	Time        time.Time // event time, UTC, millisecond precision
	ClassUID    uint32
	CategoryUID uint32
	ActivityID  uint32
	SeverityID  uint8
	StatusID    uint8
	Message     string

	Metadata Metadata
	Src      Endpoint
	Dst      Endpoint

	DeviceHostname string // device.hostname: the host that logged the record
	ProcessName    string // actor.process.name (syslog APP-NAME)
	ProcessPID     uint32 // actor.process.pid (syslog PROCID when numeric)
	UserName       string // user.name
	Protocol       string // connection_info.protocol_name ("udp", "tcp")

	DNS     DNS
	Network Network // class-specific columns, zero when not that class
	HTTP    HTTP
	Auth    Auth
	Process Process

	Observables []Observable
	Unmapped    []KV
	Raw         string // raw_data: the record exactly as received
}

// TypeUID is OCSF's type_uid = class_uid*100 + activity_id.
func (e *Event) TypeUID() uint32 { return e.ClassUID*100 + e.ActivityID }

// Reset clears e for reuse, keeping the capacity of its slices.
func (e *Event) Reset() {
	obs, unm, ans, ttl := e.Observables[:0], e.Unmapped[:0], e.DNS.Answers[:0], e.DNS.TTLs[:0]
	*e = Event{}
	e.Observables, e.Unmapped, e.DNS.Answers, e.DNS.TTLs = obs, unm, ans, ttl
}

// AddObservable appends an observable when value is not empty.
func (e *Event) AddObservable(typeID uint8, name, value string) {
	if value == "" {
		return
	}
	e.Observables = append(e.Observables, Observable{TypeID: typeID, Name: name, Value: value})
}

// AddUnmapped keeps a source attribute that has no OCSF home.
func (e *Event) AddUnmapped(key, value string) {
	e.Unmapped = append(e.Unmapped, KV{Key: key, Value: value})
}

// UnmappedValue returns the value of the first unmapped attribute named key.
func (e *Event) UnmappedValue(key string) (string, bool) {
	for i := range e.Unmapped {
		if e.Unmapped[i].Key == key {
			return e.Unmapped[i].Value, true
		}
	}
	return "", false
}

// Finding is a detection: a rule matched an event (OCSF Detection Finding 2004).
type Finding struct {
	ID           ID
	EventID      ID
	Agency       string
	Time         time.Time // time of the event that matched
	RuleID       string
	RuleTitle    string
	RuleLevel    string // Sigma level: informational, low, medium, high, critical
	RuleRevision uint64 // KV revision of the rule (0 when loaded from a directory)
	SeverityID   uint8
	EventClass   uint32
	Tags         []string
	Techniques   []string // ATT&CK technique ids from attack.tNNNN tags ("T1059.001")
	Matched      []string // Sigma fields whose values matched ("keywords" for a keyword search)
	EventIDs     []ID     // correlation findings: the events that made up the match, oldest first
}

// SeverityForLevel maps a Sigma level to an OCSF severity_id.
func SeverityForLevel(level string) uint8 {
	switch level {
	case "informational":
		return SeverityInformational
	case "low":
		return SeverityLow
	case "medium":
		return SeverityMedium
	case "high":
		return SeverityHigh
	case "critical":
		return SeverityCritical
	}
	return SeverityUnknown
}

// DeadLetter is a record that could not become an event, kept with its reason
// and its raw bytes so that nothing is dropped silently.
type DeadLetter struct {
	ID       ID // the id the record's event would have had
	Agency   string
	Sensor   string
	Format   string
	Subject  string
	MsgID    string
	Index    uint32
	Reason   string
	Raw      string
	Received time.Time
}
