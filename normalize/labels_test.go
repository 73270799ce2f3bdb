package normalize

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// TestCorpusLabels runs each format over the log column of the shared
// corpus's .labels.tsv files (Wazuh ruleset cases). Rows marked pass are in
// the .log files and must all parse; rows marked fail are Wazuh's negative
// cases (lines a rule must not match), most of them still valid records:
// their counts are pinned so that a change shows.
func TestCorpusLabels(t *testing.T) {
	if _, err := os.Stat(corpusDir); err != nil {
		t.Skipf("shared corpus %s not present; skipping", corpusDir)
	}
	cases := []struct {
		format, file             string
		pass, failParsed, failed int
	}{
		{"auto", "cef_leef/wazuh_cef_leef.labels.tsv", 40, 0, 0},
		{"auditd", "auditd/wazuh_auditd.labels.tsv", 35, 0, 0},
		// "%PIX-4-400013 IDS:2003 ..." lacks the ':' after the message id.
		{"cisco_asa", "fw_cisco_asa/wazuh_cisco_asa_ftd.labels.tsv", 109, 9, 10},
		{"fortinet", "fw_fortinet/wazuh_fortinet.labels.tsv", 43, 0, 0},
		{"paloalto", "fw_paloalto/wazuh_paloalto.labels.tsv", 12, 0, 0},
		{"squid", "proxy_squid/wazuh_squid.labels.tsv", 2, 0, 0},
		{"winevent_json", "windows_eventchannel_json_wazuh/wazuh_windows_eventchannel.labels.tsv", 97, 0, 0},
		{"syslog", "fw_other/wazuh_fw_misc.labels.tsv", 35, 2, 2}, // 27 pass rows are not syslog (see TestCorpus)
	}
	reg := Builtin()
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			fh, err := os.Open(filepath.Join(corpusDir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			sc := bufio.NewScanner(fh)
			sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
			decs := map[string]Decoder{}
			var ev schemas.Event
			pass, failParsed, failed := 0, 0, 0
			for first := true; sc.Scan(); first = false {
				cols := strings.Split(sc.Text(), "\t")
				if first || len(cols) < 8 {
					continue
				}
				line := []byte(strings.Join(cols[7:], "\t"))
				name := c.format
				if name == "auto" {
					d, err := reg.Detect([][]byte{line})
					if err != nil {
						t.Errorf("row %s: %v", cols[0], err)
						continue
					}
					name = d.Format
				}
				dec, ok := decs[name]
				if !ok {
					f, _ := reg.Lookup(name)
					dec = f.NewDecoder(BatchInfo{Received: goldenReceived})
					decs[name] = dec
				}
				ev.Reset()
				err := dec.Record(line, &ev)
				switch {
				case cols[4] == "pass" && err == nil:
					pass++
				case cols[4] == "fail":
					failed++
					if err == nil {
						failParsed++
					}
				}
			}
			if err := sc.Err(); err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("pass rows parsed %d, fail rows %d (parsed %d)", pass, failed, failParsed)
			want := fmt.Sprintf("pass rows parsed %d, fail rows %d (parsed %d)", c.pass, c.failed, c.failParsed)
			if got != want {
				t.Errorf("got %s; want %s", got, want)
			}
			t.Log(got)
		})
	}
}
