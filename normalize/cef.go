package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// CEF returns the "cef" format: ArcSight Common Event Format
// ("CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|k=v k=v"), with
// or without a syslog header in front (the header's host, tag and time are
// kept). The same decoder reads LEEF records, so a collector that mixes
// them can use either name.
//
// Header fields unescape "\|" and "\\"; extension values unescape "\=",
// "\\", "\n" and "\r", and run to the space before the next "key=".
// Header fields are kept in unmapped as cef.vendor, cef.product,
// cef.version, cef.signature_id, cef.name, cef.severity; every extension
// key is kept under its own name, and a custom field csN/cnN/flexStringN
// with a csNLabel is kept a second time under its label.
//
// Mapping: src/dst/spt/dpt/shost/dhost, smac/dmac (observables), proto,
// suser/duser (user.name, duser preferred), dvchost/dvc, sproc/spid, msg or
// the header Name (message), request (URL observable),
// requestClientApplication (user agent), fname/filePath/fileHash, and
// externalId (metadata.uid). Severity 0-3 is Low, 4-6 Medium, 7-8 High,
// 9-10 Critical (also the names Low/Medium/High/Very-High). The time is rt
// (epoch milliseconds, or "MMM dd yyyy HH:mm:ss[.SSS] [zone]"; a zone other
// than a numeric offset is read as UTC), else end or start, else the syslog
// header's time, else the batch's Received time. The class comes from a
// vendor table (vendorClass); products it does not list are Base Events.
func CEF() Format {
	return Format{
		Name:        "cef",
		Description: "ArcSight CEF (and LEEF), with or without a syslog header",
		NewDecoder:  newCEFDecoder,
	}
}

// LEEF returns the "leef" format: IBM QRadar LEEF 1.0
// ("LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v") and 2.0 (a sixth
// header field names the attribute delimiter: a character, or its hex code
// as "x09", "0x09" or "\x09"). Attributes are not escaped. Mapping as for
// CEF with LEEF's names: src, dst, srcPort, dstPort, srcMAC, dstMAC, proto,
// usrName, identHostName, sev (1-10), devTime with devTimeFormat (a Java
// date pattern; "MMM dd yyyy HH:mm:ss" or epoch milliseconds without one),
// url, userAgent; header fields are kept as leef.vendor, leef.product,
// leef.version, leef.event_id.
func LEEF() Format {
	f := CEF()
	f.Name = "leef"
	f.Description = "IBM QRadar LEEF 1.0 and 2.0 (and CEF), with or without a syslog header"
	return f
}

func newCEFDecoder(b BatchInfo) Decoder {
	return &cefDecoder{sys: Syslog().NewDecoder(b).(*syslogDecoder)}
}

type cefDecoder struct {
	sys *syslogDecoder
}

func (d *cefDecoder) Directive([]byte) error { return nil }

func (d *cefDecoder) Record(rec []byte, ev *schemas.Event) error {
	s := trimEOL(string(rec))
	i := strings.Index(s, "CEF:")
	j := strings.Index(s, "LEEF:")
	if i < 0 || (j >= 0 && j < i) {
		i = j
	}
	if i < 0 {
		return fmt.Errorf("parse cef/leef: no CEF: or LEEF: header in %s", excerpt(s))
	}
	if i > 0 {
		// A syslog header before the payload: reuse the syslog parser.
		if err := d.sys.Record(rec[:i], ev); err != nil {
			return fmt.Errorf("parse cef/leef: syslog header: %w", err)
		}
	}
	ev.Raw = s
	if len(rec) == len(s) {
		ev.Raw = string(rec) // keep the raw bytes exactly
	}
	if err := parseCEFBody(ev.Raw[i:len(s)], ev, d.sys.received); err != nil {
		return fmt.Errorf("parse cef/leef: %w", err)
	}
	return nil
}

// parseCEFBody maps a "CEF:..." or "LEEF:..." payload onto ev, which may
// already hold a syslog header's fields.
func parseCEFBody(s string, ev *schemas.Event, received time.Time) error {
	var m cefMapper
	m.ev = ev
	var err error
	if strings.HasPrefix(s, "CEF:") {
		err = m.cef(s[4:])
	} else {
		err = m.leef(s[5:])
	}
	if err != nil {
		return err
	}
	return m.finish(received)
}

type cefMapper struct {
	ev                *schemas.Event
	leefFormat        bool
	vendor, product   string
	sigID, sev        string
	timeText, timeFmt string
	hasTime           bool
	suser, duser, url string
	labels            [][2]string // csNLabel -> label
	customs           [][2]string // csN -> value
	msgSet            bool
}

// cutHeader returns the next "|"-terminated CEF header field, unescaped.
func cutHeader(s string) (field, rest string, ok bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '|':
			f := s[:i]
			if strings.IndexByte(f, '\\') >= 0 {
				f = cefHeaderUnescaper.Replace(f)
			}
			return f, s[i+1:], true
		}
	}
	return "", s, false
}

func (m *cefMapper) cef(s string) error {
	var h [7]string
	for k := range h {
		var ok bool
		if h[k], s, ok = cutHeader(s); !ok {
			return fmt.Errorf("cef header has %d of 7 fields", k)
		}
	}
	if h[0] == "" || h[0][0] < '0' || h[0][0] > '9' {
		return fmt.Errorf("cef version %q is not a number", h[0])
	}
	ev := m.ev
	m.vendor, m.product, m.sigID, m.sev = h[1], h[2], h[4], h[6]
	ev.Message = h[5]
	ev.Metadata.LogName = "cef"
	for k, name := range [...]string{"cef.version", "cef.vendor", "cef.product", "cef.device_version", "cef.signature_id", "cef.name", "cef.severity"} {
		ev.AddUnmapped(name, h[k])
	}
	return m.cefExtension(strings.TrimLeft(s, " "))
}

// cefExtension reads "k1=v1 k2=v with spaces k3=v3".
func (m *cefMapper) cefExtension(s string) error {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return fmt.Errorf("cef extension: want key=value at %s", excerpt(s))
		}
		key := s[:eq]
		if strings.IndexByte(key, ' ') >= 0 {
			return fmt.Errorf("cef extension: invalid key %s", excerpt(key))
		}
		v := s[eq+1:]
		end := len(v)
		// The value ends at the last space before the next unescaped '='.
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' {
				i++
				continue
			}
			if v[i] == '=' {
				sp := strings.LastIndexByte(v[:i], ' ')
				if sp >= 0 {
					end = sp
					break
				}
			}
		}
		val := strings.TrimRight(v[:end], " ")
		if strings.IndexByte(val, '\\') >= 0 {
			val = cefUnescaper.Replace(val)
		}
		m.field(key, val)
		if end == len(v) {
			break
		}
		s = strings.TrimLeft(v[end:], " ")
	}
	return nil
}

var cefHeaderUnescaper = strings.NewReplacer(`\|`, "|", `\\`, `\`)

var cefUnescaper = strings.NewReplacer(`\=`, "=", `\\`, `\`, `\n`, "\n", `\r`, "\r", `\|`, "|")

func (m *cefMapper) leef(s string) error {
	version, s, ok := cutHeader(s)
	if !ok || (version != "1.0" && version != "2.0" && version != "1" && version != "2") {
		return fmt.Errorf("leef version %q: want 1.0 or 2.0", version)
	}
	var h [4]string
	for k := range h {
		if h[k], s, ok = cutHeader(s); !ok {
			return fmt.Errorf("leef header has %d of 5 fields", k+1)
		}
	}
	delim := "\t"
	if version[0] == '2' {
		// The delimiter field, when present, is short and has no '='.
		if i := strings.IndexByte(s, '|'); i >= 0 && i <= 6 && strings.IndexByte(s[:i], '=') < 0 {
			d, err := leefDelimiter(s[:i])
			if err != nil {
				return err
			}
			delim, s = d, s[i+1:]
		}
	}
	ev := m.ev
	m.leefFormat = true
	m.vendor, m.product, m.sigID = h[0], h[1], h[3]
	ev.Metadata.LogName = "leef"
	ev.AddUnmapped("leef.version", version)
	ev.AddUnmapped("leef.vendor", h[0])
	ev.AddUnmapped("leef.product", h[1])
	ev.AddUnmapped("leef.device_version", h[2])
	ev.AddUnmapped("leef.event_id", h[3])
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, delim)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("leef attribute: want key=value, got %s", excerpt(kv))
		}
		m.field(strings.TrimSpace(k), v)
	}
	return nil
}

func leefDelimiter(d string) (string, error) {
	switch {
	case d == "":
		return "\t", nil
	case len(d) == 1:
		return d, nil
	}
	h := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(d, `\`), "0"), "x")
	if len(h) == 2 {
		a, ok1 := unhex(h[0])
		b, ok2 := unhex(h[1])
		if ok1 && ok2 {
			return string(rune(a<<4 | b)), nil
		}
	}
	return "", fmt.Errorf("leef 2.0 delimiter %q: want one character or its hex code", d)
}

// field maps one extension/attribute.
func (m *cefMapper) field(k, v string) {
	ev := m.ev
	ev.AddUnmapped(k, v)
	switch k {
	case "src", "sourceAddress", "c6a2":
		ev.Src.IP = v
	case "dst", "destinationAddress", "c6a3":
		ev.Dst.IP = v
	case "spt", "srcPort", "sourcePort":
		if n, err := parseUint(v, 65535); err == nil {
			ev.Src.Port = uint16(n)
		}
	case "dpt", "dstPort", "destinationPort":
		if n, err := parseUint(v, 65535); err == nil {
			ev.Dst.Port = uint16(n)
		}
	case "shost", "srcHostName", "identHostName":
		ev.Src.Hostname = v
	case "dhost", "dstHostName":
		ev.Dst.Hostname = v
	case "smac", "srcMAC":
		ev.AddObservable(schemas.ObservableMAC, "src_endpoint.mac", v)
	case "dmac", "dstMAC":
		ev.AddObservable(schemas.ObservableMAC, "dst_endpoint.mac", v)
	case "proto":
		ev.Protocol = strings.ToLower(v)
	case "suser", "usrName", "accountName":
		m.suser = v
	case "duser", "dstUserName":
		m.duser = v
	case "dvchost":
		ev.DeviceHostname = v
	case "dvc":
		if ev.DeviceHostname == "" {
			ev.DeviceHostname = v
		}
	case "sproc":
		ev.ProcessName = v
	case "spid":
		if n, err := parseUint(v, 1<<32-1); err == nil {
			ev.ProcessPID = uint32(n)
		}
	case "msg":
		ev.Message = v
	case "request", "url":
		m.url = v
	case "requestClientApplication", "userAgent":
		ev.AddObservable(schemas.ObservableUserAgent, "http_request.user_agent", v)
	case "fname", "fileName":
		ev.AddObservable(schemas.ObservableFileName, "file.name", v)
	case "filePath":
		ev.AddObservable(schemas.ObservableFilePath, "file.path", v)
	case "fileHash", "oldFileHash", "md5", "sha1", "sha256":
		ev.AddObservable(schemas.ObservableHash, "file.hashes", v)
	case "externalId":
		ev.Metadata.UID = v
	case "sev":
		m.sev = v
	case "rt", "devTime":
		m.timeText = v
	case "end", "start":
		if m.timeText == "" {
			m.timeText = v
		}
	case "devTimeFormat":
		m.timeFmt = v
	default:
		if strings.HasSuffix(k, "Label") {
			m.labels = append(m.labels, [2]string{k[:len(k)-5], v})
		} else if len(k) >= 3 && (strings.HasPrefix(k, "cs") || strings.HasPrefix(k, "cn") || strings.HasPrefix(k, "flex")) {
			m.customs = append(m.customs, [2]string{k, v})
		}
	}
}

func (m *cefMapper) finish(received time.Time) error {
	ev := m.ev
	for _, c := range m.customs {
		for _, l := range m.labels {
			if l[0] == c[0] && l[1] != "" {
				ev.AddUnmapped(l[1], c[1])
			}
		}
	}
	if m.timeText != "" {
		t, err := cefTime(m.timeText, m.timeFmt, received)
		if err != nil {
			return fmt.Errorf("time %s: %w", excerpt(m.timeText), err)
		}
		ev.Time = t
		ev.Metadata.OriginalTime = m.timeText
	} else if ev.Time.IsZero() {
		ev.Time = received.UTC().Truncate(time.Millisecond)
	}
	ev.UserName = m.duser
	if ev.UserName == "" {
		ev.UserName = m.suser
	}
	ev.Metadata.Vendor = m.vendor
	ev.Metadata.Product = m.product
	ev.SeverityID = cefSeverity(m.sev)
	class, act := vendorClass(m.vendor, m.product, m.sigID)
	setClass(ev, class, act)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ev.Src.IP)
	ev.AddObservable(schemas.ObservableIP, "dst_endpoint.ip", ev.Dst.IP)
	ev.AddObservable(schemas.ObservableHostname, "src_endpoint.hostname", ev.Src.Hostname)
	ev.AddObservable(schemas.ObservableHostname, "dst_endpoint.hostname", ev.Dst.Hostname)
	ev.AddObservable(schemas.ObservableUserName, "user.name", ev.UserName)
	ev.AddObservable(schemas.ObservableURL, "url", m.url)
	return nil
}

func cefSeverity(s string) uint8 {
	if n, err := parseUint(s, 10); err == nil {
		switch {
		case n <= 3:
			return schemas.SeverityLow
		case n <= 6:
			return schemas.SeverityMedium
		case n <= 8:
			return schemas.SeverityHigh
		default:
			return schemas.SeverityCritical
		}
	}
	switch strings.ToLower(s) {
	case "low":
		return schemas.SeverityLow
	case "medium":
		return schemas.SeverityMedium
	case "high":
		return schemas.SeverityHigh
	case "very-high", "very high":
		return schemas.SeverityCritical
	}
	return schemas.SeverityUnknown
}

// cefTime parses rt/devTime: epoch milliseconds, a Java pattern given by
// devTimeFormat, or "MMM dd [yyyy] HH:mm:ss[.SSS] [zone]".
func cefTime(v, javaFmt string, received time.Time) (time.Time, error) {
	if n, err := parseUint(v, 1<<62); err == nil {
		if n < 1e11 { // seconds, not milliseconds
			n *= 1000
		}
		if n > maxEpochSeconds*1000 {
			return time.Time{}, errOutOfRange
		}
		return time.UnixMilli(int64(n)).UTC(), nil
	}
	if javaFmt != "" {
		t, err := time.Parse(javaLayout(javaFmt), v)
		if err != nil {
			return time.Time{}, err
		}
		return t.UTC().Truncate(time.Millisecond), nil
	}
	if t, err := parseRFC3339(v); err == nil {
		return t, nil
	}
	sd := syslogDecoder{received: received}
	t, n, err := sd.parseStamp(v)
	if err != nil {
		return time.Time{}, errors.New(`want epoch milliseconds or "MMM dd yyyy HH:mm:ss"`)
	}
	zone := strings.TrimSpace(v[n:])
	if len(zone) == 5 && (zone[0] == '+' || zone[0] == '-') {
		if z, err := time.Parse("-0700", zone); err == nil {
			_, off := z.Zone()
			t = t.Add(-time.Duration(off) * time.Second)
		}
	}
	return t, nil
}

// javaLayout converts the common tokens of a Java date pattern to a Go
// layout; fractional seconds (SSS) need no token when parsing.
func javaLayout(f string) string {
	return javaReplacer.Replace(f)
}

// javaReplacer is read-only after construction (safe for concurrent use).
var javaReplacer = strings.NewReplacer("yyyy", "2006", "MMM", "Jan", "MM", "01", "dd", "02", "HH", "15",
	"mm", "04", "ss", "05", ".SSSSSS", "", ".SSS", "", "SSS", "", "Z", "-0700", "z", "MST", "'T'", "T")

// vendorClass picks the OCSF class of a CEF/LEEF record from its vendor,
// product and signature/event id. Products not listed are Base Events.
func vendorClass(vendor, product, sig string) (uint32, uint32) {
	v, p, s := strings.ToLower(vendor), strings.ToLower(product), strings.ToLower(sig)
	switch {
	case v == "f5" && p == "asm", v == "fireeye", v == "trend micro", v == "mcafee", v == "sourcefire",
		v == "imperva inc.", v == "imperva", v == "snort", v == "cisco" && strings.Contains(p, "ips"):
		return schemas.ClassDetectionFinding, 1
	case v == "palo alto networks":
		switch s {
		case "traffic", "end", "start":
			return schemas.ClassNetwork, 6
		case "threat":
			return schemas.ClassDetectionFinding, 1
		}
	case v == "fortinet":
		if strings.HasPrefix(s, "000000") { // traffic log ids
			return schemas.ClassNetwork, 6
		}
		return schemas.ClassDetectionFinding, 1
	case v == "panda security":
		switch {
		case strings.HasPrefix(s, "registry"):
			return schemas.ClassRegistryKey, 0
		case strings.HasPrefix(s, "create"), strings.HasPrefix(s, "delete"), strings.HasPrefix(s, "rename"),
			strings.HasPrefix(s, "modify"):
			return schemas.ClassFileSystem, 0
		case s == "exec", s == "process", strings.HasPrefix(s, "process"):
			return schemas.ClassProcess, 1
		case s == "download", s == "connection", strings.HasPrefix(s, "socket"):
			return schemas.ClassNetwork, 0
		case s == "alert", s == "detection", strings.HasPrefix(s, "malware"):
			return schemas.ClassDetectionFinding, 1
		}
	}
	return schemas.ClassBase, 0
}
