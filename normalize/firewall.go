package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// --- netfilter (syslog body) ---

// netfilterBody maps a kernel "[prefix] IN=.. OUT=.. SRC=.. DST=.. PROTO=..
// SPT=.. DPT=.." line (iptables/nftables LOG target) to Network Activity
// 4001: activity 5 Refuse when the log prefix says DROP, REJECT, DENY or
// BLOCK, 6 Traffic otherwise. It reports whether the body matched.
func netfilterBody(msg string, ev *schemas.Event) bool {
	i := strings.Index(msg, "SRC=")
	if i < 0 || !strings.Contains(msg, " DST=") || !strings.Contains(msg, "PROTO=") {
		return false
	}
	start := strings.Index(msg, "IN=")
	if start < 0 || start > i {
		start = i
	}
	prefix := strings.TrimSpace(msg[:start])
	act := uint32(6)
	up := strings.ToUpper(prefix)
	for _, w := range [...]string{"DROP", "REJECT", "DENY", "BLOCK"} {
		if strings.Contains(up, w) {
			act = 5
		}
	}
	if prefix != "" {
		ev.AddUnmapped("netfilter.prefix", prefix)
	}
	for _, f := range strings.Fields(msg[start:]) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			ev.AddUnmapped("netfilter.flag", f)
			continue
		}
		ev.AddUnmapped("netfilter."+k, v) // a handful of short keys
		switch k {
		case "SRC":
			ev.Src.IP = v
		case "DST":
			ev.Dst.IP = v
		case "SPT":
			if n, err := parseUint(v, 65535); err == nil {
				ev.Src.Port = uint16(n)
			}
		case "DPT":
			if n, err := parseUint(v, 65535); err == nil {
				ev.Dst.Port = uint16(n)
			}
		case "PROTO":
			ev.Protocol = lowerProto(v)
		}
	}
	setClass(ev, schemas.ClassNetwork, act)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	return true
}

// --- Fortinet ---

// Fortinet returns the "fortinet" format: FortiGate key=value logs
// ("date=2016-06-15 time=10:42:31 devname=.. type=traffic ..."), with or
// without a syslog header (a header that does not parse is kept in
// fortinet.header; a line with no key=value pair is an error). Values may be double-quoted. type=traffic is
// Network Activity 4001 (activity 5 Refuse for action deny/block/drop, 6
// Traffic otherwise); type=utm, ips, anomaly, virus, webfilter, attack
// are Detection Finding 2004; an event with action=login (or logdesc
// mentioning login) is Authentication 3002 (status from status=); anything
// else is a Base Event. The time is eventtime (epoch s/ms/us/ns) or
// date+time read as UTC (tz= applied when present); when neither parses
// the syslog header's time or Received is used and fortinet.time_error says
// why. srcip, dstip, srcport, dstport, proto (IANA number), user, devname,
// msg and level map as named; every pair is kept in unmapped.
func Fortinet() Format {
	return Format{
		Name:        "fortinet",
		Description: "Fortinet FortiGate key=value logs, with or without a syslog header",
		NewDecoder: func(b BatchInfo) Decoder {
			return &kvFirewallDecoder{sys: Syslog().NewDecoder(b).(*syslogDecoder)}
		},
	}
}

type kvFirewallDecoder struct {
	sys *syslogDecoder
}

func (d *kvFirewallDecoder) Directive([]byte) error { return nil }

func (d *kvFirewallDecoder) Record(rec []byte, ev *schemas.Event) error {
	s := trimEOL(string(rec))
	i := strings.Index(s, "date=")
	if j := strings.Index(s, "devname="); i < 0 || (j >= 0 && j < i) {
		i = j
	}
	if i < 0 {
		// Other Fortinet products (FortiAuthenticator): the pairs start at
		// the first word holding '='.
		if eq := strings.IndexByte(s, '='); eq > 0 {
			i = strings.LastIndexByte(s[:eq], ' ') + 1
		}
	}
	if i < 0 || !strings.Contains(s[i:], "=") {
		return fmt.Errorf("parse fortinet: no key=value pairs in %s", excerpt(s))
	}
	if i > 0 {
		// A header in front (syslog, or a relay's own): its time and host
		// are used when it parses; otherwise it is kept as text.
		if err := d.sys.Record(rec[:i], ev); err != nil {
			ev.Reset()
			ev.AddUnmapped("fortinet.header", strings.TrimSpace(s[:i]))
		}
		ev.Observables = ev.Observables[:0]
	}
	ev.Raw = string(rec)
	body := trimEOL(ev.Raw)[i:]
	var date, tod, tz, eventtime, typ, subtype, action, status, logdesc, level string
	err := eachKV(body, func(k, v string) {
		ev.AddUnmapped(k, v)
		switch k {
		case "date":
			date = v
		case "time":
			tod = v
		case "tz":
			tz = v
		case "eventtime":
			eventtime = v
		case "type":
			typ = v
		case "subtype":
			subtype = v
		case "action":
			action = v
		case "status":
			status = v
		case "logdesc":
			logdesc = v
		case "level", "pri":
			level = v
		case "srcip", "remip":
			if ev.Src.IP == "" {
				ev.Src.IP = v
			}
		case "dstip", "locip":
			if ev.Dst.IP == "" {
				ev.Dst.IP = v
			}
		case "srcport", "dstport":
			if n, err := parseUint(v, 65535); err == nil {
				if k == "srcport" {
					ev.Src.Port = uint16(n)
				} else {
					ev.Dst.Port = uint16(n)
				}
			}
		case "proto":
			ev.Protocol = ianaProto(v)
		case "user", "srcuser":
			if v != "N/A" && ev.UserName == "" {
				ev.UserName = v
			}
		case "devname":
			ev.DeviceHostname = v
		case "msg":
			ev.Message = v
		case "logid", "log_id":
			ev.Metadata.UID = v
		}
	})
	if err != nil {
		return fmt.Errorf("parse fortinet: %w", err)
	}
	t, terr := fortiTime(eventtime, date, tod, tz)
	switch {
	case terr == nil:
		ev.Time, ev.Metadata.OriginalTime = t, strings.TrimSpace(date+" "+tod)
		if eventtime != "" {
			ev.Metadata.OriginalTime = eventtime
		}
	case !ev.Time.IsZero(): // from the syslog header
		ev.AddUnmapped("fortinet.time_error", terr.Error())
	default:
		ev.Time = d.sys.received.Truncate(time.Millisecond)
		ev.AddUnmapped("fortinet.time_error", terr.Error())
	}
	ev.Metadata.Vendor, ev.Metadata.Product, ev.Metadata.LogName = "Fortinet", "FortiGate", typ
	ev.SeverityID = fortiLevel(level)
	switch {
	case typ == "traffic":
		act := uint32(6)
		switch action {
		case "deny", "block", "drop", "blocked", "dropped":
			act = 5
		}
		setClass(ev, schemas.ClassNetwork, act)
	case typ == "utm" || typ == "ips" || typ == "anomaly" || typ == "virus" || typ == "webfilter" || typ == "attack":
		setClass(ev, schemas.ClassDetectionFinding, 1)
	case action == "login" || action == "logout" || strings.Contains(strings.ToLower(logdesc), "login"):
		act := uint32(1)
		if action == "logout" {
			act = 2
		}
		st := uint8(0)
		switch status {
		case "success":
			st = statusSuccess
		case "failed", "failure":
			st = statusFailure
		}
		user := ev.UserName
		authEvent(ev, act, st, user, ev.Src.IP)
	default:
		setClass(ev, schemas.ClassBase, 0)
	}
	_ = subtype
	ev.AddObservable(schemas.ObservableHostname, "device.hostname", ev.DeviceHostname)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	if ev.ClassUID != schemas.ClassAuthentication {
		ev.AddObservable(schemas.ObservableUserName, "user.name", ev.UserName)
	}
	return nil
}

// eachKV calls f for every key=value of s; values may be "double quoted"
// (with \" inside) and run to the next space otherwise.
func eachKV(s string, f func(k, v string)) error {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return nil
		}
		eq := strings.IndexByte(s, '=')
		sp := strings.IndexByte(s, ' ')
		if eq <= 0 || (sp >= 0 && sp < eq) {
			// A word without '=' (a wrapped value): keep it with the last key.
			w := s
			if sp >= 0 {
				w, s = s[:sp], s[sp:]
			} else {
				s = ""
			}
			f("_text", w)
			continue
		}
		k, v := s[:eq], s[eq+1:]
		if strings.HasPrefix(v, `"`) {
			end := -1
			for i := 1; i < len(v); i++ {
				if v[i] == '\\' {
					i++
					continue
				}
				if v[i] == '"' {
					end = i
					break
				}
			}
			if end < 0 {
				return fmt.Errorf("unterminated quoted value of %s", k)
			}
			q := v[1:end]
			if strings.IndexByte(q, '\\') >= 0 {
				q = strings.ReplaceAll(q, `\"`, `"`)
			}
			f(k, q)
			s = v[end+1:]
			continue
		}
		if sp := strings.IndexByte(v, ' '); sp >= 0 {
			f(k, v[:sp])
			s = v[sp:]
		} else {
			f(k, v)
			s = ""
		}
	}
}

func ianaProto(v string) string {
	switch v {
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "1":
		return "icmp"
	case "58":
		return "ipv6-icmp"
	}
	return lowerProto(v)
}

func fortiLevel(l string) uint8 {
	switch l {
	case "emergency":
		return schemas.SeverityFatal
	case "alert", "critical":
		return schemas.SeverityCritical
	case "error":
		return schemas.SeverityHigh
	case "warning":
		return schemas.SeverityMedium
	case "notice":
		return schemas.SeverityLow
	}
	return schemas.SeverityInformational
}

func fortiTime(eventtime, date, tod, tz string) (time.Time, error) {
	if eventtime != "" {
		n, err := parseUint(eventtime, 1<<63-1)
		if err == nil {
			for n > maxEpochSeconds*1000 { // ns, us -> ms
				n /= 1000
			}
			if n < maxEpochSeconds/10 { // seconds
				n *= 1000
			}
			return time.UnixMilli(int64(n)).UTC(), nil
		}
	}
	if date == "" || tod == "" {
		return time.Time{}, errors.New("no date= and time=")
	}
	t, err := time.Parse("2006-01-02 15:04:05", date+" "+tod)
	if err != nil {
		return time.Time{}, fmt.Errorf("date=%s time=%s: want YYYY-MM-DD hh:mm:ss", date, tod)
	}
	if len(tz) == 5 && (tz[0] == '+' || tz[0] == '-') {
		if z, err := time.Parse("-0700", tz); err == nil {
			_, off := z.Zone()
			t = t.Add(-time.Duration(off) * time.Second)
		}
	}
	return t.UTC(), nil
}

// --- Squid ---

// Squid returns the "squid" format: Squid's native access.log ("time
// elapsed client code/status bytes method URL user hierarchy/peer type"),
// as HTTP Activity 4002 with the activity from the method; status_id is 2
// Failure for TCP_DENIED and 4xx/5xx results, 1 Success otherwise; the
// client is src_endpoint, the URL an observable, the user user.name.
func Squid() Format {
	return Format{
		Name:        "squid",
		Description: "Squid native access.log as OCSF HTTP Activity",
		NewDecoder:  func(BatchInfo) Decoder { return squidDecoder{} },
	}
}

type squidDecoder struct{}

func (squidDecoder) Directive([]byte) error { return nil }

func (squidDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	var f [10]string
	rest := trimEOL(ev.Raw)
	n := 0
	for n < len(f) {
		rest = strings.TrimLeft(rest, " ")
		if rest == "" {
			break
		}
		if n == len(f)-1 {
			f[n], rest = rest, ""
		} else {
			f[n], rest, _ = strings.Cut(rest, " ")
		}
		n++
	}
	if n < 7 {
		return fmt.Errorf("parse squid: got %d fields, want at least 7 (time elapsed client code/status bytes method URL)", n)
	}
	t, err := parseEpoch(f[0])
	if err != nil {
		return fmt.Errorf("parse squid: time %q: %w", f[0], err)
	}
	code, st, ok := strings.Cut(f[3], "/")
	if !ok {
		return fmt.Errorf("parse squid: result %q: want CODE/STATUS", f[3])
	}
	ev.Time, ev.Metadata.OriginalTime = t, f[0]
	ev.Metadata.Vendor, ev.Metadata.Product, ev.Metadata.LogName = "Squid", "Squid", "access"
	ev.Src.IP = f[2]
	setClass(ev, schemas.ClassHTTP, httpActivity(f[5]))
	ev.SeverityID = schemas.SeverityInformational
	ev.StatusID = statusSuccess
	if strings.Contains(code, "DENIED") || strings.HasPrefix(st, "4") || strings.HasPrefix(st, "5") {
		ev.StatusID = statusFailure
	}
	names := [...]string{"", "elapsed", "", "result_code", "bytes", "method", "url", "user", "hierarchy", "content_type"}
	for i := 1; i < n; i++ {
		if names[i] != "" {
			ev.AddUnmapped(names[i], f[i])
		}
	}
	ev.AddUnmapped("http_status", st)
	if n > 7 && f[7] != "-" {
		ev.UserName = f[7]
	}
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableURL, "http_request.url", f[6])
	ev.AddObservable(schemas.ObservableUserName, "user.name", ev.UserName)
	return nil
}

// --- Cisco ASA / FTD / PIX ---

// CiscoASA returns the "cisco_asa" format: Cisco ASA, FTD and PIX syslog
// messages ("%ASA-4-106023: Deny udp src outside:1.1.1.1/3217 dst ..."),
// with or without a syslog header or an "Oct 03 2018 17:34:08:" device
// time. The message catalogue decides the class: 302013/302015/302017/
// 302020 (Built) Network Activity 1 Open, 302014/302016/302018/302021
// (Teardown) 2 Close, the 106xxx, 418001, 434002 and 710003 denials 5
// Refuse, 605004 / 716039 (login rejected) and 605005 (accepted)
// Authentication 3002 with the client as source, the AAA messages 113004 /
// 113012 (accepted) and 113015 / 113006 (rejected, locked out)
// Authentication 3002 with the AAA server as destination; others a Base
// Event. Endpoints come from the first two "[iface:]IP/port" tokens (or
// "from IP to IP"); the severity digit (0-7) maps like syslog's.
func CiscoASA() Format {
	return Format{
		Name:        "cisco_asa",
		Description: "Cisco ASA / FTD / PIX syslog messages as OCSF Network Activity / Authentication",
		NewDecoder: func(b BatchInfo) Decoder {
			return &asaDecoder{sys: Syslog().NewDecoder(b).(*syslogDecoder)}
		},
	}
}

type asaDecoder struct {
	sys *syslogDecoder
}

func (d *asaDecoder) Directive([]byte) error { return nil }

func (d *asaDecoder) Record(rec []byte, ev *schemas.Event) error {
	s := trimEOL(string(rec))
	i := strings.Index(s, "%ASA-")
	for _, p := range [...]string{"%FTD-", "%PIX-", "%FWSM-"} {
		if j := strings.Index(s, p); j >= 0 && (i < 0 || j < i) {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("parse cisco asa: no %%ASA-/%%FTD-/%%PIX- message id in %s", excerpt(s))
	}
	if pre := strings.TrimRight(s[:i], ": "); pre != "" {
		sd := *d.sys
		if t, n, err := sd.parseStamp(pre); err == nil && n == len(pre) {
			ev.Time, ev.Metadata.OriginalTime = t, pre
		} else if err := d.sys.Record([]byte(pre), ev); err != nil {
			return fmt.Errorf("parse cisco asa: header before the message id: %w", err)
		}
		ev.Observables = ev.Observables[:0]
	}
	ev.Raw = string(rec)
	s = trimEOL(ev.Raw)[i+1:]
	tag, msg, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("parse cisco asa: message id %s not followed by ':'", excerpt(tag))
	}
	prod, rest, _ := strings.Cut(tag, "-")
	sev, id, ok := strings.Cut(rest, "-")
	if !ok || len(sev) != 1 || sev[0] < '0' || sev[0] > '7' || len(id) != 6 {
		return fmt.Errorf("parse cisco asa: message id %q: want %%ASA-<0-7>-<6 digits>", tag)
	}
	if _, err := parseUint(id, 999999); err != nil {
		return fmt.Errorf("parse cisco asa: message id %q: %w", tag, err)
	}
	msg = strings.TrimSpace(msg)
	if ev.Time.IsZero() {
		ev.Time = d.sys.received.Truncate(time.Millisecond)
	}
	ev.Message = msg
	ev.Metadata.Vendor, ev.Metadata.Product, ev.Metadata.LogName, ev.Metadata.UID = "Cisco", prod, "syslog", id
	ev.SeverityID = severityIDs[sev[0]-'0']
	ev.AddUnmapped("asa.message_id", id)
	ev.AddUnmapped("asa.severity", sev)
	asaEndpoints(msg, ev)
	switch id {
	case "302013", "302015", "302017", "302020":
		setClass(ev, schemas.ClassNetwork, 1)
	case "302014", "302016", "302018", "302021":
		setClass(ev, schemas.ClassNetwork, 2)
	case "605004", "716039":
		authEvent(ev, 1, statusFailure, asaUser(msg), ev.Src.IP)
	case "605005":
		authEvent(ev, 1, statusSuccess, asaUser(msg), ev.Src.IP)
	case "113004", "113012", "113015", "113006":
		// AAA messages name the AAA server, not the client.
		server := ev.Src.IP
		ev.Src = schemas.Endpoint{}
		st := statusSuccess
		if id == "113015" || id == "113006" {
			st = statusFailure
		}
		authEvent(ev, 1, st, asaUser(msg), "")
		ev.Dst.IP = server
	default:
		if strings.HasPrefix(id, "106") || id == "418001" || id == "434002" || id == "710003" {
			setClass(ev, schemas.ClassNetwork, 5)
		} else {
			setClass(ev, schemas.ClassBase, 0)
		}
	}
	if ev.ClassUID == schemas.ClassNetwork {
		for _, p := range [...]string{"TCP", "UDP", "ICMP", "tcp", "udp", "icmp"} {
			if strings.Contains(msg, " "+p+" ") {
				ev.Protocol = strings.ToLower(p)
				break
			}
		}
	}
	if ev.ClassUID != schemas.ClassAuthentication {
		ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	}
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	return nil
}

// asaEndpoints sets src and dst from the first two "[iface:]ip/port" or
// "from ip to ip" tokens.
func asaEndpoints(msg string, ev *schemas.Event) {
	n := 0
	for _, w := range strings.Fields(msg) {
		w = strings.TrimRight(w, ",.;")
		if j := strings.LastIndexByte(w, ':'); j >= 0 && strings.Count(w, ":") == 1 {
			w = w[j+1:] // interface name
		}
		ip, port, _ := strings.Cut(w, "/")
		if !looksIP(ip) {
			continue
		}
		p, _ := parseUint(port, 65535)
		if n == 0 {
			ev.Src.IP, ev.Src.Port = ip, uint16(p)
		} else {
			ev.Dst.IP, ev.Dst.Port = ip, uint16(p)
		}
		if n++; n == 2 {
			return
		}
	}
}

func looksIP(s string) bool {
	if len(s) < 7 || len(s) > 45 {
		return false
	}
	dots, colons := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			dots++
		case c == ':':
			colons++
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return dots == 3 && colons == 0 || colons >= 2 && dots == 0
}

// asaUser finds `user "name"` or "user name" in an ASA message.
func asaUser(msg string) string {
	if _, u, ok := strings.Cut(msg, "user = "); ok {
		u, _, _ = strings.Cut(u, " ")
		return strings.TrimRight(u, ",")
	}
	i := strings.Index(msg, `user "`)
	if i < 0 {
		i = strings.Index(msg, "User ")
	}
	if i < 0 {
		i = strings.Index(msg, "User ")
	}
	if i < 0 {
		return ""
	}
	u := msg[i+5:]
	if strings.HasPrefix(u, "= ") {
		u = u[2:]
	}
	if strings.HasPrefix(u, `"`) {
		if j := strings.IndexByte(u[1:], '"'); j >= 0 {
			return u[1 : j+1]
		}
	}
	u, _, _ = strings.Cut(u, " ")
	return strings.Trim(u, `"'`)
}
