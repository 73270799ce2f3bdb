package detect

import (
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"unicode/utf16"

	"github.com/watchfloor/watchfloor/schemas"
)

const procLogsource = "product: windows\ncategory: process_creation"

// procEvent is a Sysmon process creation event with the given EventData
// (name, value pairs), as a Windows normalizer keeps it.
func procEvent(kv ...string) *schemas.Event {
	ev := &schemas.Event{
		ID: schemas.EventID("sensor-3:1", 0), Agency: "doj", Sensor: "sensor-3", Format: "winevent_json",
		Time: testTime, ClassUID: schemas.ClassProcess, ActivityID: 1,
		Unmapped: []schemas.KV{{Key: "Channel", Value: "Microsoft-Windows-Sysmon/Operational"}, {Key: "EventID", Value: "1"}},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		ev.Unmapped = append(ev.Unmapped, schemas.KV{Key: kv[i], Value: kv[i+1]})
	}
	return ev
}

func cmdline(s string) *schemas.Event { return procEvent("CommandLine", s) }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func utf16le(s string) string {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return string(b)
}

// TestModifiers checks each value modifier against the specification's
// wording (sigma-appendix-modifiers.md); the expected results follow from
// the text, the events are built independently of the engine.
func TestModifiers(t *testing.T) {
	tests := []struct {
		name      string
		detection string
		give      *schemas.Event
		want      bool
	}{
		// contains / startswith / endswith: a wildcard at both ends, the end, the start.
		{"contains", "sel: {CommandLine|contains: 'WHOAMI'}", cmdline(`cmd /c whoami /all`), true},
		{"contains, absent", "sel: {CommandLine|contains: 'net user'}", cmdline(`cmd /c whoami`), false},
		{"startswith", "sel: {CommandLine|startswith: 'cmd '}", cmdline(`CMD /c dir`), true},
		{"startswith, not at start", "sel: {CommandLine|startswith: '/c'}", cmdline(`cmd /c dir`), false},
		{"endswith", "sel: {Image|endswith: '\\cmd.exe'}", procEvent("Image", `C:\Windows\System32\cmd.exe`), true},
		{"endswith, not at end", "sel: {Image|endswith: '\\cmd'}", procEvent("Image", `C:\Windows\System32\cmd.exe`), false},
		{"contains keeps inner wildcards", "sel: {CommandLine|contains: 'a*c'}", cmdline(`xx abbbc yy`), true},
		{"contains with ? wildcard", "sel: {CommandLine|contains: 'a?c'}", cmdline(`xx abc yy`), true},
		{"contains with ? needs one char", "sel: {CommandLine|contains: 'a?c'}", cmdline(`xx ac yy`), false},

		// all: the value list becomes AND.
		{"all, every value", "sel: {CommandLine|contains|all: [' -w ', 'hidden']}", cmdline(`powershell -w hidden -c x`), true},
		{"all, one missing", "sel: {CommandLine|contains|all: [' -w ', 'hidden', 'enc']}", cmdline(`powershell -w hidden -c x`), false},
		{"list without all is OR", "sel: {CommandLine|contains: [' -w ', 'nope']}", cmdline(`powershell -w hidden`), true},

		// cased: case-sensitive.
		{"cased", "sel: {CommandLine|cased: 'Invoke-Mimikatz'}", cmdline(`Invoke-Mimikatz`), true},
		{"cased, other case", "sel: {CommandLine|cased: 'Invoke-Mimikatz'}", cmdline(`invoke-mimikatz`), false},
		{"cased contains", "sel: {CommandLine|contains|cased: 'DumpCreds'}", cmdline(`x -DumpCreds`), true},
		{"cased contains, other case", "sel: {CommandLine|contains|cased: 'DumpCreds'}", cmdline(`x -dumpcreds`), false},
		{"default is case-insensitive", "sel: {CommandLine: 'INVOKE-MIMIKATZ'}", cmdline(`invoke-mimikatz`), true},

		// re: case-sensitive unless i; m and s flags.
		{"re", "sel: {CommandLine|re: '-[Ee]nc [A-Za-z0-9+/=]{8,}'}", cmdline(`powershell -enc SQBFAFgAIAAo`), true},
		{"re is case-sensitive", "sel: {CommandLine|re: 'POWERSHELL'}", cmdline(`powershell`), false},
		{"re|i", "sel: {CommandLine|re|i: 'POWERSHELL'}", cmdline(`powershell`), true},
		{"re without m: ^ is text start", "sel: {CommandLine|re: '^second'}", cmdline("first\nsecond"), false},
		{"re|m: ^ is line start", "sel: {CommandLine|re|m: '^second'}", cmdline("first\nsecond"), true},
		{"re without s: dot stops at newline", "sel: {CommandLine|re: 'first.second'}", cmdline("first\nsecond"), false},
		{"re|s: dot matches newline", "sel: {CommandLine|re|s: 'first.second'}", cmdline("first\nsecond"), true},
		{"re|i|m|s together", "sel: {CommandLine|re|i|m|s: '^SECOND.X'}", cmdline("first\nsecond\nx"), true},

		// cidr: IPv4 and IPv6 containment.
		{"cidr v4 inside", "sel: {DestinationIp|cidr: '10.0.0.0/8'}", procEvent("DestinationIp", "10.20.30.40"), true},
		{"cidr v4 outside", "sel: {DestinationIp|cidr: '10.0.0.0/8'}", procEvent("DestinationIp", "11.0.0.1"), false},
		{"cidr v4 edge", "sel: {DestinationIp|cidr: '192.168.1.0/24'}", procEvent("DestinationIp", "192.168.1.255"), true},
		{"cidr v6 inside", "sel: {DestinationIp|cidr: 'fe80::/10'}", procEvent("DestinationIp", "fe80::1c2a:3bff:fe4d:5e6f"), true},
		{"cidr v6 outside", "sel: {DestinationIp|cidr: 'fe80::/10'}", procEvent("DestinationIp", "2001:db8::1"), false},
		{"cidr list is OR", "sel: {DestinationIp|cidr: ['10.0.0.0/8', '::1/128']}", procEvent("DestinationIp", "::1"), true},
		{"cidr v4-mapped v6", "sel: {DestinationIp|cidr: '10.0.0.0/8'}", procEvent("DestinationIp", "::ffff:10.1.2.3"), true},
		{"cidr not an address", "sel: {DestinationIp|cidr: '10.0.0.0/8'}", procEvent("DestinationIp", "10.example"), false},

		// base64: the value is encoded, then compared.
		{"base64 exact", "sel: {CommandLine|base64: 'whoami'}", cmdline(b64("whoami")), true},
		{"base64 contains at offset 0", "sel: {CommandLine|base64|contains: 'whoami'}", cmdline("x " + b64("whoami /all")), true},
		{"base64 keeps its padding", "sel: {CommandLine|base64|contains: 'http://'}", cmdline("x " + b64("http://evil")), false},
		{"base64 contains, other offset", "sel: {CommandLine|base64|contains: 'whoami'}", cmdline(b64("x whoami /all")), false},
		{"base64 plain text does not match", "sel: {CommandLine|base64: 'whoami'}", cmdline("whoami"), false},

		// base64offset: matches the value at any of the three alignments.
		{"base64offset offset 0", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline(b64("/bin/bash -i")), true},
		{"base64offset offset 1", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline(b64("x/bin/bash -i")), true},
		{"base64offset offset 2", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline(b64("xy/bin/bash -i")), true},
		{"base64offset offset 3 = 0", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline(b64("xyz/bin/bash")), true},
		{"base64offset other text", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline(b64("/bin/sh -i")), false},
		{"base64offset spec literals", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline("L2Jpbi9iYXNo"), true},
		{"base64offset spec literals 2", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline("9iaW4vYmFza"), true},
		{"base64offset spec literals 3", "sel: {CommandLine|base64offset|contains: '/bin/bash'}", cmdline("vYmluL2Jhc2"), true},
		{"base64offset all, both present", "sel: {CommandLine|base64offset|contains|all: ['whoami', 'net user']}", cmdline(b64("x whoami; net user")), true},
		{"base64offset all, one missing", "sel: {CommandLine|base64offset|contains|all: ['whoami', 'net user']}", cmdline(b64("x whoami; ls")), false},

		// utf16le (wide), utf16be, utf16 (BOM), usually before base64offset.
		{"wide base64offset", "sel: {CommandLine|wide|base64offset|contains: 'Invoke-Expression'}", cmdline("powershell -enc " + b64(utf16le("x;Invoke-Expression $a"))), true},
		{"wide base64offset offset 1", "sel: {CommandLine|wide|base64offset|contains: 'IEX'}", cmdline(b64("?" + utf16le("IEX (x)"))), true},
		{"utf16le = wide", "sel: {CommandLine|utf16le|base64offset|contains: 'IEX'}", cmdline(b64(utf16le("a IEX b"))), true},
		{"wide without base64", "sel: {CommandLine|wide|contains: 'ab'}", cmdline("x" + utf16le("ab") + "y"), true},
		{"wide does not match narrow", "sel: {CommandLine|wide|base64offset|contains: 'IEX'}", cmdline(b64("a IEX b")), false},
		{"utf16be", "sel: {CommandLine|utf16be|base64: 'AB'}", cmdline(b64("\x00A\x00B")), true},
		{"utf16 has a BOM", "sel: {CommandLine|utf16|base64: 'AB'}", cmdline(b64("\xff\xfeA\x00B\x00")), true},

		// windash: - / – — ― at the start of an option.
		{"windash dash", "sel: {CommandLine|windash|contains: ' -exec bypass'}", cmdline(`powershell -exec bypass`), true},
		{"windash slash", "sel: {CommandLine|windash|contains: ' -exec bypass'}", cmdline(`powershell /exec bypass`), true},
		{"windash en dash", "sel: {CommandLine|windash|contains: ' -exec bypass'}", cmdline("powershell \u2013exec bypass"), true},
		{"windash em dash", "sel: {CommandLine|windash|contains: ' -exec bypass'}", cmdline("powershell \u2014exec bypass"), true},
		{"windash horizontal bar", "sel: {CommandLine|windash|contains: ' -exec bypass'}", cmdline("powershell \u2015exec bypass"), true},
		{"windash other char", "sel: {CommandLine|windash|contains: ' -exec bypass'}", cmdline(`powershell +exec bypass`), false},
		{"windash slash written", "sel: {CommandLine|contains|windash: ' /c '}", cmdline(`cmd -c dir`), true},
		{"windash after endswith", "sel: {CommandLine|endswith|windash: ' -s'}", cmdline(`x /s`), true},
		{"windash before base64", "sel: {CommandLine|windash|base64offset|contains: ' -enc '}", cmdline(b64("a /enc b")), true},

		// exists.
		{"exists true", "sel: {ParentImage|exists: true}", procEvent("ParentImage", `C:\x.exe`), true},
		{"exists true, absent", "sel: {ParentImage|exists: true}", procEvent(), false},
		{"exists false, absent", "sel: {ParentImage|exists: false}", procEvent(), true},
		{"exists false, present", "sel: {ParentImage|exists: false}", procEvent("ParentImage", `C:\x.exe`), false},

		// fieldref: compare with another field of the event.
		{"fieldref equal", "sel: {Image|fieldref: ParentImage}", procEvent("Image", `C:\a.exe`, "ParentImage", `C:\A.EXE`), true},
		{"fieldref different", "sel: {Image|fieldref: ParentImage}", procEvent("Image", `C:\a.exe`, "ParentImage", `C:\b.exe`), false},
		{"fieldref other absent", "sel: {Image|fieldref: ParentImage}", procEvent("Image", `C:\a.exe`), false},
		{"fieldref cased", "sel: {Image|fieldref|cased: ParentImage}", procEvent("Image", `C:\a.exe`, "ParentImage", `C:\A.EXE`), false},
		{"fieldref endswith", "sel: {Image|fieldref|endswith: OriginalFileName}", procEvent("Image", `C:\x\cmd.exe`, "OriginalFileName", "Cmd.Exe"), true},
		{"fieldref neq", "sel: {User|fieldref|neq: ParentUser}", procEvent("User", "bob", "ParentUser", "SYSTEM"), true},
		{"fieldref neq, equal", "sel: {User|fieldref|neq: ParentUser}", procEvent("User", "bob", "ParentUser", "BOB"), false},

		// Numeric comparisons.
		{"gt", "sel: {IntegrityLevelNum|gt: 3}", procEvent("IntegrityLevelNum", "4"), true},
		{"gt, equal", "sel: {IntegrityLevelNum|gt: 3}", procEvent("IntegrityLevelNum", "3"), false},
		{"gte, equal", "sel: {IntegrityLevelNum|gte: 3}", procEvent("IntegrityLevelNum", "3"), true},
		{"lt", "sel: {IntegrityLevelNum|lt: 3}", procEvent("IntegrityLevelNum", "2.5"), true},
		{"lt, greater", "sel: {IntegrityLevelNum|lt: 3}", procEvent("IntegrityLevelNum", "30"), false},
		{"lte, equal", "sel: {IntegrityLevelNum|lte: 3}", procEvent("IntegrityLevelNum", "3"), true},
		{"numeric not a number", "sel: {IntegrityLevelNum|gt: 3}", procEvent("IntegrityLevelNum", "high"), false},
		{"numeric absent", "sel: {IntegrityLevelNum|lt: 3}", procEvent(), false},
		{"gt on an integer attribute", "sel: {dst_port|gt: 1024}", func() *schemas.Event { e := procEvent(); e.Dst.Port = 4444; return e }(), true},
		{"lte on an integer attribute", "sel: {dst_port|lte: 1024}", func() *schemas.Event { e := procEvent(); e.Dst.Port = 4444; return e }(), false},
		{"neq", "sel: {IntegrityLevel|neq: System}", procEvent("IntegrityLevel", "High"), true},
		{"neq, equal", "sel: {IntegrityLevel|neq: System}", procEvent("IntegrityLevel", "SYSTEM"), false},

		// Time parts (2.1).
		{"hour", "sel: {UtcTime|hour|gte: 22}", procEvent("UtcTime", "2025-01-20 23:15:00.123"), true},
		{"hour, earlier", "sel: {UtcTime|hour|gte: 22}", procEvent("UtcTime", "2025-01-20 08:15:00.123"), false},
		{"month eq", "sel: {UtcTime|month: 1}", procEvent("UtcTime", "2025-01-20T23:15:00Z"), true},

		// expand with placeholders (see TestExpand for the placeholders given).
		{"expand", "sel: {User|expand: '%Admins%'}", procEvent("User", "CORP\\alice"), true},
		{"expand other", "sel: {User|expand: '%Admins%'}", procEvent("User", "CORP\\mallory"), false},
		{"expand inside a value", "sel: {Hostname|expand|startswith: '%DC%-'}", procEvent("Hostname", "dc02-eu"), true},
		{"expand escaped percent", "sel: {CommandLine|expand: '100\\%'}", cmdline("100%"), true},
		{"placeholder without expand is literal", "sel: {User: '%Admins%'}", procEvent("User", "%admins%"), true},
		{"placeholder without expand is not expanded", "sel: {User: '%Admins%'}", procEvent("User", "CORP\\alice"), false},
		{"expand with wildcard values", "sel: {User|expand: '%Service%'}", procEvent("User", "svc_backup"), true},
	}
	cfg := Config{Placeholders: map[string][]string{
		"Admins":  {`CORP\alice`, `CORP\bob`},
		"DC":      {"dc01", "dc02"},
		"Service": {"svc_*"},
	}}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := testRule(fmt.Sprintf("m-%d", i), procLogsource, tt.detection+"\ncondition: sel")
			r, err := ParseRule([]byte(doc))
			if err != nil {
				t.Fatalf("ParseRule() error = %v", err)
			}
			rs, err := Compile([]*Rule{r}, cfg)
			if err != nil {
				t.Fatalf("Compile() error = %v", err)
			}
			got := len(rs.Eval(tt.give, nil)) == 1
			if got != tt.want {
				t.Errorf("Eval() matched = %v, want %v\n%s", got, tt.want, tt.detection)
			}
		})
	}
}

func TestBase64Offsets(t *testing.T) {
	// The specification's example: /bin/bash at the three alignments.
	got := base64Offsets("/bin/bash")
	want := []string{"L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("base64Offsets(/bin/bash) = %q, want %q", got, want)
	}
	// Every variant occurs in the encoding of the value at its offset, with
	// any neighbouring bytes.
	for _, v := range []string{"abc", "abcd", "whoami", "Invoke-Expression"} {
		offs := base64Offsets(v)
		for pre := 0; pre < 6; pre++ {
			for post := 0; post < 3; post++ {
				enc := b64(string(make([]byte, pre)) + v + "\xff\xfe\xfd"[:post])
				found := false
				for _, o := range offs {
					found = found || containsStr(enc, o)
				}
				if !found {
					t.Errorf("value %q with %d bytes before, %d after: no variant of %q in %q", v, pre, post, offs, enc)
				}
			}
		}
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestModifierErrors(t *testing.T) {
	tests := []struct {
		name      string
		detection string
		wantPH    bool
	}{
		{"missing placeholder", "sel: {User|expand: '%Nope%'}", true},
		{"all with one value", "sel: {CommandLine|contains|all: x}", false},
		{"exists with a value", "sel: {User|exists: maybe}", false},
		{"re with contains", "sel: {CommandLine|re|contains: x}", false},
		{"bad cidr", "sel: {DestinationIp|cidr: 10.0.0.0/40}", false},
		{"gt not a number", "sel: {X|gt: ten}", false},
		{"flag without re", "sel: {X|i: x}", false},
		{"fieldref with base64", "sel: {X|base64|fieldref: Y}", false},
		{"unknown", "sel: {X|lowercase: y}", false},
		{"PCRE look-ahead", "sel: {X|re: 'a(?=b)'}", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := testRule(fmt.Sprintf("e-%d", i), procLogsource, tt.detection+"\ncondition: sel")
			r, err := ParseRule([]byte(doc))
			if err != nil {
				t.Fatalf("ParseRule() error = %v", err)
			}
			_, err = Compile([]*Rule{r}, Config{})
			if err == nil {
				t.Fatal("Compile() = nil error, want one")
			}
			var pe *PlaceholderError
			if errors.As(err, &pe) != tt.wantPH {
				t.Errorf("Compile() error = %v, PlaceholderError %v, want %v", err, !tt.wantPH, tt.wantPH)
			}
		})
	}
}
