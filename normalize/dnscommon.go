package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// Helpers shared by the resolver log formats (bind_query, infoblox_nios,
// unbound, dnsmasq, coredns, windows_dns, dnstap).
//
// Resolver logs mostly travel as syslog. Those decoders parse the syslog
// header with the syslog decoder (so the event keeps device.hostname, the
// process and the syslog facility/severity), then read the message. A message
// that is not a query or response (start-up notices, statistics, zone
// transfers) stays an OCSF Base Event with its text in message: it is kept,
// not dead-lettered, because it is a valid record of the source.

// OCSF DNS Activity activity_id values.
const (
	dnsActivityQuery    uint32 = 1
	dnsActivityResponse uint32 = 2
	dnsActivityTraffic  uint32 = 6
)

// OCSF status_id values.
const (
	dnsStatusSuccess uint8 = 1
	dnsStatusFailure uint8 = 2
)

// setDNSActivity turns ev into a DNS Activity event. rcode < 0 means no
// response is known.
func setDNSActivity(ev *schemas.Event, activity uint32, rcode int32) {
	ev.ClassUID = schemas.ClassDNS
	ev.CategoryUID = 4 // Network Activity
	ev.ActivityID = activity
	if ev.SeverityID == schemas.SeverityUnknown {
		ev.SeverityID = schemas.SeverityInformational
	}
	ev.DNS.RCodeID = rcode
	if rcode >= 0 {
		ev.DNS.RCode = rcodeName(rcode)
	}
}

// finishDNS adds the observables every DNS event carries.
func finishDNS(ev *schemas.Event) {
	ev.AddObservable(schemas.ObservableHostname, "query.hostname", ev.DNS.QueryHostname)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
}

// rcodeFromText maps the textual response codes resolvers print (BIND,
// Unbound, CoreDNS, Windows: NOERROR, NXDOMAIN, SERVFAIL, ...) to numbers.
func rcodeFromText(s string) (int32, bool) {
	switch strings.ToUpper(s) {
	case "NOERROR":
		return 0, true
	case "FORMERR":
		return 1, true
	case "SERVFAIL":
		return 2, true
	case "NXDOMAIN":
		return 3, true
	case "NOTIMP", "NOTIMPL":
		return 4, true
	case "REFUSED":
		return 5, true
	case "YXDOMAIN":
		return 6, true
	case "YXRRSET":
		return 7, true
	case "NXRRSET":
		return 8, true
	case "NOTAUTH":
		return 9, true
	case "NOTZONE":
		return 10, true
	case "BADVERS", "BADSIG":
		return 16, true
	case "BADCOOKIE":
		return 23, true
	}
	return 0, false
}

// trimDot drops the trailing root dot of a fully qualified name, so every
// format reports "www.example.com" as Zeek does.
func trimDot(name string) string {
	if len(name) > 1 && name[len(name)-1] == '.' {
		return name[:len(name)-1]
	}
	return name
}

// splitAddr splits "ip#port" (BIND), "ip:port", "[v6]:port" or "ip/port"
// (dnsmasq extra) into its parts. A missing port is 0.
func splitAddr(s string) (ip string, port uint16, err error) {
	if s == "" {
		return "", 0, errEmptyValue
	}
	var ps string
	switch {
	case s[0] == '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("address %s: missing ']'", excerpt(s))
		}
		ip, ps = s[1:end], strings.TrimPrefix(s[end+1:], ":")
	case strings.IndexByte(s, '#') >= 0:
		ip, ps, _ = strings.Cut(s, "#")
	case strings.IndexByte(s, '/') >= 0:
		ip, ps, _ = strings.Cut(s, "/")
	case strings.Count(s, ":") == 1:
		ip, ps, _ = strings.Cut(s, ":")
	default:
		ip = s // bare v4 or v6 address
	}
	if !looksLikeIP(ip) {
		return "", 0, fmt.Errorf("address %s: not an IP address", excerpt(s))
	}
	if ps != "" {
		n, err := parseUint(ps, 65535)
		if err != nil {
			return "", 0, fmt.Errorf("address %s: port: %w", excerpt(s), err)
		}
		port = uint16(n)
	}
	return ip, port, nil
}

// looksLikeIP is a cheap check that s is made of IP address characters.
// It does not validate; it tells addresses from words.
func looksLikeIP(s string) bool {
	if s == "" || len(s) > 45 {
		return false
	}
	dots, colons := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			dots++
		case c == ':':
			colons++
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F', c == '%':
		default:
			return false
		}
	}
	return dots == 3 || colons >= 2
}

// looksSyslog reports whether s starts like a syslog record the syslog
// decoder reads: "<PRI>", a BSD "Mmm " month or an RFC 3339 date.
func looksSyslog(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '<' {
		return true
	}
	if len(s) > 4 && s[3] == ' ' {
		for _, m := range monthNames {
			if strings.EqualFold(s[:3], m) {
				return true
			}
		}
	}
	return isRFC3339Date(s)
}

// isRFC3339Date reports whether s starts with "yyyy-mm-ddT".
func isRFC3339Date(s string) bool {
	return len(s) > 11 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == 't') &&
		isDigits(s[:4]) && isDigits(s[5:7]) && isDigits(s[8:10])
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseBindTime reads BIND's "dd-Mmm-yyyy hh:mm:ss.mmm" at the start of s and
// returns the time (UTC: BIND writes local time without a zone) and its length.
func parseBindTime(s string) (time.Time, int, bool) {
	const n = len("02-Jan-2006 15:04:05.000")
	if len(s) < n || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != '.' {
		return time.Time{}, 0, false
	}
	month := 0
	for i, m := range monthNames {
		if strings.EqualFold(s[3:6], m) {
			month = i + 1
			break
		}
	}
	num := func(a, b int) int {
		v := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	day, year, hh, mm, ss, ms := num(0, 2), num(7, 11), num(12, 14), num(15, 17), num(18, 20), num(21, 24)
	if month == 0 || day < 1 || year < 0 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 || ms < 0 ||
		day > daysIn(time.Month(month), year) {
		return time.Time{}, 0, false
	}
	return time.Date(year, time.Month(month), day, hh, mm, ss, ms*1e6, time.UTC), n, true
}

// syslogFront parses the syslog header of rec into ev (time, host,
// process, facility and severity) and returns the message. The event is
// left a Base Event. It mirrors syslogDecoder.Record but stops after the
// header: message bodies are this format's to read (a NIOS RPZ "CEF:" body
// is DNS here, not a generic CEF event).
func syslogFront(d *syslogDecoder, rec []byte, ev *schemas.Event) (string, error) {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	if strings.TrimSpace(s) == "" {
		return "", errors.New("parse syslog: empty record")
	}
	pri := -1
	if s[0] == '<' {
		end := strings.IndexByte(s, '>')
		if end < 2 || end > 4 {
			return "", fmt.Errorf("parse syslog: invalid PRI at start of %s", excerpt(s))
		}
		n, err := parseUint(s[1:end], 191)
		if err != nil {
			return "", fmt.Errorf("parse syslog: invalid PRI %q: %w", s[1:end], err)
		}
		pri = int(n)
		ev.AddUnmapped("syslog.facility", facilityNames[pri/8])
		ev.AddUnmapped("syslog.severity", severityNames[pri%8])
		if strings.HasPrefix(s[end+1:], "1 ") {
			if err := d.rfc5424(rec[:len(s)], s, end+3, ev); err != nil {
				return "", fmt.Errorf("parse syslog: rfc5424: %w", err)
			}
			d.finish(pri, ev)
			return ev.Message, nil
		}
		s = s[end+1:]
	}
	if err := d.rfc3164(s, ev); err != nil {
		return "", fmt.Errorf("parse syslog: %w", err)
	}
	d.finish(pri, ev)
	return ev.Message, nil
}

// errNotResolverLog is wrapped by decoders for records in no known shape.
var errNotResolverLog = errors.New("not a line of this resolver's log")

// nextField returns the first space-separated word of s and the rest, with
// leading spaces of the rest trimmed.
func nextField(s string) (string, string) {
	s = strings.TrimLeft(s, " ")
	w, rest, _ := strings.Cut(s, " ")
	return w, strings.TrimLeft(rest, " ")
}

func newSyslogDecoder(b BatchInfo) *syslogDecoder {
	recv := b.Received.UTC()
	if b.Received.IsZero() {
		recv = time.Now().UTC()
	}
	return &syslogDecoder{received: recv}
}

// protoName returns the lower-case transport name without allocating for
// the usual ones.
func protoName(s string) string {
	switch s {
	case "UDP", "udp":
		return "udp"
	case "TCP", "tcp":
		return "tcp"
	}
	return strings.ToLower(s)
}
