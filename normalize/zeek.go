package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// Zeek returns the "zeek" format: any Zeek log, JSON lines or TSV with "#"
// headers. TSV records take their log from the "#path" header; JSON records
// from a "_path" field when present, otherwise from the fields they carry
// (query+qtype: dns, conn_state/history: conn, method/uri: http, note:
// notice, name+addl: weird, fuid: files, certificate.*: x509,
// cipher/server_name/established: ssl). dns records go through the zeek_dns
// mapping. Mappings (per log):
//
//   - conn: Network Activity 4001; activity from conn_state: REJ 5 Refuse,
//     S0 4 Fail, RST* 3 Reset, anything else 6 Traffic (a conn.log row
//     summarises a whole connection).
//   - http: HTTP Activity 4002; activity from the method (CONNECT 1, DELETE
//     2, GET 3, HEAD 4, OPTIONS 5, POST 6, PUT 7, TRACE 8, other 99, none 0);
//     host is dst_endpoint.hostname; observables for the host, the URL
//     ("http://" + host + uri) and the user agent; username is user.name.
//   - ssl: Network Activity 4001, activity 6 Traffic, server_name is
//     dst_endpoint.hostname.
//   - x509: Base Event 0 (OCSF has no certificate-observation class; the
//     certificate belongs to the ssl record whose cert_chain_fuids name it);
//     id (the file id) is metadata.uid, san.dns names are hostname observables.
//   - files: Network File Activity 4010, activity 2 Download when is_orig is
//     false (the responder sent it), 1 Upload when true, 0 when absent;
//     single tx_hosts/rx_hosts are src/dst endpoint ips; hashes and file
//     names are observables; fuid is metadata.uid.
//   - notice: Detection Finding 2004, activity 1 Create, severity 3 Medium
//     (Zeek notices carry no severity); msg is the message; src/dst stand in
//     for a missing connection id.
//   - weird: Network Activity 4001, activity 0 Unknown, severity 2 Low; the
//     weird's name is the message.
//   - any other log: Base Event 0 with the connection id and uid mapped.
//
// In every log ts is the time (a record without one is an error), uid (or
// fuid) metadata.uid, id.orig_*/id.resp_* the endpoints and proto the
// protocol; every other field is kept in unmapped under its Zeek name, in
// record order, with TSV and JSON rendered alike (see ZeekDNS). Fields
// mapped to a class attribute (host, server_name, msg, username) stay in
// unmapped too, so rules written against Zeek's names still find them.
func Zeek() Format {
	return zeekFormat("zeek", "", "any Zeek log (JSON lines or TSV), routed by #path, _path or the fields present")
}

// ZeekLogs returns one format per Zeek log this package maps
// ("zeek_conn", "zeek_http", ...): like Zeek, with the log fixed by the
// format name instead of detected.
func ZeekLogs() []Format {
	logs := []string{"conn", "http", "ssl", "x509", "files", "notice", "weird"}
	out := make([]Format, len(logs))
	for i, l := range logs {
		out[i] = zeekFormat("zeek_"+l, l, "Zeek "+l+".log, JSON lines or TSV with # headers (see format zeek)")
	}
	return out
}

func zeekFormat(name, path, desc string) Format {
	return Format{
		Name:        name,
		Description: desc,
		IsDirective: isZeekDirective,
		NewDecoder: func(BatchInfo) Decoder {
			return &zeekDecoder{fixed: path, dns: newZeekDNSDecoder()}
		},
	}
}

type zeekDecoder struct {
	fixed string          // log forced by the format name, "" to route
	path  string          // from the TSV #path header
	dns   *zeekDNSDecoder // TSV header state, and the dns.log mapping
	flat  jsonFlattener
}

// Directive applies a TSV header line; #path selects the log.
func (d *zeekDecoder) Directive(line []byte) error {
	if rest, ok := bytes.CutPrefix(line, []byte("#path")); ok {
		p := trimEOL(string(rest))
		p = strings.TrimSpace(strings.TrimPrefix(p, d.dns.h.sep))
		if p == "" {
			return errors.New("parse zeek tsv: #path is empty")
		}
		d.path = p
		return nil
	}
	if err := d.dns.Directive(line); err != nil {
		return fmt.Errorf("%s", strings.Replace(err.Error(), "zeek dns", "zeek", 1))
	}
	return nil
}

// Record decodes one Zeek record.
func (d *zeekDecoder) Record(rec []byte, ev *schemas.Event) error {
	if len(bytes.TrimSpace(rec)) == 0 {
		return errors.New("parse zeek: empty record")
	}
	json := rec[0] == '{'
	ev.Raw = d.flat.arena.copy(rec)
	if json {
		if err := d.flat.flatten(ev.Raw); err != nil {
			return fmt.Errorf("parse zeek json: %w", err)
		}
	} else if err := d.tsv(trimEOL(ev.Raw)); err != nil {
		return fmt.Errorf("parse zeek tsv: %w", err)
	}
	path := d.fixed
	if path == "" {
		if json {
			path, _ = d.flat.get("_path")
		} else {
			path = d.path
		}
		if path == "" {
			path = inferZeekPath(d.flat.fields)
		}
	}
	if path == "dns" {
		return d.dns.Record(rec, ev)
	}
	if err := mapZeek(path, d.flat.fields, ev); err != nil {
		if path == "" {
			return fmt.Errorf("parse zeek record: %w", err)
		}
		return fmt.Errorf("parse zeek %s: %w", path, err)
	}
	return nil
}

// tsv splits one TSV row into d.flat.fields by the current header.
func (d *zeekDecoder) tsv(s string) error {
	h := &d.dns.h
	if h.names == nil {
		return errors.New("record before any #fields header")
	}
	f := &d.flat
	f.fields = f.fields[:0]
	want := len(h.names)
	rest, more := s, true
	esc := strings.IndexByte(s, '\\') >= 0
	for i, name := range h.names {
		if !more {
			return fmt.Errorf("got %d fields, want %d (from #fields)", i, want)
		}
		var v string
		v, rest, more = strings.Cut(rest, h.sep)
		if v == h.unset {
			continue
		}
		if v == h.empty {
			v = ""
		}
		switch {
		case h.bools != nil && h.bools[i]:
			v = zeekBool(v)
		case h.vectors != nil && h.vectors[i]:
			v = joinSet(v, h.setSep)
		case esc:
			v = unescapeHex(v, true)
		}
		f.fields = append(f.fields, flatField{name: name, value: v, kind: jsonString})
	}
	if more {
		return fmt.Errorf("got %d fields, want %d (from #fields)", want+1+strings.Count(rest, h.sep), want)
	}
	return nil
}

// inferZeekPath names the log a record without _path comes from.
func inferZeekPath(fields []flatField) string {
	var query, qtype, fuid, name, addl, cert, tls bool
	for i := range fields {
		switch n := fields[i].name; n {
		case "conn_state", "history", "orig_ip_bytes":
			return "conn"
		case "method", "trans_depth", "status_code", "user_agent":
			return "http"
		case "note":
			return "notice"
		case "query":
			query = true
		case "qtype", "qtype_name", "trans_id", "rcode":
			qtype = true
		case "fuid", "mime_type", "seen_bytes":
			fuid = true
		case "name":
			name = true
		case "addl", "peer":
			addl = true
		case "cipher", "server_name", "established", "validation_status", "cert_chain_fuids":
			tls = true
		default:
			if strings.HasPrefix(n, "certificate.") {
				cert = true
			}
		}
	}
	switch {
	case query && qtype:
		return "dns"
	case cert:
		return "x509"
	case fuid:
		return "files"
	case name && addl:
		return "weird"
	case tls:
		return "ssl"
	}
	return ""
}

// mapZeek maps the flat fields of one non-dns record onto ev.
func mapZeek(path string, fields []flatField, ev *schemas.Event) error {
	hasTS := false
	var connState, method, uri, isOrig, srcAlt, dstAlt string
	for i := range fields {
		name, v := fields[i].name, fields[i].value
		switch name {
		case "ts":
			t, err := parseZeekTime(v)
			if err != nil {
				return fieldErr(name, err)
			}
			ev.Time, ev.Metadata.OriginalTime, hasTS = t, v, true
			continue
		case "uid":
			ev.Metadata.UID = v
			continue
		case "id.orig_h":
			ev.Src.IP = v
			continue
		case "id.resp_h":
			ev.Dst.IP = v
			continue
		case "id.orig_p", "id.resp_p":
			n, err := parseUint(v, 65535)
			if err != nil {
				return fieldErr(name, err)
			}
			if name == "id.orig_p" {
				ev.Src.Port = uint16(n)
			} else {
				ev.Dst.Port = uint16(n)
			}
			continue
		case "proto":
			ev.Protocol = v
			continue
		case "_path":
			continue
		}
		switch path {
		case "conn":
			if name == "conn_state" {
				connState = v
			}
		case "http":
			switch name {
			case "method":
				method = v
			case "host":
				ev.Dst.Hostname = v
			case "uri":
				uri = v
			case "username":
				ev.UserName = v
			}
		case "ssl":
			if name == "server_name" {
				ev.Dst.Hostname = v
			}
		case "x509":
			switch name {
			case "id":
				ev.Metadata.UID = v
				continue
			case "san.dns":
				for rest := v; rest != ""; {
					var h string
					h, rest, _ = strings.Cut(rest, ",")
					ev.AddObservable(schemas.ObservableHostname, "san.dns", h)
				}
			}
		case "files":
			switch name {
			case "fuid":
				ev.Metadata.UID = v
				continue
			case "is_orig":
				isOrig = v
			case "tx_hosts":
				srcAlt = v
			case "rx_hosts":
				dstAlt = v
			case "md5", "sha1", "sha256":
				ev.AddObservable(schemas.ObservableHash, "file.hashes."+name, v)
			case "filename":
				ev.AddObservable(schemas.ObservableFileName, "file.name", v)
			}
		case "notice":
			switch name {
			case "msg":
				ev.Message = v
			case "src":
				srcAlt = v
			case "dst":
				dstAlt = v
			}
		case "weird":
			if name == "name" {
				ev.Message = v
			}
		}
		ev.AddUnmapped(name, v)
	}
	if !hasTS {
		return errors.New("record has no ts")
	}
	if ev.Src.IP == "" && srcAlt != "" && strings.IndexByte(srcAlt, ',') < 0 {
		ev.Src.IP = srcAlt
	}
	if ev.Dst.IP == "" && dstAlt != "" && strings.IndexByte(dstAlt, ',') < 0 {
		ev.Dst.IP = dstAlt
	}
	ev.Metadata.Product = "Zeek"
	ev.Metadata.Vendor = "Zeek"
	ev.Metadata.LogName = path
	if path == "" {
		ev.Metadata.LogName = "unknown"
	}
	ev.SeverityID = schemas.SeverityInformational
	switch path {
	case "conn":
		setClass(ev, schemas.ClassNetwork, connActivity(connState))
	case "ssl":
		setClass(ev, schemas.ClassNetwork, 6)
	case "weird":
		setClass(ev, schemas.ClassNetwork, 0)
		ev.SeverityID = schemas.SeverityLow
	case "http":
		setClass(ev, schemas.ClassHTTP, httpActivity(method))
		if ev.Dst.Hostname != "" && strings.HasPrefix(uri, "/") {
			ev.AddObservable(schemas.ObservableURL, "http_request.url", "http://"+ev.Dst.Hostname+uri)
		}
		if ua, ok := ev.UnmappedValue("user_agent"); ok {
			ev.AddObservable(schemas.ObservableUserAgent, "http_request.user_agent", ua)
		}
	case "files":
		act := uint32(0)
		switch isOrig {
		case "true":
			act = 1
		case "false":
			act = 2
		}
		setClass(ev, schemas.ClassNetworkFile, act)
	case "notice":
		setClass(ev, schemas.ClassDetectionFinding, 1)
		ev.SeverityID = schemas.SeverityMedium
	default:
		setClass(ev, schemas.ClassBase, 0)
	}
	ev.AddObservable(schemas.ObservableHostname, "dst_endpoint.hostname", ev.Dst.Hostname)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	ev.AddObservable(schemas.ObservableUserName, "user.name", ev.UserName)
	return nil
}

// setClass sets class, category and activity; category is class/1000.
func setClass(ev *schemas.Event, class, activity uint32) {
	ev.ClassUID = class
	ev.CategoryUID = class % 100000 / 1000 // extension classes: 201001 is category 1

	ev.ActivityID = activity
}

func connActivity(state string) uint32 {
	switch state {
	case "REJ":
		return 5 // Refuse
	case "S0":
		return 4 // Fail: attempt seen, no reply
	case "RSTO", "RSTR", "RSTOS0", "RSTRH":
		return 3 // Reset
	}
	return 6 // Traffic
}

// httpActivity maps an HTTP method to OCSF HTTP Activity's activity_id.
func httpActivity(method string) uint32 {
	switch method {
	case "":
		return 0
	case "CONNECT":
		return 1
	case "DELETE":
		return 2
	case "GET":
		return 3
	case "HEAD":
		return 4
	case "OPTIONS":
		return 5
	case "POST":
		return 6
	case "PUT":
		return 7
	case "TRACE":
		return 8
	}
	return 99
}
