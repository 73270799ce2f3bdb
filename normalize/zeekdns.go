package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// ZeekDNS returns the "zeek_dns" format: Zeek's dns.log as JSON lines or as
// TSV with its "#" header directives, detected per record (a record that
// starts with '{' is JSON). Records map to OCSF DNS Activity (4003).
//
// Mapping notes:
//   - activity_id is 6 (Traffic) when the record carries a response code,
//     because a Zeek dns.log row pairs a query with its response; it is 1
//     (Query) when rcode is absent (no response seen).
//   - rcode maps to OCSF's rcode names; rcode_id is the numeric rcode as
//     Zeek logged it, -1 when there is none. Zeek's own rcode_name is kept in
//     Unmapped.
//   - qclass_name C_INTERNET becomes query.class "IN"; any other class name
//     is kept as written.
//   - Every field without a mapping (AA, TC, RD, RA, Z, rejected, qclass,
//     qtype, opcode, auth, addl, ...) goes to Unmapped under its Zeek name;
//     booleans read "true"/"false" and vectors are joined with ",", so JSON
//     and TSV records of the same row look alike.
//   - TSV values have Zeek's \xNN escapes of printable characters decoded
//     (escaped separators); escapes of non-printable bytes stay as text, as
//     in Zeek's JSON output.
func ZeekDNS() Format {
	return Format{
		Name:        "zeek_dns",
		Description: "Zeek dns.log, JSON lines or TSV with # headers, as OCSF DNS Activity",
		IsDirective: isZeekDirective,
		NewDecoder: func(BatchInfo) Decoder {
			return newZeekDNSDecoder()
		},
	}
}

func isZeekDirective(line []byte) bool {
	return len(line) > 0 && line[0] == '#'
}

// zeekCol identifies a dns.log column the decoder maps.
type zeekCol uint8

const (
	colOther zeekCol = iota
	colTS
	colUID
	colOrigH
	colOrigP
	colRespH
	colRespP
	colProto
	colTransID
	colRTT
	colQuery
	colQClassName
	colQTypeName
	colRCode
	colAnswers
	colTTLs
)

func zeekColumn(name string) zeekCol {
	switch name {
	case "ts":
		return colTS
	case "uid":
		return colUID
	case "id.orig_h":
		return colOrigH
	case "id.orig_p":
		return colOrigP
	case "id.resp_h":
		return colRespH
	case "id.resp_p":
		return colRespP
	case "proto":
		return colProto
	case "trans_id":
		return colTransID
	case "rtt":
		return colRTT
	case "query":
		return colQuery
	case "qclass_name":
		return colQClassName
	case "qtype_name":
		return colQTypeName
	case "rcode":
		return colRCode
	case "answers":
		return colAnswers
	case "TTLs":
		return colTTLs
	}
	return colOther
}

// zeekHeader is the TSV header state of a batch.
type zeekHeader struct {
	sep, setSep, empty, unset string
	names                     []string  // #fields
	cols                      []zeekCol // parallel to names
	bools                     []bool    // column typed bool (#types)
	vectors                   []bool    // column typed set[...] or vector[...]
}

type zeekDNSDecoder struct {
	h zeekHeader
}

func newZeekDNSDecoder() *zeekDNSDecoder {
	return &zeekDNSDecoder{h: zeekHeader{sep: "\t", setSep: ",", empty: "(empty)", unset: "-"}}
}

// Directive applies a TSV header line. Unknown directives (and comments
// such as "### ...") are ignored.
func (d *zeekDNSDecoder) Directive(line []byte) error {
	s := trimEOL(string(line))
	if rest, ok := strings.CutPrefix(s, "#separator"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		sep := unescapeHex(strings.TrimLeft(rest, " \t"), false)
		if sep == "" {
			return errors.New("parse zeek dns tsv: #separator is empty")
		}
		d.h.sep = sep
		return nil
	}
	key, val, ok := strings.Cut(s, d.h.sep)
	if !ok {
		key, val, _ = strings.Cut(s, " ")
	}
	switch key {
	case "#set_separator":
		if val = unescapeHex(val, false); val == "" {
			return errors.New("parse zeek dns tsv: #set_separator is empty")
		}
		d.h.setSep = val
	case "#empty_field":
		d.h.empty = unescapeHex(val, false)
	case "#unset_field":
		d.h.unset = unescapeHex(val, false)
	case "#fields":
		if val == "" {
			return errors.New("parse zeek dns tsv: #fields lists no fields")
		}
		d.h.names = strings.Split(val, d.h.sep)
		d.h.cols = make([]zeekCol, len(d.h.names))
		for i, n := range d.h.names {
			d.h.cols[i] = zeekColumn(n)
		}
		d.h.bools, d.h.vectors = nil, nil // stale until #types
	case "#types":
		types := strings.Split(val, d.h.sep)
		if len(types) != len(d.h.names) {
			return fmt.Errorf("parse zeek dns tsv: #types lists %d types, #fields %d fields", len(types), len(d.h.names))
		}
		d.h.bools = make([]bool, len(types))
		d.h.vectors = make([]bool, len(types))
		for i, t := range types {
			d.h.bools[i] = t == "bool"
			d.h.vectors[i] = strings.HasPrefix(t, "set[") || strings.HasPrefix(t, "vector[")
		}
	}
	return nil
}

// Record decodes one JSON or TSV dns.log record into ev.
func (d *zeekDNSDecoder) Record(rec []byte, ev *schemas.Event) error {
	if len(bytes.TrimSpace(rec)) == 0 {
		return errors.New("parse zeek dns: empty record")
	}
	ev.Raw = string(rec)
	z := zeekDNS{ev: ev}
	if rec[0] == '{' {
		if err := z.json(ev.Raw); err != nil {
			return fmt.Errorf("parse zeek dns json: %w", err)
		}
	} else {
		if err := z.tsv(&d.h, trimEOL(ev.Raw)); err != nil {
			return fmt.Errorf("parse zeek dns tsv: %w", err)
		}
	}
	return z.finish()
}

// zeekDNS accumulates one record's mapping.
type zeekDNS struct {
	ev       *schemas.Event
	hasTS    bool
	hasRCode bool
	rcode    int32
}

func fieldErr(name string, err error) error {
	return fmt.Errorf("field %q: %w", name, err)
}

// set maps one present field value (already unescaped) onto the event.
func (z *zeekDNS) set(col zeekCol, name, v string) error {
	ev := z.ev
	switch col {
	case colTS:
		t, err := parseZeekTime(v)
		if err != nil {
			return fieldErr(name, err)
		}
		ev.Time, ev.Metadata.OriginalTime, z.hasTS = t, v, true
	case colUID:
		ev.Metadata.UID = v
	case colOrigH:
		ev.Src.IP = v
	case colRespH:
		ev.Dst.IP = v
	case colOrigP, colRespP:
		n, err := parseUint(v, 65535)
		if err != nil {
			return fieldErr(name, err)
		}
		if col == colOrigP {
			ev.Src.Port = uint16(n)
		} else {
			ev.Dst.Port = uint16(n)
		}
	case colProto:
		ev.Protocol = v
	case colTransID:
		n, err := parseUint(v, 1<<32-1)
		if err != nil {
			return fieldErr(name, err)
		}
		ev.DNS.TransactionID = uint32(n)
	case colRTT:
		f, err := parseFloat(v)
		if err != nil {
			return fieldErr(name, err)
		}
		ev.DNS.RTT = f
	case colQuery:
		ev.DNS.QueryHostname = v
	case colQClassName:
		if v == "C_INTERNET" {
			v = "IN"
		}
		ev.DNS.QueryClass = v
	case colQTypeName:
		ev.DNS.QueryType = v
	case colRCode:
		n, err := parseUint(v, 65535) // 12-bit extended rcodes fit
		if err != nil {
			return fieldErr(name, err)
		}
		z.hasRCode, z.rcode = true, int32(n)
	default:
		return fmt.Errorf("field %q: no scalar mapping", name) // programming error
	}
	return nil
}

// parseZeekTime reads ts: epoch seconds, or RFC 3339 text when Zeek's JSON
// writer is set to ISO 8601 timestamps.
func parseZeekTime(v string) (time.Time, error) {
	if strings.IndexByte(v, 'T') > 0 {
		return parseRFC3339(v)
	}
	return parseEpoch(v)
}

func (z *zeekDNS) finish() error {
	ev := z.ev
	if !z.hasTS {
		return errors.New("parse zeek dns: record has no ts")
	}
	ev.ClassUID = schemas.ClassDNS
	ev.CategoryUID = 4 // Network Activity
	ev.SeverityID = schemas.SeverityInformational
	ev.Metadata.Product = "Zeek"
	ev.Metadata.Vendor = "Zeek"
	ev.Metadata.LogName = "dns"
	if z.hasRCode {
		ev.ActivityID = 6 // Traffic: query and response in one record
		ev.DNS.RCodeID = z.rcode
		ev.DNS.RCode = rcodeName(z.rcode)
	} else {
		ev.ActivityID = 1 // Query: no response seen
		ev.DNS.RCodeID = -1
	}
	ev.AddObservable(schemas.ObservableHostname, "query.hostname", ev.DNS.QueryHostname)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	return nil
}

// rcodeName returns OCSF's name for a DNS response code (OCSF rcode_id enum).
func rcodeName(rcode int32) string {
	switch rcode {
	case 0:
		return "NoError"
	case 1:
		return "FormError"
	case 2:
		return "ServError"
	case 3:
		return "NXDomain"
	case 4:
		return "NotImp"
	case 5:
		return "Refused"
	case 6:
		return "YXDomain"
	case 7:
		return "YXRRSet"
	case 8:
		return "NXRRSet"
	case 9:
		return "NotAuth"
	case 10:
		return "NotZone"
	case 11:
		return "DSOTYPENI"
	case 16:
		return "BADSIG_VERS"
	case 17:
		return "BADKEY"
	case 18:
		return "BADTIME"
	case 19:
		return "BADMODE"
	case 20:
		return "BADNAME"
	case 21:
		return "BADALG"
	case 22:
		return "BADTRUNC"
	case 23:
		return "BADCOOKIE"
	}
	return "Other"
}

// tsv decodes one TSV row with the current header.
func (z *zeekDNS) tsv(h *zeekHeader, s string) error {
	if h.names == nil {
		return errors.New("record before any #fields header")
	}
	// One pass: fields are split as they are mapped; a count mismatch is
	// found at the end of the row or when the row ends early.
	want := len(h.names)
	rest, more := s, true
	// Most rows have no escapes at all: check once, not per field.
	esc := strings.IndexByte(s, '\\') >= 0
	ev := z.ev
	for i := range h.names {
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
		name, col := h.names[i], h.cols[i]
		switch col {
		case colOther:
			switch {
			case h.bools != nil && h.bools[i]:
				v = zeekBool(v)
			case h.vectors != nil && h.vectors[i]:
				v = joinSet(v, h.setSep)
			case esc:
				v = unescapeHex(v, true)
			}
			ev.AddUnmapped(name, v)
		case colAnswers:
			for v != "" {
				e, rest, _ := strings.Cut(v, h.setSep)
				if esc {
					e = unescapeHex(e, true)
				}
				ev.DNS.Answers = append(ev.DNS.Answers, e)
				v = rest
			}
		case colTTLs:
			for v != "" {
				e, rest, _ := strings.Cut(v, h.setSep)
				ttl, err := parseSeconds(e)
				if err != nil {
					return fieldErr(name, err)
				}
				ev.DNS.TTLs = append(ev.DNS.TTLs, ttl)
				v = rest
			}
		default:
			if esc {
				v = unescapeHex(v, true)
			}
			if err := z.set(col, name, v); err != nil {
				return err
			}
		}
	}
	if more {
		return fmt.Errorf("got %d fields, want %d (from #fields)", want+1+strings.Count(rest, h.sep), want)
	}
	return nil
}

func zeekBool(v string) string {
	switch v {
	case "T":
		return "true"
	case "F":
		return "false"
	}
	return v
}

// joinSet renders a TSV container as its unescaped elements joined by ",".
func joinSet(v, setSep string) string {
	if setSep == "," && strings.IndexByte(v, '\\') < 0 {
		return v
	}
	var b strings.Builder
	for first := true; v != ""; first = false {
		e, rest, _ := strings.Cut(v, setSep)
		if !first {
			b.WriteByte(',')
		}
		b.WriteString(unescapeHex(e, true))
		v = rest
	}
	return b.String()
}

// json decodes one JSON object record.
func (z *zeekDNS) json(s string) error {
	p := jsonScanner{s: s}
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
	} else {
		for {
			name, err := p.str()
			if err != nil {
				return err
			}
			if err := p.expect(':'); err != nil {
				return err
			}
			if err := z.jsonField(&p, name); err != nil {
				return err
			}
			if c := p.peek(); c == ',' {
				p.i++
				continue
			} else if c == '}' {
				p.i++
				break
			}
			return p.errorf("want ',' or '}' after field %q, got %s", name, p.got())
		}
	}
	if p.peek() != 0 {
		return p.errorf("unexpected %s after the object", p.got())
	}
	return nil
}

func (z *zeekDNS) jsonField(p *jsonScanner, name string) error {
	ev := z.ev
	col := zeekColumn(name)
	k := p.kind()
	if k == jsonNull {
		_ = p.literal("null") // unset, like "-" in TSV
		return nil
	}
	switch col {
	case colOther:
		switch k {
		case jsonArray:
			var b strings.Builder
			n := 0
			err := p.elems(func(_ jsonKind, v string) error {
				if n > 0 {
					b.WriteByte(',')
				}
				b.WriteString(v)
				n++
				return nil
			})
			if err != nil {
				return fieldErr(name, err)
			}
			ev.AddUnmapped(name, b.String())
		case jsonObject:
			raw, err := p.skip(0)
			if err != nil {
				return fieldErr(name, err)
			}
			ev.AddUnmapped(name, raw)
		default:
			_, v, err := p.scalar()
			if err != nil {
				return fieldErr(name, err)
			}
			ev.AddUnmapped(name, v)
		}
		return nil
	case colAnswers:
		err := p.elems(func(k jsonKind, v string) error {
			if k != jsonString {
				return fmt.Errorf("want array of strings, got %s element", k)
			}
			ev.DNS.Answers = append(ev.DNS.Answers, v)
			return nil
		})
		if err != nil {
			return fieldErr(name, err)
		}
		return nil
	case colTTLs:
		err := p.elems(func(k jsonKind, v string) error {
			if k != jsonNumber {
				return fmt.Errorf("want array of numbers, got %s element", k)
			}
			ttl, err := parseSeconds(v)
			if err != nil {
				return err
			}
			ev.DNS.TTLs = append(ev.DNS.TTLs, ttl)
			return nil
		})
		if err != nil {
			return fieldErr(name, err)
		}
		return nil
	}
	want := jsonString
	switch col {
	case colOrigP, colRespP, colTransID, colRTT, colRCode:
		want = jsonNumber
	case colTS:
		if k == jsonNumber {
			want = jsonNumber
		}
	}
	if k != want {
		return fieldErr(name, fmt.Errorf("want %s, got %s", want, p.kindOrByte()))
	}
	var v string
	var err error
	if want == jsonString {
		v, err = p.str()
	} else {
		v, err = p.num()
	}
	if err != nil {
		return fieldErr(name, err)
	}
	return z.set(col, name, v)
}
