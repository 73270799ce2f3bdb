package detect

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// The readers below fill Events from the shared telemetry samples the way
// the normalize package's parsers are specified to (schemas/event.go). They
// are test scaffolding only: just enough to run the bundled rules on real
// data until the parsers land.

const telemetry = "../../shared/corpus/telemetry/"

func openSample(t *testing.T, name string) *bufio.Scanner {
	t.Helper()
	f, err := os.Open(telemetry + name)
	if err != nil {
		t.Skipf("telemetry sample %s not available: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return sc
}

func zeekDNSEvent(i int, query, qtype, rcode, srcIP, dstIP string, srcPort, dstPort int, answers []string) schemas.Event {
	return schemas.Event{
		ID: schemas.EventID("sample:1", i), Agency: "test", Format: "zeek_dns", Time: testTime,
		ClassUID: schemas.ClassDNS, CategoryUID: 4, ActivityID: 1,
		Metadata: schemas.Metadata{Product: "Zeek", Vendor: "Zeek", LogName: "dns"},
		Src:      schemas.Endpoint{IP: srcIP, Port: uint16(srcPort)},
		Dst:      schemas.Endpoint{IP: dstIP, Port: uint16(dstPort)},
		DNS:      schemas.DNS{QueryHostname: query, QueryType: qtype, RCode: rcode, RCodeID: -1, Answers: answers},
	}
}

func readZeekJSON(t *testing.T, name string) []schemas.Event {
	sc := openSample(t, name)
	var evs []schemas.Event
	for i := 0; sc.Scan(); i++ {
		var r struct {
			Query   string   `json:"query"`
			QType   string   `json:"qtype_name"`
			RCode   string   `json:"rcode_name"`
			Src     string   `json:"id.orig_h"`
			SrcPort int      `json:"id.orig_p"`
			Dst     string   `json:"id.resp_h"`
			DstPort int      `json:"id.resp_p"`
			Answers []string `json:"answers"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s line %d: %v", name, i+1, err)
		}
		evs = append(evs, zeekDNSEvent(i, r.Query, r.QType, r.RCode, r.Src, r.Dst, r.SrcPort, r.DstPort, r.Answers))
	}
	return evs
}

func readZeekTSV(t *testing.T, name string) []schemas.Event {
	sc := openSample(t, name)
	var evs []schemas.Event
	var fields []string
	for i := 0; sc.Scan(); i++ {
		line := sc.Text()
		if strings.HasPrefix(line, "#fields\t") {
			fields = strings.Split(line, "\t")[1:]
			continue
		}
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		v := map[string]string{}
		for j, s := range strings.Split(line, "\t") {
			if j < len(fields) && s != "-" && s != "(empty)" {
				v[fields[j]] = s
			}
		}
		var answers []string
		if a := v["answers"]; a != "" {
			answers = strings.Split(a, ",")
		}
		sp, _ := strconv.Atoi(v["id.orig_p"])
		dp, _ := strconv.Atoi(v["id.resp_p"])
		evs = append(evs, zeekDNSEvent(i, v["query"], v["qtype_name"], v["rcode_name"], v["id.orig_h"], v["id.resp_h"], sp, dp, answers))
	}
	return evs
}

var bsdSyslog = regexp.MustCompile(`^(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+) ([^\[:]+)(?:\[(\d+)\])?: (.*)$`)

func readSyslog(t *testing.T, name string) []schemas.Event {
	sc := openSample(t, name)
	var evs []schemas.Event
	for i := 0; sc.Scan(); i++ {
		m := bsdSyslog.FindStringSubmatch(sc.Text())
		if m == nil {
			t.Fatalf("%s line %d does not look like BSD syslog: %q", name, i+1, sc.Text())
		}
		pid, _ := strconv.Atoi(m[4])
		evs = append(evs, schemas.Event{
			ID: schemas.EventID("sample:2", i), Agency: "test", Format: "syslog", Time: testTime,
			ClassUID: schemas.ClassBase, Message: m[5], DeviceHostname: m[2], ProcessName: m[3],
			ProcessPID: uint32(pid), Raw: sc.Text(),
			Unmapped: []schemas.KV{{Key: "syslog.facility", Value: "auth"}},
		})
	}
	return evs
}

func bundledRules(t testing.TB) *RuleSet {
	t.Helper()
	rs, err := LoadDir("rules", Config{})
	if err != nil {
		t.Fatalf("LoadDir(rules) error = %v", err)
	}
	return rs
}

// countFindings evaluates every event and counts findings per rule title,
// also returning the query or message of the first hit per rule.
func countFindings(rs *RuleSet, evs []schemas.Event) (map[string]int, map[string]string) {
	counts, first := map[string]int{}, map[string]string{}
	var out []schemas.Finding
	for i := range evs {
		out = rs.Eval(&evs[i], out[:0])
		for _, f := range out {
			counts[f.RuleTitle]++
			if _, ok := first[f.RuleTitle]; !ok {
				first[f.RuleTitle] = evs[i].DNS.QueryHostname + evs[i].Message
			}
		}
	}
	return counts, first
}

func TestBundledRulesOnSamples(t *testing.T) {
	rs := bundledRules(t)
	if len(rs.Unrouted()) != 0 {
		t.Errorf("bundled rules not routed to any events: %v", rs.Unrouted())
	}
	tests := []struct {
		name string
		read func(*testing.T, string) []schemas.Event
		want map[string]int // rule title -> findings
	}{
		{"zeek_json/zat_json_dns.log", readZeekJSON, map[string]int{"WPAD Name Lookup": 3}},
		{"zeek_tsv/zat_dns.log", readZeekTSV, map[string]int{"DNS Query for a Dynamic DNS Provider Host": 1}},
		{"linux_auth_sshd/loghub_OpenSSH_2k.log", readSyslog, map[string]int{"SSH Authentication Failure or Invalid User": 635}}, // = grep -cE on the same prefixes
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := tt.read(t, tt.name)
			got, first := countFindings(rs, evs)
			t.Logf("%d events, findings %v, first hits %q", len(evs), got, first)
			for title, n := range tt.want {
				if got[title] != n {
					t.Errorf("rule %q: %d findings, want %d", title, got[title], n)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("findings by rule = %v, want only %v", got, tt.want)
			}
		})
	}
}
