package normalize

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	"github.com/watchfloor/watchfloor/schemas"
)

// MinConfidence is the share of sample records a format must decode for
// Detect to choose it.
const MinConfidence = 0.6

// maxDetectLines bounds how much of a sample Detect reads.
const maxDetectLines = 1000

// Detection is what Detect found.
type Detection struct {
	Format     string  // registered format name
	Confidence float64 // share of sample records the format decoded, 0-1
	Records    int     // sample records (non-empty, non-directive lines)
	Parsed     int     // of which the format decoded without error
}

// ErrNoFormat is wrapped by Detect's error when no format fits the sample.
var ErrNoFormat = errors.New("no registered format matches")

// Detect guesses the format of sample lines (the first lines of a file) with
// the built-in registry; see Registry.Detect.
func Detect(lines [][]byte) (Detection, error) {
	return Builtin().Detect(lines)
}

// Detect guesses the format of sample lines. The rule: every line votes for
// the format its shape suggests (Zeek "#" headers or a JSON object with ts
// and uid, a JSON object with event_type and timestamp for Suricata, "CEF:"
// / "LEEF:", a syslog PRI or timestamp, ...); the two formats with most
// votes then decode the whole sample, and the one that decodes the larger
// share wins if that share (the confidence) is at least MinConfidence. Ties
// go to the format with more votes. A sample that no candidate decodes well
// enough is an error wrapping ErrNoFormat that names the best candidate.
func (r *Registry) Detect(lines [][]byte) (Detection, error) {
	if len(lines) > maxDetectLines {
		lines = lines[:maxDetectLines]
	}
	votes := map[string]int{}
	for _, l := range lines {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if g := guessLine(l); g != "" {
			if _, ok := r.formats[g]; ok {
				votes[g]++
			}
		}
	}
	cands := make([]string, 0, len(votes))
	for n := range votes {
		cands = append(cands, n)
	}
	sort.Slice(cands, func(i, j int) bool {
		if votes[cands[i]] != votes[cands[j]] {
			return votes[cands[i]] > votes[cands[j]]
		}
		return cands[i] < cands[j]
	})
	if len(cands) > 2 {
		cands = cands[:2]
	}
	var best Detection
	for _, name := range cands {
		f := r.formats[name]
		d := tryFormat(&f, lines)
		if d.Confidence > best.Confidence || best.Format == "" {
			best = d
		}
	}
	if best.Format == "" {
		return best, fmt.Errorf("detect format of %d lines: %w (no line looks like any known format)", len(lines), ErrNoFormat)
	}
	if best.Confidence < MinConfidence {
		return best, fmt.Errorf("detect format of %d lines: %w (best %q decodes %d of %d records, %.0f%% < %.0f%%)",
			len(lines), ErrNoFormat, best.Format, best.Parsed, best.Records, best.Confidence*100, MinConfidence*100)
	}
	return best, nil
}

func tryFormat(f *Format, lines [][]byte) Detection {
	d := Detection{Format: f.Name}
	dec := f.NewDecoder(BatchInfo{})
	var ev schemas.Event
	for _, l := range lines {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		if f.Directive(l) {
			_ = dec.Directive(l)
			continue
		}
		d.Records++
		ev.Reset()
		if dec.Record(l, &ev) == nil {
			d.Parsed++
		}
	}
	if d.Records > 0 {
		d.Confidence = float64(d.Parsed) / float64(d.Records)
	}
	return d
}

// guessLine names the format one line's shape suggests, or "".
func guessLine(l []byte) string {
	has := func(s string) bool { return bytes.Contains(l, []byte(s)) }
	switch {
	case l[0] == '#':
		if bytes.HasPrefix(l, []byte("#separator")) || bytes.HasPrefix(l, []byte("#fields")) || bytes.HasPrefix(l, []byte("#path")) {
			return "zeek"
		}
		return ""
	case l[0] == '{':
		switch {
		case has(`"event_type"`) && has(`"timestamp"`):
			return "suricata_eve"
		case has(`"ts"`) && (has(`"uid"`) || has(`"id.orig_h"`) || has(`"fuid"`) || has(`"_path"`)):
			return "zeek"
		case has(`"EventID"`) || has(`"eventID"`) || has(`"winlog"`) || has(`"event_id"`) && has(`"channel"`) || has(`"eventdata"`):
			return "winevent_json"
		}
		return ""
	case bytes.HasPrefix(l, []byte("LEEF:")):
		return "leef"
	case bytes.HasPrefix(l, []byte("CEF:")):
		return "cef"
	case bytes.HasPrefix(l, []byte("type=")) && has(" msg=audit("):
		return "auditd"
	}
	// Firewalls, proxies and DNS resolver logs, before generic syslog.
	switch {
	case has("%ASA-") || has("%FTD-") || has("%PIX-") || has("%FWSM-"):
		return "cisco_asa"
	case has("date=") && (has(" devname=") || has(" logid=") || has(" log_id=")):
		return "fortinet"
	case has(",TRAFFIC,") || has(",THREAT,") || has(",SYSTEM,") && has(",general,") || has(",CONFIG,"):
		return "paloalto"
	case l[0] >= '1' && l[0] <= '9' && (has(" TCP_") || has(" UDP_") || has(" NONE/") || has(" TAG_NONE")):
		return "squid"
	case has(" response: ") && has(" query: ") && has("named["):
		return "infoblox_nios"
	case has(" query: ") && has(" IN "):
		return "bind_query"
	case has(" unbound[") || bytes.HasPrefix(l, []byte("[")) && has("unbound["):
		return "unbound"
	case has("dnsmasq["):
		return "dnsmasq"
	case has("[INFO] ") && has(` IN `) && has(`" `):
		return "coredns"
	case has(" PACKET ") && has(" UDP ") || bytes.HasPrefix(l, []byte("DNS Server log file")):
		return "windows_dns"
	}
	if has(" CEF:") || has(":CEF:") {
		return "cef"
	}
	if has("LEEF:") {
		return "leef"
	}
	if l[0] == '<' || isMonth(l) || len(l) > 20 && l[4] == '-' && l[10] == 'T' {
		return "syslog"
	}
	if bytes.Count(l, []byte("\t")) >= 4 && l[0] >= '1' && l[0] <= '9' {
		return "zeek" // a TSV row without its header: fails to decode, but names the culprit
	}
	return ""
}

func isMonth(l []byte) bool {
	if len(l) < 4 || l[3] != ' ' {
		return false
	}
	for _, m := range monthNames {
		if bytes.EqualFold(l[:3], []byte(m)) {
			return true
		}
	}
	return false
}
