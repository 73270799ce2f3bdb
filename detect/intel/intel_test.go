package intel

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/watchfloor/watchfloor/schemas"
)

const corpus = "../../../shared/corpus"

func readCorpus(t testing.TB, rel string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(corpus, rel))
	if os.IsNotExist(err) {
		t.Skipf("shared corpus file %s not present; skipping", rel)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func loadPSL(t testing.TB) *PublicSuffixes {
	t.Helper()
	psl, err := ParsePublicSuffixes(readCorpus(t, "dns-labels/public-suffix/public_suffix_list.dat"))
	if err != nil {
		t.Fatal(err)
	}
	return psl
}

func TestPublicSuffixes(t *testing.T) {
	psl, err := ParsePublicSuffixes(strings.NewReader("// c\ncom\nuk\nco.uk\n*.ck\n!www.ck\ngithub.io\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		give string
		want bool
	}{
		{"com", true}, {"co.uk", true}, {"example.co.uk", false}, {"foo.ck", true}, {"www.ck", false},
		{"github.io", true}, {"user.github.io", false}, {"unlisted", true}, {"example.com", false},
	}
	for _, tt := range tests {
		if got := psl.IsPublicSuffix(tt.give); got != tt.want {
			t.Errorf("IsPublicSuffix(%q) = %v, want %v", tt.give, got, tt.want)
		}
		if got := psl.isPublicSuffix([]byte(tt.give)); got != tt.want {
			t.Errorf("isPublicSuffix(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if full := loadPSL(t); full.Len() < 5000 || !full.IsPublicSuffix("co.uk") || full.IsPublicSuffix("bbc.co.uk") {
		t.Errorf("corpus public suffix list: %d rules, co.uk/bbc.co.uk misclassified", full.Len())
	}
}

func testSet(t testing.TB, psl *PublicSuffixes) *Set {
	t.Helper()
	b := NewBuilder(psl, 0)
	for _, e := range []struct{ feed, v string }{
		{"feedA", "evil.example"}, {"feedA", "*.Bad.Example.COM."}, {"feedB", "evil.example"},
		{"feedA", "evil.example"}, // duplicate: ignored
		{"feedB", "co.uk"}, {"feedB", "phish.co.uk"},
		{"feedC", "198.51.100.7"}, {"feedC", "203.0.113.0/24"}, {"feedC", "2001:db8:bad::/48"},
		{"feedC", "10.0.0.0/8"}, {"feedD", "10.1.0.0/16"},
	} {
		if err := b.Add(e.feed, e.v); err != nil {
			t.Fatalf("Add(%q, %q): %v", e.feed, e.v, err)
		}
	}
	return b.Build()
}

func TestMatchDomain(t *testing.T) {
	s := testSet(t, mustPSL(t, "com\nuk\nco.uk\nexample\n"))
	tests := []struct {
		give string
		want []string // feed:indicator
	}{
		{"evil.example", []string{"feedA:evil.example", "feedB:evil.example"}},
		{"WWW.Evil.Example.", []string{"feedA:evil.example", "feedB:evil.example"}},
		{"a.b.bad.example.com", []string{"feedA:bad.example.com"}},
		{"bad.example.com", []string{"feedA:bad.example.com"}},
		{"example.com", nil},
		{"notevil.example", nil},
		{"www.phish.co.uk", []string{"feedB:phish.co.uk"}},
		{"other.co.uk", nil}, // "co.uk" is a public suffix: no parent match
		{"co.uk", []string{"feedB:co.uk"}},
		{"", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, m := range s.MatchDomain(tt.give, nil) {
			got = append(got, m.Feed+":"+m.Indicator)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("MatchDomain(%q) mismatch (-want +got):\n%s", tt.give, diff)
		}
	}
}

func mustPSL(t testing.TB, rules string) *PublicSuffixes {
	p, err := ParsePublicSuffixes(strings.NewReader(rules))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMatchIP(t *testing.T) {
	s := testSet(t, nil)
	tests := []struct {
		give string
		want []string
	}{
		{"198.51.100.7", []string{"feedC:198.51.100.7"}},
		{"::ffff:198.51.100.7", []string{"feedC:198.51.100.7"}},
		{"198.51.100.8", nil},
		{"203.0.113.250", []string{"feedC:203.0.113.0/24"}},
		{"2001:db8:bad:1::5", []string{"feedC:2001:db8:bad::/48"}},
		{"2001:db8:bae::1", nil},
		{"10.1.2.3", []string{"feedD:10.1.0.0/16", "feedC:10.0.0.0/8"}}, // longest prefix first
	}
	for _, tt := range tests {
		var got []string
		for _, m := range s.MatchIP(netip.MustParseAddr(tt.give), nil) {
			got = append(got, m.Feed+":"+m.Indicator)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("MatchIP(%q) mismatch (-want +got):\n%s", tt.give, diff)
		}
	}
}

func TestAddRejects(t *testing.T) {
	b := NewBuilder(nil, 0)
	for _, give := range []string{"", "not a name", "bad/33x", "a..b", "http://x/y", strings.Repeat("a", 300)} {
		if err := b.Add("f", give); err == nil {
			t.Errorf("Add(%q) = nil, want an error", give)
		}
	}
}

func TestLoadFormats(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		format      Format
		give        string
		wantAdded   int
		wantSkipped int
		wantUnsupp  int
		probe       string
	}{
		{"list", FormatList, "# comment\nevil.example\n198.51.100.1 # trailing\n203.0.113.0/24\nhttp://x.example/a\n\nbad name here\n", 3, 1, 1, "evil.example"},
		{"hosts", FormatHosts, "127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example\n::1 ip6-localhost\nnot-a-hosts-line\n", 2, 1, 0, "tracker.example"},
		{"list with hosts lines", FormatList, "0.0.0.0 ads.example\n", 1, 0, 0, "ads.example"},
		{"csv header", FormatCSV, "first_seen,domain,reason\n2024-01-01,evil.example,c2\n2024-01-02,,none\n", 1, 1, 0, "evil.example"},
		{"csv no header", FormatCSV, "evil.example,x\n198.51.100.9,y\n", 2, 0, 0, "evil.example"},
		{"zeek intel", FormatList, "#fields\tindicator\tindicator_type\tmeta.source\nevil.example\tIntel::DOMAIN\tx\n198.51.100.1\tIntel::ADDR\tx\nabc\tIntel::FILE_HASH\tx\n", 2, 0, 1, "evil.example"},
		{"stix", FormatSTIX, `{"type":"bundle","objects":[
			{"type":"indicator","id":"indicator--1","pattern_type":"stix","pattern":"[domain-name:value = 'evil.example'] OR [ipv4-addr:value = '198.51.100.3']"},
			{"type":"indicator","id":"indicator--2","pattern":"[ipv4-addr:value ISSUBSET '203.0.113.0/24']"},
			{"type":"indicator","id":"indicator--3","pattern":"[domain-name:value = 'old.example']","valid_until":"2020-01-01T00:00:00Z"},
			{"type":"indicator","id":"indicator--4","pattern":"[domain-name:value = 'revoked.example']","revoked":true},
			{"type":"indicator","id":"indicator--5","pattern":"[file:hashes.'SHA-256' = 'ab']"},
			{"type":"indicator","id":"indicator--6","pattern_type":"sigma","pattern":"x"},
			{"type":"malware","id":"malware--1"}]}`, 3, 0, 2, "evil.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(nil, 0)
			st, err := b.Load("f", tt.format, strings.NewReader(tt.give), now)
			if err != nil {
				t.Fatal(err)
			}
			if st.Added != tt.wantAdded || st.Skipped != tt.wantSkipped || st.Unsupported != tt.wantUnsupp {
				t.Errorf("stats = %+v, want added %d skipped %d unsupported %d", st, tt.wantAdded, tt.wantSkipped, tt.wantUnsupp)
			}
			if len(b.Build().MatchDomain(tt.probe, nil)) != 1 {
				t.Errorf("%s not matched", tt.probe)
			}
		})
	}
	if _, err := NewBuilder(nil, 0).Load("f", FormatSTIX, strings.NewReader(`{"type":"bundle","objects":`), now); err == nil {
		t.Error("truncated STIX: want an error")
	}
	if _, err := NewBuilder(nil, 0).Load("f", "yaml", strings.NewReader(""), now); err == nil {
		t.Error("unknown format: want an error")
	}
}

// Feeds from the shared corpus load with their indicators.
func TestLoadCorpusFeeds(t *testing.T) {
	tests := []struct {
		file     string
		minAdded int
		probe    string
	}{
		{"telemetry/blocklist_domains/scamblocklist_hosts.txt", 1000, "www.365analytics.xyz"},
		{"telemetry/zeek_intel/zat_intel_example.intel", 400, "0-o.ca"},
		{"telemetry/stix21/oasis_indicator-for-c2-ip-address.json", 1, ""},
		{"telemetry/stix21/oasis_indicators-for-C2-with-COA.json", 1, ""},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			b := NewBuilder(nil, 0)
			st, err := b.Load("corpus", FormatForPath(tt.file), readCorpus(t, tt.file), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if st.Added < tt.minAdded {
				t.Errorf("stats %+v: want at least %d indicators", st, tt.minAdded)
			}
			s := b.Build()
			if tt.probe != "" && len(s.MatchDomain(tt.probe, nil)) == 0 {
				t.Errorf("%s not matched", tt.probe)
			}
			if strings.Contains(tt.file, "stix") && len(s.MatchIP(netip.MustParseAddr("10.0.0.0"), nil)) == 0 {
				t.Error("STIX C2 address 10.0.0.0 not matched")
			}
		})
	}
}

func TestMatcherEval(t *testing.T) {
	m, err := NewMatcher(DefaultConfig(), testSet(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	ev := schemas.Event{ID: schemas.EventID("b:1", 0), Agency: "a1", ClassUID: schemas.ClassDNS}
	ev.DNS.QueryHostname = "x.bad.example.com"
	ev.DNS.Answers = []string{"203.0.113.5", "203.0.113.6", "cname.example."}
	got := m.Eval(&ev, nil)
	if len(got) != 2 {
		t.Fatalf("got %d findings, want 2 (domain, CIDR once): %+v", len(got), got)
	}
	if got[0].RuleID != "intel.feedA" || !strings.Contains(got[0].RuleTitle, "bad.example.com") ||
		got[0].Tags[2] != "intel.indicator:bad.example.com" || got[0].SeverityID != schemas.SeverityHigh || got[0].Agency != "a1" {
		t.Errorf("domain finding: %+v", got[0])
	}
	if got[1].RuleID != "intel.feedC" || got[1].Tags[2] != "intel.indicator:203.0.113.0/24" {
		t.Errorf("answer finding: %+v", got[1])
	}
	if again := m.Eval(&ev, nil); again[0].ID != got[0].ID {
		t.Error("finding ids differ between evaluations of the same event")
	}
	m.Swap(NewBuilder(nil, 0).Build())
	if n := len(m.Eval(&ev, nil)); n != 0 {
		t.Errorf("after swapping in an empty set: %d findings", n)
	}
	if _, err := NewMatcher(Config{Level: "urgent", MaxFindingsPerEvent: 1}, nil); err == nil {
		t.Error("bad level: want an error")
	}
}

func TestEvalAllocatesNothingWithoutMatch(t *testing.T) {
	m, _ := NewMatcher(DefaultConfig(), testSet(t, loadPSL(t)))
	ev := schemas.Event{ClassUID: schemas.ClassDNS}
	ev.DNS.QueryHostname = "WWW.Some.Benign.Example.Org"
	ev.DNS.Answers = []string{"192.0.2.1"}
	ev.Dst.IP = "192.0.2.53"
	out := make([]schemas.Finding, 0, 4)
	if n := testing.AllocsPerRun(100, func() { out = m.Eval(&ev, out[:0]) }); n != 0 {
		t.Errorf("Eval allocates %.1f times per event without a match", n)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("list", "evil.example\n198.51.100.1\n10.0.0.0/8\n")
	f.Add("hosts", "0.0.0.0 a.example b.example\n")
	f.Add("csv", "domain\nx.example\n")
	f.Add("stix", `{"type":"bundle","objects":[{"type":"indicator","pattern":"[domain-name:value = 'e.example']"}]}`)
	f.Fuzz(func(t *testing.T, format, data string) {
		b := NewBuilder(nil, 0)
		if _, err := b.Load("f", Format(format), strings.NewReader(data), time.Time{}); err != nil {
			return
		}
		s := b.Build()
		for _, line := range strings.Split(data, "\n") {
			_ = s.MatchDomain(line, nil)
		}
	})
}

// genIndicators returns n distinct synthetic domain indicators.
func genIndicators(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%07x-%d.bad%d.example", i*2654435761%(1<<28), i, i%977)
	}
	return out
}

func buildLarge(b testing.TB, n int, psl *PublicSuffixes) *Set {
	bl := NewBuilder(psl, n)
	for i, d := range genIndicators(n) {
		if err := bl.Add("bulk", d); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 { // a tenth as IPs, a few CIDRs
			a := netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
			_ = bl.Add("bulk-ip", a.String())
		}
	}
	_ = bl.Add("bulk-ip", "203.0.113.0/24")
	return bl.Build()
}

// BenchmarkSetMemory reports the heap a Set of 1M domain indicators (plus
// 100k IPs) holds, per indicator.
func BenchmarkSetMemory(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := buildLarge(b, n, nil)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(s.Len()), "B/indicator")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/set")
		runtime.KeepAlive(s)
	}
}

// BenchmarkMatch1M looks up names against 1M domain + 100k IP indicators:
// a miss with four labels, a parent-domain hit, and an answer address.
func BenchmarkMatch1M(b *testing.B) {
	psl := loadPSL(b)
	s := buildLarge(b, 1_000_000, psl)
	inds := genIndicators(1000)
	m, _ := NewMatcher(DefaultConfig(), s)
	miss := schemas.Event{ClassUID: schemas.ClassDNS}
	miss.DNS.QueryHostname = "www.images.benign-site.co.uk"
	miss.DNS.Answers = []string{"192.0.2.10", "192.0.2.11"}
	hit := schemas.Event{ClassUID: schemas.ClassDNS}
	hit.DNS.QueryHostname = "cdn." + inds[500]
	out := make([]schemas.Finding, 0, 16)
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			out = m.Eval(&miss, out[:0])
		}
	})
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			out = m.Eval(&hit, out[:0])
		}
		if len(out) != 1 {
			b.Fatalf("got %d findings", len(out))
		}
	})
	noBloom := *s
	noBloom.bloom = nil
	mNo, _ := NewMatcher(DefaultConfig(), &noBloom)
	b.Run("miss_without_bloom", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			out = mNo.Eval(&miss, out[:0])
		}
	})
	// Distinct names (as in real traffic) defeat the CPU caches: this is
	// where the Bloom filter in front of the 1M-entry map pays.
	names := make([]string, 1<<14)
	for i := range names {
		names[i] = fmt.Sprintf("host%d.site%d.example.co.uk", i, i*7)
	}
	for _, v := range []struct {
		name string
		set  *Set
	}{{"diverse_miss", s}, {"diverse_miss_without_bloom", &noBloom}} {
		b.Run(v.name, func(b *testing.B) {
			var ms []Match
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				ms = v.set.MatchDomain(names[i&(len(names)-1)], ms[:0])
			}
		})
	}
	b.Run("domain_lookup_only", func(b *testing.B) {
		var ms []Match
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			ms = s.MatchDomain(inds[i%len(inds)], ms[:0])
		}
	})
}
