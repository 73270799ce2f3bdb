package rulebook_test

import (
	"testing"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/schemas"
)

// BenchmarkSetEval compares the rulebook Set (which stamps KV revisions on
// findings) with the bare engine on the bundled rules.
func BenchmarkSetEval(b *testing.B) {
	base, err := rulebook.LoadBase("../rules")
	if err != nil {
		b.Fatal(err)
	}
	set, err := rulebook.StaticSet(base, detect.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	miss := &schemas.Event{ClassUID: schemas.ClassDNS, Format: "zeek_dns"}
	miss.DNS.QueryHostname = "www.example.com"
	hit := &schemas.Event{ClassUID: schemas.ClassDNS, Format: "zeek_dns"}
	hit.DNS.QueryHostname = "wpad.agency.example"
	out := make([]schemas.Finding, 0, 8)
	for _, bc := range []struct {
		name string
		ev   *schemas.Event
		eval func(*schemas.Event, []schemas.Finding) []schemas.Finding
	}{
		{"engine/miss", miss, set.RuleSet().Eval},
		{"set/miss", miss, set.Eval},
		{"engine/hit", hit, set.RuleSet().Eval},
		{"set/hit", hit, set.Eval},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out = bc.eval(bc.ev, out[:0])
			}
		})
	}
}
