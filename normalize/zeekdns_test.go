package normalize

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

// canonTS is what Zeek's btest baselines write for ts; the golden test
// substitutes a real time so the mapping of the rest is exercised.
const canonTS = "XXXXXXXXXX.XXXXXX"

func TestZeekDNSGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/zeek/*.log")
	if err != nil || len(files) == 0 {
		t.Fatalf("no zeek samples: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = bytes.ReplaceAll(data, []byte(canonTS), []byte("1400000000.123456"))
			got := decodeLines(t, ZeekDNS(), BatchInfo{Received: goldenReceived}, data)
			for _, r := range got {
				if r.Error != "" {
					t.Errorf("line %d: unexpected error: %s", r.Line, r.Error)
				}
			}
			checkGolden(t, "zeek_"+goldenName(file), got)
		})
	}
}

// The same row as JSON and as TSV gives the same event apart from Raw.
func TestZeekDNSJSONMatchesTSV(t *testing.T) {
	header := "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n" +
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\ttrans_id\trtt\tquery\tqclass\tqclass_name\tqtype\tqtype_name\trcode\trcode_name\tAA\tTC\tRD\tRA\tZ\tanswers\tTTLs\trejected\n" +
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tcount\tinterval\tstring\tcount\tstring\tcount\tstring\tcount\tstring\tbool\tbool\tbool\tbool\tcount\tvector[string]\tvector[interval]\tbool\n"
	tsv := "1575413123.292845\tCzaqP91edb9woeU409\t10.18.20.97\t52634\t10.18.20.8\t53\tudp\t19985\t0.059601\tdns.msftncsi.com\t1\tC_INTERNET\t1\tA\t0\tNOERROR\tF\tF\tT\tT\t0\t131.107.255.255,a\\x2cb\t17.000000,5.000000\tF"
	js := `{"ts":1575413123.292845,"uid":"CzaqP91edb9woeU409","id.orig_h":"10.18.20.97","id.orig_p":52634,"id.resp_h":"10.18.20.8","id.resp_p":53,"proto":"udp","trans_id":19985,"rtt":0.059601,"query":"dns.msftncsi.com","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["131.107.255.255","a,b"],"TTLs":[17.0,5],"rejected":false}`
	got := decodeLines(t, ZeekDNS(), BatchInfo{}, []byte(header+tsv+"\n"+js+"\n"))
	if len(got) != 2 || got[0].Event == nil || got[1].Event == nil {
		t.Fatalf("got %+v, want two events", got)
	}
	a, b := *got[0].Event, *got[1].Event
	a.Raw, b.Raw = "", ""
	a.Metadata.OriginalTime, b.Metadata.OriginalTime = "", "" // same time, written alike here anyway
	if diff := cmp.Diff(b, a); diff != "" {
		t.Errorf("TSV event differs from JSON event (-json +tsv):\n%s", diff)
	}
}

func TestZeekDNSMapping(t *testing.T) {
	rec := `{"ts":1575413122.764317,"uid":"CWwU9s3h33kFsa9Ljg","id.orig_h":"10.18.20.97","id.orig_p":59102,"id.resp_h":"10.18.20.8","id.resp_p":53,"proto":"udp","trans_id":19084,"query":"_ldap._tcp.example.com","qclass":1,"qclass_name":"C_INTERNET","qtype":33,"qtype_name":"SRV","rcode":3,"rcode_name":"NXDOMAIN","AA":false,"TC":false,"RD":true,"RA":false,"Z":0,"rejected":false}`
	var ev schemas.Event
	if err := ZeekDNS().NewDecoder(BatchInfo{}).Record([]byte(rec), &ev); err != nil {
		t.Fatal(err)
	}
	want := schemas.Event{
		Time:        time.Date(2019, 12, 3, 22, 45, 22, 764e6, time.UTC),
		ClassUID:    4003,
		CategoryUID: 4,
		ActivityID:  6,
		SeverityID:  1,
		Metadata:    schemas.Metadata{Product: "Zeek", Vendor: "Zeek", LogName: "dns", OriginalTime: "1575413122.764317", UID: "CWwU9s3h33kFsa9Ljg"},
		Src:         schemas.Endpoint{IP: "10.18.20.97", Port: 59102},
		Dst:         schemas.Endpoint{IP: "10.18.20.8", Port: 53},
		Protocol:    "udp",
		DNS:         schemas.DNS{QueryHostname: "_ldap._tcp.example.com", QueryType: "SRV", QueryClass: "IN", RCode: "NXDomain", RCodeID: 3, TransactionID: 19084},
		Observables: []schemas.Observable{
			{TypeID: 1, Name: "query.hostname", Value: "_ldap._tcp.example.com"},
			{TypeID: 2, Name: "src_endpoint.ip", Value: "10.18.20.97"},
			{TypeID: 2, Name: "dst_endpoint.ip", Value: "10.18.20.8"},
		},
		Unmapped: []schemas.KV{
			{Key: "qclass", Value: "1"}, {Key: "qtype", Value: "33"}, {Key: "rcode_name", Value: "NXDOMAIN"},
			{Key: "AA", Value: "false"}, {Key: "TC", Value: "false"}, {Key: "RD", Value: "true"}, {Key: "RA", Value: "false"},
			{Key: "Z", Value: "0"}, {Key: "rejected", Value: "false"},
		},
		Raw: rec,
	}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("event mismatch (-want +got):\n%s", diff)
	}
}

func TestZeekDNSTimes(t *testing.T) {
	tests := []struct {
		name string
		give string
		want time.Time
	}{
		{name: "epoch with micros", give: `{"ts":1575413122.764317}`, want: time.UnixMilli(1575413122764).UTC()},
		{name: "epoch no fraction", give: `{"ts":1575413122}`, want: time.Unix(1575413122, 0).UTC()},
		{name: "epoch short fraction", give: `{"ts":1575413122.7}`, want: time.UnixMilli(1575413122700).UTC()},
		{name: "epoch exponent", give: `{"ts":1.5754131227e9}`, want: time.UnixMilli(1575413122700).UTC()},
		{name: "iso8601 string", give: `{"ts":"2019-12-03T22:45:22.764317Z"}`, want: time.UnixMilli(1575413122764).UTC()},
		{name: "query only", give: `{"ts":1,"query":"a.example"}`, want: time.Unix(1, 0).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev schemas.Event
			if err := ZeekDNS().NewDecoder(BatchInfo{}).Record([]byte(tt.give), &ev); err != nil {
				t.Fatal(err)
			}
			if !ev.Time.Equal(tt.want) || ev.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want %v", ev.Time, tt.want)
			}
		})
	}
	// No rcode: a query without a response.
	var ev schemas.Event
	if err := ZeekDNS().NewDecoder(BatchInfo{}).Record([]byte(`{"ts":1,"query":"a.example"}`), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ActivityID != 1 || ev.DNS.RCodeID != -1 || ev.DNS.RCode != "" {
		t.Errorf("ActivityID, RCodeID, RCode = %d, %d, %q; want 1, -1, \"\"", ev.ActivityID, ev.DNS.RCodeID, ev.DNS.RCode)
	}
}

const zeekTSVHeader = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdns\n" +
	"#fields\tts\tuid\tquery\tAA\tanswers\tTTLs\n#types\ttime\tstring\tstring\tbool\tvector[string]\tvector[interval]\n"

func TestZeekDNSErrors(t *testing.T) {
	tests := []struct {
		name string
		give string // lines; directives are applied, the last line is the record
		want string // substring of the error
	}{
		{name: "not json", give: `{"ts":1575413122.7,`, want: `parse zeek dns json: offset 19: unexpected end of input`},
		{name: "garbage after brace", give: `{ts:1}`, want: `parse zeek dns json: offset 1: want string, got '`},
		{name: "trailing garbage", give: `{"ts":1} x`, want: `unexpected 'x' after the object`},
		{name: "missing ts json", give: `{"uid":"C1","query":"a.example"}`, want: `parse zeek dns: record has no ts`},
		{name: "ts wrong type", give: `{"ts":true}`, want: `parse zeek dns json: field "ts": want string, got boolean`},
		{name: "ts bad string", give: `{"ts":"yesterday"}`, want: `parse zeek dns json: field "ts": not epoch seconds`},
		{name: "port as string", give: `{"ts":1,"id.orig_p":"53"}`, want: `parse zeek dns json: field "id.orig_p": want number, got string`},
		{name: "port out of range", give: `{"ts":1,"id.resp_p":70000}`, want: `field "id.resp_p": out of range`},
		{name: "port fraction", give: `{"ts":1,"id.resp_p":53.5}`, want: `field "id.resp_p": not an unsigned integer`},
		{name: "answers not array", give: `{"ts":1,"answers":"1.2.3.4"}`, want: `field "answers": offset 18: want array, got string`},
		{name: "answers of numbers", give: `{"ts":1,"answers":[1]}`, want: `field "answers": want array of strings, got number element`},
		{name: "TTLs of strings", give: `{"ts":1,"TTLs":["36"]}`, want: `field "TTLs": want array of numbers, got string element`},
		{name: "negative TTL", give: `{"ts":1,"TTLs":[-1]}`, want: `field "TTLs": negative`},
		{name: "bad escape", give: `{"ts":1,"query":"a\q"}`, want: `invalid escape \q`},
		{name: "empty record", give: ` `, want: `parse zeek dns: empty record`},
		{name: "tsv before fields", give: "1575413122.7\tC1\ta.example", want: `parse zeek dns tsv: record before any #fields header`},
		{name: "tsv truncated", give: zeekTSVHeader + "1575413122.7\tC1\ta.example", want: `parse zeek dns tsv: got 3 fields, want 6 (from #fields)`},
		{name: "tsv too many fields", give: zeekTSVHeader + "1\tC1\ta\tT\t-\t-\textra", want: `got 7 fields, want 6`},
		{name: "tsv bad ts", give: zeekTSVHeader + canonTS + "\tC1\ta.example\tT\t-\t-", want: `parse zeek dns tsv: field "ts": not epoch seconds or an RFC 3339 time`},
		{name: "tsv unset ts", give: zeekTSVHeader + "-\tC1\ta.example\tT\t-\t-", want: `parse zeek dns: record has no ts`},
		{name: "tsv bad TTL", give: zeekTSVHeader + "1\tC1\ta.example\tT\t1.2.3.4\tlong", want: `parse zeek dns tsv: field "TTLs": not a decimal number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeLines(t, ZeekDNS(), BatchInfo{}, []byte(tt.give))
			if len(got) != 1 {
				t.Fatalf("got %d results %+v, want 1", len(got), got)
			}
			if got[0].Error == "" {
				t.Fatalf("got event %+v, want error containing %q", got[0].Event, tt.want)
			}
			if !strings.Contains(got[0].Error, tt.want) {
				t.Errorf("error = %q, want it to contain %q", got[0].Error, tt.want)
			}
		})
	}
}

func TestZeekDNSDirectives(t *testing.T) {
	f := ZeekDNS()
	for _, tt := range []struct {
		give string
		want bool
	}{
		{"#separator \\x09", true}, {"#fields\tts", true}, {"#close\t2014-04-03-10-08-28", true},
		{"### BTest baseline", true}, {`{"ts":1}`, false}, {"1379288667.631940\tC", false}, {"", false},
	} {
		if got := f.Directive([]byte(tt.give)); got != tt.want {
			t.Errorf("Directive(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}

	// Headers change mid-batch: a new separator, set separator, unset and
	// empty markers and a different field list all take effect at once.
	data := zeekTSVHeader +
		"1\tC1\ta.example\tT\t1.2.3.4,5.6.7.8\t1.000000,2.000000\n" +
		"#close\t2014-04-03-10-08-28\n" +
		"#separator \\x7c\n" + // "|"
		"#set_separator|;\n#empty_field|EMPTY\n#unset_field|NONE\n" +
		"#fields|query|ts|answers|rcode|qtype_name\n#types|string|time|vector[string]|count|string\n" +
		"b.example|2|9.9.9.9;a\\x3bb|3|NONE\n" +
		"EMPTY|3|EMPTY|NONE|A\n"
	got := decodeLines(t, f, BatchInfo{}, []byte(data))
	if len(got) != 3 {
		t.Fatalf("got %d results %+v, want 3", len(got), got)
	}
	for _, r := range got {
		if r.Error != "" {
			t.Fatalf("line %d: %s", r.Line, r.Error)
		}
	}
	type sum struct {
		Query   string
		Answers []string
		TTLs    []uint32
		RCodeID int32
		QType   string
		Sec     int64
	}
	sums := make([]sum, len(got))
	for i, r := range got {
		sums[i] = sum{r.Event.DNS.QueryHostname, r.Event.DNS.Answers, r.Event.DNS.TTLs, r.Event.DNS.RCodeID, r.Event.DNS.QueryType, mustParse(t, r.Event.Time).Unix()}
	}
	want := []sum{
		{Query: "a.example", Answers: []string{"1.2.3.4", "5.6.7.8"}, TTLs: []uint32{1, 2}, RCodeID: -1, Sec: 1},
		{Query: "b.example", Answers: []string{"9.9.9.9", "a;b"}, RCodeID: 3, Sec: 2},
		{Query: "", RCodeID: -1, QType: "A", Sec: 3},
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("events mismatch (-want +got):\n%s", diff)
	}

	bad := []struct{ give, want string }{
		{"#separator ", "#separator is empty"},
		{"#fields", "#fields lists no fields"},
		{"#fields\tts\tuid\n#types\ttime", "#types lists 1 types, #fields 2 fields"},
	}
	for _, tt := range bad {
		got := decodeLines(t, f, BatchInfo{}, []byte(tt.give))
		if len(got) == 0 || !strings.Contains(got[len(got)-1].Error, tt.want) {
			t.Errorf("directives %q: got %+v, want error containing %q", tt.give, got, tt.want)
		}
	}
}

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func FuzzZeekDNS(f *testing.F) {
	files, _ := filepath.Glob("testdata/zeek/*.log")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		lines := bytes.Split(data, []byte("\n"))
		// Whole headers with one record, and single JSON records.
		var hdr [][]byte
		for _, l := range lines {
			if bytes.HasPrefix(l, []byte("#")) {
				hdr = append(hdr, l)
				continue
			}
			if len(l) > 0 {
				f.Add(bytes.Join(append(hdr[:len(hdr):len(hdr)], l), []byte("\n")))
				if l[0] == '{' {
					break // one per JSON file is plenty
				}
			}
		}
	}
	f.Add([]byte(zeekTSVHeader + "1\tC1\ta.example\tT\t1.2.3.4,5.6.7.8\t1.000000,2.000000"))
	f.Add([]byte(`{"ts":"2019-12-03T22:45:22Z","answers":["a\u00e9\ud83d\ude00"],"x":{"y":[1,{"z":null}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		format := ZeekDNS()
		dec := format.NewDecoder(BatchInfo{})
		var ev schemas.Event
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if format.Directive(line) {
				_ = dec.Directive(line)
				continue
			}
			ev.Reset()
			err := dec.Record(line, &ev)
			if err != nil {
				continue
			}
			if line[0] == '{' && !json.Valid(line) {
				t.Errorf("accepted invalid JSON %q", line)
			}
			if ev.ClassUID != schemas.ClassDNS || ev.Time.IsZero() || ev.Raw != string(line) {
				t.Errorf("accepted %q with incomplete event %+v", line, ev)
			}
			if ev.Time.Nanosecond()%int(time.Millisecond) != 0 {
				t.Errorf("time %v not at millisecond precision", ev.Time)
			}
		}
	})
}

func benchLines(b *testing.B, path string, keep func([]byte) bool) (dirs, recs [][]byte) {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		switch {
		case len(l) == 0:
		case l[0] == '#':
			dirs = append(dirs, l)
		case keep == nil || keep(l):
			recs = append(recs, l)
		}
	}
	return dirs, recs
}

func benchDecode(b *testing.B, f Format, dirs, recs [][]byte) {
	dec := f.NewDecoder(BatchInfo{Received: goldenReceived})
	for _, d := range dirs {
		if err := dec.Directive(d); err != nil {
			b.Fatal(err)
		}
	}
	var ev schemas.Event
	var n int64
	for _, r := range recs {
		n += int64(len(r))
	}
	b.SetBytes(n / int64(len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev.Reset()
		if err := dec.Record(recs[i%len(recs)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkZeekDNSJSON(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/zeek/zat_json_dns.log", nil)
	benchDecode(b, ZeekDNS(), dirs, recs)
}

func BenchmarkZeekDNSTSV(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/zeek/zat_dns.log", nil)
	benchDecode(b, ZeekDNS(), dirs, recs)
}
