package schemas

import (
	"strconv"
	"testing"
)

// sysmonUnmapped is the vendor-field list of a normalized Sysmon process
// creation event, in its record's order.
var sysmonUnmapped = []string{
	"EventTime", "Hostname", "Keywords", "EventType", "SeverityValue", "Severity", "EventID", "SourceName",
	"ProviderGuid", "Version", "Task", "OpcodeValue", "RecordNumber", "ProcessID", "ThreadID", "Channel",
	"Domain", "AccountName", "UserID", "AccountType", "Category", "Opcode", "UtcTime", "ProcessGuid", "Image",
	"FileVersion", "Description", "Product", "Company", "OriginalFileName", "CommandLine", "CurrentDirectory",
	"User", "LogonGuid", "LogonId", "TerminalSessionId", "IntegrityLevel", "Hashes", "ParentProcessGuid",
	"ParentProcessId", "ParentImage", "ParentCommandLine", "ParentUser",
}

func sysmonEvent() *Event {
	ev := &Event{}
	for i, k := range sysmonUnmapped {
		ev.AddUnmapped(k, "v"+strconv.Itoa(i))
	}
	return ev
}

func TestUnmappedValue(t *testing.T) {
	ev := sysmonEvent()
	ev.AddUnmapped("", "empty key")
	ev.AddUnmapped("Image", "second Image") // the first one wins
	for i, k := range sysmonUnmapped {
		if v, ok := ev.UnmappedValue(k); !ok || v != "v"+strconv.Itoa(i) {
			t.Errorf("UnmappedValue(%q) = %q, %v; want v%d", k, v, ok, i)
		}
	}
	tests := []struct {
		key, want string
		ok        bool
	}{
		{"", "empty key", true},
		{"image", "", false},         // keys are case-sensitive
		{"Imagf", "", false},         // same length and first bytes, last differs
		{"CommandLinf", "", false},   // same length as CommandLine and ParentImage
		{"ParentImag", "", false},    // a prefix of a key
		{"ParentImagee", "", false},  // a key plus a byte
		{"Hostnamf", "", false},      // last byte differs
		{"Xostname", "", false},      // first byte differs, last matches
		{"Description", "v26", true}, // shares CommandLine's length
	}
	for _, tt := range tests {
		if v, ok := ev.UnmappedValue(tt.key); v != tt.want || ok != tt.ok {
			t.Errorf("UnmappedValue(%q) = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.ok)
		}
	}
	if v, ok := (&Event{}).UnmappedValue(""); ok || v != "" {
		t.Errorf("empty event: UnmappedValue(\"\") = %q, %v", v, ok)
	}
}

// BenchmarkUnmappedValue looks up what the rule engine reads on a Sysmon
// event: a dozen keys, two of them absent.
func BenchmarkUnmappedValue(b *testing.B) {
	ev := sysmonEvent()
	keys := []string{"Channel", "EventID", "Image", "OriginalFileName", "CommandLine", "ParentImage",
		"ParentCommandLine", "User", "IntegrityLevel", "Hashes", "Provider_Name", "ServiceFileName"}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, k := range keys {
			if _, ok := ev.UnmappedValue(k); ok {
				n++
			}
		}
	}
	if n == 0 {
		b.Fatal("no key found")
	}
}
