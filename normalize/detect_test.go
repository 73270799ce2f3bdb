package normalize

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		want  string
		first int // lines to use, 0 for all (skip deliberately bad tails)
	}{
		{"zeek tsv", "testdata/zeeklogs/tsv_conn.log", "zeek", 0},
		{"zeek json", "testdata/zeeklogs/json_http.log", "zeek", 0},
		{"zeek dns tsv", "testdata/zeek/zat_dns.log", "zeek", 0},
		{"suricata", "testdata/suricata/surevego_eve.json", "suricata_eve", 0},
		{"syslog", "testdata/syslog/handwritten.log", "syslog", 0},
		{"winevent", "testdata/winevent/otrf_nxlog.json", "winevent_json", 0},
		{"auditd", "testdata/auditd/otrf_arp_cache.log", "auditd", 0},
		{"fortinet", "testdata/firewall/fortinet.log", "fortinet", 0},
		{"cisco asa", "testdata/firewall/cisco_asa.log", "cisco_asa", 0},
		{"squid", "testdata/firewall/squid.log", "squid", 0},
		{"paloalto", "testdata/firewall/paloalto.log", "paloalto", 6},
		{"cef", "testdata/cef/handwritten.log", "cef", 3},
		{"leef", "testdata/cef/handwritten.log", "leef", 7},
		{"bind", "testdata/dns/bind_query_doc.log", "bind_query", 0},
		{"unbound", "testdata/dns/unbound_doc.log", "unbound", 0},
		{"dnsmasq", "testdata/dns/dnsmasq_doc.log", "dnsmasq", 0},
		{"coredns", "testdata/dns/coredns_doc.log", "coredns", 0},
		{"infoblox", "testdata/dns/infoblox_nios_doc.log", "infoblox_nios", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(data, []byte("\n"))
			if tt.first > 0 {
				lines = lines[:tt.first]
			}
			got, err := Detect(lines)
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != tt.want || got.Confidence < MinConfidence {
				t.Errorf("got %+v, want format %s", got, tt.want)
			}
		})
	}
}

func TestDetectLines(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		want    string
		wantErr bool
	}{
		{"cef", []string{"CEF:0|V|P|1|s|n|3|src=10.0.0.1", "CEF:0|V|P|1|s|n|3|src=10.0.0.2"}, "cef", false},
		{"leef", []string{"LEEF:1.0|V|P|1|e|src=10.0.0.1"}, "leef", false},
		// syslog decodes all three (CEF bodies included), cef only two.
		{"cef in syslog, mixed", []string{"<134>May 30 10:15:45 waf01 ASM: CEF:0|F5|ASM|1|2|n|5|src=1.2.3.4", "<134>May 30 10:15:45 waf01 ASM: CEF:0|F5|ASM|1|2|n|5|src=1.2.3.4", "May 30 10:15:45 host app: plain"}, "syslog", false},
		{"garbage", []string{"hello world", "nothing to see"}, "", true},
		{"headerless zeek tsv", []string{"1379288667.706265\tC1\t192.168.33.10\t1032\t54.245.228.191\t80"}, "zeek", true},
		{"empty", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines [][]byte
			for _, l := range tt.give {
				lines = append(lines, []byte(l))
			}
			got, err := Detect(lines)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrNoFormat) {
				t.Errorf("error %v does not wrap ErrNoFormat", err)
			}
			if got.Format != tt.want {
				t.Errorf("got format %q, want %q (%+v, %v)", got.Format, tt.want, got, err)
			}
		})
	}
}
