package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// SuricataEVE returns the "suricata_eve" format: Suricata's EVE JSON, one
// object per line. Nested objects are flattened to dotted names
// ("alert.signature", "http.hostname"); every field without a mapping is
// kept in unmapped under that name, so nothing in the record is lost.
// Mappings by event_type:
//
//   - alert: Detection Finding 2004, activity 1 Create; alert.signature is
//     the message; alert.severity 1/2/3 (Suricata: 1 is the most severe)
//     becomes severity_id 4 High / 3 Medium / 2 Low, anything else 1.
//   - flow, netflow: Network Activity 4001, activity 6 Traffic (a flow record
//     summarises the flow; flow.state and flow.reason stay in unmapped).
//   - dns: DNS Activity 4003 in all three shapes. v1 (Suricata ≤ 4; one
//     record per answer, dns.type query/answer, rrname/rrtype/rdata/ttl at
//     the top), v2 (5-7; dns.version 2, answers[] and/or grouped.<type>[])
//     and v3 (8; dns.type request/response, queries[] and answers[]).
//     Requests are activity 1 Query, answers/responses 2 Response; dns.id is
//     the transaction id; the textual rcode maps to OCSF rcode/rcode_id (-1
//     when absent).
//   - http: HTTP Activity 4002, activity from http.http_method (as for Zeek);
//     http.hostname is dst_endpoint.hostname; URL and user agent observables.
//     In alert and fileinfo records, whose src/dest may be server to client,
//     http.hostname is only an observable.
//   - tls: Network Activity 4001, activity 6; tls.sni is
//     dst_endpoint.hostname.
//   - fileinfo: Network File Activity 4010, activity 0 (EVE does not say
//     which way the file went); file name and hashes are observables.
//   - ssh: SSH Activity 4007, activity 6 Traffic.
//   - anomaly: Network Activity 4001, activity 0 Unknown, severity 2 Low;
//     anomaly.event (or anomaly.code) is the message.
//   - stats: kept, not dropped: a Base Event 0 with log_name "stats" whose
//     counters are all in unmapped ("stats.decoder.pkts" = ...), so sensor
//     health can be charted from the events table and a stats line never
//     becomes a dead letter. Its observables are empty.
//   - any other event_type (smtp, smb, krb5, ...): Base Event 0.
//
// timestamp ("2017-01-30T16:12:36.066011+0100", also with "+01:00" or "Z")
// is the time, converted to UTC; a record without timestamp or event_type
// is an error. flow_id is metadata.uid, host (the sensor name) is
// device.hostname, proto is lower-cased for the common protocols.
func SuricataEVE() Format {
	return Format{
		Name:        "suricata_eve",
		Description: "Suricata EVE JSON (alert, flow, dns v1/v2/v3, http, tls, fileinfo, ssh, anomaly, stats, ...) as OCSF events",
		NewDecoder: func(BatchInfo) Decoder {
			return &eveDecoder{}
		},
	}
}

type eveDecoder struct {
	flat jsonFlattener
}

// Directive is never called (EVE has no framing lines).
func (d *eveDecoder) Directive([]byte) error { return nil }

// Record decodes one EVE record.
func (d *eveDecoder) Record(rec []byte, ev *schemas.Event) error {
	rec = bytes.TrimSpace(rec)
	if len(rec) == 0 {
		return errors.New("parse suricata eve: empty record")
	}
	ev.Raw = d.flat.arena.copy(rec)
	if err := d.flat.flatten(ev.Raw); err != nil {
		return fmt.Errorf("parse suricata eve: %w", err)
	}
	etype, _ := d.flat.get("event_type")
	if etype == "" {
		return errors.New("parse suricata eve: record has no event_type")
	}
	if err := mapEVE(etype, d.flat.fields, ev); err != nil {
		return fmt.Errorf("parse suricata eve %s: %w", etype, err)
	}
	return nil
}

// parseEVETime reads Suricata's timestamp, whose zone offset has no colon.
func parseEVETime(s string) (time.Time, error) {
	if n := len(s); n > 5 && (s[n-5] == '+' || s[n-5] == '-') {
		t, err := time.Parse("2006-01-02T15:04:05.999999999-0700", s)
		if err != nil {
			return time.Time{}, err
		}
		return t.UTC().Truncate(time.Millisecond), nil
	}
	return parseRFC3339(s)
}

func lowerProto(p string) string {
	switch p {
	case "TCP":
		return "tcp"
	case "UDP":
		return "udp"
	case "ICMP":
		return "icmp"
	case "IPV6-ICMP", "IPv6-ICMP":
		return "ipv6-icmp"
	case "SCTP":
		return "sctp"
	}
	return p
}

func mapEVE(etype string, fields []flatField, ev *schemas.Event) error {
	hasTS, hasRCode := false, false
	var method, url, ua, sev, dnsType, rdata, ttl, host string
	ev.DNS.RCodeID = -1
	for i := range fields {
		name, v, kind := fields[i].name, fields[i].value, fields[i].kind
		switch name {
		case "timestamp":
			t, err := parseEVETime(v)
			if err != nil {
				return fieldErr(name, err)
			}
			ev.Time, ev.Metadata.OriginalTime, hasTS = t, v, true
			continue
		case "event_type":
			continue
		case "flow_id":
			ev.Metadata.UID = v
			continue
		case "src_ip":
			ev.Src.IP = v
			continue
		case "dest_ip":
			ev.Dst.IP = v
			continue
		case "src_port", "dest_port":
			n, err := parseUint(v, 65535)
			if err != nil {
				return fieldErr(name, err)
			}
			if name == "src_port" {
				ev.Src.Port = uint16(n)
			} else {
				ev.Dst.Port = uint16(n)
			}
			continue
		case "proto":
			ev.Protocol = lowerProto(v)
			continue
		case "host":
			ev.DeviceHostname = v
			continue
		}
		switch etype {
		case "alert":
			switch name {
			case "alert.signature":
				ev.Message = v
			case "alert.severity":
				sev = v
			}
		case "anomaly":
			switch name {
			case "anomaly.event", "anomaly.code":
				if ev.Message == "" {
					ev.Message = v
				}
			}
		case "tls":
			if name == "tls.sni" {
				ev.Dst.Hostname = v
			}
		case "fileinfo":
			switch name {
			case "fileinfo.filename":
				ev.AddObservable(schemas.ObservableFileName, "file.name", v)
			case "fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256":
				ev.AddObservable(schemas.ObservableHash, "file.hashes."+name[len("fileinfo."):], v)
			}
		case "dns":
			switch name {
			case "dns.type":
				dnsType = v
			case "dns.id":
				n, err := parseUint(v, 1<<32-1)
				if err != nil {
					return fieldErr(name, err)
				}
				ev.DNS.TransactionID = uint32(n)
			case "dns.rrname":
				ev.DNS.QueryHostname = v
			case "dns.rrtype":
				ev.DNS.QueryType = v
			case "dns.rcode":
				ev.DNS.RCode, ev.DNS.RCodeID = eveRCode(v)
				hasRCode = true
			case "dns.rdata":
				rdata = v
			case "dns.ttl":
				ttl = v
			case "dns.queries":
				if err := eveQueries(v, kind, ev); err != nil {
					return fieldErr(name, err)
				}
			case "dns.answers":
				if err := eveAnswers(v, kind, ev); err != nil {
					return fieldErr(name, err)
				}
			}
		}
		switch name { // shared by alert, http and fileinfo records
		case "http.hostname":
			// Only an http record's direction is known to be client to
			// server; alert and fileinfo records may be the other way.
			if etype == "http" {
				ev.Dst.Hostname = v
			} else {
				host = v
			}
		case "http.url":
			url = v
		case "http.http_user_agent":
			ua = v
		case "http.http_method":
			method = v
		}
		ev.AddUnmapped(name, v)
	}
	if !hasTS {
		return errors.New("record has no timestamp")
	}
	ev.Metadata.Product = "Suricata"
	ev.Metadata.Vendor = "OISF"
	ev.Metadata.LogName = etype
	ev.SeverityID = schemas.SeverityInformational
	switch etype {
	case "alert":
		setClass(ev, schemas.ClassDetectionFinding, 1)
		switch sev {
		case "1":
			ev.SeverityID = schemas.SeverityHigh
		case "2":
			ev.SeverityID = schemas.SeverityMedium
		case "3":
			ev.SeverityID = schemas.SeverityLow
		}
	case "flow", "netflow", "tls":
		setClass(ev, schemas.ClassNetwork, 6)
	case "anomaly":
		setClass(ev, schemas.ClassNetwork, 0)
		ev.SeverityID = schemas.SeverityLow
	case "ssh":
		setClass(ev, schemas.ClassSSH, 6)
	case "fileinfo":
		setClass(ev, schemas.ClassNetworkFile, 0)
	case "http":
		setClass(ev, schemas.ClassHTTP, httpActivity(method))
	case "dns":
		act := uint32(0)
		switch dnsType {
		case "query", "request":
			act = 1
		case "answer", "response":
			act = 2
		}
		setClass(ev, schemas.ClassDNS, act)
		if rdata != "" && len(ev.DNS.Answers) == 0 { // v1: one answer per record
			ev.DNS.Answers = append(ev.DNS.Answers, rdata)
			t, _ := parseSeconds(ttl)
			ev.DNS.TTLs = append(ev.DNS.TTLs, t)
		}
		if len(ev.DNS.Answers) == 0 {
			eveGrouped(fields, ev)
		}
		if !hasRCode {
			ev.DNS.RCodeID = -1
		}
		ev.AddObservable(schemas.ObservableHostname, "query.hostname", ev.DNS.QueryHostname)
	default:
		setClass(ev, schemas.ClassBase, 0)
	}
	if ev.ClassUID != schemas.ClassDNS {
		ev.DNS.RCodeID = 0
	}
	ev.AddObservable(schemas.ObservableHostname, "dst_endpoint.hostname", ev.Dst.Hostname)
	if host == "" {
		host = ev.Dst.Hostname
	} else {
		ev.AddObservable(schemas.ObservableHostname, "http.hostname", host)
	}
	if host != "" && strings.HasPrefix(url, "/") {
		ev.AddObservable(schemas.ObservableURL, "http_request.url", "http://"+host+url)
	}
	ev.AddObservable(schemas.ObservableUserAgent, "http_request.user_agent", ua)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	return nil
}

// eveRCode maps Suricata's rcode text to OCSF's name and id.
func eveRCode(v string) (string, int32) {
	codes := [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
		"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}
	for i, c := range codes {
		if strings.EqualFold(v, c) {
			return rcodeName(int32(i)), int32(i)
		}
	}
	return "Other", 99
}

// eachObject calls f for every scalar member of every object in the raw
// JSON array raw; end is called after each object.
func eachObject(raw string, f func(key, val string), end func()) error {
	p := jsonScanner{s: raw}
	if err := p.expect('['); err != nil {
		return err
	}
	if p.peek() == ']' {
		return nil
	}
	for {
		if p.kind() != jsonObject {
			if _, err := p.skip(0); err != nil {
				return err
			}
		} else {
			p.i++
			if p.peek() == '}' {
				p.i++
			} else {
				for {
					k, err := p.str()
					if err != nil {
						return err
					}
					if err := p.expect(':'); err != nil {
						return err
					}
					switch p.kind() {
					case jsonArray, jsonObject:
						if _, err := p.skip(1); err != nil {
							return err
						}
					default:
						_, v, err := p.scalar()
						if err != nil {
							return err
						}
						f(k, v)
					}
					if c := p.peek(); c == ',' {
						p.i++
						continue
					} else if c == '}' {
						p.i++
						break
					}
					return p.errorf("want ',' or '}', got %s", p.got())
				}
			}
			end()
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			return nil
		default:
			return p.errorf("want ',' or ']', got %s", p.got())
		}
	}
}

// eveQueries takes the first query of a v3 queries[] array.
func eveQueries(v string, kind jsonKind, ev *schemas.Event) error {
	if kind != jsonArray {
		return nil // empty array, or not objects: kept in unmapped only
	}
	n := 0
	return eachObject(v, func(k, val string) {
		if n > 0 {
			return
		}
		switch k {
		case "rrname":
			if ev.DNS.QueryHostname == "" {
				ev.DNS.QueryHostname = val
			}
		case "rrtype":
			if ev.DNS.QueryType == "" {
				ev.DNS.QueryType = val
			}
		}
	}, func() { n++ })
}

// eveAnswers reads a v2/v3 answers[] array into Answers and TTLs.
func eveAnswers(v string, kind jsonKind, ev *schemas.Event) error {
	if kind != jsonArray {
		return nil
	}
	var rdata, ttl string
	return eachObject(v, func(k, val string) {
		switch k {
		case "rdata":
			rdata = val
		case "ttl":
			ttl = val
		}
	}, func() {
		if rdata != "" {
			t, _ := parseSeconds(ttl)
			ev.DNS.Answers = append(ev.DNS.Answers, rdata)
			ev.DNS.TTLs = append(ev.DNS.TTLs, t)
		}
		rdata, ttl = "", ""
	})
}

// eveGrouped reads v2's grouped.<rrtype> answers when answers[] is absent.
func eveGrouped(fields []flatField, ev *schemas.Event) {
	for i := range fields {
		name, v := fields[i].name, fields[i].value
		if !strings.HasPrefix(name, "dns.grouped.") || fields[i].kind != jsonString {
			continue
		}
		for v != "" {
			var a string
			a, v, _ = strings.Cut(v, ",")
			ev.DNS.Answers = append(ev.DNS.Answers, a)
			ev.DNS.TTLs = append(ev.DNS.TTLs, 0)
		}
	}
}
