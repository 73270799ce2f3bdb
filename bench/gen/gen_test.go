package gen

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

// TestGeneratedRecordsParse feeds every generator's records to the parser
// it claims to produce for: a benchmark of dead letters measures nothing.
func TestGeneratedRecordsParse(t *testing.T) {
	reg := normalize.Builtin()
	now := time.Now()
	for _, g := range append(Mix(), Generator{Format: "zeek_dns", Append: func(dst []byte, _ *rand.Rand, i uint64, t time.Time) []byte {
		return append(dst, Probe(i, t)...)
	}}) {
		t.Run(g.Format, func(t *testing.T) {
			f, ok := reg.Lookup(g.Format)
			if !ok {
				t.Skipf("format %s is not registered in this build; the harness leaves it out of the mix", g.Format)
			}
			dec := f.NewDecoder(normalize.BatchInfo{Received: now})
			r := rand.New(rand.NewPCG(1, 2))
			var ev schemas.Event
			var buf []byte
			for i := uint64(0); i < 500; i++ {
				buf = g.Append(buf[:0], r, i, now.Add(-time.Duration(i)*time.Millisecond))
				ev.Reset()
				if err := dec.Record(buf, &ev); err != nil {
					t.Fatalf("record %d does not parse as %s: %v\n%s", i, g.Format, err, buf)
				}
				if ev.ClassUID == schemas.ClassBase {
					t.Errorf("record %d of %s normalized to a Base Event: the generator's shape is off\n%s", i, g.Format, buf)
				}
				if d := ev.Time.Sub(now); d > time.Minute || d < -time.Hour {
					t.Fatalf("record %d of %s has time %s, want about %s", i, g.Format, ev.Time, now)
				}
			}
		})
	}
}

func BenchmarkMix(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	mix := Mix()
	now := time.Now()
	var buf []byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = mix[i%len(mix)].Append(buf[:0], r, uint64(i), now)
	}
}
