// Package sensor is the agency side of Watchfloor: it reads telemetry (files
// replayed or tailed, syslog over UDP and TCP), groups the lines into batches
// and publishes them to soc.raw.<agency>.<format> with the headers the
// pipeline relies on (see ingest/protocol.go and DESIGN.md).
//
// A Publisher owns the batching, the bounded in-flight window and the
// retries; the readers (Replay, Tail, Syslog) only split input into lines and
// hand them to a Publisher.
package sensor

import (
	"fmt"
	"time"

	"github.com/watchfloor/watchfloor/ingest"
)

// Config tunes a Publisher. The comment after each field is its key in
// error messages and its command-line flag in wfsensor.
type Config struct {
	SensorID     string        // sensor.id (--sensor-id): names the sensor in Wf-Sensor and Nats-Msg-Id
	Agency       string        // sensor.agency (--agency)
	BatchRecords int           // sensor.batch_records (--batch-records): a batch closes at this many records
	BatchBytes   int           // sensor.batch_bytes: a batch closes before its payload passes this size
	Linger       time.Duration // sensor.linger (--linger): a partial batch closes this long after its first record; 0 turns it off
	MaxInFlight  int           // sensor.max_in_flight (--max-in-flight): batches published and not yet acknowledged
	AckTimeout   time.Duration // sensor.ack_timeout (--timeout): how long to wait for one PubAck before resending
	RetryMin     time.Duration // sensor.retry_min: first back-off after a failed publish
	RetryMax     time.Duration // sensor.retry_max: back-off cap
	Compress     bool          // sensor.compress (--compress): zstd payloads (Content-Encoding: zstd)
	Spool        SpoolConfig   // sensor.spool_*: on-disk queue; a zero Dir turns it off
	TraceSample  float64       // sensor.trace_sample (--trace-sample): share of batches sent with a sampled W3C traceparent, 0 to 1
}

// DefaultConfig returns the defaults; SensorID and Agency must still be set.
func DefaultConfig() Config {
	return Config{
		BatchRecords: 1000,
		BatchBytes:   ingest.MaxBatchBytes,
		Linger:       200 * time.Millisecond,
		MaxInFlight:  64,
		AckTimeout:   10 * time.Second,
		RetryMin:     100 * time.Millisecond,
		RetryMax:     5 * time.Second,
		Spool:        DefaultSpoolConfig(),
	}
}

// Validate reports the first bad setting, naming its key.
func (c Config) Validate() error {
	if err := ValidateSensorID(c.SensorID); err != nil {
		return fmt.Errorf("sensor.id: %w", err)
	}
	if err := ingest.ValidateAgency(c.Agency); err != nil {
		return fmt.Errorf("sensor.agency: %w", err)
	}
	switch {
	case c.BatchRecords < 1 || c.BatchRecords > 100000:
		return fmt.Errorf("sensor.batch_records must be between 1 and 100000, got %d", c.BatchRecords)
	case c.BatchBytes < 4096 || c.BatchBytes > ingest.MaxBatchBytes:
		return fmt.Errorf("sensor.batch_bytes must be between 4096 and %d, got %d", ingest.MaxBatchBytes, c.BatchBytes)
	case c.Linger < 0 || c.Linger > time.Minute:
		return fmt.Errorf("sensor.linger must be between 0 (off) and 1m, got %s", c.Linger)
	case c.MaxInFlight < 1 || c.MaxInFlight > 1024:
		return fmt.Errorf("sensor.max_in_flight must be between 1 and 1024, got %d", c.MaxInFlight)
	case c.AckTimeout < 100*time.Millisecond || c.AckTimeout > 10*time.Minute:
		return fmt.Errorf("sensor.ack_timeout must be between 100ms and 10m, got %s", c.AckTimeout)
	case c.RetryMin < time.Millisecond || c.RetryMin > time.Minute:
		return fmt.Errorf("sensor.retry_min must be between 1ms and 1m, got %s", c.RetryMin)
	case !(c.TraceSample >= 0 && c.TraceSample <= 1):
		return fmt.Errorf("sensor.trace_sample must be between 0 and 1, got %g", c.TraceSample)
	case c.RetryMax < c.RetryMin || c.RetryMax > 10*time.Minute:
		return fmt.Errorf("sensor.retry_max must be between sensor.retry_min (%s) and 10m, got %s", c.RetryMin, c.RetryMax)
	}
	if err := c.Spool.Validate(); err != nil {
		return err
	}
	if c.Spool.Dir != "" && c.Spool.MaxBytes < int64(c.BatchBytes)*2 {
		return fmt.Errorf("sensor.spool_max_bytes must be at least twice sensor.batch_bytes (%d), got %d", c.BatchBytes, c.Spool.MaxBytes)
	}
	return nil
}

// ValidateSensorID checks a sensor id: 1 to 128 characters of [A-Za-z0-9._-].
// It appears in headers and before the ':' of Nats-Msg-Id, so nothing else
// is allowed.
func ValidateSensorID(s string) error {
	bad := s == "" || len(s) > 128
	for i := 0; i < len(s) && !bad; i++ {
		c := s[i]
		bad = !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	}
	if bad {
		return fmt.Errorf("sensor id %q must be 1 to 128 characters of [A-Za-z0-9._-]", s)
	}
	return nil
}
