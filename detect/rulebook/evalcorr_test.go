package rulebook_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/schemas"
)

const corrRules = `title: Whoami
id: rule-whoami
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|contains: whoami}
  condition: sel
---
title: Net user
id: rule-net
level: low
logsource: {product: windows, category: process_creation}
detection:
  sel: {CommandLine|contains: net user}
  condition: sel
---
title: Many whoami
id: corr-count
level: high
correlation: {type: event_count, rules: [rule-whoami], group-by: [User], timespan: 10m, condition: {gte: 2}}
---
title: Recon then more
id: corr-seq
level: high
correlation: {type: temporal, rules: [rule-whoami, rule-net], group-by: [User], timespan: 1h, generate: true}
`

func corrSet(t testing.TB) *rulebook.Set {
	t.Helper()
	rr, err := detect.ParseRules([]byte(corrRules))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rulebook.StaticSet(rr, detect.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func procEvent(n int, cmd string) *schemas.Event {
	return &schemas.Event{ID: schemas.EventID("evalcorr", n), Agency: "doj", Time: time.Unix(1_700_000_000+int64(n), 0).UTC(),
		ClassUID: schemas.ClassProcess, ActivityID: 1,
		Unmapped: []schemas.KV{{Key: "CommandLine", Value: cmd}, {Key: "User", Value: "alice"}}}
}

// TestSetEvalCorr checks that EvalCorr (routed correlations) returns the
// detection findings and the correlation inputs of each hit, while Eval
// (in-process) fires the correlation itself.
func TestSetEvalCorr(t *testing.T) {
	set := corrSet(t)
	if got := set.CorrelationSpan(); got != time.Hour {
		t.Errorf("CorrelationSpan() = %s, want 1h", got)
	}
	tests := []struct {
		name       string
		give       string
		wantRules  []string // findings of EvalCorr
		wantInputs []string // corr/ref of the inputs
	}{
		{"feeds two correlations; generate: true keeps its finding", "whoami /all", []string{"rule-whoami"}, []string{"corr-count/0", "corr-seq/0"}},
		{"second rule of the temporal", "net user x", []string{"rule-net"}, []string{"corr-seq/1"}},
		{"no match", "dir c:", nil, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs, ins := set.EvalCorr(procEvent(i, tt.give), nil, nil)
			var gotRules, gotInputs []string
			for _, f := range fs {
				gotRules = append(gotRules, f.RuleID)
			}
			for _, in := range ins {
				gotInputs = append(gotInputs, fmt.Sprintf("%s/%d", in.Corr, in.Ref))
				if len(in.Group) != 1 || in.Group[0] != "alice" || in.Agency != "doj" {
					t.Errorf("input %+v: want group [alice], agency doj", in)
				}
			}
			if fmt.Sprint(gotRules) != fmt.Sprint(tt.wantRules) || fmt.Sprint(gotInputs) != fmt.Sprint(tt.wantInputs) {
				t.Errorf("EvalCorr() = findings %v, inputs %v; want %v, %v", gotRules, gotInputs, tt.wantRules, tt.wantInputs)
			}
		})
	}
	// Routed: two whoami events never fire corr-count in-process.
	for n := 0; n < 3; n++ {
		fs, _ := set.EvalCorr(procEvent(10+n, "whoami"), nil, nil)
		for _, f := range fs {
			if f.RuleID == "corr-count" {
				t.Fatalf("EvalCorr raised a correlation finding in-process")
			}
		}
	}
	// In-process (local mode): Eval does.
	local := corrSet(t)
	fired := 0
	for n := 0; n < 2; n++ {
		for _, f := range local.Eval(procEvent(20+n, "whoami"), nil) {
			if f.RuleID == "corr-count" {
				fired++
			}
		}
	}
	if fired != 1 {
		t.Errorf("Eval fired corr-count %d times over two matches, want 1", fired)
	}
}

func TestSetEvalCorrNoMatchAllocs(t *testing.T) {
	set := corrSet(t)
	ev := procEvent(0, "dir c:")
	out := make([]schemas.Finding, 0, 4)
	ins := make([]detect.CorrInput, 0, 4)
	if n := testing.AllocsPerRun(200, func() { out, ins = set.EvalCorr(ev, out[:0], ins[:0]) }); n != 0 {
		t.Errorf("EvalCorr allocates %.1f times per non-matching event, want 0", n)
	}
}

// BenchmarkSetEvalCorr compares in-process correlation (Eval) with routed
// (EvalCorr, which only collects the inputs) on a matching and a
// non-matching event.
func BenchmarkSetEvalCorr(b *testing.B) {
	set := corrSet(b)
	out := make([]schemas.Finding, 0, 8)
	ins := make([]detect.CorrInput, 0, 8)
	for _, bc := range []struct {
		name string
		ev   *schemas.Event
	}{{"miss", procEvent(0, "dir c:")}, {"hit", procEvent(1, "whoami /all")}} {
		b.Run("eval/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out = set.Eval(bc.ev, out[:0])
			}
		})
		b.Run("evalcorr/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				out, ins = set.EvalCorr(bc.ev, out[:0], ins[:0])
			}
		})
	}
}
