package normalize

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// PaloAlto returns the "paloalto" format: PAN-OS CSV syslog
// ("1,2020/02/09 00:00:00,SERIAL,TRAFFIC,end,...", with or without a
// syslog header). Fields are named per the PAN-OS log field reference
// (common fields 0-30 for TRAFFIC and THREAT, 31+ by type; SYSTEM and
// CONFIG have their own layouts); positions beyond the named ones are kept
// as "field_<n>". TRAFFIC is Network Activity 4001 (subtype start 1 Open,
// end 2 Close, deny/drop or an action deny/drop/reset-* 5 Refuse, else 6
// Traffic), THREAT is Detection Finding 2004 (severity from its severity
// field), anything else a Base Event. The time is generated_time, else
// receive_time (read as UTC: PAN-OS writes the device's local time), else
// the syslog header's, else the batch's Received time; a bad time is noted
// in paloalto.time_error. Quoted fields ("a,b" with "" for a quote) are
// unquoted. A type not in the list is kept with the common field names
// when the line has the PAN-OS shape ("N,YYYY/MM/DD hh:mm:ss,SERIAL,TYPE");
// a line without that shape is an error.
func PaloAlto() Format {
	return Format{
		Name:        "paloalto",
		Description: "Palo Alto Networks PAN-OS CSV logs (TRAFFIC, THREAT, SYSTEM, CONFIG, ...)",
		NewDecoder: func(b BatchInfo) Decoder {
			return &panDecoder{sys: Syslog().NewDecoder(b).(*syslogDecoder)}
		},
	}
}

type panDecoder struct {
	sys    *syslogDecoder
	fields []string
}

func (d *panDecoder) Directive([]byte) error { return nil }

// panShape finds "N,YYYY/MM/DD hh:mm:ss,SERIAL,TYPE" for types not listed.
var panShape = regexp.MustCompile(`(?:^|\s)(\d+,\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2},[^,]*,[A-Z][A-Z-]*(?:,|$))`)

var panTypes = [...]string{"TRAFFIC", "THREAT", "SYSTEM", "CONFIG", "HIP-MATCH", "GLOBALPROTECT", "USERID",
	"CORRELATION", "DECRYPTION", "AUTHENTICATION", "IPTAG", "TUNNEL", "SCTP", "GTP"}

var panCommon = [...]string{"future_use1", "receive_time", "serial", "type", "subtype", "future_use2",
	"generated_time", "src", "dst", "natsrc", "natdst", "rule", "srcuser", "dstuser", "app", "vsys",
	"from", "to", "inbound_if", "outbound_if", "logset", "future_use3", "sessionid", "repeatcnt",
	"sport", "dport", "natsport", "natdport", "flags", "proto", "action"}

var panTraffic = [...]string{"bytes", "bytes_sent", "bytes_received", "packets", "start", "elapsed",
	"category", "future_use4", "seqno", "actionflags", "srcloc", "dstloc", "future_use5", "pkts_sent",
	"pkts_received", "session_end_reason"}

var panThreat = [...]string{"misc", "threatid", "category", "severity", "direction", "seqno",
	"actionflags", "srcloc", "dstloc", "future_use4", "contenttype", "pcap_id", "filedigest", "cloud",
	"url_idx", "user_agent", "filetype", "xff", "referer", "sender", "subject", "recipient", "reportid"}

var panSystem = [...]string{"future_use1", "receive_time", "serial", "type", "subtype", "future_use2",
	"generated_time", "vsys", "eventid", "object", "future_use3", "future_use4", "module", "severity",
	"opaque", "seqno", "actionflags"}

var panConfig = [...]string{"future_use1", "receive_time", "serial", "type", "subtype", "future_use2",
	"generated_time", "host", "vsys", "cmd", "admin", "client", "result", "path", "seqno", "actionflags"}

func (d *panDecoder) Record(rec []byte, ev *schemas.Event) error {
	s := trimEOL(string(rec))
	start := -1
	for _, t := range panTypes {
		j := strings.Index(s, ","+t+",")
		if j < 0 && strings.HasSuffix(s, ","+t) {
			j = len(s) - len(t) - 1
		}
		if j < 0 {
			continue
		}
		k := j
		for n := 0; n < 2 && k > 0; n++ {
			k = strings.LastIndexByte(s[:k], ',')
		}
		if k < 0 {
			continue
		}
		start = strings.LastIndexByte(s[:k], ' ') + 1
		break
	}
	if start < 0 {
		// A type this list does not know: the CSV shape still says PAN-OS.
		if m := panShape.FindStringSubmatchIndex(s); m != nil {
			start = m[2]
		}
	}
	if start < 0 {
		return fmt.Errorf("parse paloalto: no PAN-OS log type (TRAFFIC, THREAT, SYSTEM, ...) in %s", excerpt(s))
	}
	if start > 0 {
		if err := d.sys.Record(rec[:start], ev); err != nil {
			ev.Reset()
			ev.AddUnmapped("paloalto.header", strings.TrimSpace(s[:start]))
		}
		ev.Observables = ev.Observables[:0]
	}
	ev.Raw = string(rec)
	var err error
	d.fields, err = splitCSV(trimEOL(ev.Raw)[start:], d.fields[:0])
	if err != nil {
		return fmt.Errorf("parse paloalto: %w", err)
	}
	f := d.fields
	if len(f) < 4 {
		return fmt.Errorf("parse paloalto: got %d fields, want at least 4", len(f))
	}
	typ := f[3]
	names := func(i int) string {
		switch typ {
		case "SYSTEM":
			if i < len(panSystem) {
				return panSystem[i]
			}
		case "CONFIG":
			if i < len(panConfig) {
				return panConfig[i]
			}
		default:
			if i < len(panCommon) {
				return panCommon[i]
			}
			if typ == "TRAFFIC" && i-len(panCommon) < len(panTraffic) {
				return panTraffic[i-len(panCommon)]
			}
			if typ == "THREAT" && i-len(panCommon) < len(panThreat) {
				return panThreat[i-len(panCommon)]
			}
		}
		return ""
	}
	var gen, recv, subtype, action, sev string
	for i, v := range f {
		name := names(i)
		if name == "" {
			name = fmt.Sprintf("field_%d", i)
		}
		if v == "" || strings.HasPrefix(name, "future_use") {
			continue
		}
		ev.AddUnmapped(name, v)
		if i >= len(panCommon) && typ != "SYSTEM" && typ != "CONFIG" && name != "severity" && name != "user_agent" && name != "misc" {
			continue
		}
		switch name {
		case "generated_time":
			gen = v
		case "receive_time":
			recv = v
		case "subtype":
			subtype = v
		case "action":
			action = v
		case "severity":
			sev = v
		case "src":
			ev.Src.IP = v
		case "dst":
			ev.Dst.IP = v
		case "sport", "dport":
			if n, err := parseUint(v, 65535); err == nil {
				if name == "sport" {
					ev.Src.Port = uint16(n)
				} else {
					ev.Dst.Port = uint16(n)
				}
			}
		case "proto":
			ev.Protocol = v
		case "srcuser":
			ev.UserName = v
		case "sessionid":
			ev.Metadata.UID = v
		case "opaque", "cmd":
			ev.Message = v
		case "user_agent":
			ev.AddObservable(schemas.ObservableUserAgent, "http_request.user_agent", v)
		case "misc":
			if typ == "THREAT" {
				ev.AddObservable(schemas.ObservableURL, "url", v)
			}
		}
	}
	var terr error
	for _, tt := range [...]string{gen, recv} {
		if tt == "" {
			continue
		}
		t, err := time.Parse("2006/01/02 15:04:05", tt)
		if err == nil {
			ev.Time, ev.Metadata.OriginalTime, terr = t.UTC(), tt, nil
			break
		}
		terr = fmt.Errorf("time %q: want YYYY/MM/DD hh:mm:ss", tt)
	}
	if terr != nil {
		ev.AddUnmapped("paloalto.time_error", terr.Error())
	}
	if ev.Time.IsZero() {
		ev.Time = d.sys.received.Truncate(time.Millisecond)
	}
	ev.Metadata.Vendor, ev.Metadata.Product, ev.Metadata.LogName = "Palo Alto Networks", "PAN-OS", typ
	ev.SeverityID = schemas.SeverityInformational
	switch typ {
	case "TRAFFIC":
		act := uint32(6)
		switch {
		case subtype == "start":
			act = 1
		case subtype == "end":
			act = 2
		}
		if subtype == "deny" || subtype == "drop" || action == "deny" || action == "drop" || strings.HasPrefix(action, "reset") {
			act = 5
		}
		setClass(ev, schemas.ClassNetwork, act)
	case "THREAT":
		setClass(ev, schemas.ClassDetectionFinding, 1)
	default:
		setClass(ev, schemas.ClassBase, 0)
	}
	switch sev {
	case "low":
		ev.SeverityID = schemas.SeverityLow
	case "medium":
		ev.SeverityID = schemas.SeverityMedium
	case "high":
		ev.SeverityID = schemas.SeverityHigh
	case "critical":
		ev.SeverityID = schemas.SeverityCritical
	}
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	ev.AddObservable(schemas.ObservableUserName, "user.name", ev.UserName)
	return nil
}

// maxCSVFields bounds the fields of one CSV record.
const maxCSVFields = 1024

// splitCSV splits one CSV line into out: "quoted, fields" with "" for a
// quote are unquoted (allocating only when they hold a doubled quote).
func splitCSV(s string, out []string) ([]string, error) {
	for {
		if len(out) >= maxCSVFields {
			return out, fmt.Errorf("more than %d fields", maxCSVFields)
		}
		if strings.HasPrefix(s, `"`) {
			var b []byte
			i := 1
			for {
				j := strings.IndexByte(s[i:], '"')
				if j < 0 {
					return out, fmt.Errorf("field %d: unterminated quote", len(out))
				}
				if i+j+1 < len(s) && s[i+j+1] == '"' { // doubled quote
					b = append(b, s[i:i+j+1]...)
					i += j + 2
					continue
				}
				v := s[1 : i+j]
				if b != nil {
					v = string(append(b, s[i:i+j]...))
				}
				out = append(out, v)
				s = s[i+j+1:]
				break
			}
			if s == "" {
				return out, nil
			}
			if s[0] != ',' {
				return out, fmt.Errorf("field %d: text after closing quote", len(out)-1)
			}
			s = s[1:]
			continue
		}
		v, rest, more := strings.Cut(s, ",")
		out = append(out, v)
		if !more {
			return out, nil
		}
		s = rest
	}
}
