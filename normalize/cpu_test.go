package normalize

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCPUThroughput reports records per CPU-second and allocations per
// record for each parser. CPU time (getrusage) rather than wall time keeps
// the figures meaningful on a shared, loaded machine. Run with
// WATCHFLOOR_CPUBENCH=1 go test -run CPUThroughput -v ./normalize.
func TestCPUThroughput(t *testing.T) {
	if os.Getenv("WATCHFLOOR_CPUBENCH") == "" {
		t.Skip("set WATCHFLOOR_CPUBENCH=1 to measure")
	}
	cases := []struct {
		name   string
		format Format
		file   string
		keep   func([]byte) bool
	}{
		{"zeek json conn", Zeek(), "testdata/zeeklogs/json_conn.log", nil},
		{"zeek json http", Zeek(), "testdata/zeeklogs/json_http.log", nil},
		{"zeek tsv conn", Zeek(), "testdata/zeeklogs/tsv_conn.log", nil},
		{"suricata eve (mixed)", SuricataEVE(), "testdata/suricata/surevego_eve.json", nil},
		{"syslog 3164", Syslog(), "testdata/syslog/handwritten.log", func(l []byte) bool { return !is5424(l) }},
		{"cef/leef", CEF(), "testdata/cef/handwritten.log", func(l []byte) bool { return len(l) > 60 }},
		{"winevent_json (nxlog)", WinEventJSON(), "testdata/winevent/otrf_nxlog.json", nil},
		{"auditd", Auditd(), "testdata/auditd/otrf_arp_cache.log", nil},
		{"fortinet", Fortinet(), "testdata/firewall/fortinet.log", func(l []byte) bool { return len(l) > 100 }},
		{"cisco_asa", CiscoASA(), "testdata/firewall/cisco_asa.log", func(l []byte) bool { return len(l) > 40 }},
	}
	const n = 200000
	for _, c := range cases {
		data, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		var dirs, recs [][]byte
		for _, l := range splitLines(data) {
			switch {
			case c.format.Directive(l):
				dirs = append(dirs, l)
			case c.keep == nil || c.keep(l):
				recs = append(recs, l)
			}
		}
		dec := c.format.NewDecoder(BatchInfo{Received: goldenReceived})
		for _, d := range dirs {
			_ = dec.Directive(d)
		}
		var ev schemas.Event
		errs := 0
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mallocs := ms.Mallocs
		start := cpuTime()
		for i := 0; i < n; i++ {
			ev.Reset()
			if dec.Record(recs[i%len(recs)], &ev) != nil {
				errs++
			}
		}
		cpu := cpuTime() - start
		runtime.ReadMemStats(&ms)
		t.Logf("%-24s %9.0f records/CPU-s  %6.0f ns/record  %5.1f allocs/record  (%d sample lines, %d errors)",
			c.name, float64(n)/cpu.Seconds(), float64(cpu.Nanoseconds())/n, float64(ms.Mallocs-mallocs)/n, len(recs), errs)
	}
}

func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i, c := range data {
		if c == '\n' {
			if i > start {
				out = append(out, data[start:i])
			}
			start = i + 1
		}
	}
	if start < len(data) {
		out = append(out, data[start:])
	}
	return out
}
