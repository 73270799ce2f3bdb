package normalize

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// BindQuery returns the "bind_query" format: ISC BIND 9 named query logging
// (category queries, query-errors and security), as written to its own log
// file ("dd-Mmm-yyyy hh:mm:ss.mmm [category: [severity: ]]client ...") or
// through syslog ("Mmm dd hh:mm:ss host named[pid]: client ...").
//
// Mapping notes:
//   - "client ... query: NAME CLASS TYPE FLAGS (SERVER)" is a DNS Activity
//     Query (activity 1): src_endpoint is the client, dst_endpoint the
//     server address BIND received it on; the flags (+ RD, E EDNS, T TCP,
//     D DO, C CD, S signed, K/V cookie) go to unmapped bind.flags.
//   - "query failed (RCODE) for NAME/CLASS/TYPE" is a Response (2) with that
//     rcode, status Failure.
//   - "query (cache) 'NAME/TYPE/CLASS' denied" (and the older form without
//     the name) is a Query with status Failure and bind.action = denied.
//   - Any other named line is kept as a Base Event (class 0) with its text.
//   - BIND writes local time without a zone; it is read as UTC. When a BIND
//     timestamp follows a syslog header (NIOS), the BIND one is the event
//     time and the syslog one goes to unmapped syslog.time.
func BindQuery() Format {
	return Format{
		Name:        "bind_query",
		Description: "ISC BIND 9 query log (file or syslog) as OCSF DNS Activity",
		NewDecoder: func(b BatchInfo) Decoder {
			return &bindDecoder{sys: newSyslogDecoder(b), product: "BIND", vendor: "ISC"}
		},
	}
}

// InfobloxNIOS returns the "infoblox_nios" format: Infoblox NIOS syslog,
// whose DNS lines are BIND's (see BindQuery) plus NIOS's response logging
// ("query: NAME CLASS TYPE response: RCODE FLAGS RR; RR; ...", one Traffic
// event pairing query and answers) and RPZ hits as CEF
// ("CEF:0|Infoblox|NIOS|...|RPZ-QNAME|NXDOMAIN|7|..."), which become
// Response events naming the rewritten query.
func InfobloxNIOS() Format {
	return Format{
		Name:        "infoblox_nios",
		Description: "Infoblox NIOS DNS syslog (BIND query/response logging, RPZ CEF) as OCSF DNS Activity",
		NewDecoder: func(b BatchInfo) Decoder {
			return &bindDecoder{sys: newSyslogDecoder(b), product: "NIOS", vendor: "Infoblox"}
		},
	}
}

type bindDecoder struct {
	sys             *syslogDecoder
	product, vendor string
}

func (d *bindDecoder) Directive([]byte) error { return nil }

// bindCategories are the logging categories BIND prints with print-category.
var bindCategories = map[string]bool{
	"queries": true, "query-errors": true, "security": true, "client": true, "rpz": true,
	"resolver": true, "lame-servers": true, "edns-disabled": true, "dnssec": true, "general": true,
	"default": true, "network": true, "update": true, "update-security": true, "xfer-in": true,
	"xfer-out": true, "notify": true, "config": true, "unmatched": true, "responses": true,
	"database": true, "cname": true, "rate-limit": true, "dnstap": true,
}

var bindSeverities = map[string]bool{
	"debug": true, "info": true, "notice": true, "warning": true, "error": true, "critical": true,
}

func (d *bindDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	var msg string
	if t, n, ok := parseBindTime(s); ok {
		ev.Time, ev.Metadata.OriginalTime = t, s[:n]
		msg = strings.TrimLeft(s[n:], " ")
	} else if looksSyslog(s) {
		m, err := syslogFront(d.sys, rec, ev)
		if err != nil {
			return fmt.Errorf("parse %s: %w", d.name(), err)
		}
		msg = m
		if t, n, ok := parseBindTime(msg); ok {
			ev.AddUnmapped("syslog.time", ev.Metadata.OriginalTime)
			ev.Time, ev.Metadata.OriginalTime = t, msg[:n]
			msg = strings.TrimLeft(msg[n:], " ")
		}
	} else {
		return fmt.Errorf("parse %s: %w: no BIND or syslog timestamp at start of %s", d.name(), errNotResolverLog, excerpt(s))
	}
	ev.Metadata.Product, ev.Metadata.Vendor = d.product, d.vendor
	ev.Metadata.LogName = "named"
	ev.Message = msg
	// "queries: info: client ..." with print-category / print-severity.
	for i := 0; i < 2; i++ {
		w, rest, ok := strings.Cut(msg, ": ")
		if !ok {
			break
		}
		if i == 0 && bindCategories[w] {
			ev.AddUnmapped("bind.category", w)
		} else if bindSeverities[w] || strings.HasPrefix(w, "debug ") {
			ev.AddUnmapped("bind.severity", w)
		} else {
			break
		}
		msg = rest
	}
	switch {
	case strings.HasPrefix(msg, "client "):
		if err := bindClient(msg[len("client "):], ev); err != nil {
			return fmt.Errorf("parse %s: %w", d.name(), err)
		}
	case strings.HasPrefix(msg, "CEF:"):
		if err := niosCEF(msg, ev); err != nil {
			return fmt.Errorf("parse %s: %w", d.name(), err)
		}
	}
	if ev.ClassUID == schemas.ClassDNS {
		finishDNS(ev)
	}
	return nil
}

func (d *bindDecoder) name() string {
	if d.vendor == "Infoblox" {
		return "infoblox nios"
	}
	return "bind query log"
}

// bindClient parses what follows "client ": "[@0xPTR ]ADDR#PORT[ (NAME)][ view V][ PROTO]: BODY".
func bindClient(s string, ev *schemas.Event) error {
	if strings.HasPrefix(s, "@0x") {
		_, s = nextField(s)
	}
	head, body, ok := strings.Cut(s, ": ")
	if !ok {
		head, body = strings.TrimSuffix(s, ":"), ""
	}
	addr, head := nextField(head)
	ip, port, err := splitAddr(strings.TrimSuffix(addr, ":"))
	if err != nil {
		return fmt.Errorf("client address: %w", err)
	}
	ev.Src.IP, ev.Src.Port = ip, port
	for head != "" {
		var w string
		w, head = nextField(head)
		switch {
		case strings.HasPrefix(w, "(") && strings.HasSuffix(w, ")"):
			ev.AddUnmapped("bind.client_query", w[1:len(w)-1])
		case w == "view":
			var v string
			v, head = nextField(head)
			ev.AddUnmapped("bind.view", v)
		case w == "UDP" || w == "TCP":
			ev.Protocol = protoName(w)
		}
	}
	// "view internal: query: ..." comes as a second "x: " group.
	if v, rest, ok := strings.Cut(body, ": "); ok && strings.HasPrefix(v, "view ") {
		ev.AddUnmapped("bind.view", v[len("view "):])
		body = rest
	}
	switch {
	case strings.HasPrefix(body, "query: "):
		return bindQuery(body[len("query: "):], ev)
	case strings.HasPrefix(body, "query failed ("):
		// "query failed (REFUSED) for NAME/IN/TXT at query.c:10288"
		rc, rest, _ := strings.Cut(body[len("query failed ("):], ")")
		code, known := rcodeFromText(rc)
		if !known {
			code = -1
			ev.AddUnmapped("bind.failure", rc)
		}
		setDNSActivity(ev, dnsActivityResponse, code)
		ev.StatusID = dnsStatusFailure
		if q, ok := strings.CutPrefix(rest, " for "); ok {
			q, at, _ := strings.Cut(q, " at ")
			bindNameClassType(q, "/", ev, false)
			if at != "" {
				ev.AddUnmapped("bind.source", at)
			}
		}
	case strings.HasPrefix(body, "query") && strings.HasSuffix(body, "denied"):
		// "query (cache) 'NAME/A/IN' denied", "query 'NAME/A/IN' denied", "query (cache) denied"
		setDNSActivity(ev, dnsActivityQuery, -1)
		ev.StatusID = dnsStatusFailure
		ev.AddUnmapped("bind.action", "denied")
		if i := strings.IndexByte(body, '\''); i >= 0 {
			if j := strings.LastIndexByte(body, '\''); j > i {
				bindNameClassType(body[i+1:j], "/", ev, true)
			}
		}
		if q, ok := ev.UnmappedValue("bind.client_query"); ok && ev.DNS.QueryHostname == "" {
			ev.DNS.QueryHostname = q
		}
	}
	return nil
}

// bindNameClassType reads "NAME/CLASS/TYPE" or, typeFirst, "NAME/TYPE/CLASS".
func bindNameClassType(s, sep string, ev *schemas.Event, typeFirst bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		ev.DNS.QueryHostname = trimDot(s)
		return
	}
	j := strings.LastIndex(s[:i], sep)
	if j < 0 {
		ev.DNS.QueryHostname = trimDot(s)
		return
	}
	a, b := s[j+1:i], s[i+1:]
	if typeFirst {
		a, b = b, a
	}
	ev.DNS.QueryHostname, ev.DNS.QueryClass, ev.DNS.QueryType = trimDot(s[:j]), a, b
}

// bindQuery parses "NAME CLASS TYPE FLAGS (SERVER)" and NIOS's optional
// " response: RCODE FLAGS RR; RR;".
func bindQuery(s string, ev *schemas.Event) error {
	q, resp, paired := strings.Cut(s, " response: ")
	name, q := nextField(q)
	class, q := nextField(q)
	typ, q := nextField(q)
	if name == "" || typ == "" {
		return fmt.Errorf("query: want NAME CLASS TYPE, got %s", excerpt(s))
	}
	ev.DNS.QueryHostname, ev.DNS.QueryClass, ev.DNS.QueryType = trimDot(name), class, typ
	for q != "" {
		var w string
		w, q = nextField(q)
		switch {
		case strings.HasPrefix(w, "(") && strings.HasSuffix(w, ")"):
			ip, port, err := splitAddr(w[1 : len(w)-1])
			if err != nil {
				return fmt.Errorf("query server: %w", err)
			}
			ev.Dst.IP, ev.Dst.Port = ip, port
		case w != "":
			ev.AddUnmapped("bind.flags", w)
			if strings.IndexByte(w, 'T') >= 0 && ev.Protocol == "" {
				ev.Protocol = "tcp"
			}
		}
	}
	if !paired {
		setDNSActivity(ev, dnsActivityQuery, -1)
		return nil
	}
	rc, resp := nextField(resp)
	code, known := rcodeFromText(rc)
	if !known {
		return fmt.Errorf("response: unknown rcode %s", excerpt(rc))
	}
	setDNSActivity(ev, dnsActivityTraffic, code)
	if code != 0 {
		ev.StatusID = dnsStatusFailure
	}
	flags, resp := nextField(resp)
	if flags != "" {
		ev.AddUnmapped("nios.response_flags", flags)
	}
	for resp != "" {
		var rr string
		rr, resp, _ = strings.Cut(resp, ";")
		resp = strings.TrimLeft(resp, " ")
		rr = strings.TrimSpace(rr)
		if rr == "" {
			continue
		}
		// "NAME TTL CLASS TYPE RDATA"
		_, rest := nextField(rr)
		ttl, rest := nextField(rest)
		_, rest = nextField(rest)
		rtype, rdata := nextField(rest)
		n, err := parseSeconds(ttl)
		if err != nil || rtype == "" || rdata == "" {
			return fmt.Errorf("response record %s: want NAME TTL CLASS TYPE RDATA", excerpt(rr))
		}
		ev.DNS.Answers = append(ev.DNS.Answers, rdata)
		ev.DNS.TTLs = append(ev.DNS.TTLs, n)
	}
	return nil
}

// niosCEF maps a NIOS RPZ CEF line:
// CEF:0|Infoblox|NIOS|VERSION|RPZ-QNAME|NXDOMAIN|7|app=DNS dst=.. src=.. spt=.. view=.. qtype=A msg="rpz QNAME NXDOMAIN rewrite NAME [A] via RULE" CAT=RPZ
func niosCEF(s string, ev *schemas.Event) error {
	parts := strings.SplitN(s, "|", 8)
	if len(parts) != 8 {
		return fmt.Errorf("cef: want 7 header fields, got %d", len(parts)-1)
	}
	sig, name, sev, ext := parts[4], parts[5], parts[6], parts[7]
	if !strings.HasPrefix(sig, "RPZ") {
		ev.AddUnmapped("cef.signature_id", sig)
		return nil // not a DNS record: Base Event
	}
	code, known := rcodeFromText(name)
	if !known {
		code = -1
	}
	setDNSActivity(ev, dnsActivityResponse, code)
	if code > 0 {
		ev.StatusID = dnsStatusFailure
	}
	switch sev {
	case "0", "1", "2", "3":
		ev.SeverityID = schemas.SeverityLow
	case "4", "5", "6":
		ev.SeverityID = schemas.SeverityMedium
	case "7", "8":
		ev.SeverityID = schemas.SeverityHigh
	case "9", "10":
		ev.SeverityID = schemas.SeverityCritical
	}
	ev.AddUnmapped("cef.signature_id", sig)
	ev.AddUnmapped("cef.name", name)
	ev.AddUnmapped("cef.severity", sev)
	for _, kv := range niosCEFPairs(ext) {
		switch kv.Key {
		case "src":
			ev.Src.IP = kv.Value
		case "spt":
			if n, err := parseUint(kv.Value, 65535); err == nil {
				ev.Src.Port = uint16(n)
			}
		case "dst":
			ev.Dst.IP = kv.Value
		case "qtype":
			ev.DNS.QueryType = kv.Value
		case "msg":
			ev.Message = kv.Value
			if _, after, ok := strings.Cut(kv.Value, " rewrite "); ok {
				n, rest := nextField(after)
				ev.DNS.QueryHostname = trimDot(n)
				if _, rule, ok := strings.Cut(rest, " via "); ok {
					ev.AddUnmapped("rpz.rule", rule)
				}
			}
		default:
			ev.AddUnmapped("cef."+kv.Key, kv.Value)
		}
	}
	return nil
}

// niosCEFPairs splits "k1=v one k2=v2" into pairs: a value runs until the
// next space-separated word that looks like "key=". Quotes around a value
// are dropped.
func niosCEFPairs(s string) []schemas.KV {
	var out []schemas.KV
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			break
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+1:]
		end := len(s)
		if strings.HasPrefix(s, `"`) {
			if q := strings.IndexByte(s[1:], '"'); q >= 0 {
				end = q + 2
			}
		} else {
			for i := 0; i < len(s); i++ {
				if s[i] == ' ' && niosCEFKeyAhead(s[i+1:]) {
					end = i
					break
				}
			}
		}
		v := strings.Trim(strings.TrimSpace(s[:end]), `"`)
		out = append(out, schemas.KV{Key: key, Value: v})
		s = strings.TrimLeft(s[end:], " ")
	}
	return out
}

func niosCEFKeyAhead(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			return i > 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.':
		default:
			return false
		}
	}
	return false
}
