// Package ingest is the JetStream side of Watchfloor: the wire protocol that
// sensors and the pipeline share (subjects, headers, batch framing), the
// stream and consumer definitions, and the pipeline that consumes raw batches,
// normalizes and evaluates them, and settles each message once its rows are
// stored.
package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Stream and subject names (see DESIGN.md).
const (
	StreamRaw            = "SOC_RAW"
	StreamDetections     = "SOC_DETECTIONS"
	RawSubjectPrefix     = "soc.raw."
	DetectionPrefix      = "soc.detections."
	DeadLetterPrefix     = "soc.dlq."
	RawSubjectsAll       = "soc.raw.>"
	DetectionSubjectsAll = "soc.detections.>"
)

// Headers on raw batches.
const (
	HeaderMsgID       = "Nats-Msg-Id"      // <sensor-id>:<batch-seq>, stable across retries
	HeaderSensor      = "Wf-Sensor"        // sensor id
	HeaderCount       = "Wf-Count"         // records in the batch (directives excluded)
	HeaderOversize    = "Wf-Oversize"      // "index:size,..." records the sensor truncated
	HeaderEncoding    = "Content-Encoding" // "zstd" or absent
	HeaderTraceparent = "traceparent"      // W3C trace context
	HeaderReason      = "Wf-Reason"        // on soc.dlq.* messages: why the batch is there
	HeaderOrigSubject = "Wf-Subject"       // on soc.dlq.* messages: the raw subject it came from
)

// StreamDeadLetters holds soc.dlq.<agency>.<format>: raw batches that
// could not be stored anywhere else.
const (
	StreamDeadLetters     = "SOC_DLQ"
	DeadLetterSubjectsAll = "soc.dlq.>"
)

// DeadLetterSubject maps soc.raw.<agency>.<format> to soc.dlq.<agency>.<format>;
// an unparseable subject goes to soc.dlq._invalid._invalid.
func DeadLetterSubject(raw string) string {
	agency, format, err := ParseRawSubject(raw)
	if err != nil {
		return DeadLetterPrefix + "_invalid._invalid"
	}
	return DeadLetterPrefix + agency + "." + format
}

// Size limits shared by sensors and the pipeline.
const (
	// MaxBatchBytes keeps a batch under the server's default max payload
	// (1 MiB) with room for headers.
	MaxBatchBytes = 1<<20 - 16<<10
	// MaxRecordBytes is the largest record a sensor ships whole. A longer
	// record is cut to OversizePrefix bytes, listed in Wf-Oversize, and
	// becomes a dead letter that keeps the prefix: it is never dropped.
	MaxRecordBytes = 512 << 10
	// OversizePrefix is how much of an oversized record is kept.
	OversizePrefix = 64 << 10
	// MaxBatchRecords bounds the records of one batch (the sensor's
	// sensor.batch_records limit); records past it become dead letters.
	MaxBatchRecords = 100000
)

// ValidateAgency checks an agency token: [a-z0-9][a-z0-9_-]*, at most 64 bytes.
func ValidateAgency(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("agency %q must be 1 to 64 characters of [a-z0-9_-] starting with [a-z0-9]", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("agency %q must be 1 to 64 characters of [a-z0-9_-] starting with [a-z0-9]", s)
		}
	}
	return nil
}

// ValidateFormatName checks a format token: [a-z0-9_]+, at most 64 bytes.
func ValidateFormatName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("format %q must be 1 to 64 characters of [a-z0-9_]", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("format %q must be 1 to 64 characters of [a-z0-9_]", s)
		}
	}
	return nil
}

// RawSubject is the subject a sensor of agency publishes format batches to.
func RawSubject(agency, format string) string {
	return RawSubjectPrefix + agency + "." + format
}

// DetectionSubject is the subject of a finding of the given Sigma level.
func DetectionSubject(agency, level string) string {
	if level == "" {
		level = "unknown"
	}
	return DetectionPrefix + agency + "." + level
}

// ErrBadSubject reports a raw subject that is not soc.raw.<agency>.<format>.
var ErrBadSubject = errors.New("bad raw subject")

// ParseRawSubject splits soc.raw.<agency>.<format>. The agency comes from
// here and nowhere else: the server's permissions bind it to the sensor.
func ParseRawSubject(subject string) (agency, format string, err error) {
	rest, ok := strings.CutPrefix(subject, RawSubjectPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w %q: want soc.raw.<agency>.<format>", ErrBadSubject, subject)
	}
	agency, format, ok = strings.Cut(rest, ".")
	if !ok || strings.Contains(format, ".") {
		return "", "", fmt.Errorf("%w %q: want soc.raw.<agency>.<format>", ErrBadSubject, subject)
	}
	if err := ValidateAgency(agency); err != nil {
		return "", "", fmt.Errorf("%w %q: %w", ErrBadSubject, subject, err)
	}
	if err := ValidateFormatName(format); err != nil {
		return "", "", fmt.Errorf("%w %q: %w", ErrBadSubject, subject, err)
	}
	return agency, format, nil
}

// ForEachLine calls fn for every non-empty line of a batch payload, without
// the trailing newline (and a trailing carriage return). Lines are slices of
// payload: fn must not retain them.
func ForEachLine(payload []byte, fn func(line []byte) error) error {
	for len(payload) > 0 {
		var line []byte
		if i := bytes.IndexByte(payload, '\n'); i >= 0 {
			line, payload = payload[:i], payload[i+1:]
		} else {
			line, payload = payload, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return nil
}

// Oversize is one record a sensor cut short.
type Oversize struct {
	Index int // record index in the batch
	Size  int // original size in bytes
}

// FormatOversize renders the Wf-Oversize header value.
func FormatOversize(list []Oversize) string {
	var b strings.Builder
	for i, o := range list {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(o.Index))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(o.Size))
	}
	return b.String()
}

// ParseOversize parses the Wf-Oversize header value.
func ParseOversize(v string) ([]Oversize, error) {
	if v == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) > 100000 {
		return nil, fmt.Errorf("parse %s header: %d entries exceeds 100000", HeaderOversize, len(parts))
	}
	out := make([]Oversize, 0, len(parts))
	for _, p := range parts {
		is, ss, ok := strings.Cut(p, ":")
		i, err1 := strconv.Atoi(is)
		s, err2 := strconv.Atoi(ss)
		if !ok || err1 != nil || err2 != nil || i < 0 || s < 0 {
			return nil, fmt.Errorf("parse %s header: entry %q is not index:size", HeaderOversize, p)
		}
		out = append(out, Oversize{Index: i, Size: s})
	}
	return out, nil
}
