package detect

import (
	"fmt"
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

func TestFieldResolution(t *testing.T) {
	// Windows rules read Sysmon's own names from unmapped (the logsource's
	// field overrides), even when the event's schema attribute holds
	// something else; Linux rules read the schema attribute.
	win := procEvent("Image", `C:\Windows\System32\cmd.exe`, "User", `CORP\bob`)
	win.ProcessName = "Microsoft-Windows-Sysmon"
	win.UserName = "someone-else"
	win.Dst.IP = "10.1.1.1"
	tests := []struct {
		name, logsource, detection string
		give                       *schemas.Event
		want                       bool
	}{
		{"windows Image is the vendor field", procLogsource, `sel: {Image|endswith: '\cmd.exe'}`, win, true},
		{"windows User is the vendor field", procLogsource, `sel: {User: 'CORP\bob'}`, win, true},
		{"DestinationIp is the schema attribute", procLogsource, "sel: {DestinationIp: 10.1.1.1}", win, true},
		{"schema attribute empty: vendor name", procLogsource, "sel: {DestinationIp: 10.2.2.2}", procEvent("DestinationIp", "10.2.2.2"), true},
		{"linux Image is actor.process.name", linuxLogsource, "sel: {Image: sshd}", syslogEvent("sshd", "m"), true},
		{"QueryName is query.hostname", dnsLogsource, "sel: {QueryName: a.com}", dnsEvent("a.com"), true},
		{"unknown field reads unmapped", procLogsource, "sel: {IntegrityLevel: High}", procEvent("IntegrityLevel", "High"), true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := mustCompile(t, testRule(fmt.Sprintf("fr-%d", i), tt.logsource, tt.detection+"\ncondition: sel"))
			if got := len(rs.Eval(tt.give, nil)) == 1; got != tt.want {
				t.Errorf("Eval() matched = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWindowsRouting(t *testing.T) {
	rs := mustCompile(t,
		testRule("proc", procLogsource, "sel: {CommandLine|contains: x}\ncondition: sel"),
		testRule("sec", "product: windows\nservice: security", "sel: {EventID: 4625}\ncondition: sel"),
		testRule("file", "product: windows\ncategory: file_event", "sel: {TargetFilename|endswith: .x}\ncondition: sel"),
	)
	ev := func(channel, id string, kv ...string) *schemas.Event {
		e := &schemas.Event{Agency: "doj", Unmapped: []schemas.KV{{Key: "Channel", Value: channel}, {Key: "EventID", Value: id}}}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Unmapped = append(e.Unmapped, schemas.KV{Key: kv[i], Value: kv[i+1]})
		}
		return e
	}
	ocsf := &schemas.Event{ClassUID: schemas.ClassProcess, ActivityID: 1, Unmapped: []schemas.KV{{Key: "CommandLine", Value: "x"}}}
	tests := []struct {
		name string
		give *schemas.Event
		want string
	}{
		{"sysmon 1", ev("Microsoft-Windows-Sysmon/Operational", "1", "CommandLine", "x"), "proc"},
		{"security 4688", ev("Security", "4688", "CommandLine", "x"), "proc"},
		{"ocsf process launch", ocsf, "proc"},
		{"sysmon 11", ev("Microsoft-Windows-Sysmon/Operational", "11", "TargetFilename", "a.x", "CommandLine", "x"), "file"},
		{"security 4625", ev("Security", "4625"), "sec"},
		{"other channel", ev("System", "1", "CommandLine", "x"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			for _, f := range rs.Eval(tt.give, nil) {
				ids = append(ids, f.RuleID)
			}
			if got := strings.Join(ids, " "); got != tt.want {
				t.Errorf("Eval() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestMappingValidate(t *testing.T) {
	tests := []struct{ name, give, want string }{
		{"unknown attribute", "fields: {X: no.such}\n", `mapping.fields.X: unknown attribute "no.such"`},
		{"empty unmapped key", "fields: {X: 'unmapped:'}\n", `"unmapped:" needs a key`},
		{"override unknown", "logsources:\n  - {name: a, match: {product: x}, events: {class_uid: [1]}, fields: {X: nope}}\n", `logsources[0] (a).fields.X`},
		{"selects nothing", "logsources:\n  - {name: a, match: {product: x}}\n", "must select something"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMapping([]byte(tt.give))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseMapping() error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParsePlaceholders(t *testing.T) {
	ph, err := ParsePlaceholders([]byte("Admins: ['CORP\\a', 'CORP\\b']\n'%DC%': dc01\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ph["Admins"], ph["DC"]); got != `[CORP\a CORP\b] [dc01]` {
		t.Errorf("ParsePlaceholders() = %v", ph)
	}
	if _, err := ParsePlaceholders([]byte("Empty: []\n")); err == nil {
		t.Error("ParsePlaceholders(empty list) = nil error")
	}
}

func TestEvalNoAllocOnMissIndexed(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts do not hold under the race detector")
	}
	var docs []string
	for i := 0; i < 3*minIndexedGroup; i++ {
		docs = append(docs, testRule(fmt.Sprintf("ix-%d", i), procLogsource,
			fmt.Sprintf("sel: {Image|endswith: '\\tool%d.exe', CommandLine|contains|all: [' -a%d', ' -b']}\nf: {User: null}\ncondition: sel and not f", i, i)))
	}
	rs := mustCompile(t, docs...)
	if rs.groups[0].index == nil {
		t.Fatal("group not indexed")
	}
	miss := procEvent("Image", `C:\tool3.exe`, "CommandLine", "tool3 -a3 -c", "User", "x")
	hit := procEvent("Image", `C:\tool3.exe`, "CommandLine", "tool3 -a3 -b", "User", "x")
	if n := len(rs.Eval(hit, nil)); n != 1 {
		t.Fatalf("hit event: %d findings, want 1", n)
	}
	out := make([]schemas.Finding, 0, 4)
	if n := testing.AllocsPerRun(100, func() { out = rs.Eval(miss, out[:0]) }); n != 0 || len(out) != 0 {
		t.Errorf("Eval() on a near miss: %v allocations, %d findings; want 0, 0", n, len(out))
	}
}
