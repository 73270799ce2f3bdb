package normalize

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// Dnsmasq returns the "dnsmasq" format: dnsmasq's log-queries output through
// syslog or its log-facility file ("Mmm dd hh:mm:ss dnsmasq[pid]: ..."),
// also with log-queries=extra ("SERIAL CLIENT/PORT query[A] ...").
//
// dnsmasq writes one line per step, so queries and answers are separate
// events (the serial of log-queries=extra, in unmapped dnsmasq.serial, ties
// them together):
//   - "query[TYPE] NAME from CLIENT" and "dnssec-query[TYPE] ..." are
//     Queries (activity 1) from the client.
//   - "forwarded NAME to SERVER" is a Query to the upstream server
//     (dnsmasq.action = forwarded).
//   - "reply|cached|config|<hosts file> NAME is ANSWER" is a Response; ANSWER
//     NXDOMAIN sets rcode NXDomain, NODATA[-IPv4|-IPv6] rcode NoError with no
//     answer, <CNAME> and other placeholders go to dnsmasq.answer.
//   - Other lines (start-up, "nameserver ... refused ...") stay Base Events.
//
// "<name unprintable>" (dnsmasq's placeholder for binary names, as iodine
// sends) is kept as the query hostname verbatim.
func Dnsmasq() Format {
	return Format{
		Name:        "dnsmasq",
		Description: "dnsmasq log-queries lines (syslog or log file) as OCSF DNS Activity",
		NewDecoder: func(b BatchInfo) Decoder {
			return &dnsmasqDecoder{sys: newSyslogDecoder(b)}
		},
	}
}

type dnsmasqDecoder struct{ sys *syslogDecoder }

func (d *dnsmasqDecoder) Directive([]byte) error { return nil }

func (d *dnsmasqDecoder) Record(rec []byte, ev *schemas.Event) error {
	// Only a prefix is converted: small, non-escaping, no allocation.
	if !looksSyslog(string(rec[:min(len(rec), 24)])) {
		return fmt.Errorf("parse dnsmasq: %w: no syslog header at start of %s", errNotResolverLog, excerpt(string(rec)))
	}
	msg, err := syslogFront(d.sys, rec, ev)
	if err != nil {
		return fmt.Errorf("parse dnsmasq: %w", err)
	}
	ev.Metadata.Product, ev.Metadata.Vendor, ev.Metadata.LogName = "dnsmasq", "dnsmasq", "dnsmasq"
	if err := dnsmasqMessage(msg, ev); err != nil {
		return fmt.Errorf("parse dnsmasq: %w", err)
	}
	if ev.ClassUID == schemas.ClassDNS {
		finishDNS(ev)
	}
	return nil
}

func dnsmasqMessage(msg string, ev *schemas.Event) error {
	// log-queries=extra: "1234 10.0.0.1/53432 query[A] ..."
	if w, rest := nextField(msg); isDigits(w) {
		addr, rest2 := nextField(rest)
		if ip, port, err := splitAddr(addr); err == nil {
			ev.AddUnmapped("dnsmasq.serial", w)
			ev.Src.IP, ev.Src.Port = ip, port
			msg = rest2
		}
	}
	verb, rest := nextField(msg)
	// The name may be "<name unprintable>": it holds a space.
	var name string
	if strings.HasPrefix(rest, "<name unprintable>") {
		name, rest = "<name unprintable>", strings.TrimLeft(rest[len("<name unprintable>"):], " ")
	} else {
		name, rest = nextField(rest)
	}
	link, arg := nextField(rest)
	if name == "" {
		return nil
	}
	switch {
	case (strings.HasPrefix(verb, "query[") || strings.HasPrefix(verb, "dnssec-query[")) && strings.HasSuffix(verb, "]") && link == "from":
		ip, port, err := splitAddr(arg)
		if err != nil {
			return fmt.Errorf("query client: %w", err)
		}
		setDNSActivity(ev, dnsActivityQuery, -1)
		ev.DNS.QueryType = verb[strings.IndexByte(verb, '[')+1 : len(verb)-1]
		ev.DNS.QueryClass = "IN"
		if ev.Src.IP == "" || ev.Src.IP == ip {
			ev.Src.IP = ip
			if port != 0 {
				ev.Src.Port = port
			}
		}
		if strings.HasPrefix(verb, "dnssec") {
			ev.AddUnmapped("dnsmasq.action", "dnssec-query")
		}
	case verb == "forwarded" && link == "to":
		ip, port, err := splitAddr(arg)
		if err != nil {
			return fmt.Errorf("forwarded server: %w", err)
		}
		setDNSActivity(ev, dnsActivityQuery, -1)
		ev.Dst.IP, ev.Dst.Port = ip, port
		ev.AddUnmapped("dnsmasq.action", "forwarded")
	case link == "is" && arg != "" && (verb == "reply" || verb == "cached" || verb == "config" || strings.HasPrefix(verb, "/")):
		rcode := int32(0)
		switch {
		case arg == "NXDOMAIN":
			rcode = 3
		case strings.HasPrefix(arg, "NODATA"):
		case arg == "SERVFAIL":
			rcode = 2
		case arg == "REFUSED":
			rcode = 5
		case strings.HasPrefix(arg, "<"):
			ev.AddUnmapped("dnsmasq.answer", arg)
		default:
			ev.DNS.Answers = append(ev.DNS.Answers, arg)
		}
		setDNSActivity(ev, dnsActivityResponse, rcode)
		if rcode != 0 {
			ev.StatusID = dnsStatusFailure
		}
		action := verb
		if strings.HasPrefix(verb, "/") {
			action = "hosts"
			ev.AddUnmapped("dnsmasq.file", verb)
		}
		ev.AddUnmapped("dnsmasq.action", action)
	default:
		return nil
	}
	ev.DNS.QueryHostname = trimDot(name)
	return nil
}
