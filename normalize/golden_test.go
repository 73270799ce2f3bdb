package normalize

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenReceived is BatchInfo.Received in golden and corpus tests.
var goldenReceived = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// goldenEvent is the stable JSON rendering of an Event in golden files.
// Empty values are left out to keep the files readable.
type goldenEvent struct {
	Time           string            `json:"time"`
	ClassUID       uint32            `json:"class_uid"`
	CategoryUID    uint32            `json:"category_uid"`
	ActivityID     uint32            `json:"activity_id"`
	TypeUID        uint32            `json:"type_uid"`
	SeverityID     uint8             `json:"severity_id"`
	StatusID       uint8             `json:"status_id,omitempty"`
	Message        string            `json:"message,omitempty"`
	Metadata       schemas.Metadata  `json:"metadata"`
	Src            *schemas.Endpoint `json:"src_endpoint,omitempty"`
	Dst            *schemas.Endpoint `json:"dst_endpoint,omitempty"`
	DeviceHostname string            `json:"device_hostname,omitempty"`
	ProcessName    string            `json:"process_name,omitempty"`
	ProcessPID     uint32            `json:"process_pid,omitempty"`
	UserName       string            `json:"user_name,omitempty"`
	Protocol       string            `json:"protocol,omitempty"`
	DNS            *schemas.DNS      `json:"dns,omitempty"`
	Observables    []string          `json:"observables,omitempty"` // "type_id name = value"
	Unmapped       []string          `json:"unmapped,omitempty"`    // "key = value", in order
	Raw            string            `json:"raw"`
}

type goldenRecord struct {
	Line  int          `json:"line"`
	Event *goldenEvent `json:"event,omitempty"`
	Error string       `json:"error,omitempty"`
}

func render(ev *schemas.Event) *goldenEvent {
	g := &goldenEvent{
		Time:           ev.Time.Format(time.RFC3339Nano),
		ClassUID:       ev.ClassUID,
		CategoryUID:    ev.CategoryUID,
		ActivityID:     ev.ActivityID,
		TypeUID:        ev.TypeUID(),
		SeverityID:     ev.SeverityID,
		StatusID:       ev.StatusID,
		Message:        ev.Message,
		Metadata:       ev.Metadata,
		DeviceHostname: ev.DeviceHostname,
		ProcessName:    ev.ProcessName,
		ProcessPID:     ev.ProcessPID,
		UserName:       ev.UserName,
		Protocol:       ev.Protocol,
		Raw:            ev.Raw,
	}
	for _, o := range ev.Observables {
		g.Observables = append(g.Observables, fmt.Sprintf("%d %s = %s", o.TypeID, o.Name, o.Value))
	}
	for _, kv := range ev.Unmapped {
		g.Unmapped = append(g.Unmapped, kv.Key+" = "+kv.Value)
	}
	if ev.Src != (schemas.Endpoint{}) {
		src := ev.Src
		g.Src = &src
	}
	if ev.Dst != (schemas.Endpoint{}) {
		dst := ev.Dst
		g.Dst = &dst
	}
	if ev.ClassUID == schemas.ClassDNS {
		dns := ev.DNS
		dns.Answers, dns.TTLs = clone(dns.Answers), clone(dns.TTLs)
		g.DNS = &dns
	}
	return g
}

// clone copies a slice the decoder will reuse; empty becomes nil.
func clone[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

// decodeLines runs format f over data line by line as the pipeline does:
// directives go to Directive, other non-empty lines to Record with a reset,
// reused Event. Directive lines are not listed in the result.
func decodeLines(t testing.TB, f Format, info BatchInfo, data []byte) []goldenRecord {
	t.Helper()
	dec := f.NewDecoder(info)
	var ev schemas.Event
	var out []goldenRecord
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if f.Directive(line) {
			if err := dec.Directive(line); err != nil {
				out = append(out, goldenRecord{Line: i + 1, Error: "directive: " + err.Error()})
			}
			continue
		}
		ev.Reset()
		if err := dec.Record(line, &ev); err != nil {
			out = append(out, goldenRecord{Line: i + 1, Error: err.Error()})
			continue
		}
		out = append(out, goldenRecord{Line: i + 1, Event: render(&ev)})
	}
	return out
}

// checkGolden compares got with testdata/golden/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []goldenRecord) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./normalize -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// corpusDir is the shared corpus, for samples whose licences keep them out
// of this repository.
const corpusDir = "../../shared/corpus/telemetry"

func readCorpus(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, rel))
	if os.IsNotExist(err) {
		t.Skipf("shared corpus file %s not present; skipping", rel)
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func goldenName(file string) string {
	return strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)) + ".json"
}

func TestBuiltin(t *testing.T) {
	got := Builtin().Names()
	want := []string{"auditd", "bind_query", "cef", "cisco_asa", "coredns", "dnsmasq", "dnstap", "fortinet",
		"infoblox_nios", "leef", "paloalto", "squid", "suricata_eve", "syslog", "unbound", "windows_dns", "winevent_json",
		"zeek", "zeek_conn", "zeek_dns", "zeek_files", "zeek_http", "zeek_notice", "zeek_ssl", "zeek_weird", "zeek_x509"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Builtin().Names() mismatch (-want +got):\n%s", diff)
	}
}
