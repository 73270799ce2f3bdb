package normalize

import (
	"fmt"
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// Auditd returns the "auditd" format: Linux audit records as auditd writes
// them to audit.log ("type=SYSCALL msg=audit(1604994496.155:92733): k=v
// ..."), optionally after "node=<host> " or a syslog header (audisp).
//
// One record is one event (so that event ids stay one per line), and an
// event's metadata.uid is the record's "<time>:<serial>", which all records
// of one audit event share. Within a batch the decoder joins records by
// serial: an EXECVE record takes the pid, ppid, exe, uid and auid of its
// SYSCALL record and becomes Process Activity 1007 Launch with the command
// line built from a0..aN (hex-encoded arguments decoded), process.name the
// exe; proctitle is decoded into unmapped "proctitle" as text (NULs as
// spaces). USER_AUTH, USER_LOGIN, USER_START, USER_ACCT and CRED_ACQ
// become Authentication 3002 Logon, USER_END, USER_LOGOUT and CRED_DISP
// Logoff, with status from res (success/failed), user.name from acct (a
// numeric id= stays in unmapped),
// src_endpoint from addr and hostname. Every other type is a Base Event.
// All key=value pairs (including those in the quoted msg='...' of user
// records) are kept in unmapped; the free text of a record is the message.
// A line without "type=" and "msg=audit(TIME:SERIAL):" is an error.
func Auditd() Format {
	return Format{
		Name:        "auditd",
		Description: "Linux auditd records (audit.log), records of one event joined by serial",
		NewDecoder: func(BatchInfo) Decoder {
			return &auditDecoder{}
		},
	}
}

// auditSyscall is what later records of a serial take from its SYSCALL.
type auditSyscall struct {
	id                      string // "<time>:<serial>"
	pid, ppid, exe, uid, au string
	comm                    string
}

type auditDecoder struct {
	last auditSyscall
}

func (d *auditDecoder) Directive([]byte) error { return nil }

func (d *auditDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	i := strings.Index(s, "type=")
	if i < 0 {
		return fmt.Errorf("parse auditd: no type= in %s", excerpt(s))
	}
	if node := s[:i]; node != "" {
		if h, ok := strings.CutPrefix(strings.TrimSpace(node), "node="); ok {
			ev.DeviceHostname = h
		} else if j := strings.LastIndex(node, "node="); j >= 0 {
			ev.DeviceHostname = strings.TrimSpace(node[j+5:])
		}
	}
	s = s[i+5:]
	typ, rest, ok := strings.Cut(s, " ")
	if !ok || typ == "" {
		return fmt.Errorf("parse auditd: no msg=audit(...) after type=%s", typ)
	}
	rest, ok = strings.CutPrefix(strings.TrimLeft(rest, " "), "msg=audit(")
	if !ok {
		return fmt.Errorf("parse auditd: type=%s: want msg=audit(TIME:SERIAL):", typ)
	}
	id, body, ok := strings.Cut(rest, "):")
	if !ok {
		return fmt.Errorf("parse auditd: type=%s: unterminated msg=audit(", typ)
	}
	tsText, serial, ok := strings.Cut(id, ":")
	if !ok || serial == "" {
		return fmt.Errorf("parse auditd: type=%s: audit(%s) has no serial", typ, id)
	}
	if _, err := parseUint(serial, 1<<63); err != nil {
		return fmt.Errorf("parse auditd: type=%s: serial %q: %w", typ, serial, err)
	}
	t, err := parseEpoch(tsText)
	if err != nil {
		return fmt.Errorf("parse auditd: type=%s: time %q: %w", typ, tsText, err)
	}
	ev.Time, ev.Metadata.OriginalTime, ev.Metadata.UID = t, tsText, id
	ev.Metadata.Product = "auditd"
	ev.Metadata.Vendor = "Linux"
	ev.Metadata.LogName = typ
	ev.SeverityID = schemas.SeverityInformational
	ev.AddUnmapped("type", typ)
	text := auditKV(strings.TrimLeft(body, " "), ev)
	ev.Message = text
	get := func(k string) string { v, _ := ev.UnmappedValue(k); return v }

	setClass(ev, schemas.ClassBase, 0)
	switch typ {
	case "SYSCALL":
		d.last = auditSyscall{id: id, pid: get("pid"), ppid: get("ppid"), exe: unquote(get("exe")),
			uid: get("uid"), au: get("auid"), comm: unquote(get("comm"))}
		ev.ProcessName = d.last.exe
		setPIDText(ev, d.last.pid)
	case "EXECVE":
		setClass(ev, schemas.ClassProcess, 1)
		var b strings.Builder
		for _, name := range auditArgNames {
			a, ok := ev.UnmappedValue(name)
			if !ok {
				break
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(auditArg(a))
		}
		cmd := b.String()
		ev.AddObservable(schemas.ObservableCmdLine, "process.cmd_line", cmd)
		ev.AddUnmapped("process.cmd_line", cmd)
		if d.last.id == id {
			ev.ProcessName = d.last.exe
			setPIDText(ev, d.last.pid)
			ev.AddUnmapped("pid", d.last.pid)
			ev.AddUnmapped("ppid", d.last.ppid)
			ev.AddUnmapped("exe", d.last.exe)
			ev.AddUnmapped("uid", d.last.uid)
			ev.AddUnmapped("auid", d.last.au)
		}
		ev.AddObservable(schemas.ObservableProcessName, "process.name", ev.ProcessName)
	case "PROCTITLE":
		if p := get("proctitle"); p != "" {
			ev.AddUnmapped("proctitle.text", strings.ReplaceAll(auditArg(p), "\x00", " "))
		}
		if d.last.id == id {
			ev.ProcessName = d.last.exe
			setPIDText(ev, d.last.pid)
		}
	case "USER_AUTH", "USER_LOGIN", "USER_START", "USER_ACCT", "CRED_ACQ", "USER_END", "USER_LOGOUT", "CRED_DISP":
		act := uint32(1)
		switch typ {
		case "USER_END", "USER_LOGOUT", "CRED_DISP":
			act = 2
		}
		status := uint8(0)
		switch get("res") {
		case "success", "1", "yes":
			status = statusSuccess
		case "failed", "0", "no":
			status = statusFailure
		}
		user := unquote(get("acct")) // id= is a numeric uid, kept in unmapped only
		addr := get("addr")
		if addr == "?" {
			addr = ""
		}
		host := get("hostname")
		if host == "?" {
			host = ""
		}
		authEvent(ev, act, status, user, addr)
		ev.Src.Hostname = host
		ev.ProcessName = unquote(get("exe"))
		setPIDText(ev, get("pid"))
	default:
		if strings.HasPrefix(typ, "ANOM_") {
			ev.SeverityID = schemas.SeverityLow
		}
	}
	if ev.ClassUID == schemas.ClassBase && ev.ProcessName == "" {
		ev.ProcessName = unquote(get("exe"))
	}
	return nil
}

var auditArgNames = func() []string {
	n := make([]string, 64)
	for i := range n {
		n[i] = fmt.Sprintf("a%d", i)
	}
	return n
}()

func setPIDText(ev *schemas.Event, pid string) {
	if n, err := parseUint(pid, 1<<32-1); err == nil {
		ev.ProcessPID = uint32(n)
	}
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// auditArg decodes an EXECVE argument or proctitle: quoted text as is,
// otherwise hexadecimal (auditd's encoding for values with spaces or
// control characters) when it is valid hex.
func auditArg(v string) string {
	if len(v) >= 2 && v[0] == '"' {
		return unquote(v)
	}
	if len(v) == 0 || len(v)%2 != 0 {
		return v
	}
	b := make([]byte, len(v)/2)
	for i := 0; i < len(b); i++ {
		hi, ok1 := unhex(v[2*i])
		lo, ok2 := unhex(v[2*i+1])
		if !ok1 || !ok2 {
			return v
		}
		b[i] = hi<<4 | lo
	}
	return string(b)
}

// auditKV adds every key=value of body to ev.Unmapped (values as written,
// quotes kept so that hex and text stay distinguishable; msg='...' is
// opened and its pairs added) and returns the free text with the pairs
// removed, or "" when there is none.
func auditKV(body string, ev *schemas.Event) string {
	var text []string
	for body != "" {
		body = strings.TrimLeft(body, " ")
		if body == "" {
			break
		}
		end := strings.IndexByte(body, ' ')
		if end < 0 {
			end = len(body)
		}
		eq := strings.IndexByte(body[:end], '=')
		if eq <= 0 {
			text = append(text, body[:end])
			body = body[end:]
			continue
		}
		key := strings.TrimLeft(body[:eq], "(")
		v := body[eq+1:]
		switch {
		case strings.HasPrefix(v, `"`):
			j := strings.IndexByte(v[1:], '"')
			if j < 0 {
				ev.AddUnmapped(key, v)
				return strings.Join(text, " ")
			}
			ev.AddUnmapped(key, v[:j+2])
			body = v[j+2:]
		case strings.HasPrefix(v, "'"):
			j := strings.IndexByte(v[1:], '\'')
			if j < 0 {
				j = len(v) - 1
			}
			inner := v[1 : j+1]
			if t := auditKV(inner, ev); t != "" {
				text = append(text, t)
			}
			if j+2 <= len(v) {
				body = v[j+2:]
			} else {
				body = ""
			}
		default:
			k := strings.IndexByte(v, ' ')
			if k < 0 {
				k = len(v)
			}
			val := strings.TrimRight(v[:k], ",)")
			ev.AddUnmapped(key, val)
			body = v[k:]
		}
	}
	return strings.Join(text, " ")
}
