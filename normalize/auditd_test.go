package normalize

import "testing"

func TestAuditdGolden(t *testing.T) {
	goldenDir(t, Auditd(), "testdata/auditd/*.log", "auditd_", map[string]int{"handwritten.log": 4})
}

// An EXECVE record takes its SYSCALL's process; one with another serial
// does not.
func TestAuditdJoin(t *testing.T) {
	got := decodeLines(t, Auditd(), BatchInfo{}, []byte(
		"type=SYSCALL msg=audit(1.5:7): syscall=59 pid=42 ppid=1 uid=0 auid=1000 comm=\"ls\" exe=\"/bin/ls\"\n"+
			"type=EXECVE msg=audit(1.5:7): argc=2 a0=\"ls\" a1=2D6C61\n"+
			"type=EXECVE msg=audit(1.5:8): argc=1 a0=\"other\"\n"))
	if len(got) != 3 {
		t.Fatalf("got %d records", len(got))
	}
	e := got[1].Event
	if e == nil || e.ClassUID != 1007 || e.ProcessName != "/bin/ls" || e.ProcessPID != 42 || e.Metadata.UID != "1.5:7" {
		t.Fatalf("joined EXECVE: got %+v", got[1])
	}
	if e.Observables[0] != "13 process.cmd_line = ls -la" {
		t.Errorf("got observable %q, want the cmd line ls -la", e.Observables[0])
	}
	if o := got[2].Event; o == nil || o.ProcessName != "" || o.ProcessPID != 0 {
		t.Errorf("unjoined EXECVE took another serial's process: %+v", got[2])
	}
}

func FuzzAuditd(f *testing.F) {
	fuzzSeeds(f, Auditd(), "testdata/auditd/*.log", 20)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, Auditd(), data) })
}

func BenchmarkAuditd(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/auditd/otrf_arp_cache.log", nil)
	benchDecode(b, Auditd(), dirs, recs)
}
