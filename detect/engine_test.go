package detect

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/watchfloor/watchfloor/schemas"
)

const dnsLogsource = "category: dns"
const linuxLogsource = "product: linux"

func TestEvalValues(t *testing.T) {
	dns := dnsEvent
	sys := syslogEvent
	tests := []struct {
		name      string
		logsource string
		detection string
		give      *schemas.Event
		want      bool
	}{
		// Plain values: exact, case-insensitive, lists OR, maps AND.
		{"exact", dnsLogsource, "sel:\n  query: evil.example.com\ncondition: sel", dns("evil.example.com"), true},
		{"exact is case-insensitive", dnsLogsource, "sel:\n  query: EVIL.example.COM\ncondition: sel", dns("evil.EXAMPLE.com"), true},
		{"exact is not substring", dnsLogsource, "sel:\n  query: example.com\ncondition: sel", dns("www.example.com"), false},
		{"exact unicode fold", linuxLogsource, "sel:\n  message: 'ÉCHEC'\ncondition: sel", sys("x", "échec"), true},
		{"value list is OR", dnsLogsource, "sel:\n  query: [a.com, b.com]\ncondition: sel", dns("b.com"), true},
		{"value list is OR, no hit", dnsLogsource, "sel:\n  query: [a.com, b.com]\ncondition: sel", dns("c.com"), false},
		{"map is AND", dnsLogsource, "sel:\n  query: a.com\n  dst_port: 53\ncondition: sel", dns("a.com"), true},
		{"map is AND, one fails", dnsLogsource, "sel:\n  query: a.com\n  dst_port: 5353\ncondition: sel", dns("a.com"), false},
		{"list of maps is OR", dnsLogsource, "sel:\n  - query: x.com\n  - src_ip: 10.18.20.97\ncondition: sel", dns("a.com"), true},
		{"list of maps is OR, no hit", dnsLogsource, "sel:\n  - query: x.com\n  - src_ip: 10.0.0.1\ncondition: sel", dns("a.com"), false},
		{"integer attribute", dnsLogsource, "sel:\n  DestinationPort: '53'\ncondition: sel", dns("a.com"), true},
		{"integer attribute with string modifier", dnsLogsource, "sel:\n  dst_port|startswith: '5'\ncondition: sel", dns("a.com"), true},
		{"integer attribute mismatch", dnsLogsource, "sel:\n  dst_port: 80\ncondition: sel", dns("a.com"), false},

		// Modifiers.
		{"contains", dnsLogsource, "sel:\n  query|contains: EXAMPLE\ncondition: sel", dns("www.example.com"), true},
		{"contains, no hit", dnsLogsource, "sel:\n  query|contains: examp1e\ncondition: sel", dns("www.example.com"), false},
		{"startswith", dnsLogsource, "sel:\n  query|startswith: WWW.\ncondition: sel", dns("www.example.com"), true},
		{"startswith, no hit", dnsLogsource, "sel:\n  query|startswith: example\ncondition: sel", dns("www.example.com"), false},
		{"endswith", dnsLogsource, "sel:\n  query|endswith: .COM\ncondition: sel", dns("www.example.com"), true},
		{"endswith, no hit", dnsLogsource, "sel:\n  query|endswith: .org\ncondition: sel", dns("www.example.com"), false},
		{"contains all", linuxLogsource, "sel:\n  message|contains|all: [failed, root]\ncondition: sel", sys("sshd", "Failed password for root"), true},
		{"contains all, one missing", linuxLogsource, "sel:\n  message|contains|all: [failed, admin]\ncondition: sel", sys("sshd", "Failed password for root"), false},
		{"cased exact", dnsLogsource, "sel:\n  query|cased: Evil.com\ncondition: sel", dns("Evil.com"), true},
		{"cased exact, other case", dnsLogsource, "sel:\n  query|cased: Evil.com\ncondition: sel", dns("evil.com"), false},
		{"contains cased", linuxLogsource, "sel:\n  message|contains|cased: Failed\ncondition: sel", sys("sshd", "failed password"), false},
		{"cased wildcard", linuxLogsource, "sel:\n  message|cased: 'F?iled*'\ncondition: sel", sys("sshd", "Failed password"), true},
		{"cased wildcard, other case", linuxLogsource, "sel:\n  message|cased: 'f?iled*'\ncondition: sel", sys("sshd", "Failed password"), false},
		{"re", linuxLogsource, "sel:\n  message|re: '^Failed \\w+ for'\ncondition: sel", sys("sshd", "Failed password for root"), true},
		{"re is case-sensitive", linuxLogsource, "sel:\n  message|re: '^failed'\ncondition: sel", sys("sshd", "Failed password"), false},
		{"re|i", linuxLogsource, "sel:\n  message|re|i: '^failed'\ncondition: sel", sys("sshd", "Failed password"), true},
		{"re searches anywhere", linuxLogsource, "sel:\n  message|re: 'pass[a-z]+'\ncondition: sel", sys("sshd", "Failed password"), true},
		{"windash", linuxLogsource, "sel:\n  message|windash|contains: ' -enc '\ncondition: sel", sys("x", "powershell /enc AAAA"), true},
		{"windash en dash", linuxLogsource, "sel:\n  message|windash|contains: ' -enc '\ncondition: sel", sys("x", "powershell –enc AAAA"), true},
		{"windash leaves inner dashes", linuxLogsource, "sel:\n  message|windash|contains: 'a-b'\ncondition: sel", sys("x", "a/b"), false},
		{"cidr v4", dnsLogsource, "sel:\n  src_ip|cidr: 10.18.0.0/16\ncondition: sel", dns("a.com"), true},
		{"cidr v4 outside", dnsLogsource, "sel:\n  src_ip|cidr: [192.168.0.0/16, 172.16.0.0/12]\ncondition: sel", dns("a.com"), false},
		{"cidr on non-ip", dnsLogsource, "sel:\n  query|cidr: 10.0.0.0/8\ncondition: sel", dns("a.com"), false},
		{"exists true", linuxLogsource, "sel:\n  syslog.facility|exists: true\ncondition: sel", sys("x", "m"), true},
		{"exists false", linuxLogsource, "sel:\n  syslog.priority|exists: false\ncondition: sel", sys("x", "m"), true},
		{"exists true on absent", linuxLogsource, "sel:\n  User|exists: true\ncondition: sel", sys("x", "m"), false},

		// Wildcards and escapes.
		{"star in the middle", dnsLogsource, "sel:\n  query: 'www.*.com'\ncondition: sel", dns("www.example.com"), true},
		{"two stars", dnsLogsource, "sel:\n  query: '*ex*le*'\ncondition: sel", dns("www.example.com"), true},
		{"star segments in order", dnsLogsource, "sel:\n  query: '*le*ex*'\ncondition: sel", dns("www.example.com"), false},
		{"question mark is one char", dnsLogsource, "sel:\n  query: 'a?c.com'\ncondition: sel", dns("abc.com"), true},
		{"question mark needs a char", dnsLogsource, "sel:\n  query: 'a?c.com'\ncondition: sel", dns("ac.com"), false},
		{"question mark is one rune", linuxLogsource, "sel:\n  message: 'caf?'\ncondition: sel", sys("x", "café"), true},
		{"star matches empty", dnsLogsource, "sel:\n  query: 'a*.com'\ncondition: sel", dns("a.com"), true},
		{"escaped star is literal", linuxLogsource, "sel:\n  message: 'a\\*b'\ncondition: sel", sys("x", "a*b"), true},
		{"escaped star is not a wildcard", linuxLogsource, "sel:\n  message: 'a\\*b'\ncondition: sel", sys("x", "axxb"), false},
		{"escaped question mark", linuxLogsource, "sel:\n  message: 'why\\?'\ncondition: sel", sys("x", "why?"), true},
		{"escaped question mark is literal", linuxLogsource, "sel:\n  message: 'why\\?'\ncondition: sel", sys("x", "whyx"), false},
		{"lone backslash is literal", linuxLogsource, "sel:\n  message: 'C:\\Windows\\System32'\ncondition: sel", sys("x", `C:\Windows\System32`), true},
		{"double backslash is one backslash", linuxLogsource, "sel:\n  message: 'C:\\\\Windows'\ncondition: sel", sys("x", `C:\Windows`), true},
		{"backslash then wildcard", linuxLogsource, "sel:\n  message: 'dir\\\\*'\ncondition: sel", sys("x", `dir\anything`), true},
		{"backslash then literal star", linuxLogsource, "sel:\n  message: 'dir\\\\\\*'\ncondition: sel", sys("x", `dir\*`), true},
		{"backslash then literal star, not wildcard", linuxLogsource, "sel:\n  message: 'dir\\\\\\*'\ncondition: sel", sys("x", `dir\abc`), false},
		{"contains with escaped star", linuxLogsource, "sel:\n  message|contains: '\\*'\ncondition: sel", sys("x", "a*b"), true},
		{"contains with escaped star, no star", linuxLogsource, "sel:\n  message|contains: '\\*'\ncondition: sel", sys("x", "ab"), false},

		// null, empty, absent.
		{"null matches absent", linuxLogsource, "sel:\n  User: null\ncondition: sel", sys("x", "m"), true},
		{"null does not match present", dnsLogsource, "sel:\n  query: null\ncondition: sel", dns("a.com"), false},
		{"not null via condition", dnsLogsource, "sel:\n  query: null\ncondition: not sel", dns("a.com"), true},
		{"null on unmapped field", linuxLogsource, "sel:\n  vendor.thing: null\ncondition: sel", sys("x", "m"), true},
		{"null or value", linuxLogsource, "sel:\n  User: [null, root]\ncondition: sel", sys("x", "m"), true},
		{"empty value matches absent", linuxLogsource, "sel:\n  User: ''\ncondition: sel", sys("x", "m"), true},
		{"bare star needs a value", linuxLogsource, "sel:\n  User: '*'\ncondition: sel", sys("x", "m"), false},
		{"bare star matches a value", dnsLogsource, "sel:\n  query: '*'\ncondition: sel", dns("a.com"), true},

		// Keywords.
		{"keyword", linuxLogsource, "keywords:\n  - 'password for ROOT'\ncondition: keywords", sys("sshd", "Failed password for root from 1.2.3.4"), true},
		{"keyword list is OR", linuxLogsource, "keywords:\n  - nope\n  - 'from 1.2.3.4'\ncondition: keywords", sys("sshd", "Failed password for root from 1.2.3.4"), true},
		{"keyword, no hit", linuxLogsource, "keywords:\n  - nope\ncondition: keywords", sys("sshd", "Failed password"), false},
		{"keyword all", linuxLogsource, "keywords:\n  '|all': [failed, root]\ncondition: keywords", sys("sshd", "Failed password for root"), true},
		{"keyword all, one missing", linuxLogsource, "keywords:\n  '|all': [failed, admin]\ncondition: keywords", sys("sshd", "Failed password for root"), false},
		{"keyword wildcard", linuxLogsource, "keywords:\n  - 'failed*root'\ncondition: keywords", sys("sshd", "Failed password for root"), true},
		{"keyword cased", linuxLogsource, "keywords:\n  '|cased': [failed]\ncondition: keywords", sys("sshd", "Failed password"), false},

		// Field resolution.
		{"mapped alias", linuxLogsource, "sel:\n  Image: sshd\n  Hostname: labsz\ncondition: sel", sys("sshd", "m"), true},
		{"unmapped fallback", linuxLogsource, "sel:\n  syslog.facility: AUTH\ncondition: sel", sys("sshd", "m"), true},
		{"unmapped fallback, absent", linuxLogsource, "sel:\n  syslog.nothing: auth\ncondition: sel", sys("sshd", "m"), false},
		{"multi-valued any", dnsLogsource, "sel:\n  answers: 54.230.*\ncondition: sel", dns("a.com", "cdn.example.net", "54.230.86.87"), true},
		{"multi-valued all", dnsLogsource, "sel:\n  answers|all: [54.230.*, cdn.*]\ncondition: sel", dns("a.com", "cdn.example.net", "54.230.86.87"), true},
		{"multi-valued all, one missing", dnsLogsource, "sel:\n  answers|all: [54.230.*, www.*]\ncondition: sel", dns("a.com", "cdn.example.net", "54.230.86.87"), false},
		{"multi-valued null", dnsLogsource, "sel:\n  answers: null\ncondition: sel", dns("a.com"), true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustCompile(t, testRule(fmt.Sprintf("r-%d", i), tt.logsource, tt.detection))
			got := len(rs.Eval(tt.give, nil)) == 1
			if got != tt.want {
				t.Errorf("Eval() matched = %v, want %v\n%s", got, tt.want, tt.detection)
			}
		})
	}
}

func TestEvalConditions(t *testing.T) {
	// a, b and c hold; x and y do not.
	const searches = `
		a: {query: a.com}
		b: {dst_port: 53}
		c: {src_ip: 10.18.20.97}
		x: {query: x.com}
		y: {dst_port: 1}
		_private: {query: nope}
		sel_1: {query: a.com}
		sel_2: {query: x.com}
	`
	tests := []struct {
		give string // condition
		want bool
	}{
		{"a", true},
		{"x", false},
		{"a and b", true},
		{"a and x", false},
		{"x or a", true},
		{"x or y", false},
		{"not x", true},
		{"not a", false},
		{"not not a", true},
		{"x or a and b", true},    // x or (a and b)
		{"a or x and y", true},    // a or (x and y), not (a or x) and y
		{"(a or x) and y", false}, // parentheses bind first
		{"not a or b", true},      // (not a) or b
		{"not a and b", false},    // (not a) and b
		{"not (a and x)", true},   // parentheses
		{"not x and not y", true}, // not binds tighter than and
		{"a and (x or (b and c))", true},
		{"1 of sel_*", true},
		{"all of sel_*", false},
		{"all of sel_1", true},
		{"1 of s*_2", false},
		{"1 of them", true},
		{"all of them", false},
		{"1 of x* or 1 of a*", true},
		{"not 1 of sel_*", false}, // not binds looser than "of"
		{"all of a* and not 1 of y*", true},
		{"A AND B", false}, // keywords are case-insensitive but identifiers are not
		{"a AND b", true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			det := searches + "\ncondition: '" + tt.give + "'"
			docs := testRule("cond", dnsLogsource, det)
			r, err := ParseRule([]byte(docs))
			if err != nil {
				t.Fatalf("ParseRule() error = %v", err)
			}
			rs, err := Compile([]*Rule{r}, Config{})
			if tt.give == "A AND B" {
				if err == nil {
					t.Fatal("Compile() with unknown identifiers A, B: got nil error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile() error = %v", err)
			}
			got := len(rs.Eval(dnsEvent("a.com"), nil)) == 1
			if got != tt.want {
				t.Errorf("Eval() matched = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestThemExcludesUnderscore(t *testing.T) {
	// all of them is false only because of _private if it were included.
	rs := mustCompile(t, testRule("them", dnsLogsource, "a: {query: a.com}\n_private: {query: nope}\ncondition: all of them"))
	if got := len(rs.Eval(dnsEvent("a.com"), nil)); got != 1 {
		t.Errorf("all of them with an unmatched _private search: got %d findings, want 1", got)
	}
}

func TestConditionListIsOR(t *testing.T) {
	rs := mustCompile(t, testRule("list", dnsLogsource, "a: {query: a.com}\nx: {query: x.com}\ncondition:\n  - x\n  - a"))
	if got := len(rs.Eval(dnsEvent("a.com"), nil)); got != 1 {
		t.Errorf("condition list [x, a]: got %d findings, want 1", got)
	}
}

func TestEvalFinding(t *testing.T) {
	rs := mustCompile(t, testRule("6a0a6bd7-5c4e-4d1b-9d8c-1ad1e22d1e01", dnsLogsource, "sel: {query|endswith: .biz}\ncondition: sel"))
	ev := dnsEvent("hnhmrkw.myftp.biz")
	prev := []schemas.Finding{{RuleID: "earlier"}}
	got := rs.Eval(ev, prev)
	want := []schemas.Finding{{RuleID: "earlier"}, {
		ID:         schemas.FindingID(ev.ID, "6a0a6bd7-5c4e-4d1b-9d8c-1ad1e22d1e01"),
		EventID:    ev.ID,
		Agency:     "doj",
		Time:       testTime,
		RuleID:     "6a0a6bd7-5c4e-4d1b-9d8c-1ad1e22d1e01",
		RuleTitle:  "test rule 6a0a6bd7-5c4e-4d1b-9d8c-1ad1e22d1e01",
		RuleLevel:  "high",
		SeverityID: schemas.SeverityHigh,
		EventClass: schemas.ClassDNS,
		Tags:       []string{"attack.t0000"},
		Techniques: []string{"T0000"},
		Matched:    []string{"query"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Eval() mismatch (-want +got):\n%s", diff)
	}
}

func TestLogsourceRouting(t *testing.T) {
	rs := mustCompile(t,
		testRule("dns", "category: dns", "sel: {query|contains: a}\ncondition: sel"),
		testRule("zeek", "product: zeek\nservice: dns", "sel: {query|contains: a}\ncondition: sel"),
		testRule("win-dns", "product: windows\ncategory: dns_query", "sel: {QueryName|contains: a}\ncondition: sel"),
		testRule("linux", "product: linux", "kw: [a]\ncondition: kw"),
		testRule("sshd", "product: linux\nservice: sshd", "kw: [a]\ncondition: kw"),
		testRule("proc", "product: linux\ncategory: process_creation", "kw: [a]\ncondition: kw"),
	)
	if diff := cmp.Diff([]string{"proc"}, rs.Unrouted()); diff != "" {
		t.Errorf("Unrouted() mismatch (-want +got):\n%s", diff)
	}
	ruleIDs := func(fs []schemas.Finding) []string {
		var ids []string
		for _, f := range fs {
			ids = append(ids, f.RuleID)
		}
		sort.Strings(ids)
		return ids
	}
	bind := dnsEvent("a.com")
	bind.Format = "bind_query"
	// Zeek's dns.log shipped as the generic "zeek" format is still Zeek DNS;
	// another Zeek log under that format is not.
	zeekAny := dnsEvent("a.com")
	zeekAny.Format = "zeek"
	zeekConn := syslogEvent("", "a")
	zeekConn.Format, zeekConn.ClassUID = "zeek", schemas.ClassNetwork
	tests := []struct {
		name string
		give *schemas.Event
		want []string
	}{
		{"zeek dns", dnsEvent("a.com"), []string{"dns", "win-dns", "zeek"}},
		{"other dns format", bind, []string{"dns", "win-dns"}},
		{"zeek format dns", zeekAny, []string{"dns", "win-dns", "zeek"}},
		{"zeek format conn", zeekConn, nil},
		{"syslog sshd", syslogEvent("sshd", "a"), []string{"linux", "sshd"}},
		{"syslog cron", syslogEvent("cron", "a"), []string{"linux"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ruleIDs(rs.Eval(tt.give, nil))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Eval() rule ids mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEvalNoAllocOnMiss(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	rs := mustCompile(t,
		testRule("a", dnsLogsource, "sel: {query|contains: evil, answers|cidr: 10.0.0.0/8}\ncondition: sel"),
		testRule("b", dnsLogsource, "sel: {query|re: '^x+\\.'}\nkw: [nope]\ncondition: sel or kw"),
		testRule("c", linuxLogsource, "sel: {message|contains|all: [foo, bar], syslog.facility: kern}\ncondition: sel"),
		testRule("d", linuxLogsource, "sel: {message|windash|contains: ' -x', User: null}\ncondition: sel"),
	)
	dns, sys := dnsEvent("www.example.com", "1.2.3.4"), syslogEvent("sshd", "Accepted publickey for root")
	sys.UserName = "root"
	out := make([]schemas.Finding, 0, 4)
	if n := testing.AllocsPerRun(100, func() {
		out = rs.Eval(dns, out[:0])
		out = rs.Eval(sys, out[:0])
	}); n != 0 || len(out) != 0 {
		t.Errorf("Eval() on non-matching events: %v allocations, %d findings; want 0, 0", n, len(out))
	}
}

func TestEvalConcurrent(t *testing.T) {
	rs := mustCompile(t, testRule("a", dnsLogsource, "sel: {query|endswith: .biz}\ncondition: sel"))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []schemas.Finding
			for i := 0; i < 1000; i++ {
				out = rs.Eval(dnsEvent("x.myftp.biz"), out[:0])
				if len(out) != 1 {
					t.Errorf("Eval() = %d findings, want 1", len(out))
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestMergedMatchers(t *testing.T) {
	// Four or more literals of one kind become one automaton; results must
	// equal the separate matchers', including non-ASCII input.
	det := `sel:
  message|contains: [alpha, beta, gamma, delta, 'ε-x']
sfx:
  message|endswith: [.com, .org, .net, .biz, '.ὀρ']
pfx:
  message|startswith: [foo, bar, baz, qux, 'çà']
condition: %s`
	tests := []struct {
		cond, give string
		want       bool
	}{
		{"sel", "xx GAMMA yy", true},
		{"sel", "xx gamm yy", false},
		{"sel", "ALPHAbet", true},
		{"sel", "café Delta", true},
		{"sel", "un ε-x", true},
		{"sel", "the beTa", true},
		{"sel", "nothing", false},
		{"sfx", "www.example.ORG", true},
		{"sfx", "www.example.orgx", false},
		{"sfx", "café.biz", true},
		{"sfx", "x.ὀρ", true},
		{"sfx", "com", false},
		{"pfx", "BAZinga", true},
		{"pfx", "ba", false},
		{"pfx", "Çà va", true},
		{"pfx", "quxé", true},
		{"sel", "k\u212Aelvin beta", true}, // non-ASCII input takes the exact path
		{"sel", "\u017Fe", false},
	}
	for i, tt := range tests {
		t.Run(tt.cond+"/"+tt.give, func(t *testing.T) {
			rs := mustCompile(t, testRule(fmt.Sprintf("m-%d", i), linuxLogsource, fmt.Sprintf(det, tt.cond)))
			if got := len(rs.Eval(syslogEvent("x", tt.give), nil)) == 1; got != tt.want {
				t.Errorf("Eval(%q) matched = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}
