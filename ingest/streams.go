package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig sizes the streams the pipeline owns.
type StreamConfig struct {
	Replicas         int           // 1 on a single server, 3 on a cluster
	RawMaxBytes      int64         // SOC_RAW byte limit; a full stream refuses new batches (DiscardNew)
	RawMaxAge        time.Duration // how long unprocessed raw batches are kept
	DuplicateWindow  time.Duration // Nats-Msg-Id dedupe window for sensor resends
	DetectionsMaxAge time.Duration
	// DetectionsDuplicateWindow is SOC_DETECTIONS' dedupe window. It need
	// only outlast the pipeline's ack wait (a crash republishes a batch's
	// findings once the batch is redelivered), and the server keeps every
	// finding id of the window in memory: at 2,500 findings/s a 10-minute
	// window held about 200 MiB of ids.
	DetectionsDuplicateWindow time.Duration
}

// DefaultStreamConfig suits a single machine.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{
		Replicas:         1,
		RawMaxBytes:      8 << 30,
		RawMaxAge:        7 * 24 * time.Hour,
		DuplicateWindow:  10 * time.Minute,
		DetectionsMaxAge: 30 * 24 * time.Hour,

		DetectionsDuplicateWindow: 3 * time.Minute,
	}
}

// Validate reports the first bad setting, naming its key.
func (c StreamConfig) Validate() error {
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("nats.replicas must be 1, 3 or 5, got %d", c.Replicas)
	case c.RawMaxBytes < 1<<20:
		return fmt.Errorf("nats.raw_max_bytes must be at least 1048576, got %d", c.RawMaxBytes)
	case c.RawMaxAge < time.Minute:
		return fmt.Errorf("nats.raw_max_age must be at least 1m, got %s", c.RawMaxAge)
	case c.DuplicateWindow < time.Second || c.DuplicateWindow > c.RawMaxAge:
		return fmt.Errorf("nats.duplicate_window must be between 1s and nats.raw_max_age, got %s", c.DuplicateWindow)
	case c.DetectionsMaxAge < time.Minute:
		return fmt.Errorf("nats.detections_max_age must be at least 1m, got %s", c.DetectionsMaxAge)
	case c.DetectionsDuplicateWindow < time.Second || c.DetectionsDuplicateWindow > c.DetectionsMaxAge:
		return fmt.Errorf("nats.detections_duplicate_window must be between 1s and nats.detections_max_age, got %s", c.DetectionsDuplicateWindow)
	}
	return nil
}

// RawStream is the SOC_RAW definition. DiscardNew makes a full stream push
// back on sensors (they spool) instead of deleting unprocessed telemetry.
func (c StreamConfig) RawStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamRaw,
		Description: "raw telemetry batches from agency sensors",
		Subjects:    []string{RawSubjectsAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    c.RawMaxBytes,
		MaxAge:      c.RawMaxAge,
		Duplicates:  c.DuplicateWindow,
		Replicas:    c.Replicas,
	}
}

// DetectionsStream is the SOC_DETECTIONS definition.
func (c StreamConfig) DetectionsStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDetections,
		Description: "detection findings (OCSF Detection Finding JSON)",
		Subjects:    []string{DetectionSubjectsAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.DetectionsMaxAge,
		// Findings are published before their batch is acked, so a crash
		// republishes them after the ack wait: a window longer than the ack
		// wait drops those copies.
		Duplicates: c.DetectionsDuplicateWindow,
		Replicas:   c.Replicas,
	}
}

// DeadLetterStream is the SOC_DLQ definition. DiscardNew: a full DLQ
// refuses, and the pipeline keeps the batch for redelivery instead.
func (c StreamConfig) DeadLetterStream() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamDeadLetters,
		Description: "raw batches that could not be stored as events or dead letters",
		Subjects:    []string{DeadLetterSubjectsAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      c.RawMaxAge,
		Replicas:    c.Replicas,
	}
}

// EnsureStreams creates or updates the streams. It is idempotent, so every
// pipeline instance may call it at start-up.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	for _, sc := range []jetstream.StreamConfig{c.RawStream(), c.DetectionsStream(), c.DeadLetterStream()} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// IsPushback reports whether a publish error means the stream is full or
// the server is shedding load: the sensor should keep the batch and retry
// later rather than treat it as lost.
func IsPushback(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamNotFound:
			return true
		}
		// 10077 maximum messages exceeded, 10047 insufficient resources,
		// 10028 maximum bytes exceeded: the stream is full.
		return apiErr.ErrorCode == 10077 || apiErr.ErrorCode == 10047 || apiErr.ErrorCode == 10028
	}
	return false
}
