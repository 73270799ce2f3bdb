package detect

import (
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// FuzzRule parses, compiles and evaluates arbitrary rule documents: no
// panic, and a rule that compiles evaluates on a few events. The prefilter
// must agree with the full evaluation.
func FuzzRule(f *testing.F) {
	for _, s := range []string{
		testRule("f1", procLogsource, "sel: {CommandLine|contains|all: [a, b]}\ncondition: sel"),
		testRule("f2", procLogsource, "sel: {CommandLine|wide|base64offset|contains: 'IEX'}\ncondition: sel"),
		testRule("f3", procLogsource, "sel: {CommandLine|re|i: 'a.c'}\nf: {User: null}\ncondition: sel and not f"),
		testRule("f4", procLogsource, "sel: {Image|fieldref: ParentImage}\ncondition: sel"),
		testRule("f5", procLogsource, "sel: {CommandLine|windash|contains: ' -x '}\ncondition: 1 of them"),
		testRule("f6", dnsLogsource, "keywords: ['*é*', 'ab?c']\ncondition: keywords"),
		"title: c\nid: c1\nlevel: low\ncorrelation: {type: event_count, rules: [f1], timespan: 5m, condition: {gte: 2}}\n",
	} {
		f.Add(s)
	}
	evs := []*schemas.Event{
		procEvent("CommandLine", "powershell -x IEX a.c b", "Image", `C:\a.exe`, "ParentImage", `C:\A.exe`),
		procEvent("CommandLine", "ǅ ſ \u212a é ab c", "User", "x"),
		dnsEvent("a.example.com", "10.0.0.1"),
	}
	cfg := Config{Mapping: DefaultMapping(), Placeholders: map[string][]string{"x": {"y"}}}
	f.Fuzz(func(t *testing.T, doc string) {
		if len(doc) > 1<<14 {
			return
		}
		rules, _ := parseFile("fuzz.yml", []byte(doc))
		rs, err := Compile(rules, cfg)
		if err != nil {
			return
		}
		for _, ev := range evs {
			got := len(rs.EvalHits(ev, nil))
			want := len(bruteForceHits(rs, ev))
			if got != want {
				t.Fatalf("indexed %d hits, brute force %d\n%s", got, want, doc)
			}
			rs.Eval(ev, nil)
		}
	})
}
