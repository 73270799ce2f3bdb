package normalize

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

func TestZeekGolden(t *testing.T) {
	goldenDir(t, Zeek(), "testdata/zeeklogs/*.log", "zeeklogs_", nil)
}

func decodeOne(t *testing.T, f Format, lines ...string) (*goldenEvent, string) {
	t.Helper()
	got := decodeLines(t, f, BatchInfo{Received: goldenReceived}, []byte(strings.Join(lines, "\n")))
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1: %+v", len(got), got)
	}
	return got[0].Event, got[0].Error
}

// Headers that change mid-stream: separator, unset marker, #path and
// #fields all switch between two logs in one batch, with JSON interleaved.
func TestZeekHeadersChangeMidStream(t *testing.T) {
	in := strings.Join([]string{
		"#separator \\x09",
		"#path\tconn",
		"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tconn_state\tservice",
		"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tstring",
		"1379288667.706265\tC1\t192.168.33.10\t1032\t54.245.228.191\t80\ttcp\tREJ\t-",
		`{"ts":1575413155.938245,"uid":"C2","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"method":"POST","host":"a.example","uri":"/x"}`,
		"#separator |",
		"#unset_field|NONE",
		"#path|http",
		"#fields|ts|uid|id.orig_h|id.orig_p|id.resp_h|id.resp_p|method|host|uri|user_agent|tags",
		"#types|time|string|addr|port|addr|port|string|string|string|string|set[enum]",
		"1379288668.5|C3|192.168.33.10|1033|54.245.228.191|80|GET|b.example|/y|NONE|a,b\\x7cc",
	}, "\n")
	got := decodeLines(t, Zeek(), BatchInfo{}, []byte(in))
	if len(got) != 3 {
		t.Fatalf("got %d records, want 3: %+v", len(got), got)
	}
	type short struct {
		Class, Activity uint32
		Log, Host       string
		Unmapped        []string
	}
	var gotShort []short
	for _, r := range got {
		if r.Error != "" {
			t.Fatalf("line %d: %s", r.Line, r.Error)
		}
		gotShort = append(gotShort, short{r.Event.ClassUID, r.Event.ActivityID, r.Event.Metadata.LogName, r.Event.Dst.Hostname, r.Event.Unmapped})
	}
	want := []short{
		{4001, 5, "conn", "", []string{"conn_state = REJ"}},
		{4002, 6, "http", "a.example", []string{"method = POST", "host = a.example", "uri = /x"}},
		{4002, 3, "http", "b.example", []string{"method = GET", "host = b.example", "uri = /y", "tags = a,b|c"}},
	}
	if diff := cmp.Diff(want, gotShort); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestZeekRouting(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		give   string
		want   string // log name
		class  uint32
	}{
		{"_path wins", Zeek(), `{"_path":"ssl","ts":1,"method":"GET"}`, "ssl", 4001},
		{"dns by fields", Zeek(), `{"ts":1,"query":"a.example","qtype_name":"A","rcode":0}`, "dns", 4003},
		{"conn by fields", Zeek(), `{"ts":1,"conn_state":"SF"}`, "conn", 4001},
		{"notice", Zeek(), `{"ts":1,"note":"Scan::Port_Scan","msg":"m"}`, "notice", 2004},
		{"files", Zeek(), `{"ts":1,"fuid":"F1","is_orig":false}`, "files", 4010},
		{"x509", Zeek(), `{"ts":1,"id":"F1","certificate":{"version":3}}`, "x509", 0},
		{"unknown log", Zeek(), `{"ts":1,"mystery":1}`, "unknown", 0},
		{"fixed format", ZeekLogs()[0], `{"ts":1,"method":"GET"}`, "conn", 4001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeOne(t, tt.format, tt.give)
			if err != "" {
				t.Fatal(err)
			}
			if ev.Metadata.LogName != tt.want || ev.ClassUID != tt.class {
				t.Errorf("got log %q class %d, want %q %d", ev.Metadata.LogName, ev.ClassUID, tt.want, tt.class)
			}
		})
	}
}

func TestZeekMapping(t *testing.T) {
	ev, errText := decodeOne(t, Zeek(), `{"ts":1575413184.421633,"fuid":"FmBsXq2v5jTFuJKsIe","tx_hosts":["13.107.4.50"],"rx_hosts":["10.18.20.97"],"conn_uids":["CiCd9m2kyxKAoszG6h"],"source":"HTTP","is_orig":false,"filename":"a.cab","md5":"d41d8cd98f00b204e9800998ecf8427e","extra":{"n":[1,2],"o":[{"k":"v"}]}}`)
	if errText != "" {
		t.Fatal(errText)
	}
	want := &goldenEvent{
		Time: "2019-12-03T22:46:24.421Z", ClassUID: 4010, CategoryUID: 4, ActivityID: 2, TypeUID: 401002, SeverityID: 1,
		Metadata: schemas.Metadata{Product: "Zeek", Vendor: "Zeek", LogName: "files", OriginalTime: "1575413184.421633", UID: "FmBsXq2v5jTFuJKsIe"},
		Src:      &schemas.Endpoint{IP: "13.107.4.50"},
		Dst:      &schemas.Endpoint{IP: "10.18.20.97"},
		Observables: []string{"7 file.name = a.cab", "8 file.hashes.md5 = d41d8cd98f00b204e9800998ecf8427e",
			"2 src_endpoint.ip = 13.107.4.50", "2 dst_endpoint.ip = 10.18.20.97"},
		Unmapped: []string{"tx_hosts = 13.107.4.50", "rx_hosts = 10.18.20.97", "conn_uids = CiCd9m2kyxKAoszG6h",
			"source = HTTP", "is_orig = false", "filename = a.cab", "md5 = d41d8cd98f00b204e9800998ecf8427e",
			"extra.n = 1,2", `extra.o = [{"k":"v"}]`},
	}
	ev.Raw = ""
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestZeekErrors(t *testing.T) {
	hdr := "#fields\tts\tuid\tid.orig_p"
	tests := []struct {
		name string
		give []string
		want string
	}{
		{"no header", []string{"1\tC1\t80"}, "parse zeek tsv: record before any #fields header"},
		{"short row", []string{hdr, "1\tC1"}, "parse zeek tsv: got 2 fields, want 3 (from #fields)"},
		{"long row", []string{hdr, "1\tC1\t80\tx"}, "parse zeek tsv: got 4 fields, want 3 (from #fields)"},
		{"bad port", []string{hdr, "1\tC1\t80000"}, `parse zeek record: field "id.orig_p": out of range`},
		{"no ts", []string{`{"conn_state":"SF"}`}, "parse zeek conn: record has no ts"},
		{"bad ts", []string{`{"ts":"yesterday","conn_state":"SF"}`}, `parse zeek conn: field "ts": not epoch seconds or an RFC 3339 time`},
		{"bad json", []string{`{"ts":1,`}, "parse zeek json: offset 8: unexpected end of input"},
		{"trailing", []string{`{"ts":1} x`}, `parse zeek json: offset 9: unexpected 'x' after the object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := decodeOne(t, Zeek(), tt.give...)
			if got != tt.want {
				t.Errorf("got error %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzZeek(f *testing.F) {
	fuzzSeeds(f, Zeek(), "testdata/zeeklogs/*.log", 2)
	f.Add([]byte("#separator |\n#fields|ts|x\n1|a\\x7c"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, Zeek(), data) })
}

func BenchmarkZeekJSONConn(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/zeeklogs/json_conn.log", nil)
	benchDecode(b, Zeek(), dirs, recs)
}

func BenchmarkZeekJSONHTTP(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/zeeklogs/json_http.log", nil)
	benchDecode(b, Zeek(), dirs, recs)
}

func BenchmarkZeekTSVConn(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/zeeklogs/tsv_conn.log", nil)
	benchDecode(b, Zeek(), dirs, recs)
}
