package detect

import (
	"path/filepath"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// BenchmarkEval runs the bundled rules plus every SigmaHQ rule that compiles
// against one DNS and one syslog event. The "miss" events match nothing and
// must not allocate; the "hit" events raise one finding each.
func BenchmarkEval(b *testing.B) {
	rules, _ := parseDir("rules")
	_, corpus := loadCorpus(b, sigmaCorpus)
	rs, err := Compile(append(rules, corpus...), Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d rules, %d not routed to any event source", rs.Len(), len(rs.Unrouted()))

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

// winProcEvents are realistic Sysmon process creation events that match
// no SigmaHQ rule (checked by the benchmark).
func winProcEvents() []*schemas.Event {
	return []*schemas.Event{
		procEvent("Image", `C:\Windows\System32\svchost.exe`, "OriginalFileName", "svchost.exe",
			"CommandLine", `C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule`,
			"ParentImage", `C:\Windows\System32\services.exe`, "ParentCommandLine", `C:\Windows\system32\services.exe`,
			"User", `NT AUTHORITY\SYSTEM`, "IntegrityLevel", "System", "CurrentDirectory", `C:\Windows\system32\`,
			"Hashes", "SHA256=1A2B3C4D5E6F", "Company", "Microsoft Corporation", "Product", "Microsoft® Windows® Operating System",
			"Description", "Host Process for Windows Services"),
		procEvent("Image", `C:\Program Files\Mozilla Firefox\firefox.exe`, "OriginalFileName", "firefox.exe",
			"CommandLine", `"C:\Program Files\Mozilla Firefox\firefox.exe" -contentproc --channel=1234 -childID 5 -isForBrowser -prefsHandle 2345 -prefMapHandle 2346 -prefsLen 31000 -prefMapSize 238000 -parentBuildID 20240101 -appDir "C:\Program Files\Mozilla Firefox\browser" 6420 true tab`,
			"ParentImage", `C:\Program Files\Mozilla Firefox\firefox.exe`, "ParentCommandLine", `"C:\Program Files\Mozilla Firefox\firefox.exe"`,
			"User", `CORP\alice`, "IntegrityLevel", "Low", "CurrentDirectory", `C:\Program Files\Mozilla Firefox\`,
			"Company", "Mozilla Corporation", "Product", "Firefox", "Description", "Firefox"),
		procEvent("Image", `C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE`, "OriginalFileName", "WinWord.exe",
			"CommandLine", `"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:\Users\alice\Documents\Quarterly report.docx"`,
			"ParentImage", `C:\Windows\explorer.exe`, "ParentCommandLine", `C:\Windows\Explorer.EXE`,
			"User", `CORP\alice`, "IntegrityLevel", "Medium", "CurrentDirectory", `C:\Users\alice\Documents\`,
			"Company", "Microsoft Corporation", "Product", "Microsoft Office", "Description", "Microsoft Word"),
	}
}

// BenchmarkWindowsProcessCreation measures events per second with every
// SigmaHQ Windows rule loaded against 30 of them, on process creation
// events that match nothing (the common case) and on one that matches.
func BenchmarkWindowsProcessCreation(b *testing.B) {
	_, all := loadCorpus(b, filepath.Join(sigmaCorpus, "windows"))
	var proc []*Rule
	for _, r := range all {
		if r.Logsource.Category == "process_creation" {
			proc = append(proc, r)
		}
	}
	evs := winProcEvents()
	hit := procEvent("Image", `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, "OriginalFileName", "PowerShell.EXE",
		"CommandLine", `powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA`,
		"ParentImage", `C:\Windows\System32\cmd.exe`, "User", `CORP\alice`)
	// The 30-rule set holds the process creation rules the suspicious event
	// matches, then others in corpus order.
	allRS, err := Compile(all, Config{})
	if err != nil {
		b.Fatal(err)
	}
	matched := map[string]bool{}
	for _, f := range allRS.Eval(hit, nil) {
		matched[f.RuleID] = true
	}
	var thirty []*Rule
	for _, r := range proc {
		if matched[r.ID] {
			thirty = append(thirty, r)
		}
	}
	for _, r := range proc {
		if len(thirty) < 30 && !matched[r.ID] {
			thirty = append(thirty, r)
		}
	}
	sets := []struct {
		name  string
		rules []*Rule
	}{
		{"rules=30", thirty},
		{"rules=all-windows", all},
	}
	for _, set := range sets {
		rs, err := Compile(set.rules, Config{})
		if err != nil {
			b.Fatal(err)
		}
		for _, ev := range evs {
			if f := rs.Eval(ev, nil); len(f) != 0 {
				b.Fatalf("benign event matched %s (%s)", f[0].RuleID, f[0].RuleTitle)
			}
		}
		b.Run(set.name+"/miss", func(b *testing.B) {
			b.Logf("%d rules", rs.Len())
			out := make([]schemas.Finding, 0, 16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				out = rs.Eval(evs[i%len(evs)], out[:0])
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(set.name+"/hit", func(b *testing.B) {
			out := make([]schemas.Finding, 0, 16)
			b.ReportAllocs()
			for b.Loop() {
				out = rs.Eval(hit, out[:0])
			}
			b.ReportMetric(float64(len(out)), "findings")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
