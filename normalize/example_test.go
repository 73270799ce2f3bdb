package normalize_test

import (
	"fmt"
	"time"

	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

func Example() {
	format, ok := normalize.Builtin().Lookup("zeek_dns")
	if !ok {
		panic("zeek_dns not registered")
	}
	dec := format.NewDecoder(normalize.BatchInfo{Received: time.Date(2019, 12, 3, 23, 0, 0, 0, time.UTC)})

	line := []byte(`{"ts":1575413123.292845,"uid":"CzaqP91edb9woeU409","id.orig_h":"10.18.20.97","id.orig_p":52634,` +
		`"id.resp_h":"10.18.20.8","id.resp_p":53,"proto":"udp","trans_id":19985,"rtt":0.0596,"query":"dns.msftncsi.com",` +
		`"qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR",` +
		`"AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["131.107.255.255"],"TTLs":[17.0],"rejected":false}`)

	var ev schemas.Event // reused between records: call Reset before each
	ev.Reset()
	if err := dec.Record(line, &ev); err != nil {
		fmt.Println("dead letter:", err)
		return
	}
	fmt.Println(ev.Time.Format(time.RFC3339Nano), ev.TypeUID())
	fmt.Println(ev.Src.IP, "->", ev.Dst.IP, ev.Protocol)
	fmt.Println(ev.DNS.QueryHostname, ev.DNS.QueryType, ev.DNS.RCode, ev.DNS.Answers, ev.DNS.TTLs)
	rd, _ := ev.UnmappedValue("RD")
	fmt.Println("RD:", rd)

	// Output:
	// 2019-12-03T22:45:23.292Z 400306
	// 10.18.20.97 -> 10.18.20.8 udp
	// dns.msftncsi.com A NoError [131.107.255.255] [17]
	// RD: true
}

func ExampleSyslog() {
	dec := normalize.Syslog().NewDecoder(normalize.BatchInfo{Received: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)})
	var ev schemas.Event
	if err := dec.Record([]byte("<38>May 30 10:15:30 fw01 sshd[1234]: Accepted publickey for ops"), &ev); err != nil {
		fmt.Println("dead letter:", err)
		return
	}
	fmt.Println(ev.Time, ev.DeviceHostname, ev.ProcessName, ev.ProcessPID, ev.SeverityID)
	fmt.Println(ev.Message)

	ev.Reset()
	err := dec.Record([]byte("not a syslog line"), &ev)
	fmt.Println(err)

	// Output:
	// 2025-05-30 10:15:30 +0000 UTC fw01 sshd 1234 1
	// Accepted publickey for ops
	// parse syslog: no timestamp at start of "not a syslog line": unknown month
}

func ExampleDetect() {
	sample := [][]byte{
		[]byte(`{"timestamp":"2017-01-30T16:12:27.008407+0100","event_type":"dns","src_ip":"172.17.0.2","dns":{"type":"query","rrname":"example.com","rrtype":"A"}}`),
		[]byte(`{"timestamp":"2017-01-30T16:12:29.951412+0100","event_type":"flow","src_ip":"172.17.0.2","dest_ip":"151.101.12.204"}`),
	}
	d, err := normalize.Detect(sample)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %.0f%%\n", d.Format, d.Confidence*100)
	// Output: suricata_eve 100%
}

func ExampleSuricataEVE() {
	dec := normalize.SuricataEVE().NewDecoder(normalize.BatchInfo{})
	var ev schemas.Event
	rec := `{"timestamp":"2017-01-30T16:12:36.066011+0100","flow_id":1501577875823823,"event_type":"alert","src_ip":"172.17.0.2","src_port":41402,"dest_ip":"54.230.202.37","dest_port":80,"proto":"TCP","alert":{"signature_id":2013504,"signature":"ET POLICY GNU/Linux APT User-Agent Outbound","severity":3}}`
	if err := dec.Record([]byte(rec), &ev); err != nil {
		fmt.Println(err)
		return
	}
	sid, _ := ev.UnmappedValue("alert.signature_id")
	fmt.Println(ev.ClassUID, ev.TypeUID(), ev.SeverityID, ev.Time.Format(time.RFC3339Nano))
	fmt.Println(ev.Message, sid, ev.Src.IP, ev.Dst.Port, ev.Protocol)
	// Output:
	// 2004 200401 2 2017-01-30T15:12:36.066Z
	// ET POLICY GNU/Linux APT User-Agent Outbound 2013504 172.17.0.2 80 tcp
}

func ExampleZeek() {
	format := normalize.Zeek()
	dec := format.NewDecoder(normalize.BatchInfo{})
	lines := []string{
		"#separator \\x09",
		"#path\tconn",
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state",
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring",
		"1379288667.706265\tCoyZrY2g74UvMMgp4a\t192.168.33.10\t1032\t54.245.228.191\t80\ttcp\tREJ",
		`{"ts":1575413155.938245,"uid":"Ctole83bPCuBlM7Xlk","id.orig_h":"10.18.20.97","id.orig_p":49203,"id.resp_h":"69.147.64.34","id.resp_p":80,"method":"GET","host":"mail.aol.com","uri":"/"}`,
	}
	var ev schemas.Event
	for _, l := range lines {
		if format.Directive([]byte(l)) {
			if err := dec.Directive([]byte(l)); err != nil {
				fmt.Println(err)
			}
			continue
		}
		ev.Reset()
		if err := dec.Record([]byte(l), &ev); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(ev.Metadata.LogName, ev.ClassUID, ev.ActivityID, ev.Src.IP, "host="+ev.Dst.Hostname)
	}
	// Output:
	// conn 4001 5 192.168.33.10 host=
	// http 4002 3 10.18.20.97 host=mail.aol.com
}
