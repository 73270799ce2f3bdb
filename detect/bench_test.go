package detect

import (
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// BenchmarkEval runs the bundled rules plus every SigmaHQ rule that compiles
// against one DNS and one syslog event. The "miss" events match nothing and
// must not allocate; the "hit" events raise one finding each.
func BenchmarkEval(b *testing.B) {
	bundled := bundledRules(b)
	_, corpus, _, _ := loadCorpus(b)
	var rules []*Rule
	rules = append(rules, corpus...)
	bundledParsed, errs := parseDir("rules")
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	rules = append(rules, bundledParsed...)
	rs, err := Compile(rules, Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d rules (%d bundled), %d not routed to any event source", rs.Len(), bundled.Len(), len(rs.Unrouted()))

	dnsMiss := dnsEvent("www.example.com", "93.184.216.34")
	dnsMiss.DNS.QueryType = "AAAA"
	dnsHit := dnsEvent("hnhmrkw.myftp.biz", "108.59.9.32")
	sysMiss := syslogEvent("sshd", "Accepted publickey for deploy from 10.0.0.5 port 51234 ssh2: RSA SHA256:abcdefghijklmnop")
	sysHit := syslogEvent("sshd", "Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2")
	for _, bc := range []struct {
		name  string
		ev    *schemas.Event
		wantN int
	}{
		{"dns/miss", dnsMiss, 0},
		{"dns/hit", dnsHit, 1},
		{"syslog/miss", sysMiss, 0},
		{"syslog/hit", sysHit, 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			out := make([]schemas.Finding, 0, 8)
			if n := len(rs.Eval(bc.ev, out[:0])); n != bc.wantN {
				b.Fatalf("Eval() = %d findings, want %d", n, bc.wantN)
			}
			b.ReportAllocs()
			for b.Loop() {
				out = rs.Eval(bc.ev, out[:0])
			}
		})
	}
}
