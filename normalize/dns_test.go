package normalize

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dnstap "github.com/dnstap/golang-dnstap"
	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/watchfloor/watchfloor/schemas"
)

// dnsFormats are the resolver formats with documentation-built samples in
// testdata/dns/<name>_doc.log (the corpus has none, or none we may copy).
var dnsFormats = map[string]Format{
	"bind_query":    BindQuery(),
	"infoblox_nios": InfobloxNIOS(),
	"unbound":       Unbound(),
	"dnsmasq":       Dnsmasq(),
	"coredns":       CoreDNS(),
	"windows_dns":   WindowsDNS(),
}

// Samples built from each product's log documentation (see
// testdata/SOURCE.txt): every line must decode, golden output per format.
func TestDNSFormatsGolden(t *testing.T) {
	for name, f := range dnsFormats {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "dns", name+"_doc.log"))
			if err != nil {
				t.Fatal(err)
			}
			got := decodeLines(t, f, BatchInfo{Received: goldenReceived}, data)
			for _, r := range got {
				if r.Error != "" {
					t.Errorf("line %d: unexpected error: %s", r.Line, r.Error)
				}
			}
			checkGolden(t, "dns_"+name+"_doc.json", got)
		})
	}
	t.Run("dnsmasq_iodine", func(t *testing.T) {
		data, err := os.ReadFile("testdata/dns/dnsmasq_iodine.log")
		if err != nil {
			t.Fatal(err)
		}
		got := decodeLines(t, Dnsmasq(), BatchInfo{Received: goldenReceived}, data)
		queries := 0
		for _, r := range got {
			if r.Error != "" {
				t.Errorf("line %d: unexpected error: %s", r.Line, r.Error)
			}
			if r.Event != nil && r.Event.ActivityID == dnsActivityQuery && strings.HasSuffix(r.Event.DNS.QueryHostname, "example.attack") {
				queries++
			}
		}
		if queries < 20 {
			t.Errorf("got %d iodine queries, want at least 20", queries)
		}
		checkGolden(t, "dns_dnsmasq_iodine.json", got)
	})
}

// Corpus samples whose licences keep them out of testdata: zero errors,
// and the DNS lines become DNS Activity with the expected fields.
func TestDNSCorpusSamples(t *testing.T) {
	tests := []struct {
		name    string
		format  Format
		file    string
		wantDNS int // records that must be DNS Activity
		check   func(t *testing.T, evs []*goldenEvent)
	}{
		{"bind wazuh", BindQuery(), "dns_bind_querylog/wazuh_named.log", 3 /* line 4 is cut before "denied": a Base Event */, func(t *testing.T, evs []*goldenEvent) {
			if evs[0].Src.IP != "217.148.39.3" || evs[0].Src.Port != 1036 || evs[0].StatusID != dnsStatusFailure {
				t.Errorf("denied query: got %+v", evs[0])
			}
		}},
		{"unbound wazuh", Unbound(), "dns_unbound/wazuh_unbound.log", 1, func(t *testing.T, evs []*goldenEvent) {
			if d := evs[1].DNS; d == nil || d.QueryHostname != "talkgadget.google.com" || d.QueryType != "A" || evs[1].Src.IP != "127.0.0.1" {
				t.Errorf("query: got %+v", evs[1])
			}
		}},
		{"infoblox elastic", InfobloxNIOS(), "dns_infoblox_nios/elastic_infoblox_nios_test-dns_part1.log", 8, func(t *testing.T, evs []*goldenEvent) {
			d := evs[0].DNS
			if d == nil || d.QueryHostname != "a1.foo.com" || d.RCode != "NoError" || len(d.Answers) != 2 || d.Answers[1] != "0.0.0.0" || evs[0].ActivityID != dnsActivityTraffic {
				t.Errorf("paired response: got %+v", evs[0])
			}
			if evs[0].Time != "2022-04-07T08:08:10.043Z" {
				t.Errorf("time: got %s, want the BIND timestamp", evs[0].Time)
			}
			rpz := evs[10]
			if rpz.DNS == nil || rpz.DNS.QueryHostname != "nxd1.com" || rpz.SeverityID != schemas.SeverityHigh {
				t.Errorf("rpz: got %+v", rpz)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := readCorpus(t, tt.file)
			got := decodeLines(t, tt.format, BatchInfo{Received: goldenReceived}, data)
			var evs []*goldenEvent
			dnsCount := 0
			for _, r := range got {
				if r.Error != "" {
					t.Errorf("line %d: unexpected error (would be a dead letter): %s", r.Line, r.Error)
					continue
				}
				evs = append(evs, r.Event)
				if r.Event.ClassUID == schemas.ClassDNS {
					dnsCount++
				}
			}
			if dnsCount != tt.wantDNS {
				t.Errorf("got %d DNS Activity events, want %d", dnsCount, tt.wantDNS)
			}
			if len(evs) == len(got) {
				tt.check(t, evs)
			}
		})
	}
}

func TestDNSErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		give   string
		want   string
	}{
		{"bind no timestamp", BindQuery(), "client 1.2.3.4#53: query: a IN A +", "no BIND or syslog timestamp"},
		{"bind bad client", BindQuery(), "03-Feb-2024 15:47:16.123 client nothost#53: query: a IN A +", "client address"},
		{"bind short query", BindQuery(), "03-Feb-2024 15:47:16.123 client 192.0.2.1#53: query: a", "want NAME CLASS TYPE"},
		{"nios bad rr", InfobloxNIOS(), "03-Feb-2024 15:47:16.123 client 192.0.2.1#53 UDP: query: a IN A response: NOERROR + a x IN A 1.2.3.4;", "want NAME TTL CLASS TYPE RDATA"},
		{"unbound no header", Unbound(), "info: 127.0.0.1 a. A IN", "no syslog header"},
		{"unbound bad epoch", Unbound(), "[12x] unbound[1:0] info: x", "epoch"},
		{"dnsmasq no header", Dnsmasq(), "query[A] a from 1.2.3.4", "no syslog header"},
		{"dnsmasq bad client", Dnsmasq(), "Feb  3 15:47:16 gw dnsmasq[1]: query[A] a from nowhere", "query client"},
		{"coredns no level", CoreDNS(), `172.17.0.1:1 - 1 "A IN a. udp 40 false 4096" NOERROR qr 1 1s`, "want [INFO]"},
		{"coredns rcode", CoreDNS(), `[INFO] 172.17.0.1:1 - 1 "A IN a. udp 40 false 4096" WHAT qr 1 1s`, "unknown rcode"},
		{"windows time", WindowsDNS(), "13/45/2024 3:47:16 PM 0E84 PACKET 1 UDP Rcv 1.2.3.4 d1b8 Q [0001 D NOERROR] A (1)a(0)", "no date and time"},
		{"windows brackets", WindowsDNS(), "2/3/2024 3:47:16 PM 0E84 PACKET 1 UDP Rcv 1.2.3.4 d1b8 Q 0001 D NOERROR A (1)a(0)", "want [flags rcode]"},
		{"dnstap base64", Dnstap(), "!!!!", "base64"},
		{"dnstap protobuf", Dnstap(), base64.StdEncoding.EncodeToString([]byte{0xff, 0xff, 0xff}), "protobuf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schemas.Event
			err := tt.format.NewDecoder(BatchInfo{Received: goldenReceived}).Record([]byte(tt.give), &ev)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Record(%q) error = %v, want one containing %q", tt.give, err, tt.want)
			}
		})
	}
}

// dnstapFrame builds one dnstap frame for tests.
func dnstapFrame(t testing.TB, typ dnstap.Message_Type, q, r *dns.Msg, qt, rt time.Time) string {
	t.Helper()
	mt, fam, proto_ := typ, dnstap.SocketFamily_INET, dnstap.SocketProtocol_UDP
	qport, rport := uint32(53421), uint32(53)
	m := &dnstap.Message{
		Type: &mt, SocketFamily: &fam, SocketProtocol: &proto_,
		QueryAddress: net.ParseIP("192.0.2.10").To4(), ResponseAddress: net.ParseIP("198.51.100.53").To4(),
		QueryPort: &qport, ResponsePort: &rport,
	}
	if !qt.IsZero() {
		s, ns := uint64(qt.Unix()), uint32(qt.Nanosecond())
		m.QueryTimeSec, m.QueryTimeNsec = &s, &ns
	}
	if !rt.IsZero() {
		s, ns := uint64(rt.Unix()), uint32(rt.Nanosecond())
		m.ResponseTimeSec, m.ResponseTimeNsec = &s, &ns
	}
	if q != nil {
		b, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		m.QueryMessage = b
	}
	if r != nil {
		b, err := r.Pack()
		if err != nil {
			t.Fatal(err)
		}
		m.ResponseMessage = b
	}
	dt, id := dnstap.Dnstap_MESSAGE, []byte("resolver1")
	frame, err := proto.Marshal(&dnstap.Dnstap{Type: &dt, Identity: id, Message: m})
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(frame)
}

func TestDnstapMapping(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	q.Id = 4242
	r := new(dns.Msg)
	r.SetReply(q)
	rr, _ := dns.NewRR("www.example.com. 300 IN A 203.0.113.80")
	r.Answer = append(r.Answer, rr)
	nx := new(dns.Msg)
	nx.SetRcode(q, dns.RcodeNameError)
	qt := time.Date(2024, 2, 3, 15, 47, 16, 123000000, time.UTC)
	rt := qt.Add(25 * time.Millisecond)

	line := dnstapFrame(t, dnstap.Message_CLIENT_RESPONSE, q, r, qt, rt)
	var ev schemas.Event
	if err := Dnstap().NewDecoder(BatchInfo{}).Record([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ClassUID != schemas.ClassDNS || ev.ActivityID != dnsActivityTraffic || ev.DNS.QueryHostname != "www.example.com" ||
		ev.DNS.QueryType != "A" || ev.DNS.RCode != "NoError" || ev.DNS.TransactionID != 4242 ||
		len(ev.DNS.Answers) != 1 || ev.DNS.Answers[0] != "203.0.113.80" || ev.DNS.TTLs[0] != 300 ||
		ev.Src.IP != "192.0.2.10" || ev.Src.Port != 53421 || ev.Dst.IP != "198.51.100.53" || ev.Protocol != "udp" ||
		!ev.Time.Equal(rt) || ev.DNS.RTT < 0.024 || ev.DNS.RTT > 0.026 || ev.DeviceHostname != "resolver1" {
		t.Errorf("client response: got %+v", ev)
	}

	ev.Reset()
	line = dnstapFrame(t, dnstap.Message_RESOLVER_RESPONSE, nil, nx, time.Time{}, rt)
	if err := Dnstap().NewDecoder(BatchInfo{}).Record([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ActivityID != dnsActivityResponse || ev.DNS.RCode != "NXDomain" || ev.DNS.RCodeID != 3 || ev.StatusID != dnsStatusFailure {
		t.Errorf("nxdomain response: got %+v", ev)
	}

	ev.Reset()
	line = dnstapFrame(t, dnstap.Message_CLIENT_QUERY, q, nil, qt, time.Time{})
	if err := Dnstap().NewDecoder(BatchInfo{}).Record([]byte(line), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ActivityID != dnsActivityQuery || ev.DNS.RCodeID != -1 || !ev.Time.Equal(qt) {
		t.Errorf("query: got %+v", ev)
	}
}

// dnstapReadLine renders ev as BIND's `dnstap-read` prints a message
// ("03-Feb-2017 15:47:16.000 SQ 10.53.0.1:2112 -> 10.53.0.2:2112 UDP 40b www.isc.org/IN/A").
func dnstapReadLine(ev *schemas.Event) string {
	typ, _ := ev.UnmappedValue("dnstap.message_type")
	kind, dir := typ[:1], "->"
	if strings.HasSuffix(typ, "_RESPONSE") {
		kind += "R"
		dir = "<-"
	} else {
		kind += "Q"
	}
	size, _ := ev.UnmappedValue("dnstap.message_size")
	// dnstap-read prints local time; BIND's fixture was made with TZ=PST8PDT
	// (February: UTC-8).
	pst := time.FixedZone("PST", -8*3600)
	return fmt.Sprintf("%s %s %s:%d %s %s:%d %s %sb %s/%s/%s",
		ev.Time.In(pst).Format("02-Jan-2006 15:04:05.000"), kind, ev.Src.IP, ev.Src.Port, dir, ev.Dst.IP, ev.Dst.Port,
		strings.ToUpper(ev.Protocol), size, ev.DNS.QueryHostname, ev.DNS.QueryClass, ev.DNS.QueryType)
}

// The BIND dnstap test file, framed as the sensor ships it, decodes to what
// BIND's own dnstap-read prints for it.
func TestDnstapCorpusMatchesDnstapRead(t *testing.T) {
	raw := readCorpus(t, "dnstap/bind9_dnstap.saved.fstrm")
	want := strings.Split(strings.TrimSpace(string(readCorpus(t, "dnstap/bind9_dnstap.text.expected"))), "\n")
	var lines bytes.Buffer
	n, err := DnstapLines(bytes.NewReader(raw), &lines)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("DnstapLines wrote %d frames, dnstap-read printed %d", n, len(want))
	}
	dec := Dnstap().NewDecoder(BatchInfo{})
	sc := bufio.NewScanner(&lines)
	sc.Buffer(nil, 1<<20)
	var ev schemas.Event
	for i := 0; sc.Scan(); i++ {
		ev.Reset()
		if err := dec.Record(sc.Bytes(), &ev); err != nil {
			t.Fatalf("frame %d: %v", i+1, err)
		}
		if msg, bad := ev.UnmappedValue("dnstap.message_error"); bad {
			t.Errorf("frame %d: message does not unpack: %s", i+1, msg)
		}
		if got := dnstapReadLine(&ev); got != want[i] {
			t.Errorf("frame %d:\n got  %s\n want %s", i+1, got, want[i])
		}
	}
}

func TestWinLabels(t *testing.T) {
	tests := []struct{ give, want string }{
		{"(3)www(7)example(3)com(0)", "www.example.com"},
		{"(0)", ""},
		{"(9)short", "short"},
		{"plain.name", "plain.name"},
	}
	for _, tt := range tests {
		if got := winLabels(tt.give); got != tt.want {
			t.Errorf("winLabels(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func FuzzDNSFormats(f *testing.F) {
	for name := range dnsFormats {
		data, err := os.ReadFile(filepath.Join("testdata", "dns", name+"_doc.log"))
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add(line)
		}
	}
	formats := []Format{BindQuery(), InfobloxNIOS(), Unbound(), Dnsmasq(), CoreDNS(), WindowsDNS()}
	f.Fuzz(func(t *testing.T, line string) {
		for _, fm := range formats {
			var ev schemas.Event
			dec := fm.NewDecoder(BatchInfo{Received: goldenReceived})
			if fm.Directive([]byte(line)) {
				continue
			}
			if err := dec.Record([]byte(line), &ev); err != nil {
				continue
			}
			if ev.ClassUID == schemas.ClassDNS && ev.DNS.RCodeID < -1 {
				t.Errorf("%s: rcode_id %d", fm.Name, ev.DNS.RCodeID)
			}
		}
	})
}

func FuzzDnstap(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeTXT)
	r := new(dns.Msg)
	r.SetReply(q)
	f.Add(dnstapFrame(f, dnstap.Message_CLIENT_RESPONSE, q, r, time.Unix(1700000000, 0), time.Unix(1700000001, 0)))
	f.Add(dnstapFrame(f, dnstap.Message_AUTH_QUERY, q, nil, time.Unix(1700000000, 0), time.Time{}))
	dec := Dnstap().NewDecoder(BatchInfo{})
	f.Fuzz(func(t *testing.T, line string) {
		var ev schemas.Event
		_ = dec.Record([]byte(line), &ev)
	})
}

func BenchmarkDNSFormats(b *testing.B) {
	lines := map[string]string{
		"bind_query":  "03-Feb-2024 15:47:16.123 client @0x7f9b3c0d2168 192.0.2.10#53421 (www.example.com): query: www.example.com IN A +E(0)K (198.51.100.53)",
		"unbound":     "[1706975236] unbound[1234:0] info: 192.0.2.10 www.example.com. A IN NOERROR 0.012345 0 61",
		"dnsmasq":     "Feb  3 15:47:16 gw dnsmasq[812]: query[A] www.example.com from 192.0.2.10",
		"coredns":     `[INFO] 172.17.0.1:55178 - 19610 "A IN example.org. udp 40 false 4096" NOERROR qr,rd,ra 105 0.000126753s`,
		"windows_dns": "2/3/2024 3:47:16 PM 0E84 PACKET  00000000039ED750 UDP Rcv 192.0.2.10      d1b8   Q [0001   D   NOERROR] A      (3)www(7)example(3)com(0)",
	}
	q := new(dns.Msg)
	q.SetQuestion("www.example.com.", dns.TypeA)
	r := new(dns.Msg)
	r.SetReply(q)
	rr, _ := dns.NewRR("www.example.com. 300 IN A 203.0.113.80")
	r.Answer = append(r.Answer, rr)
	lines["dnstap"] = dnstapFrame(b, dnstap.Message_CLIENT_RESPONSE, q, r, time.Unix(1700000000, 0), time.Unix(1700000000, 5e6))
	formats := map[string]Format{"dnstap": Dnstap()}
	for k, v := range dnsFormats {
		formats[k] = v
	}
	for name, line := range lines {
		b.Run(name, func(b *testing.B) {
			dec := formats[name].NewDecoder(BatchInfo{Received: goldenReceived})
			rec := []byte(line)
			var ev schemas.Event
			b.ReportAllocs()
			b.SetBytes(int64(len(rec)))
			for i := 0; i < b.N; i++ {
				ev.Reset()
				if err := dec.Record(rec, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
