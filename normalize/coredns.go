package normalize

import (
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// CoreDNS returns the "coredns" format: lines of CoreDNS's log plugin in its
// default format,
//
//	[INFO] {remote}:{port} - {>id} "{type} {class} {name} {proto} {size} {>do} {>bufsize}" {rcode} {>rflags} {rsize} {duration}
//
// optionally preceded by an RFC 3339 timestamp (kubectl logs --timestamps,
// container runtimes). CoreDNS itself writes no time: without a timestamp
// the event time is the batch's Received time and metadata.original_time is
// empty. Each line is one Traffic event (CoreDNS logs after answering, so
// query and response are paired); rtt is the duration. Other CoreDNS lines
// ("[INFO] plugin/reload: ...", "[ERROR] ...") are Base Events.
func CoreDNS() Format {
	return Format{
		Name:        "coredns",
		Description: "CoreDNS log plugin lines (default format) as OCSF DNS Activity",
		NewDecoder: func(b BatchInfo) Decoder {
			recv := b.Received.UTC().Truncate(time.Millisecond)
			if b.Received.IsZero() {
				recv = time.Now().UTC().Truncate(time.Millisecond)
			}
			return &corednsDecoder{received: recv}
		},
	}
}

type corednsDecoder struct{ received time.Time }

func (d *corednsDecoder) Directive([]byte) error { return nil }

var corednsLevels = map[string]uint8{
	"[DEBUG]":   schemas.SeverityInformational,
	"[INFO]":    schemas.SeverityInformational,
	"[WARNING]": schemas.SeverityMedium,
	"[ERROR]":   schemas.SeverityHigh,
	"[FATAL]":   schemas.SeverityCritical,
}

func (d *corednsDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	ev.Time = d.received
	if isRFC3339Date(s) {
		tok, rest := nextField(s)
		t, err := parseRFC3339(tok)
		if err != nil {
			return fmt.Errorf("parse coredns: timestamp %s: %w", excerpt(tok), err)
		}
		ev.Time, ev.Metadata.OriginalTime, s = t, tok, rest
	}
	lvl, rest := nextField(s)
	sev, ok := corednsLevels[lvl]
	if !ok {
		return fmt.Errorf("parse coredns: %w: want [INFO]-style level at start of %s", errNotResolverLog, excerpt(s))
	}
	ev.SeverityID = sev
	ev.Metadata.Product, ev.Metadata.Vendor, ev.Metadata.LogName = "CoreDNS", "CoreDNS", "log"
	ev.Message = rest
	if err := corednsQuery(rest, ev); err != nil {
		return fmt.Errorf("parse coredns: %w", err)
	}
	if ev.ClassUID == schemas.ClassDNS {
		finishDNS(ev)
	}
	return nil
}

// corednsQuery maps the log plugin's default line; another message shape
// leaves ev a Base Event.
func corednsQuery(s string, ev *schemas.Event) error {
	remote, rest := nextField(s)
	dash, rest := nextField(rest)
	if dash != "-" || !strings.HasPrefix(rest, "") {
		return nil
	}
	id, rest := nextField(rest)
	if !strings.HasPrefix(rest, `"`) {
		return nil
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return fmt.Errorf("unterminated request in %s", excerpt(s))
	}
	req, resp := rest[1:end+1], strings.TrimLeft(rest[end+2:], " ")
	ip, port, err := splitAddr(remote)
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	typ, r := nextField(req)
	class, r := nextField(r)
	name, r := nextField(r)
	proto, r := nextField(r)
	size, r := nextField(r)
	do, bufsize := nextField(r)
	if name == "" || proto == "" {
		return fmt.Errorf("request %s: want \"TYPE CLASS NAME PROTO SIZE DO BUFSIZE\"", excerpt(req))
	}
	rc, resp := nextField(resp)
	flags, resp := nextField(resp)
	rsize, resp := nextField(resp)
	dur, _ := nextField(resp)
	code, known := rcodeFromText(rc)
	if !known {
		return fmt.Errorf("unknown rcode %s", excerpt(rc))
	}
	setDNSActivity(ev, dnsActivityTraffic, code)
	if code != 0 {
		ev.StatusID = dnsStatusFailure
	}
	ev.Src.IP, ev.Src.Port = ip, port
	ev.Protocol = proto
	ev.DNS.QueryHostname, ev.DNS.QueryType, ev.DNS.QueryClass = trimDot(name), typ, class
	if n, err := parseUint(id, 65535); err == nil {
		ev.DNS.TransactionID = uint32(n)
	}
	if d, err := time.ParseDuration(dur); err == nil {
		ev.DNS.RTT = d.Seconds()
	}
	ev.AddUnmapped("coredns.request_size", size)
	ev.AddUnmapped("coredns.do", do)
	ev.AddUnmapped("coredns.bufsize", bufsize)
	ev.AddUnmapped("coredns.response_flags", flags)
	ev.AddUnmapped("coredns.response_size", rsize)
	return nil
}
