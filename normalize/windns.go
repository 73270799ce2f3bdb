package normalize

import (
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// WindowsDNS returns the "windows_dns" format: the Windows DNS Server debug
// log (dns.log, "Log packets for debugging"), whose packet lines read
//
//	4/21/2013 6:12:55 PM 0E84 PACKET  00000000039ED750 UDP Rcv 192.168.1.10    d1b8   Q [0001   D   NOERROR] A      (3)www(6)google(3)com(0)
//
// date, time (12-hour with AM/PM or 24-hour, as the server's locale writes
// it; also yyyy-mm-dd), thread, context, packet id, protocol, Snd/Rcv, remote
// address, transaction id (hex), R for a response, opcode, [flags hex, flag
// letters, rcode], question type and the name in wire-label form.
//
// Mapping notes:
//   - A query (no R) is activity Query, a response Response; the remote
//     address is src_endpoint for a query received or a response sent (the
//     client) and dst_endpoint otherwise (an upstream server).
//   - "(3)www(6)google(3)com(0)" becomes "www.google.com".
//   - Time is the server's local time without a zone, read as UTC.
//   - The file's header block and the detail lines of "details" logging do
//     not start with a digit: they are framing directives and skipped.
//     Lines with another context than PACKET (EVENT, Note) are Base Events.
//   - The analytical ETW channel (Microsoft-Windows-DNSServer/Analytical)
//     comes as Windows event JSON and belongs to the Windows event formats.
func WindowsDNS() Format {
	return Format{
		Name:        "windows_dns",
		Description: "Windows DNS Server debug log (dns.log packet lines) as OCSF DNS Activity",
		IsDirective: func(line []byte) bool {
			return len(line) > 0 && (line[0] < '0' || line[0] > '9')
		},
		NewDecoder: func(BatchInfo) Decoder { return windnsDecoder{} },
	}
}

type windnsDecoder struct{}

func (windnsDecoder) Directive([]byte) error { return nil }

func (windnsDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	t, n, err := parseWinDNSTime(s)
	if err != nil {
		return fmt.Errorf("parse windows dns: %w", err)
	}
	ev.Time, ev.Metadata.OriginalTime = t, s[:n]
	ev.Metadata.Product, ev.Metadata.Vendor, ev.Metadata.LogName = "Windows DNS Server", "Microsoft", "dns.log"
	ev.SeverityID = schemas.SeverityInformational
	thread, rest := nextField(s[n:])
	ctx, rest := nextField(rest)
	ev.Message = rest
	ev.AddUnmapped("windns.thread", thread)
	ev.AddUnmapped("windns.context", ctx)
	if ctx != "PACKET" {
		return nil
	}
	pkt, rest := nextField(rest)
	proto, rest := nextField(rest)
	dir, rest := nextField(rest)
	remote, rest := nextField(rest)
	xid, rest := nextField(rest)
	isResp := false
	if w, r := nextField(rest); w == "R" {
		isResp, rest = true, r
	}
	opcode, rest := nextField(rest)
	open, close := strings.IndexByte(rest, '['), strings.IndexByte(rest, ']')
	if open != 0 || close < 0 {
		return fmt.Errorf("parse windows dns: want [flags rcode] after the opcode in %s", excerpt(s))
	}
	inner := strings.Fields(rest[1:close])
	qtype, qname := nextField(rest[close+1:])
	if len(inner) < 2 || qtype == "" || qname == "" {
		return fmt.Errorf("parse windows dns: want [HEX FLAGS RCODE] TYPE NAME in %s", excerpt(s))
	}
	code, known := rcodeFromText(inner[len(inner)-1])
	if !known {
		return fmt.Errorf("parse windows dns: unknown rcode %s", excerpt(inner[len(inner)-1]))
	}
	ip, _, err := splitAddr(remote)
	if err != nil {
		return fmt.Errorf("parse windows dns: remote: %w", err)
	}
	id, err := parseHex16(xid)
	if err != nil {
		return fmt.Errorf("parse windows dns: transaction id %s: %w", excerpt(xid), err)
	}
	if isResp {
		setDNSActivity(ev, dnsActivityResponse, code)
		if code != 0 {
			ev.StatusID = dnsStatusFailure
		}
	} else {
		setDNSActivity(ev, dnsActivityQuery, -1)
	}
	if (dir == "Rcv") != isResp {
		ev.Src.IP = ip
	} else {
		ev.Dst.IP = ip
	}
	ev.Protocol = protoName(proto)
	ev.DNS.TransactionID = uint32(id)
	ev.DNS.QueryType, ev.DNS.QueryClass = qtype, "IN"
	ev.DNS.QueryHostname = winLabels(strings.TrimSpace(qname))
	ev.AddUnmapped("windns.packet", pkt)
	ev.AddUnmapped("windns.direction", dir)
	ev.AddUnmapped("windns.opcode", opcode)
	ev.AddUnmapped("windns.flags", inner[0])
	if len(inner) > 2 {
		ev.AddUnmapped("windns.flag_chars", strings.Join(inner[1:len(inner)-1], ""))
	}
	finishDNS(ev)
	return nil
}

func parseHex16(s string) (uint64, error) {
	if s == "" || len(s) > 4 {
		return 0, errOutOfRange
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		v, ok := unhex(s[i])
		if !ok {
			return 0, errNotInteger
		}
		n = n<<4 | uint64(v)
	}
	return n, nil
}

// parseWinDNSTime reads "M/D/YYYY h:mm:ss AM", "M/D/YYYY HH:mm:ss" or
// "YYYY-MM-DD HH:mm:ss" and returns the time and the text's length.
func parseWinDNSTime(s string) (time.Time, int, error) {
	date, rest, ok1 := strings.Cut(s, " ")
	clock, rest, _ := strings.Cut(rest, " ")
	if !ok1 || date == "" || clock == "" {
		return time.Time{}, 0, fmt.Errorf("no date and time at start of %s", excerpt(s))
	}
	n := len(date) + 1 + len(clock)
	layout := "1/2/2006 15:04:05"
	if strings.IndexByte(date, '-') > 0 {
		layout = "2006-01-02 15:04:05"
	}
	text := s[:n]
	if ampm, _, _ := strings.Cut(rest, " "); ampm == "AM" || ampm == "PM" {
		layout = strings.Replace(layout, "15", "3", 1) + " PM"
		n += 1 + len(ampm)
		text = s[:n]
	}
	t, err := time.Parse(layout, text)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("no date and time at start of %s", excerpt(s))
	}
	return t.UTC(), n, nil
}

// winLabels turns "(3)www(6)google(3)com(0)" into "www.google.com".
func winLabels(s string) string {
	if !strings.HasPrefix(s, "(") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for s != "" {
		if s[0] != '(' {
			b.WriteString(s) // not label form: keep the rest
			break
		}
		end := strings.IndexByte(s, ')')
		if end < 0 {
			b.WriteString(s)
			break
		}
		n, err := parseUint(s[1:end], 63)
		s = s[end+1:]
		if err != nil || n == 0 {
			continue
		}
		if int(n) > len(s) {
			n = uint64(len(s))
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s[:n])
		s = s[n:]
	}
	return b.String()
}
