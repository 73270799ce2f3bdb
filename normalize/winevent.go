package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// WinEventJSON returns the "winevent_json" format: Windows events as the
// common shippers write them as JSON lines:
//
//   - NXLog / OTRF (flat): EventID, Channel, Hostname, SourceName,
//     TimeCreated or EventTime at the top, EventData names beside them;
//   - Winlogbeat: winlog.event_id, winlog.channel, winlog.computer_name,
//     winlog.provider_name, winlog.event_data.*, @timestamp;
//   - Wazuh eventchannel: win.system.{eventID, channel, computer,
//     providerName, systemTime, ...} and win.eventdata.* in lowerCamelCase.
//
// Every event keeps the Windows names Sigma rules are written against in
// unmapped: EventID, Channel, Computer, Provider_Name, EventRecordID, and
// each EventData field under its Windows name (Wazuh's "commandLine"
// becomes "CommandLine"). Other shipper fields are kept under their own
// (dotted) names. The time is the system time (TimeCreated / systemTime /
// @timestamp, or NXLog's EventTime "2006-01-02 15:04:05" read as UTC); a
// record without a time or an EventID is an error.
//
// Classes by channel and EventID:
//
//   - Security 4624 Logon / 4625 failed Logon / 4634, 4647 Logoff / 4648
//     Logon with explicit credentials / 4672 special privileges at logon /
//     4768 Authentication Ticket / 4769 Service Ticket → Authentication
//     3002 (user.name TargetUserName, or SubjectUserName for 4672;
//     IpAddress, IpPort, WorkstationName the source).
//   - Security 4688 / 4689 and Sysmon 1 / 5 → Process Activity 1007 Launch /
//     Terminate; Sysmon 10 Open, 8 Inject. process name and pid are the new
//     (target) process's: NewProcessName/Image, NewProcessId/ProcessId
//     (hex accepted); user.name SubjectUserName or User; CommandLine an
//     observable.
//   - Security 4720/4722/4723/4724/4725/4726/4738 → Account Change 3001
//     (Create, Enable, Password Change, Password Reset, Disable, Delete,
//     99 Other).
//   - Sysmon 3 and Security 5156 → Network Activity 4001 Open.
//   - Sysmon 7 → Module Activity 1005 Load; 11 → File System Activity
//     1001 Create, 23/26 Delete; 12/14 → Registry Key Activity 201001
//     (Create/Delete by EventType, Rename); 13 → Registry Value Activity
//     201002 Set; 22 → DNS Activity 4003 Query (QueryName, QueryStatus as
//     rcode: 0 NoError, 9001-9010 the DNS rcode 1-10, other Windows
//     codes "Other" with rcode_id 99; QueryResults split on ";" as answers).
//   - everything else → Base Event 0.
//
// severity_id follows Level: 1 Critical, 2 High (Error), 3 Medium (Warning),
// anything else Informational.
func WinEventJSON() Format {
	return Format{
		Name:        "winevent_json",
		Description: "Windows events as JSON (NXLog, Winlogbeat, Wazuh eventchannel), Security and Sysmon mapped to OCSF",
		NewDecoder: func(BatchInfo) Decoder {
			return &winDecoder{}
		},
	}
}

const (
	maxWinNames = 4096
)

type winDecoder struct {
	flat  jsonFlattener
	names map[string]string // Wazuh lowerCamel -> Windows name
}

func (d *winDecoder) Directive([]byte) error { return nil }

// win accumulates what the class mapping needs.
type winRec struct {
	eventID, channel, level, timeText, provider string
}

// winSystem maps the system-field spellings of the three shapes to their
// Windows System name.
var winSystem = map[string]string{
	"EventID": "EventID", "eventID": "EventID", "event_id": "EventID",
	"Channel": "Channel", "channel": "Channel",
	"Hostname": "Computer", "Computer": "Computer", "computer": "Computer", "computer_name": "Computer",
	"SourceName": "Provider_Name", "ProviderName": "Provider_Name", "providerName": "Provider_Name", "provider_name": "Provider_Name",
	"EventRecordID": "EventRecordID", "eventRecordID": "EventRecordID", "record_id": "EventRecordID", "RecordNumber": "EventRecordID",
	"TimeCreated": "TimeCreated", "systemTime": "TimeCreated", "@timestamp": "@timestamp", "EventTime": "EventTime",
	"Level": "Level", "level": "Level", "Task": "Task", "task": "Task", "Keywords": "Keywords", "keywords": "Keywords",
	"Opcode": "Opcode", "opcode": "Opcode", "Version": "Version", "version": "Version",
	"ProviderGuid": "ProviderGuid", "providerGuid": "ProviderGuid", "provider_guid": "ProviderGuid",
	"Message": "Message", "message": "Message", "severityValue": "SeverityValue", "SeverityValue": "SeverityValue",
	"processID": "ExecutionProcessID", "threadID": "ExecutionThreadID",
}

// Record decodes one Windows event.
func (d *winDecoder) Record(rec []byte, ev *schemas.Event) error {
	rec = bytes.TrimSpace(rec)
	if len(rec) == 0 {
		return errors.New("parse winevent json: empty record")
	}
	ev.Raw = d.flat.arena.copy(rec)
	if err := d.flat.flatten(ev.Raw); err != nil {
		return fmt.Errorf("parse winevent json: %w", err)
	}
	var w winRec
	var tsTime, tsAt, tsEvent string
	for i := range d.flat.fields {
		name, v := d.flat.fields[i].name, d.flat.fields[i].value
		sys, data := "", ""
		switch {
		case strings.HasPrefix(name, "win.system."):
			sys = winSystem[name[len("win.system."):]]
			if sys == "" {
				sys = name
			}
		case strings.HasPrefix(name, "win.eventdata."):
			data = d.upperFirst(name[len("win.eventdata."):])
		case strings.HasPrefix(name, "winlog.event_data."):
			data = name[len("winlog.event_data."):]
		case strings.HasPrefix(name, "winlog."):
			sys = winSystem[name[len("winlog."):]]
			if sys == "" {
				sys = name
			}
		case strings.HasPrefix(name, "EventData."):
			data = name[len("EventData."):]
		default:
			if s, ok := winSystem[name]; ok && strings.IndexByte(name, '.') < 0 {
				sys = s
			} else {
				data = name
			}
		}
		if sys != "" {
			switch sys {
			case "EventID":
				w.eventID = v
			case "Channel":
				w.channel = v
			case "Computer":
				ev.DeviceHostname = v
			case "Provider_Name":
				w.provider = v
			case "EventRecordID":
				ev.Metadata.UID = v
			case "Level":
				w.level = v
			case "TimeCreated":
				tsTime = v
				continue
			case "@timestamp":
				tsAt = v
				continue
			case "EventTime":
				tsEvent = v
				continue
			case "Message":
				ev.Message = v
				continue
			}
			ev.AddUnmapped(sys, v)
			continue
		}
		ev.AddUnmapped(data, v)
	}
	if w.eventID == "" {
		return errors.New("parse winevent json: record has no EventID")
	}
	switch {
	case tsTime != "":
		w.timeText = tsTime
	case tsAt != "":
		w.timeText = tsAt
	default:
		w.timeText = tsEvent
	}
	if w.timeText == "" {
		return errors.New("parse winevent json: record has no TimeCreated, systemTime, @timestamp or EventTime")
	}
	t, err := parseWinTime(w.timeText)
	if err != nil {
		return fmt.Errorf("parse winevent json: time %s: %w", excerpt(w.timeText), err)
	}
	ev.Time, ev.Metadata.OriginalTime = t, w.timeText
	ev.Metadata.Vendor = "Microsoft"
	ev.Metadata.Product = "Windows"
	if w.provider != "" {
		ev.Metadata.Product = w.provider
	}
	ev.Metadata.LogName = w.channel
	mapWinClass(&w, ev)
	ev.AddObservable(schemas.ObservableHostname, "device.hostname", ev.DeviceHostname)
	return nil
}

// upperFirst turns Wazuh's "commandLine" into Windows' "CommandLine".
func (d *winDecoder) upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	if n, ok := d.names[s]; ok {
		return n
	}
	n := string(s[0]-'a'+'A') + s[1:]
	if d.names == nil {
		d.names = make(map[string]string)
	}
	if len(d.names) < maxWinNames {
		d.names[strings.Clone(s)] = n
	}
	return n
}

func parseWinTime(s string) (time.Time, error) {
	if len(s) >= 19 && s[10] == ' ' { // NXLog EventTime "2020-10-21 11:28:08"
		t, err := time.Parse("2006-01-02 15:04:05", s)
		if err != nil {
			return time.Time{}, err
		}
		return t.UTC().Truncate(time.Millisecond), nil
	}
	return parseRFC3339(s)
}

// winPID parses a decimal or 0x-prefixed hexadecimal process id.
func winPID(s string) (uint32, bool) {
	if h, ok := strings.CutPrefix(s, "0x"); ok && h != "" && len(h) <= 8 {
		var n uint32
		for i := 0; i < len(h); i++ {
			v, ok := unhex(h[i])
			if !ok {
				return 0, false
			}
			n = n<<4 | uint32(v)
		}
		return n, true
	}
	n, err := parseUint(s, 1<<32-1)
	return uint32(n), err == nil
}

func mapWinClass(w *winRec, ev *schemas.Event) {
	switch w.level {
	case "1":
		ev.SeverityID = schemas.SeverityCritical
	case "2":
		ev.SeverityID = schemas.SeverityHigh
	case "3":
		ev.SeverityID = schemas.SeverityMedium
	default:
		ev.SeverityID = schemas.SeverityInformational
	}
	get := func(k string) string { v, _ := ev.UnmappedValue(k); return v }
	sysmon := strings.HasPrefix(w.channel, "Microsoft-Windows-Sysmon")
	security := w.channel == "Security"
	auth := func(act uint32, status uint8, user string) {
		setClass(ev, schemas.ClassAuthentication, act)
		ev.StatusID = status
		ev.UserName = user
		ev.Src.IP = strings.TrimPrefix(get("IpAddress"), "::ffff:")
		if ev.Src.IP == "-" {
			ev.Src.IP = ""
		}
		if n, err := parseUint(get("IpPort"), 65535); err == nil {
			ev.Src.Port = uint16(n)
		}
		if h := get("WorkstationName"); h != "-" {
			ev.Src.Hostname = h
		}
		ev.Dst.Hostname = ev.DeviceHostname
	}
	process := func(act uint32, image, pid, user string) {
		setClass(ev, schemas.ClassProcess, act)
		ev.ProcessName = image
		if n, ok := winPID(pid); ok {
			ev.ProcessPID = n
		}
		ev.UserName = user
		ev.AddObservable(schemas.ObservableProcessName, "process.name", image)
		ev.AddObservable(schemas.ObservableCmdLine, "process.cmd_line", get("CommandLine"))
	}
	switch {
	case security:
		switch w.eventID {
		case "4624":
			auth(1, statusSuccess, get("TargetUserName"))
		case "4625":
			auth(1, statusFailure, get("TargetUserName"))
		case "4634", "4647":
			auth(2, statusSuccess, get("TargetUserName"))
		case "4648":
			auth(1, statusSuccess, get("TargetUserName"))
		case "4672":
			auth(1, statusSuccess, get("SubjectUserName"))
		case "4768":
			auth(3, winStatus(get("Status")), get("TargetUserName"))
		case "4769":
			auth(4, winStatus(get("Status")), get("TargetUserName"))
		case "4688":
			process(1, get("NewProcessName"), get("NewProcessId"), get("SubjectUserName"))
		case "4689":
			process(2, get("ProcessName"), get("ProcessId"), get("SubjectUserName"))
		case "4720", "4722", "4723", "4724", "4725", "4726", "4738":
			act := map[string]uint32{"4720": 1, "4722": 2, "4723": 3, "4724": 4, "4725": 5, "4726": 6, "4738": 99}[w.eventID]
			setClass(ev, schemas.ClassAccount, act)
			ev.UserName = get("TargetUserName")
		case "5156":
			setClass(ev, schemas.ClassNetwork, 1)
			winNet(ev, get("SourceAddress"), get("SourcePort"), get("DestAddress"), get("DestPort"))
		default:
			setClass(ev, schemas.ClassBase, 0)
		}
	case sysmon:
		switch w.eventID {
		case "1":
			process(1, get("Image"), get("ProcessId"), get("User"))
			winHashes(ev, get("Hashes"))
		case "5":
			process(2, get("Image"), get("ProcessId"), get("User"))
		case "8":
			process(4, get("TargetImage"), get("TargetProcessId"), "")
		case "10":
			process(3, get("TargetImage"), get("TargetProcessId"), get("SourceUser"))
		case "3":
			setClass(ev, schemas.ClassNetwork, 1)
			winNet(ev, get("SourceIp"), get("SourcePort"), get("DestinationIp"), get("DestinationPort"))
			ev.Src.Hostname, ev.Dst.Hostname = get("SourceHostname"), get("DestinationHostname")
			ev.Protocol = get("Protocol")
			ev.ProcessName = get("Image")
			ev.UserName = get("User")
		case "7":
			setClass(ev, schemas.ClassModule, 1)
			ev.ProcessName = get("Image")
			ev.AddObservable(schemas.ObservableFilePath, "module.file.path", get("ImageLoaded"))
			winHashes(ev, get("Hashes"))
		case "11", "23", "26":
			act := uint32(1)
			if w.eventID != "11" {
				act = 4
			}
			setClass(ev, schemas.ClassFileSystem, act)
			ev.ProcessName = get("Image")
			ev.UserName = get("User")
			ev.AddObservable(schemas.ObservableFilePath, "file.path", get("TargetFilename"))
		case "12", "14":
			act := uint32(5) // 14: Rename
			if w.eventID == "12" {
				act = 1
				if strings.HasPrefix(get("EventType"), "Delete") {
					act = 4
				}
			}
			setClass(ev, schemas.ClassRegistryKey, act)
			ev.ProcessName = get("Image")
		case "13":
			setClass(ev, schemas.ClassRegistryValue, 2)
			ev.ProcessName = get("Image")
		case "22":
			setClass(ev, schemas.ClassDNS, 1)
			ev.ProcessName = get("Image")
			ev.DNS.QueryHostname = get("QueryName")
			ev.DNS.RCodeID = -1
			if st := get("QueryStatus"); st != "" {
				ev.DNS.RCodeID = winDNSStatus(st)
				ev.DNS.RCode = rcodeName(ev.DNS.RCodeID)
				if ev.DNS.RCodeID == 99 {
					ev.DNS.RCode = "Other"
				}
			}
			for rest := get("QueryResults"); rest != ""; {
				var a string
				a, rest, _ = strings.Cut(rest, ";")
				if a = strings.TrimSpace(a); a != "" && a != "-" {
					ev.DNS.Answers = append(ev.DNS.Answers, a)
					ev.DNS.TTLs = append(ev.DNS.TTLs, 0)
				}
			}
			ev.AddObservable(schemas.ObservableHostname, "query.hostname", ev.DNS.QueryHostname)
		default:
			setClass(ev, schemas.ClassBase, 0)
		}
	default:
		setClass(ev, schemas.ClassBase, 0)
	}
	ev.AddObservable(schemas.ObservableUserName, "user.name", ev.UserName)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
}

// winStatus: Kerberos result code 0x0 is success.
func winStatus(s string) uint8 {
	switch s {
	case "":
		return 0
	case "0x0", "0":
		return statusSuccess
	}
	return statusFailure
}

func winNet(ev *schemas.Event, sip, sport, dip, dport string) {
	ev.Src.IP, ev.Dst.IP = sip, dip
	if n, err := parseUint(sport, 65535); err == nil {
		ev.Src.Port = uint16(n)
	}
	if n, err := parseUint(dport, 65535); err == nil {
		ev.Dst.Port = uint16(n)
	}
}

// winHashes adds Sysmon's "SHA1=..,MD5=..,SHA256=..,IMPHASH=.." as observables.
func winHashes(ev *schemas.Event, h string) {
	for h != "" {
		var kv string
		kv, h, _ = strings.Cut(h, ",")
		if _, v, ok := strings.Cut(kv, "="); ok && v != "" {
			ev.AddObservable(schemas.ObservableHash, "file.hashes", v)
		}
	}
}

// winDNSStatus maps Sysmon's QueryStatus (a Windows DNS status) to an rcode.
func winDNSStatus(s string) int32 {
	n, err := parseUint(s, 1<<32-1)
	switch {
	case err != nil:
		return 99
	case n == 0:
		return 0
	case n >= 9001 && n <= 9010: // DNS_ERROR_RCODE_*
		return int32(n - 9000)
	}
	return 99
}
