package normalize

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

func TestSuricataGolden(t *testing.T) {
	goldenDir(t, SuricataEVE(), "testdata/suricata/*.json", "suricata_", map[string]int{"handwritten.json": 6})
}

func TestSuricataDNSShapes(t *testing.T) {
	tests := []struct {
		name string
		give string
		want schemas.DNS
		act  uint32
	}{
		{"v1 query", `{"timestamp":"2017-01-30T16:12:27.008407+0100","event_type":"dns","dns":{"type":"query","id":22800,"rrname":"prod.debian.map.fastly.net","rrtype":"A","tx_id":0}}`,
			schemas.DNS{QueryHostname: "prod.debian.map.fastly.net", QueryType: "A", RCodeID: -1, TransactionID: 22800}, 1},
		{"v1 answer", `{"timestamp":"2017-01-30T16:12:27.027213+0100","event_type":"dns","dns":{"type":"answer","id":22800,"rcode":"NOERROR","rrname":"fastly.net","rrtype":"NS","ttl":5412,"rdata":"ns1.fastly.net"}}`,
			schemas.DNS{QueryHostname: "fastly.net", QueryType: "NS", RCode: "NoError", TransactionID: 22800, Answers: []string{"ns1.fastly.net"}, TTLs: []uint32{5412}}, 2},
		{"v2 answers", `{"timestamp":"2023-05-01T10:00:00Z","event_type":"dns","dns":{"version":2,"type":"answer","id":1,"rrname":"a.example","rrtype":"A","rcode":"SERVFAIL","answers":[{"rrname":"a.example","rrtype":"A","ttl":60,"rdata":"192.0.2.1"},{"rrname":"a.example","rrtype":"A","ttl":61,"rdata":"192.0.2.2"}]}}`,
			schemas.DNS{QueryHostname: "a.example", QueryType: "A", RCode: "ServError", RCodeID: 2, TransactionID: 1, Answers: []string{"192.0.2.1", "192.0.2.2"}, TTLs: []uint32{60, 61}}, 2},
		{"v2 grouped only", `{"timestamp":"2023-05-01T10:00:00Z","event_type":"dns","dns":{"version":2,"type":"answer","rrname":"a.example","rcode":"NXDOMAIN","grouped":{"A":["192.0.2.1","192.0.2.2"]}}}`,
			schemas.DNS{QueryHostname: "a.example", RCode: "NXDomain", RCodeID: 3, Answers: []string{"192.0.2.1", "192.0.2.2"}, TTLs: []uint32{0, 0}}, 2},
		{"v3 request", `{"timestamp":"2025-01-02T03:04:05Z","event_type":"dns","dns":{"version":3,"type":"request","id":9,"queries":[{"rrname":"www.suricata.io","rrtype":"A"},{"rrname":"second.example","rrtype":"MX"}]}}`,
			schemas.DNS{QueryHostname: "www.suricata.io", QueryType: "A", RCodeID: -1, TransactionID: 9}, 1},
		{"v3 response", `{"timestamp":"2025-01-02T03:04:05Z","event_type":"dns","dns":{"version":3,"type":"response","rcode":"REFUSED","queries":[{"rrname":"x.example","rrtype":"TXT"}],"answers":[{"rrname":"x.example","rrtype":"TXT","ttl":5,"rdata":"v=spf1 -all"}]}}`,
			schemas.DNS{QueryHostname: "x.example", QueryType: "TXT", RCode: "Refused", RCodeID: 5, Answers: []string{"v=spf1 -all"}, TTLs: []uint32{5}}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, errText := decodeOne(t, SuricataEVE(), tt.give)
			if errText != "" {
				t.Fatal(errText)
			}
			if ev.ClassUID != schemas.ClassDNS || ev.ActivityID != tt.act {
				t.Errorf("got class %d activity %d, want 4003 %d", ev.ClassUID, ev.ActivityID, tt.act)
			}
			if diff := cmp.Diff(&tt.want, ev.DNS); diff != "" {
				t.Errorf("dns mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSuricataAlert(t *testing.T) {
	ev, errText := decodeOne(t, SuricataEVE(), `{"timestamp":"2017-01-30T16:12:36.066011+0100","flow_id":1501577875823823,"event_type":"alert","src_ip":"172.17.0.2","src_port":41402,"dest_ip":"54.230.202.37","dest_port":80,"proto":"TCP","alert":{"action":"allowed","signature_id":2013504,"signature":"ET POLICY APT User-Agent","severity":1},"http":{"hostname":"deb.debian.org","url":"\/debian\/a.deb","http_user_agent":"Debian APT-HTTP\/1.3","http_method":"GET"}}`)
	if errText != "" {
		t.Fatal(errText)
	}
	ev.Raw = ""
	want := &goldenEvent{
		Time: "2017-01-30T15:12:36.066Z", ClassUID: 2004, CategoryUID: 2, ActivityID: 1, TypeUID: 200401, SeverityID: 4,
		Message:  "ET POLICY APT User-Agent",
		Metadata: schemas.Metadata{Product: "Suricata", Vendor: "OISF", LogName: "alert", OriginalTime: "2017-01-30T16:12:36.066011+0100", UID: "1501577875823823"},
		Src:      &schemas.Endpoint{IP: "172.17.0.2", Port: 41402},
		Dst:      &schemas.Endpoint{IP: "54.230.202.37", Port: 80},
		Protocol: "tcp",
		Observables: []string{"1 http.hostname = deb.debian.org", "6 http_request.url = http://deb.debian.org/debian/a.deb",
			"16 http_request.user_agent = Debian APT-HTTP/1.3", "2 src_endpoint.ip = 172.17.0.2", "2 dst_endpoint.ip = 54.230.202.37"},
		Unmapped: []string{"alert.action = allowed", "alert.signature_id = 2013504", "alert.signature = ET POLICY APT User-Agent",
			"alert.severity = 1", "http.hostname = deb.debian.org", "http.url = /debian/a.deb",
			"http.http_user_agent = Debian APT-HTTP/1.3", "http.http_method = GET"},
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func FuzzSuricataEVE(f *testing.F) {
	fuzzSeeds(f, SuricataEVE(), "testdata/suricata/*.json", 40)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, SuricataEVE(), data) })
}

func BenchmarkSuricataEVE(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/suricata/surevego_eve.json", nil)
	benchDecode(b, SuricataEVE(), dirs, recs)
}

func BenchmarkSuricataEVEAlert(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/suricata/surevego_eve.json", func(l []byte) bool {
		return bytesContains(l, `"event_type":"alert"`)
	})
	benchDecode(b, SuricataEVE(), dirs, recs)
}
