package ingest

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// stageMetrics are the per-stage instruments: how long each processing
// stage takes per batch, how big batches are, why records become dead
// letters, and which rules hit.
type stageMetrics struct {
	stageTime    metric.Float64Histogram
	batchRecords metric.Int64Histogram
	deadByReason metric.Int64Counter
	evaluated    metric.Int64Counter
	ruleHits     metric.Int64Counter

	stageSets map[string]metric.MeasurementOption // precomputed, read-only after construction
	reasonSet [numDeadReasons]metric.MeasurementOption
	hitSets   *sync.Map // rule id + level -> metric.MeasurementOption
}

// Dead-letter reason classes: a bounded label set, the full reason is in
// the dead_letters table.
const (
	deadParse = iota
	deadOversize
	deadUTF8
	deadUnknownFormat
	deadSubject
	deadDecode
	deadEncoding
	deadInternal
	numDeadReasons
)

var deadReasonNames = [numDeadReasons]string{"parse", "oversize", "utf8", "unknown_format", "subject", "decode", "encoding", "internal"}

// DeadLetterReasonClass maps a dead letter's reason to the metric label
// watchfloor.dead_letters.by_reason uses.
func DeadLetterReasonClass(reason string) string { return deadReasonNames[deadReasonClass(reason)] }

func deadReasonClass(reason string) int {
	switch {
	case strings.HasPrefix(reason, "record of ") && strings.Contains(reason, " exceeds "):
		return deadOversize
	case strings.HasPrefix(reason, "record is not valid UTF-8"):
		return deadUTF8
	case strings.HasPrefix(reason, "unknown format"):
		return deadUnknownFormat
	case strings.HasPrefix(reason, "decode zstd"):
		return deadDecode
	case strings.HasPrefix(reason, "unsupported "+HeaderEncoding):
		return deadEncoding
	case strings.HasPrefix(reason, "internal error"):
		return deadInternal
	case strings.HasPrefix(reason, ErrBadSubject.Error()):
		return deadSubject
	}
	return deadParse
}

func newStageMetrics(meter metric.Meter) (stageMetrics, error) {
	var m stageMetrics
	var err error
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	var e error
	m.stageTime, e = meter.Float64Histogram("watchfloor.stage.duration", metric.WithDescription("Time one raw batch spends in a processing stage (decode, normalize, detect)."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1))
	keep(e)
	m.batchRecords, e = meter.Int64Histogram("watchfloor.batch.records", metric.WithDescription("Records per raw batch received."), metric.WithUnit("{record}"),
		metric.WithExplicitBucketBoundaries(1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000))
	keep(e)
	m.deadByReason, e = meter.Int64Counter("watchfloor.dead_letters.by_reason", metric.WithDescription("Records stored as dead letters, by reason class."), metric.WithUnit("{record}"))
	keep(e)
	m.evaluated, e = meter.Int64Counter("watchfloor.rules.evaluated", metric.WithDescription("Events evaluated against the rule set."), metric.WithUnit("{event}"))
	keep(e)
	m.ruleHits, e = meter.Int64Counter("watchfloor.rules.hits", metric.WithDescription("Detections stored, by rule."), metric.WithUnit("{detection}"))
	keep(e)
	m.hitSets = new(sync.Map)
	m.stageSets = map[string]metric.MeasurementOption{}
	for _, s := range []string{SpanDecode, SpanNormalize, SpanDetect} {
		m.stageSets[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String("stage", s)))
	}
	for i, n := range deadReasonNames {
		m.reasonSet[i] = metric.WithAttributeSet(attribute.NewSet(attribute.String("reason", n)))
	}
	return m, err
}

func (m *Metrics) stage(name string, d time.Duration) {
	if set, ok := m.stages.stageSets[name]; ok {
		m.stages.stageTime.Record(context.Background(), d.Seconds(), set)
	}
}

func (m *stageMetrics) processed(p *processed) {
	ctx := context.Background()
	m.batchRecords.Record(ctx, int64(p.records))
	if len(p.events) > 0 {
		m.evaluated.Add(ctx, int64(len(p.events)))
	}
}

func (m *stageMetrics) stored(ctx context.Context, rows *sink.Rows) {
	if len(rows.DeadLetters) > 0 {
		var n [numDeadReasons]int64
		for i := range rows.DeadLetters {
			n[deadReasonClass(rows.DeadLetters[i].Reason)]++
		}
		for i, c := range n {
			if c > 0 {
				m.deadByReason.Add(ctx, c, m.reasonSet[i])
			}
		}
	}
	for i := range rows.Findings {
		m.ruleHits.Add(ctx, 1, m.hitSet(&rows.Findings[i]))
	}
}

func (m *stageMetrics) hitSet(f *schemas.Finding) metric.MeasurementOption {
	key := f.RuleID + "\x00" + f.RuleLevel
	if v, ok := m.hitSets.Load(key); ok {
		return v.(metric.MeasurementOption)
	}
	set := metric.WithAttributeSet(attribute.NewSet(attribute.String("rule_id", f.RuleID), attribute.String("level", f.RuleLevel)))
	m.hitSets.Store(key, set)
	return set
}
