package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// testRule wraps a detection block (indented by the caller's YAML, any
// indentation) in a valid rule document.
func testRule(id, logsource, detection string) string {
	return "title: test rule " + id + "\nid: " + id + "\nlevel: high\ntags: [attack.t0000]\nlogsource:\n" +
		indent(logsource, "  ") + "\ndetection:\n" + indent(detection, "  ") + "\n"
}

func indent(s, pfx string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	// Remove the common leading tabs of the test literal.
	for i, l := range lines {
		lines[i] = pfx + strings.TrimLeft(l, "\t")
	}
	return strings.Join(lines, "\n")
}

func mustCompile(tb testing.TB, docs ...string) *RuleSet {
	tb.Helper()
	var rules []*Rule
	for _, d := range docs {
		r, err := ParseRule([]byte(d))
		if err != nil {
			tb.Fatalf("ParseRule() error = %v\n%s", err, d)
		}
		rules = append(rules, r)
	}
	rs, err := Compile(rules, Config{})
	if err != nil {
		tb.Fatalf("Compile() error = %v", err)
	}
	return rs
}

var testTime = time.Date(2025, 1, 20, 10, 0, 0, 0, time.UTC)

// dnsEvent is a DNS Activity event as the zeek_dns parser fills it.
func dnsEvent(query string, answers ...string) *schemas.Event {
	return &schemas.Event{
		ID: schemas.EventID("sensor-1:1", 0), Agency: "doj", Sensor: "sensor-1", Format: "zeek_dns",
		Time: testTime, ClassUID: schemas.ClassDNS, CategoryUID: 4, ActivityID: 1,
		Metadata: schemas.Metadata{Product: "Zeek", Vendor: "Zeek", LogName: "dns", UID: "CWwU9s3h33kFsa9Ljg"},
		Src:      schemas.Endpoint{IP: "10.18.20.97", Port: 59102},
		Dst:      schemas.Endpoint{IP: "10.18.20.8", Port: 53},
		Protocol: "udp",
		DNS: schemas.DNS{QueryHostname: query, QueryType: "A", QueryClass: "IN", RCode: "NoError",
			RCodeID: 0, TransactionID: 19084, Answers: answers},
		Unmapped: []schemas.KV{{Key: "qtype", Value: "1"}, {Key: "AA", Value: "false"}, {Key: "Z", Value: "0"}},
	}
}

// syslogEvent is a Base Event as the syslog parser fills it.
func syslogEvent(app, msg string) *schemas.Event {
	return &schemas.Event{
		ID: schemas.EventID("sensor-2:7", 3), Agency: "doj", Sensor: "sensor-2", Format: "syslog",
		Time: testTime, ClassUID: schemas.ClassBase, Message: msg,
		DeviceHostname: "LabSZ", ProcessName: app, ProcessPID: 24200,
		Unmapped: []schemas.KV{{Key: "syslog.facility", Value: "auth"}, {Key: "syslog.severity", Value: "info"}},
		Raw:      "Dec 10 06:55:46 LabSZ " + app + "[24200]: " + msg,
	}
}
