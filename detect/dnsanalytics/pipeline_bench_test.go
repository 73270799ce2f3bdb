package dnsanalytics

import (
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/detect/intel"
	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

// BenchmarkDNSPipeline is the per-event cost of the DNS path on one core:
// parse a BIND query-log line, match it against 1M domain + 100k IP
// indicators, and run every DNS analytic (with the DGA model). Names are
// drawn from popular domains (mostly misses, as in real traffic) from 256
// clients. events/s per core = 1e9 / ns/op.
func BenchmarkDNSPipeline(b *testing.B) {
	f := loadFixture(b)
	benchOnce.Do(func() { benchSet = buildBenchSet(b, f.psl) })
	m, err := intel.NewMatcher(intel.DefaultConfig(), benchSet)
	if err != nil {
		b.Fatal(err)
	}
	a := newAnalyzer(b, f, nil)
	lines := make([][]byte, 4096)
	for i := range lines {
		name := "www." + f.popular[(i*7919)%len(f.popular)]
		lines[i] = []byte(fmt.Sprintf("03-Feb-2024 15:47:%02d.123 queries: info: client @0x7f9b3c0d2168 10.1.%d.%d#53421 (%s): query: %s IN A +E(0)K (198.51.100.53)",
			i%60, i/256%256, i%256, name, name))
	}
	dec := normalize.BindQuery().NewDecoder(normalize.BatchInfo{Received: time.Now()})
	var ev schemas.Event
	out := make([]schemas.Finding, 0, 16)
	findings := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev.Reset()
		if err := dec.Record(lines[i%len(lines)], &ev); err != nil {
			b.Fatal(err)
		}
		ev.ID = schemas.EventID("bench", i)
		ev.Agency = "a1"
		out = m.Eval(&ev, out[:0])
		out = a.Eval(&ev, out)
		findings += len(out)
	}
	// CPU time of the process (this goroutine, GC and runtime), so the
	// figure holds on a loaded machine where wall time does not.
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(findings)/float64(b.N), "findings/event")
}

var (
	benchOnce sync.Once
	benchSet  *intel.Set
)

// buildBenchSet generates 1M domain and 100k IP indicators (never stored).
func buildBenchSet(b *testing.B, psl *intel.PublicSuffixes) *intel.Set {
	const nIndicators = 1_000_000
	bl := intel.NewBuilder(psl, nIndicators)
	for i := 0; i < nIndicators; i++ {
		if err := bl.Add("bulk", fmt.Sprintf("h%07x-%d.bad%d.example", i*2654435761%(1<<28), i, i%977)); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			_ = bl.Add("bulk-ip", netip.AddrFrom4([4]byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}).String())
		}
	}
	return bl.Build()
}

// cpuTime is the user+system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
