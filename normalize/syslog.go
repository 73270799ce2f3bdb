package normalize

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/rfc5424"
	"github.com/watchfloor/watchfloor/schemas"
)

// Syslog returns the "syslog" format: one message per record, RFC 5424
// ("<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG"), RFC 3164
// ("<PRI>Mmm dd hh:mm:ss host tag[pid]: msg") and the same without PRI as
// written to /var/log/messages, also with an RFC 3339 timestamp in place
// of the BSD one (rsyslog's high-precision file format). Records map to an
// OCSF Base Event (class 0, activity 0 Unknown).
//
// RFC 5424 goes through github.com/leodido/go-syslog/v4 in best-effort mode;
// the 3164 family has a hand-written parser, because go-syslog's 3164 parser
// mis-splits tags such as "app[12]:" with an empty message and gives no way
// to keep the timestamp text.
//
// Year-less timestamps are read as UTC in the year of BatchInfo.Received, or
// the year before when that would put them more than 24h after Received (or
// the year after, within 24h of a New Year), so a redelivered batch gets the
// same times. A 5424 NIL timestamp takes
// Received.
//
// Message bodies with security meaning are mapped further: sshd "Accepted
// / Failed <method> for [invalid user ]<user> from <ip> port <n>" and
// "Invalid user <user> from <ip>", and PAM "pam_unix(<svc>:auth):
// authentication failure; ... rhost= user=" and "session opened/closed for
// user" become Authentication 3002 (activity 1 Logon or 2 Logoff, status_id
// 1 Success or 2 Failure, user.name, src_endpoint.ip); sudo "<user> : TTY=
// ; PWD= ; USER= ; COMMAND=" becomes Process Activity 1007 Launch with the
// command line; a kernel netfilter LOG line (SRC= DST= PROTO=) becomes
// Network Activity 4001 (5 Refuse when its prefix says DROP/REJECT/DENY/
// BLOCK, else 6 Traffic); a Snare for Windows body ("MSWinEventLog\t...")
// gets the Windows names and the class winevent_json gives its EventID
// (see snareBody); a body that starts with "CEF:" or "LEEF:" is mapped as in
// format cef (a broken one keeps the syslog event and says why in
// unmapped cef.parse_error). A record that is not syslog (no PRI-less 3164 timestamp, bad
// PRI, bad 5424 header) is an error. Embedded newlines arrive as "#012"
// (rsyslog's escaping) and are kept as they are.
func Syslog() Format {
	return Format{
		Name:        "syslog",
		Description: "syslog messages (RFC 5424, RFC 3164, and file lines without PRI) as OCSF Base Events",
		NewDecoder: func(b BatchInfo) Decoder {
			recv := b.Received.UTC()
			if b.Received.IsZero() {
				recv = time.Now().UTC() // only tools and tests omit Received
			}
			return &syslogDecoder{received: recv}
		},
	}
}

type syslogDecoder struct {
	received time.Time
	p5424    syslog.Machine // created on first use
}

// Directive is never called for syslog (no framing lines); it accepts anything.
func (d *syslogDecoder) Directive([]byte) error { return nil }

// Record decodes one syslog message into ev.
func (d *syslogDecoder) Record(rec []byte, ev *schemas.Event) error {
	ev.Raw = string(rec)
	s := trimEOL(ev.Raw)
	if strings.TrimSpace(s) == "" {
		return errors.New("parse syslog: empty record")
	}
	pri := -1
	if s[0] == '<' {
		end := strings.IndexByte(s, '>')
		if end < 2 || end > 4 {
			return fmt.Errorf("parse syslog: invalid PRI at start of %s", excerpt(s))
		}
		n, err := parseUint(s[1:end], 191)
		if err != nil {
			return fmt.Errorf("parse syslog: invalid PRI %q: %w", s[1:end], err)
		}
		pri = int(n)
		ev.AddUnmapped("syslog.facility", facilityNames[pri/8])
		ev.AddUnmapped("syslog.severity", severityNames[pri%8])
		if strings.HasPrefix(s[end+1:], "1 ") {
			if err := d.rfc5424(rec[:len(s)], s, end+3, ev); err != nil {
				return fmt.Errorf("parse syslog: rfc5424: %w", err)
			}
			d.finish(pri, ev)
			d.body(ev)
			return nil
		}
		s = s[end+1:]
	}
	if err := d.rfc3164(s, ev); err != nil {
		return fmt.Errorf("parse syslog: %w", err)
	}
	d.finish(pri, ev)
	d.body(ev)
	return nil
}

var facilityNames = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// severityIDs maps syslog severity 0-7 to OCSF severity_id.
var severityIDs = [...]uint8{
	schemas.SeverityFatal,         // emerg
	schemas.SeverityCritical,      // alert
	schemas.SeverityCritical,      // crit
	schemas.SeverityHigh,          // err
	schemas.SeverityMedium,        // warning
	schemas.SeverityLow,           // notice
	schemas.SeverityInformational, // info
	schemas.SeverityInformational, // debug
}

// finish sets what every syslog event shares. pri is -1 when absent.
func (d *syslogDecoder) finish(pri int, ev *schemas.Event) {
	ev.ClassUID = schemas.ClassBase
	ev.CategoryUID = 0
	ev.ActivityID = 0
	ev.Metadata.Product = "syslog"
	ev.Metadata.LogName = "syslog"
	if pri >= 0 {
		ev.SeverityID = severityIDs[pri%8]
	}
	ev.AddObservable(schemas.ObservableHostname, "device.hostname", ev.DeviceHostname)
	ev.AddObservable(schemas.ObservableProcessName, "actor.process.name", ev.ProcessName)
}

// setProcID maps a PROCID: numeric ones are the pid, others are kept.
func setProcID(v string, ev *schemas.Event) {
	if v == "" {
		return
	}
	if n, err := parseUint(v, 1<<32-1); err == nil {
		ev.ProcessPID = uint32(n)
		return
	}
	ev.AddUnmapped("syslog.procid", v)
}

// rfc5424 parses s, the trimmed record (b holds the same bytes), whose
// header after "<PRI>1 " starts at hdr.
func (d *syslogDecoder) rfc5424(b []byte, s string, hdr int, ev *schemas.Event) error {
	if d.p5424 == nil {
		d.p5424 = rfc5424.NewParser(rfc5424.WithBestEffort())
	}
	tsText := s[hdr:]
	if i := strings.IndexByte(tsText, ' '); i >= 0 {
		tsText = tsText[:i]
	}
	m, perr := d.p5424.Parse(b)
	msg, _ := m.(*rfc5424.SyslogMessage)
	if msg == nil || !msg.Valid() || (perr != nil && !header5424Complete(s[hdr:])) {
		if perr == nil {
			perr = errors.New("invalid header")
		}
		return perr
	}
	if msg.Timestamp == nil && tsText != "-" {
		if perr == nil {
			perr = errors.New("invalid timestamp")
		}
		return fmt.Errorf("timestamp %s: %w", excerpt(tsText), perr)
	}
	ev.Metadata.OriginalTime = tsText
	if msg.Timestamp != nil {
		ev.Time = msg.Timestamp.UTC().Truncate(time.Millisecond)
	} else {
		ev.Time = d.received.Truncate(time.Millisecond)
	}
	if msg.Hostname != nil {
		ev.DeviceHostname = *msg.Hostname
	}
	if msg.Appname != nil {
		ev.ProcessName = *msg.Appname
	}
	if msg.Message != nil {
		ev.Message = strings.TrimPrefix(*msg.Message, "\ufeff")
	}
	ev.AddUnmapped("syslog.version", "1")
	if msg.ProcID != nil {
		setProcID(*msg.ProcID, ev)
	}
	if msg.MsgID != nil {
		ev.AddUnmapped("syslog.msgid", *msg.MsgID)
	}
	if msg.StructuredData != nil {
		sd := *msg.StructuredData
		ids := make([]string, 0, len(sd))
		for id := range sd {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			params := sd[id]
			if len(params) == 0 {
				ev.AddUnmapped("sd."+id, "")
				continue
			}
			names := make([]string, 0, len(params))
			for n := range params {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				ev.AddUnmapped("sd."+id+"."+n, params[n])
			}
		}
	}
	if perr != nil {
		// Best effort: the header is good but something after it is not.
		// The event keeps what parsed; Raw keeps the whole record.
		ev.AddUnmapped("syslog.parse_error", perr.Error())
	}
	return nil
}

// header5424Complete reports whether h (the header after "<PRI>1 ") has all
// of TIMESTAMP HOSTNAME APP-NAME PROCID MSGID and the start of
// STRUCTURED-DATA. Best-effort results are kept only for such headers.
func header5424Complete(h string) bool {
	for n := 0; n < 5; n++ {
		i := strings.IndexByte(h, ' ')
		if i <= 0 {
			return false
		}
		h = h[i+1:]
	}
	return h != ""
}

var monthNames = [12]string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

// rfc3164 parses "TIMESTAMP [HOST] [TAG[PID]:] MSG" (PRI already removed).
func (d *syslogDecoder) rfc3164(s string, ev *schemas.Event) error {
	t, n, err := d.parseStamp(s)
	if err != nil {
		return err
	}
	ev.Time = t
	ev.Metadata.OriginalTime = s[:n]
	s = strings.TrimLeft(s[n:], " ")

	// HOSTNAME, unless the first word is already the tag ("app[1]:",
	// "kernel:"), as in messages a local program sent without one.
	if word, rest, _ := strings.Cut(s, " "); word != "" && strings.IndexByte(word, '[') < 0 && word[len(word)-1] != ':' {
		ev.DeviceHostname = word
		s = strings.TrimLeft(rest, " ")
	}

	// TAG: a word ended by "[pid]" and/or ":"; otherwise all is message.
	const maxTag = 64
	j := 0
	for j < len(s) && j < maxTag && s[j] != ' ' && s[j] != '[' && s[j] != ':' {
		j++
	}
	switch {
	case j == 0 || j == len(s) || j == maxTag || s[j] == ' ':
		// no tag
	case s[j] == '[':
		k := strings.IndexByte(s[j:], ']')
		if k < 2 || k > 33 || strings.IndexByte(s[j:j+k], ' ') >= 0 {
			break
		}
		after := s[j+k+1:]
		if strings.HasPrefix(after, ":") {
			after = after[1:]
		}
		if after != "" && after[0] != ' ' {
			break
		}
		ev.ProcessName = s[:j]
		setProcID(s[j+1:j+k], ev)
		s = strings.TrimPrefix(after, " ")
	case s[j] == ':':
		if j+1 < len(s) && s[j+1] != ' ' {
			break
		}
		ev.ProcessName = s[:j]
		s = strings.TrimPrefix(s[j+1:], " ")
	}
	ev.Message = s
	return nil
}

// parseStamp reads the BSD timestamp "Mmm dd hh:mm:ss" (day space- or
// zero-padded, optional ".fraction", optional year "Mmm dd yyyy hh:mm:ss")
// or an RFC 3339 timestamp, and returns the time and its text length.
func (d *syslogDecoder) parseStamp(s string) (time.Time, int, error) {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		tok := s
		if i := strings.IndexByte(s, ' '); i >= 0 {
			tok = s[:i]
		}
		t, err := parseRFC3339(tok)
		if err != nil {
			return time.Time{}, 0, fmt.Errorf("no timestamp at start of %s: %w", excerpt(s), err)
		}
		return t, len(tok), nil
	}
	bad := func(what string) (time.Time, int, error) {
		return time.Time{}, 0, fmt.Errorf("no timestamp at start of %s: %s", excerpt(s), what)
	}
	if len(s) < 15 || s[3] != ' ' {
		return bad(`want "Mmm dd hh:mm:ss"`)
	}
	month := 0
	for i, name := range monthNames {
		if strings.EqualFold(s[:3], name) {
			month = i + 1
			break
		}
	}
	if month == 0 {
		return bad("unknown month")
	}
	i := 4
	if s[i] == ' ' { // "Oct  1"
		i++
	}
	day, i, ok := digits(s, i, 1, 2)
	if !ok || day < 1 || day > 31 || i >= len(s) || s[i] != ' ' {
		return bad("invalid day")
	}
	i++
	year := 0
	if y, j, ok := digits(s, i, 4, 4); ok && j < len(s) && s[j] == ' ' {
		year, i = y, j+1
	}
	hh, i, ok1 := digits(s, i, 2, 2)
	ok2 := i < len(s) && s[i] == ':'
	mm, i, ok3 := digits(s, i+1, 2, 2)
	ok4 := i < len(s) && s[i] == ':'
	ss, i, ok5 := digits(s, i+1, 2, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || hh > 23 || mm > 59 || ss > 60 {
		return bad("invalid time of day")
	}
	nsec := 0
	if i < len(s) && s[i] == '.' {
		start := i + 1
		f, j, ok := digits(s, start, 1, 9)
		if !ok {
			return bad("invalid fraction of second")
		}
		for k := j - start; k < 9; k++ {
			f *= 10
		}
		nsec, i = f, j
	}
	if i < len(s) && s[i] != ' ' {
		return bad("timestamp not followed by a space")
	}
	t, err := d.resolveYear(year, time.Month(month), day, hh, mm, ss, nsec)
	if err != nil {
		return bad(err.Error())
	}
	return t, i, nil
}

// digits reads between min and max decimal digits at s[i:].
func digits(s string, i, min, max int) (int, int, bool) {
	n, start := 0, i
	for i < len(s) && i-start < max && s[i] >= '0' && s[i] <= '9' {
		n = n*10 + int(s[i]-'0')
		i++
	}
	return n, i, i-start >= min
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// resolveYear builds the UTC time; a zero year is taken from Received (see
// Syslog), skipping years in which the date does not exist (Feb 29).
func (d *syslogDecoder) resolveYear(year int, m time.Month, day, hh, mm, ss, nsec int) (time.Time, error) {
	if year != 0 {
		if day > daysIn(m, year) {
			return time.Time{}, fmt.Errorf("no day %d in %s %d", day, m, year)
		}
		return time.Date(year, m, day, hh, mm, ss, nsec, time.UTC).Truncate(time.Millisecond), nil
	}
	// The latest year that does not put the time more than 24h after
	// Received: usually Received's year, the year before for a December
	// line received in January, the year after for a line stamped just
	// after New Year by a clock slightly ahead.
	limit := d.received.Add(24 * time.Hour)
	for y := d.received.Year() + 1; y >= d.received.Year()-8; y-- {
		if day > daysIn(m, y) {
			continue
		}
		t := time.Date(y, m, day, hh, mm, ss, nsec, time.UTC)
		if t.After(limit) {
			continue
		}
		return t.Truncate(time.Millisecond), nil
	}
	return time.Time{}, fmt.Errorf("no day %d in %s", day, m)
}
