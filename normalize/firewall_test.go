package normalize

import "testing"

func TestFirewallGolden(t *testing.T) {
	goldenDir(t, Fortinet(), "testdata/firewall/fortinet.log", "firewall_", map[string]int{"fortinet.log": 2})
	goldenDir(t, CiscoASA(), "testdata/firewall/cisco_asa.log", "firewall_", map[string]int{"cisco_asa.log": 3})
	goldenDir(t, Squid(), "testdata/firewall/squid.log", "firewall_", map[string]int{"squid.log": 2})
	goldenDir(t, PaloAlto(), "testdata/firewall/paloalto.log", "firewall_", map[string]int{"paloalto.log": 2})
}

func FuzzFortinet(f *testing.F) {
	fuzzSeeds(f, Fortinet(), "testdata/firewall/fortinet.log", 10)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, Fortinet(), data) })
}

func FuzzCiscoASA(f *testing.F) {
	fuzzSeeds(f, CiscoASA(), "testdata/firewall/cisco_asa.log", 10)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, CiscoASA(), data) })
}

func FuzzSquid(f *testing.F) {
	fuzzSeeds(f, Squid(), "testdata/firewall/squid.log", 10)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, Squid(), data) })
}

func BenchmarkFortinet(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/firewall/fortinet.log", nil)
	benchDecode(b, Fortinet(), dirs, recs[:4])
}

func BenchmarkCiscoASA(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/firewall/cisco_asa.log", nil)
	benchDecode(b, CiscoASA(), dirs, recs[:7])
}

func FuzzPaloAlto(f *testing.F) {
	fuzzSeeds(f, PaloAlto(), "testdata/firewall/paloalto.log", 10)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, PaloAlto(), data) })
}

func BenchmarkPaloAlto(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/firewall/paloalto.log", nil)
	benchDecode(b, PaloAlto(), dirs, recs[:5])
}
