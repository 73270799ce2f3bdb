package normalize

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// Unbound returns the "unbound" format: NLnet Labs Unbound's log with
// log-queries and/or log-replies, through syslog ("Mmm dd hh:mm:ss host
// unbound: [pid:thread] info: ...") or Unbound's own log file
// ("[epoch] unbound[pid:thread] info: ...").
//
// Mapping notes:
//   - "info: IP NAME. TYPE CLASS" (log-queries) is a DNS Activity Query.
//   - "info: IP NAME. TYPE CLASS RCODE TIME CACHED SIZE" (log-replies) is a
//     Response: rtt is TIME (seconds), unbound.from_cache is CACHED,
//     unbound.response_size the reply size in bytes.
//   - The "query: " / "reply: " tags of log-tag-queryreply are accepted.
//   - Every other line (notices, statistics, errors) is a Base Event with
//     its text in message, severity from the Unbound level.
//   - dst_endpoint is unknown: Unbound does not log the address it answered on.
func Unbound() Format {
	return Format{
		Name:        "unbound",
		Description: "Unbound query/reply log (syslog or log file) as OCSF DNS Activity",
		NewDecoder: func(b BatchInfo) Decoder {
			return &unboundDecoder{sys: newSyslogDecoder(b)}
		},
	}
}

type unboundDecoder struct{ sys *syslogDecoder }

func (d *unboundDecoder) Directive([]byte) error { return nil }

var unboundLevels = map[string]uint8{
	"debug":   schemas.SeverityInformational,
	"info":    schemas.SeverityInformational,
	"notice":  schemas.SeverityLow,
	"warning": schemas.SeverityMedium,
	"error":   schemas.SeverityHigh,
	"fatal":   schemas.SeverityCritical,
}

func (d *unboundDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	var msg string
	switch {
	case strings.HasPrefix(s, "["):
		// "[1405360802] unbound[2541:0] info: ..."
		end := strings.IndexByte(s, ']')
		if end < 2 {
			return fmt.Errorf("parse unbound: %w: no ']' after the epoch at start of %s", errNotResolverLog, excerpt(s))
		}
		t, err := parseEpoch(s[1:end])
		if err != nil {
			return fmt.Errorf("parse unbound: epoch %s: %w", excerpt(s[1:end]), err)
		}
		ev.Time, ev.Metadata.OriginalTime = t, s[1:end]
		proc, rest := nextField(s[end+1:])
		proc = strings.TrimSuffix(proc, ":")
		name, pid, _ := strings.Cut(proc, "[")
		ev.ProcessName = name
		if pid = strings.TrimSuffix(pid, "]"); pid != "" {
			ev.AddUnmapped("unbound.thread", pid)
		}
		msg = rest
	case looksSyslog(s):
		m, err := syslogFront(d.sys, rec, ev)
		if err != nil {
			return fmt.Errorf("parse unbound: %w", err)
		}
		msg = m
		// "[2541:0] info: ..." after the syslog tag.
		if strings.HasPrefix(msg, "[") {
			if end := strings.IndexByte(msg, ']'); end > 0 {
				ev.AddUnmapped("unbound.thread", msg[1:end])
				msg = strings.TrimLeft(msg[end+1:], " ")
			}
		}
	default:
		return fmt.Errorf("parse unbound: %w: no syslog header or [epoch] at start of %s", errNotResolverLog, excerpt(s))
	}
	ev.Metadata.Product, ev.Metadata.Vendor, ev.Metadata.LogName = "Unbound", "NLnet Labs", "unbound"
	if lvl, rest, ok := strings.Cut(msg, ": "); ok {
		if sev, known := unboundLevels[lvl]; known {
			ev.SeverityID = sev
			msg = rest
		}
	}
	ev.Message = msg
	unboundQueryReply(msg, ev)
	if ev.ClassUID == schemas.ClassDNS {
		finishDNS(ev)
	}
	return nil
}

// unboundQueryReply maps "[query: |reply: ]IP NAME. TYPE CLASS[ RCODE TIME CACHED SIZE]"
// and leaves ev a Base Event when msg has another shape.
func unboundQueryReply(msg string, ev *schemas.Event) {
	if rest, ok := strings.CutPrefix(msg, "query: "); ok {
		msg = rest
	} else if rest, ok := strings.CutPrefix(msg, "reply: "); ok {
		msg = rest
	}
	ip, rest := nextField(msg)
	name, rest := nextField(rest)
	typ, rest := nextField(rest)
	class, rest := nextField(rest)
	if !looksLikeIP(ip) || !strings.HasSuffix(name, ".") || typ == "" || class == "" {
		return
	}
	rc, rest := nextField(rest)
	if rc == "" {
		setDNSActivity(ev, dnsActivityQuery, -1)
	} else {
		code, known := rcodeFromText(rc)
		if !known {
			return
		}
		rtt, rest := nextField(rest)
		cached, size := nextField(rest)
		f, err1 := parseFloat(rtt)
		_, err2 := parseUint(size, 1<<32-1)
		if err1 != nil || err2 != nil || (cached != "0" && cached != "1") {
			return
		}
		setDNSActivity(ev, dnsActivityResponse, code)
		ev.DNS.RTT = f
		ev.AddUnmapped("unbound.from_cache", cached)
		ev.AddUnmapped("unbound.response_size", size)
		if code != 0 {
			ev.StatusID = dnsStatusFailure
		}
	}
	ev.Src.IP = ip
	ev.DNS.QueryHostname, ev.DNS.QueryType, ev.DNS.QueryClass = trimDot(name), typ, class
}
