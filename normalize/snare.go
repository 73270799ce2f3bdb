package normalize

import (
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// snareBody maps a Snare for Windows message ("MSWinEventLog<TAB>crit<TAB>
// Security<TAB>record<TAB>Tue Feb 18 06:42:17 2025<TAB>4624<TAB>provider
// <TAB>user<TAB>sid type<TAB>Success Audit<TAB>computer<TAB>category<TAB>
// <TAB>expanded message<TAB>...") carried in a syslog record. The Windows
// names Sigma rules use are recovered: EventID, Channel, Computer,
// Provider_Name, EventRecordID from the header fields, and from the
// expanded message's "Label:  value" pairs the EventData names the class
// mapping needs (SubjectUserName, TargetUserName, IpAddress, IpPort,
// WorkstationName, LogonType, NewProcessName, NewProcessId, CommandLine,
// ParentProcessName, ProcessName, ProcessId), by section ("Subject:",
// "New Logon:", "Account For Which Logon Failed:", ...). The event then
// takes the class winevent_json gives the same EventID. The Snare time
// (read as UTC) replaces the syslog header's.
func snareBody(msg string, ev *schemas.Event) bool {
	var f [15]string
	n := 0
	for rest := msg; n < len(f); n++ {
		var v string
		var more bool
		v, rest, more = strings.Cut(rest, "\t")
		f[n] = v
		if !more {
			n++
			break
		}
	}
	if n < 14 || f[0] != "MSWinEventLog" {
		return false
	}
	w := winRec{eventID: f[5], channel: f[2], provider: f[6]}
	ev.AddUnmapped("EventID", f[5])
	ev.AddUnmapped("Channel", f[2])
	ev.AddUnmapped("Provider_Name", f[6])
	ev.AddUnmapped("EventRecordID", f[3])
	ev.AddUnmapped("Computer", f[10])
	ev.AddUnmapped("snare.event_type", f[9])
	ev.AddUnmapped("snare.category", f[11])
	if f[10] != "" {
		ev.DeviceHostname = f[10]
	}
	ev.Metadata.UID = f[3]
	if t, err := time.Parse("Mon Jan 2 15:04:05 2006", strings.Join(strings.Fields(f[4]), " ")); err == nil {
		ev.Time, ev.Metadata.OriginalTime = t.UTC(), f[4]
	}
	ev.Message = f[13]
	snareFields(f[13], ev)
	ev.Metadata.Vendor, ev.Metadata.Product, ev.Metadata.LogName = "Microsoft", w.provider, w.channel
	sev := ev.SeverityID
	mapWinClass(&w, ev)
	ev.SeverityID = sev // the syslog PRI, not a Windows Level (Snare has none)
	switch f[9] {
	case "Failure Audit":
		if ev.ClassUID == schemas.ClassAuthentication {
			ev.StatusID = statusFailure
		}
	}
	return true
}

// snareFields reads "Label:  value" pairs from Snare's one-line message.
func snareFields(m string, ev *schemas.Event) {
	section := ""
	segs := splitSpaces(m)
	for i := 0; i < len(segs); i++ {
		seg := segs[i]
		var label, value string
		if strings.HasSuffix(seg, ":") {
			label = seg[:len(seg)-1]
			if i+1 < len(segs) && !strings.HasSuffix(segs[i+1], ":") && !strings.Contains(segs[i+1], ": ") {
				value = segs[i+1]
				i++
			} else {
				section = label
				continue
			}
		} else if l, v, ok := strings.Cut(seg, ": "); ok {
			label, value = l, strings.TrimSpace(v)
		} else {
			continue
		}
		if name := snareName(section, label); name != "" {
			if _, dup := ev.UnmappedValue(name); !dup {
				ev.AddUnmapped(name, value)
			}
		}
	}
}

// splitSpaces splits s on runs of two or more spaces.
func splitSpaces(s string) []string {
	var out []string
	for s != "" {
		i := strings.Index(s, "  ")
		if i < 0 {
			out = append(out, strings.TrimSpace(s))
			break
		}
		if seg := strings.TrimSpace(s[:i]); seg != "" {
			out = append(out, seg)
		}
		s = strings.TrimLeft(s[i:], " ")
	}
	return out
}

func snareName(section, label string) string {
	subject := section == "Subject" || section == "Creator Subject"
	switch label {
	case "Account Name":
		if subject {
			return "SubjectUserName"
		}
		return "TargetUserName"
	case "Account Domain":
		if subject {
			return "SubjectDomainName"
		}
		return "TargetDomainName"
	case "Source Network Address", "Client Address":
		return "IpAddress"
	case "Source Port", "Client Port":
		return "IpPort"
	case "Workstation Name":
		return "WorkstationName"
	case "Logon Type":
		return "LogonType"
	case "New Process ID":
		return "NewProcessId"
	case "New Process Name":
		return "NewProcessName"
	case "Process Command Line":
		return "CommandLine"
	case "Creator Process Name":
		return "ParentProcessName"
	case "Process ID":
		return "ProcessId"
	case "Process Name":
		return "ProcessName"
	case "Service Name":
		return "ServiceName"
	}
	return ""
}
