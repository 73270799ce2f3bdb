package normalize

import (
	"bytes"
	"encoding/csv"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

func TestSyslogGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/syslog/handwritten.log")
	if err != nil {
		t.Fatal(err)
	}
	got := decodeLines(t, Syslog(), BatchInfo{Received: goldenReceived}, data)
	for _, r := range got {
		if r.Error != "" {
			t.Errorf("line %d: unexpected error: %s", r.Line, r.Error)
		}
	}
	checkGolden(t, "syslog_handwritten.json", got)
}

func decodeSyslog(t *testing.T, received time.Time, rec string) (schemas.Event, error) {
	t.Helper()
	var ev schemas.Event
	err := Syslog().NewDecoder(BatchInfo{Received: received}).Record([]byte(rec), &ev)
	return ev, err
}

func TestSyslogErrors(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string
	}{
		{name: "empty record", give: "", want: "parse syslog: empty record"},
		{name: "blank record", give: "  \r", want: "parse syslog: empty record"},
		{name: "not syslog", give: "hello world, this is not syslog", want: `parse syslog: no timestamp at start of "hello world, this is not syslog": want "Mmm dd hh:mm:ss"`},
		{name: "bad month", give: "Foo 11 22:14:15 host app: x", want: "unknown month"},
		{name: "bad day", give: "Oct 32 22:14:15 host app: x", want: "invalid day"},
		{name: "Feb 30", give: "Feb 30 22:14:15 host app: x", want: "no day 30 in February"},
		{name: "bad clock", give: "Oct 11 25:14:15 host app: x", want: "invalid time of day"},
		{name: "glued timestamp", give: "Oct 11 22:14:15host app: x", want: "timestamp not followed by a space"},
		{name: "bad rfc3339", give: "2025-13-01T00:00:00Z host app: x", want: `parse syslog: no timestamp at start of "2025-13-01T00:00:00Z host app: x": parsing time`},
		{name: "PRI too large", give: "<192>Oct 11 22:14:15 host app: x", want: `parse syslog: invalid PRI "192": out of range`},
		{name: "PRI not a number", give: "<ab>Oct 11 22:14:15 host app: x", want: `parse syslog: invalid PRI "ab": not an unsigned integer`},
		{name: "PRI unterminated", give: "<13 Oct 11 22:14:15 host app: x", want: "parse syslog: invalid PRI at start of"},
		{name: "PRI only", give: "<13>", want: "parse syslog: no timestamp"},
		{name: "5424 bad timestamp", give: "<13>1 2025-99-30T08:00:00Z host app - - - msg", want: "parse syslog: rfc5424: "},
		{name: "5424 truncated header", give: "<13>1 2025-05-30T08:00:00Z", want: "parse syslog: rfc5424: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeSyslog(t, goldenReceived, tt.give)
			if err == nil {
				t.Fatalf("got event %+v, want error containing %q", render(&ev), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSyslogYear(t *testing.T) {
	tests := []struct {
		name     string
		received time.Time
		give     string
		want     time.Time
	}{
		{name: "same year", received: goldenReceived, give: "May 30 10:00:00 h a: m", want: time.Date(2025, 5, 30, 10, 0, 0, 0, time.UTC)},
		{name: "within 24h ahead", received: goldenReceived, give: "Jun  2 11:59:59 h a: m", want: time.Date(2025, 6, 2, 11, 59, 59, 0, time.UTC)},
		{name: "more than 24h ahead", received: goldenReceived, give: "Jun  2 12:00:01 h a: m", want: time.Date(2024, 6, 2, 12, 0, 1, 0, time.UTC)},
		{name: "december in january", received: time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), give: "Dec 31 23:59:58 h a: m", want: time.Date(2024, 12, 31, 23, 59, 58, 0, time.UTC)},
		{name: "new year, sender's clock ahead", received: time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), give: "Jan  1 00:10:00 h a: m", want: time.Date(2025, 1, 1, 0, 10, 0, 0, time.UTC)},
		{name: "feb 29 from non-leap year", received: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), give: "Feb 29 10:00:00 h a: m", want: time.Date(2024, 2, 29, 10, 0, 0, 0, time.UTC)},
		{name: "received not UTC", received: time.Date(2025, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), give: "Dec 31 12:00:00 h a: m", want: time.Date(2024, 12, 31, 12, 0, 0, 0, time.UTC)},
		{name: "fraction to ms", received: goldenReceived, give: "May 30 10:00:00.123999 h a: m", want: time.Date(2025, 5, 30, 10, 0, 0, 123e6, time.UTC)},
		{name: "5424 offset to UTC", received: goldenReceived, give: "<13>1 2025-05-30T10:15:30.123456+02:00 h a - - - m", want: time.Date(2025, 5, 30, 8, 15, 30, 123e6, time.UTC)},
		{name: "5424 NIL takes Received", received: goldenReceived, give: "<13>1 - h a - - - m", want: goldenReceived},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := decodeSyslog(t, tt.received, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Time.Equal(tt.want) || ev.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want %v", ev.Time, tt.want)
			}
			// Redelivery: the same batch decodes to the same time.
			again, _ := decodeSyslog(t, tt.received, tt.give)
			if !again.Time.Equal(ev.Time) {
				t.Errorf("second decode Time = %v, want %v", again.Time, ev.Time)
			}
		})
	}
}

// The rsyslog fuzz seeds (GPL/LGPL mix, so not copied here).
func TestSyslogRsyslogSamples(t *testing.T) {
	type fields struct {
		Host, App, Msg string
		PID            uint32
		Severity       uint8
		Unmapped       []schemas.KV
	}
	tests := []struct {
		file string
		want fields
	}{
		{file: "syslog_rfc5424/rsyslog_fuzz_rfc5424-basic.log", want: fields{
			Host: "mymachine.example.com", App: "evntslog", Msg: "An application event log entry", Severity: 2,
			Unmapped: []schemas.KV{kv("syslog.facility", "local4"), kv("syslog.severity", "notice"), kv("syslog.version", "1"), kv("syslog.msgid", "ID47"),
				kv("sd.exampleSDID@32473.eventSource", "Application"), kv("sd.exampleSDID@32473.iut", "3")},
		}},
		{file: "syslog_rfc5424/rsyslog_fuzz_rfc5424-nil.log", want: fields{
			Msg: "minimal", Severity: 2,
			Unmapped: []schemas.KV{kv("syslog.facility", "user"), kv("syslog.severity", "notice"), kv("syslog.version", "1")},
		}},
		{file: "syslog_rfc3164/rsyslog_fuzz_rfc3164-basic.log", want: fields{
			Host: "mymachine", App: "su", Msg: "'su root' failed for lonvick on /dev/pts/8", Severity: 5,
			Unmapped: []schemas.KV{kv("syslog.facility", "auth"), kv("syslog.severity", "crit")},
		}},
		{file: "syslog_rfc3164/rsyslog_fuzz_rfc3164-no-pri.log", want: fields{
			Host: "host.example", App: "app", PID: 123, Msg: "legacy message without PRI",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := readCorpus(t, tt.file)
			ev, err := decodeSyslog(t, goldenReceived, string(bytes.TrimRight(data, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			got := fields{ev.DeviceHostname, ev.ProcessName, ev.Message, ev.ProcessPID, ev.SeverityID, ev.Unmapped}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// loghubCompare decodes every line of a loghub log and compares it with the
// structured CSV loghub published next to it. col names the CSV columns for
// host, component (app), pid and content. Loghub trims white space around
// the content (we keep it, minus the one space after the tag); the
// comparison trims too. A line ending CR from the CRLF file is kept in Raw
// and dropped from the message. skip lists line ids where the
// decoder knowingly disagrees, with the reason.
func trim(s string) string { return strings.Trim(s, " ") }

func loghubCompare(t *testing.T, logFile string, host, comp, pid, content string, skip map[int]string) {
	logData := readCorpus(t, logFile)
	csvData := readCorpus(t, logFile+"_structured.csv")
	rows, err := csv.NewReader(bytes.NewReader(csvData)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	lines := bytes.Split(bytes.TrimRight(logData, "\n"), []byte("\n"))
	if len(lines) != len(rows)-1 {
		t.Fatalf("got %d log lines, %d CSV rows", len(lines), len(rows)-1)
	}
	dec := Syslog().NewDecoder(BatchInfo{Received: goldenReceived})
	var ev schemas.Event
	for i, line := range lines {
		row := rows[i+1]
		if _, ok := skip[i+1]; ok {
			continue
		}
		ev.Reset()
		if err := dec.Record(line, &ev); err != nil {
			t.Errorf("line %d: %v", i+1, err)
			continue
		}
		got := []string{ev.DeviceHostname, ev.ProcessName, pidText(&ev), trim(ev.Message)}
		want := []string{row[col[host]], "", row[col[pid]], trim(row[col[content]])}
		if comp != "" {
			want[1] = row[col[comp]]
		} else {
			got[1] = ""
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("line %d %q: host/app/pid/content mismatch (-loghub +got):\n%s", i+1, line, diff)
		}
	}
}

func kv(k, v string) schemas.KV { return schemas.KV{Key: k, Value: v} }

func pidText(ev *schemas.Event) string {
	if ev.ProcessPID != 0 {
		return strconv.FormatUint(uint64(ev.ProcessPID), 10)
	}
	return ""
}

func TestSyslogLoghubOpenSSH(t *testing.T) {
	// loghub's OpenSSH CSV names the host column "Component"; every line is sshd.
	loghubCompare(t, "linux_auth_sshd/loghub_OpenSSH_2k.log", "Component", "", "Pid", "Content", nil)
	data := readCorpus(t, "linux_auth_sshd/loghub_OpenSSH_2k.log")
	ev, err := decodeSyslog(t, goldenReceived, string(bytes.SplitN(data, []byte("\n"), 2)[0]))
	if err != nil || ev.ProcessName != "sshd" || ev.Time != time.Date(2024, 12, 10, 6, 55, 46, 0, time.UTC) {
		t.Errorf("first line: ProcessName %q, Time %v, err %v; want sshd, 2024-12-10 06:55:46 (December is in the past of June 2025)", ev.ProcessName, ev.Time, err)
	}
}

func TestSyslogLoghubLinux(t *testing.T) {
	loghubCompare(t, "syslog_rfc3164/loghub_Linux_2k.log", "Level", "Component", "PID", "Content", map[int]string{
		// "combo  -- root[2421]: ROOT LOGIN ON tty2": loghub takes "-- root" as the
		// component; a tag cannot hold a space, so we keep it all as the message.
		899: "tag with a space",
		// "combo syslogd 1.4.1: restart.": same; loghub's component is "syslogd 1.4.1".
		146: "tag with a space", 374: "tag with a space", 714: "tag with a space", 1086: "tag with a space",
		1364: "tag with a space", 1754: "tag with a space", 1908: "tag with a space",
	})
}

func FuzzSyslog(f *testing.F) {
	data, err := os.ReadFile("testdata/syslog/handwritten.log")
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		var ev schemas.Event
		if err := Syslog().NewDecoder(BatchInfo{Received: goldenReceived}).Record(rec, &ev); err != nil {
			return
		}
		if ev.Time.IsZero() || ev.Time.Location() != time.UTC || ev.Time.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("%q: bad time %v", rec, ev.Time)
		}
		if ev.Raw != string(rec) {
			t.Errorf("Raw = %q, want %q", ev.Raw, rec)
		}
		if !is5424(rec) {
			// 3164: every part is a piece of the record.
			for _, part := range []string{ev.DeviceHostname, ev.ProcessName, ev.Message, ev.Metadata.OriginalTime} {
				if !strings.Contains(ev.Raw, part) {
					t.Errorf("%q: %q is not part of the record", rec, part)
				}
			}
		}
	})
}

// is5424 reports whether rec looks like "<PRI>1 ..." (for splitting samples).
func is5424(rec []byte) bool {
	i := bytes.IndexByte(rec, '>')
	return len(rec) > 0 && rec[0] == '<' && i > 0 && i <= 4 && bytes.HasPrefix(rec[i+1:], []byte("1 "))
}

func BenchmarkSyslog5424(b *testing.B) {
	_, recs := benchLines(b, "testdata/syslog/handwritten.log", func(l []byte) bool {
		return is5424(l)
	})
	benchDecode(b, Syslog(), nil, recs)
}

func BenchmarkSyslog3164(b *testing.B) {
	_, recs := benchLines(b, "testdata/syslog/handwritten.log", func(l []byte) bool {
		return !is5424(l)
	})
	benchDecode(b, Syslog(), nil, recs)
}
