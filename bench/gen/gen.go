// Package gen makes realistic telemetry for the end-to-end benchmark: the
// mix an agency ships (DNS from several resolver formats, Windows/Sysmon
// process events, sshd syslog, firewall logs), one line per record, in the
// exact shape each registered parser reads.
//
// Generators are deterministic for a seed so two runs offer the same load,
// and they write into a caller's buffer so generating is not what the
// benchmark measures.
package gen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/segmentio/encoding/json"
)

// A Generator appends one record of its format (no newline) to dst.
type Generator struct {
	// Format is the registered parser name the records are shipped as.
	Format string
	// Weight is the generator's share of the mix.
	Weight int
	// Append writes record i at time t.
	Append func(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte
}

// Mix is the default mix; the harness drops the generators whose format the
// build does not register and says so.
func Mix() []Generator {
	return []Generator{
		{Format: "zeek_dns", Weight: 30, Append: zeekDNS},
		{Format: "suricata_eve", Weight: 15, Append: suricataDNS},
		{Format: "bind_query", Weight: 10, Append: bindQuery},
		{Format: "winevent_json", Weight: 20, Append: sysmonProcess},
		{Format: "syslog", Weight: 15, Append: sshd},
		{Format: "cisco_asa", Weight: 10, Append: ciscoASA},
	}
}

var (
	domains = []string{"example.org", "agency.gov", "cdn.example.net", "mail.example.com", "updates.vendor.com",
		"login.microsoftonline.com", "api.github.com", "time.windows.com", "ocsp.digicert.com", "a.root-servers.net"}
	subs = []string{"www", "api", "static", "img", "m", "login", "files", "v2", "edge", "ns1"}
	// procs are everyday process starts, each with a command line and a
	// parent it has on a real host: a SOC's process events are nearly all
	// benign, and the rule engine's cost is that of its no-match path.
	procs = []struct{ image, cmd, parent, parentCmd, user string }{
		{`C:\Windows\System32\svchost.exe`, `"C:\Windows\System32\svchost.exe" -k netsvcs -p -s Schedule`, `C:\Windows\System32\services.exe`, `"C:\Windows\System32\services.exe"`, `NT AUTHORITY\SYSTEM`},
		{`C:\Windows\System32\svchost.exe`, `"C:\Windows\System32\svchost.exe" -k LocalServiceNetworkRestricted -p`, `C:\Windows\System32\services.exe`, `"C:\Windows\System32\services.exe"`, `NT AUTHORITY\LOCAL SERVICE`},
		{`C:\Windows\explorer.exe`, `"C:\Windows\explorer.exe"`, `C:\Windows\System32\userinit.exe`, `"C:\Windows\System32\userinit.exe"`, ``},
		{`C:\Program Files\Mozilla Firefox\firefox.exe`, `"C:\Program Files\Mozilla Firefox\firefox.exe" -contentproc --channel=1234 -childID 5 -isForBrowser -prefsLen 31000 -parentBuildID 20240101 tab`, `C:\Program Files\Mozilla Firefox\firefox.exe`, `"C:\Program Files\Mozilla Firefox\firefox.exe"`, ``},
		{`C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`, `"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:\Users\alice\Documents\Quarterly report.docx"`, `C:\Windows\explorer.exe`, `"C:\Windows\explorer.exe"`, ``},
		{`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, `"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe" -NoProfile -Command Get-Process`, `C:\Windows\explorer.exe`, `"C:\Windows\explorer.exe"`, ``},
		{`C:\Windows\System32\cmd.exe`, `"C:\Windows\System32\cmd.exe" /c dir C:\Users`, `C:\Windows\explorer.exe`, `"C:\Windows\explorer.exe"`, ``},
		{`C:\Windows\System32\conhost.exe`, `"C:\Windows\System32\conhost.exe" 0xffffffff -ForceV1`, `C:\Windows\System32\cmd.exe`, `"C:\Windows\System32\cmd.exe"`, ``},
		{`C:\Program Files (x86)\Google\Chrome\Application\chrome.exe`, `"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe" --type=renderer --lang=en-US --renderer-client-id=7 --mojo-platform-channel-handle=2840 /prefetch:1`, `C:\Program Files (x86)\Google\Chrome\Application\chrome.exe`, `"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe"`, ``},
		{`C:\Windows\System32\taskhostw.exe`, `"C:\Windows\System32\taskhostw.exe" {222A245B-E637-4AE9-A93F-A59CA119A75E}`, `C:\Windows\System32\svchost.exe`, `"C:\Windows\System32\svchost.exe"`, ``},
	}
	users = []string{"alice", "bob", "carol", "svc-backup", "root", "admin", "deploy"}
	qtype = []string{"A", "AAAA", "MX", "TXT", "PTR", "CNAME"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func ip(dst []byte, a, b byte, r *rand.Rand) []byte {
	dst = strconv.AppendUint(dst, uint64(a), 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(b), 10)
	dst = append(dst, '.')
	dst = strconv.AppendUint(dst, uint64(r.IntN(256)), 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, uint64(1+r.IntN(254)), 10)
}

func host(dst []byte, r *rand.Rand) []byte {
	dst = append(dst, pick(r, subs)...)
	dst = append(dst, '.')
	return append(dst, pick(r, domains)...)
}

func zeekDNS(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte {
	dst = append(dst, `{"ts":`...)
	dst = strconv.AppendFloat(dst, float64(t.UnixMicro())/1e6, 'f', 6, 64)
	dst = append(dst, `,"uid":"C`...)
	dst = strconv.AppendUint(dst, i, 36)
	dst = append(dst, `","id.orig_h":"`...)
	dst = ip(dst, 10, 20, r)
	dst = append(dst, `","id.orig_p":`...)
	dst = strconv.AppendUint(dst, uint64(1024+r.IntN(60000)), 10)
	dst = append(dst, `,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":`...)
	dst = strconv.AppendUint(dst, uint64(r.IntN(65536)), 10)
	dst = append(dst, `,"query":"`...)
	dst = host(dst, r)
	dst = append(dst, `","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"answers":["`...)
	dst = ip(dst, 93, 184, r)
	return append(dst, `"],"TTLs":[300.0],"rejected":false}`...)
}

func suricataDNS(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte {
	dst = append(dst, `{"timestamp":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000-0700")
	dst = append(dst, `","flow_id":`...)
	dst = strconv.AppendUint(dst, 1e15+i, 10)
	dst = append(dst, `,"in_iface":"eth0","event_type":"dns","src_ip":"`...)
	dst = ip(dst, 10, 30, r)
	dst = append(dst, `","src_port":`...)
	dst = strconv.AppendUint(dst, uint64(1024+r.IntN(60000)), 10)
	dst = append(dst, `,"dest_ip":"10.0.0.53","dest_port":53,"proto":"UDP","dns":{"version":3,"type":"response","id":`...)
	dst = strconv.AppendUint(dst, uint64(r.IntN(65536)), 10)
	dst = append(dst, `,"flags":"8180","qr":true,"rd":true,"ra":true,"rcode":"NOERROR","queries":[{"rrname":"`...)
	dst = host(dst, r)
	dst = append(dst, `","rrtype":"A"}],"answers":[{"rrname":"x","rrtype":"A","ttl":60,"rdata":"`...)
	dst = ip(dst, 93, 184, r)
	return append(dst, `"}]}}`...)
}

func bindQuery(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte {
	dst = t.UTC().AppendFormat(dst, "02-Jan-2006 15:04:05.000")
	dst = append(dst, " queries: info: client @0x7f3a"...)
	dst = strconv.AppendUint(dst, i%0xffff, 16)
	dst = append(dst, ' ')
	dst = ip(dst, 10, 40, r)
	dst = append(dst, '#')
	dst = strconv.AppendUint(dst, uint64(1024+r.IntN(60000)), 10)
	dst = append(dst, " ("...)
	h := len(dst)
	dst = host(dst, r)
	name := dst[h:]
	dst = append(dst, "): query: "...)
	dst = append(dst, name...)
	dst = append(dst, " IN "...)
	dst = append(dst, pick(r, qtype)...)
	return append(dst, " +E(0)K (10.0.0.53)"...)
}

func sysmonProcess(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte {
	p := pick(r, procs)
	dst = append(dst, `{"EventTime":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02 15:04:05")
	dst = append(dst, `","Hostname":"WS-`...)
	dst = strconv.AppendUint(dst, uint64(r.IntN(500)), 10)
	dst = append(dst, `.agency.local","Keywords":-9223372036854775808,"EventType":"INFO","SeverityValue":2,"Severity":"INFO","EventID":1,"SourceName":"Microsoft-Windows-Sysmon","ProviderGuid":"{5770385F-C22A-43E0-BF4C-06F5698FFBD9}","Version":5,"Task":1,"OpcodeValue":0,"RecordNumber":`...)
	dst = strconv.AppendUint(dst, i, 10)
	dst = append(dst, `,"ProcessID":2456,"ThreadID":3264,"Channel":"Microsoft-Windows-Sysmon/Operational","Domain":"NT AUTHORITY","AccountName":"SYSTEM","UserID":"S-1-5-18","AccountType":"User","Category":"Process Create (rule: ProcessCreate)","Opcode":"Info","UtcTime":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02 15:04:05.000")
	dst = append(dst, `","ProcessGuid":"{A23EAE89-BD28-5D6A-0000-00`...)
	dst = strconv.AppendUint(dst, i%1e9, 16)
	dst = append(dst, `}","Image":`...)
	dst = json.AppendEscape(dst, p.image, 0)
	dst = append(dst, `,"CommandLine":`...)
	dst = json.AppendEscape(dst, p.cmd, 0)
	dst = append(dst, `,"CurrentDirectory":"C:\\Windows\\system32\\","User":`...)
	if p.user != "" {
		dst = json.AppendEscape(dst, p.user, 0)
	} else {
		dst = append(dst, `"AGENCY\\`...)
		dst = append(dst, pick(r, users)...)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"LogonId":"0x3e7","IntegrityLevel":"System","Hashes":"SHA1=`...)
	for k := 0; k < 5; k++ {
		dst = strconv.AppendUint(dst, uint64(r.Uint32())|1<<31, 16)
	}
	dst = append(dst, `","ParentImage":`...)
	dst = json.AppendEscape(dst, p.parent, 0)
	dst = append(dst, `,"ParentCommandLine":`...)
	dst = json.AppendEscape(dst, p.parentCmd, 0)
	return append(dst, '}')
}

func sshd(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte {
	dst = append(dst, "<38>"...)
	dst = t.UTC().AppendFormat(dst, time.Stamp)
	dst = append(dst, " bastion-"...)
	dst = strconv.AppendUint(dst, uint64(r.IntN(20)), 10)
	dst = append(dst, " sshd["...)
	dst = strconv.AppendUint(dst, 1000+i%30000, 10)
	if r.IntN(4) == 0 {
		dst = append(dst, "]: Failed password for invalid user "...)
	} else {
		dst = append(dst, "]: Accepted publickey for "...)
	}
	dst = append(dst, pick(r, users)...)
	dst = append(dst, " from "...)
	dst = ip(dst, 198, 51, r)
	dst = append(dst, " port "...)
	dst = strconv.AppendUint(dst, uint64(1024+r.IntN(60000)), 10)
	return append(dst, " ssh2"...)
}

func ciscoASA(dst []byte, r *rand.Rand, i uint64, t time.Time) []byte {
	dst = append(dst, "<166>"...)
	dst = t.UTC().AppendFormat(dst, "Jan 02 2006 15:04:05")
	dst = append(dst, " asa-edge : %ASA-6-302013: Built outbound TCP connection "...)
	dst = strconv.AppendUint(dst, i, 10)
	dst = append(dst, " for outside:"...)
	dst = ip(dst, 93, 184, r)
	dst = append(dst, "/443 ("...)
	dst = append(dst, "93.184.1.1/443) to inside:"...)
	dst = ip(dst, 10, 50, r)
	dst = append(dst, '/')
	p := strconv.AppendUint(nil, uint64(1024+r.IntN(60000)), 10)
	dst = append(dst, p...)
	dst = append(dst, " ("...)
	dst = append(dst, "10.50.0.1/"...)
	dst = append(dst, p...)
	return append(dst, ')')
}

// Probe is a Zeek DNS record that the bundled WPAD rule matches: the harness
// times it from publish to queryable and to detection.
func Probe(n uint64, t time.Time) []byte {
	return fmt.Appendf(nil, `{"ts":%.6f,"uid":"Cprobe%d","id.orig_h":"10.99.0.1","id.orig_p":5353,"id.resp_h":"10.0.0.53","id.resp_p":53,"proto":"udp","trans_id":1,"query":"wpad.probe-%d.bench.invalid","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A","rcode":3,"rcode_name":"NXDOMAIN","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,"rejected":false}`,
		float64(t.UnixMicro())/1e6, n, n)
}
