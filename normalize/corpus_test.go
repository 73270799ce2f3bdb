package normalize

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

// corpusCase is one format run over files of the shared corpus, with the
// counts it must produce: records (non-directive lines), and how many of
// them are dead letters (decoder errors).
type corpusCase struct {
	format  string
	glob    string // relative to corpusDir
	records int
	dead    int
	// classes, when set, counts parsed events per class_uid.
	classes map[uint32]int
}

var corpusCases = []corpusCase{
	{"zeek", "zeek_json/*.log", 283, 0, nil},
	// zeek_baseline_* are btest baselines whose 57 rows carry the
	// canonicalised ts "XXXXXXXXXX.XXXXXX": dead letters, rightly.
	{"zeek", "zeek_tsv/zat_*.log", 741, 0, nil},
	{"zeek", "zeek_tsv/zeek_baseline_*.log", 57, 57, nil},
	{"suricata_eve", "suricata_eve/*.json", 267, 0, nil},
	{"suricata_eve", "suricata_eve/*.log", 11, 0, nil},
	// 1132 = the lines grep -cE finds for Accepted/Failed <method> for, Invalid user,
	// pam_unix(*:auth): authentication failure and pam_unix(*:session) open/close.
	{"syslog", "linux_auth_sshd/*.log", 2000, 0, map[uint32]int{0: 868, 3002: 1132}},
	{"syslog", "syslog_rfc3164/*.log", 2002, 0, nil},
	{"syslog", "syslog_rfc5424/*.log", 2, 0, nil},
	{"auditd", "auditd/*.log", 47, 0, map[uint32]int{0: 45, 1007: 2}},
	// cef_leef mixes F5 plain syslog, CEF in syslog and bare LEEF lines:
	// each line goes to the format Detect picks for it alone.
	{"auto", "cef_leef/*.log", 40, 0, nil},
	{"cef", "cef_leef/*.log", 40, 29, nil},
	{"fortinet", "fw_fortinet/*.log", 43, 0, nil},
	{"auto", "fw_other/*.log", 62, 27, nil},
	// Snare bodies in syslog take winevent_json's classes (expected counts
	// from a script over the Channel and EventID fields).
	{"syslog", "windows_snare_syslog/*.data", 282, 0, map[uint32]int{0: 217, 3002: 43, 1007: 10, 3001: 12}},
	{"paloalto", "fw_paloalto/*.log", 12, 0, nil},
	{"cisco_asa", "fw_cisco_asa/*.log", 109, 0, nil},
	{"squid", "proxy_squid/*.log", 2, 0, nil},
	// fw_other mixes 24 iptables kernel lines (Network Activity) and other
	// syslog lines with Sophos/SonicWall key=value and PRI-less RFC 5424
	// lines that no registered format reads: 27 dead letters.
	{"syslog", "fw_other/*.log", 62, 27, map[uint32]int{0: 11, 4001: 24}},
	// Expected classes counted independently (a script over Channel/EventID).
	{"winevent_json", "windows_evtx_json_nxlog/*.json", 484, 0, map[uint32]int{0: 55, 4001: 9, 1007: 249, 201002: 58, 201001: 46, 1005: 59, 4003: 1, 1001: 7}},
	{"winevent_json", "windows_eventchannel_json_wazuh/*.ndjson", 97, 0, map[uint32]int{1007: 48, 4001: 7, 1001: 18, 201002: 6, 1005: 4, 0: 7, 3001: 2, 3002: 5}},
}

// TestCorpus runs every format over its shared-corpus files and checks the
// record and dead-letter counts; -v prints the per-format table.
func TestCorpus(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("shared corpus %s not present; skipping", corpusDir)
	}
	reg := Builtin()
	var table []string
	for _, c := range corpusCases {
		f, ok := reg.Lookup(c.format)
		if !ok && c.format != "auto" {
			t.Errorf("format %q not registered", c.format)
			continue
		}
		files, err := filepath.Glob(filepath.Join(corpusDir, c.glob))
		if err != nil || len(files) == 0 {
			t.Errorf("%s: no corpus files match: %v", c.glob, err)
			continue
		}
		records, dead := 0, 0
		reasons := map[string]int{}
		classes := map[uint32]int{}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got []goldenRecord
			if c.format == "auto" {
				got = decodeAuto(t, reg, data)
			} else {
				got = decodeLines(t, *f, BatchInfo{Received: goldenReceived}, data)
			}
			for _, r := range got {
				records++
				if r.Event != nil {
					classes[r.Event.ClassUID]++
				}
				if r.Error != "" {
					dead++
					reason := r.Error
					if len(reason) > 90 {
						reason = reason[:90]
					}
					reasons[fmt.Sprintf("%s:%d: %s", filepath.Base(file), r.Line, reason)]++
				}
			}
		}
		table = append(table, fmt.Sprintf("| %-14s | %-40s | %6d | %6d | %4d |", c.format, c.glob, records, records-dead, dead))
		if c.classes != nil {
			if diff := cmp.Diff(c.classes, classes); diff != "" {
				t.Errorf("%s over %s: events per class mismatch (-want +got):\n%s", c.format, c.glob, diff)
			}
		}
		if records != c.records || dead != c.dead {
			keys := make([]string, 0, len(reasons))
			for k := range reasons {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if len(keys) > 20 {
				keys = keys[:20]
			}
			t.Errorf("%s over %s: got %d records, %d dead letters; want %d, %d. First errors:\n%s",
				c.format, c.glob, records, dead, c.records, c.dead, strings.Join(keys, "\n"))
		}
	}
	t.Logf("\n| format         | files                                    | records | parsed | dead |\n%s", strings.Join(table, "\n"))
}

// decodeAuto decodes every line with the format Detect picks for that line
// alone (one decoder per format, kept across lines).
func decodeAuto(t *testing.T, reg *Registry, data []byte) []goldenRecord {
	decs := map[string]Decoder{}
	var out []goldenRecord
	var ev schemas.Event
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		d, err := reg.Detect([][]byte{line})
		if err != nil {
			out = append(out, goldenRecord{Line: i + 1, Error: err.Error()})
			continue
		}
		dec, ok := decs[d.Format]
		if !ok {
			f, _ := reg.Lookup(d.Format)
			dec = f.NewDecoder(BatchInfo{Received: goldenReceived})
			decs[d.Format] = dec
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
