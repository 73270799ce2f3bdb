package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/normalize"
	"github.com/watchfloor/watchfloor/schemas"
)

// MaxDecodedBatchBytes bounds a zstd batch after decompression, so a small
// hostile payload cannot expand without limit.
const MaxDecodedBatchBytes = 64 << 20

// maxHeaderValue bounds the sensor-controlled header values we store.
const maxHeaderValue = 256

// batchMeta is what the pipeline knows about one raw message.
type batchMeta struct {
	subject, agency, format, msgID, sensor string
	received                               time.Time
}

// process decodes, normalizes and evaluates one raw message. It never
// fails: every record becomes an event or a dead letter with its reason.
// maxEventsHint caps the capacity taken from a batch's Wf-Count header.
const maxEventsHint = 4096

func (p *Pipeline) process(msg jetstream.Msg) (out *processed) {
	out = &processed{msg: msg}
	ctx, span := p.startBatch(msg)
	out.span = span
	var m batchMeta
	m.subject = msg.Subject()
	if md, err := msg.Metadata(); err == nil {
		m.received = md.Timestamp.UTC()
		out.redelivered = md.NumDelivered > 1
		out.seq = md.Sequence.Stream
		m.msgID = fmt.Sprintf("%s:%d", StreamRaw, md.Sequence.Stream)
	} else {
		m.received = p.now().UTC()
	}
	h := msg.Headers()
	if id := h.Get(HeaderMsgID); id != "" {
		m.msgID = truncate(id, maxHeaderValue)
	}
	m.sensor = truncate(h.Get(HeaderSensor), maxHeaderValue)
	payload := msg.Data()

	defer func() {
		// A normalizer bug must not stop the pipeline or lose the batch.
		if r := recover(); r != nil {
			p.log.Error("panic while processing a batch", "subject", m.subject, "batch", m.msgID, "panic", r)
			out.events, out.findings, out.deadLetters, out.corrInputs = nil, nil, nil, nil
			out.records = 0
			var directive func([]byte) bool
			if f, ok := p.formats.Lookup(m.format); ok {
				directive = f.Directive
			}
			p.deadLetterAll(out, &m, payload, fmt.Sprintf("internal error while normalizing: %v", r), directive)
		}
		p.metrics.processed(out)
		finishProcessing(span, &m, out)
	}()

	if md, err := msg.Metadata(); err == nil && md.NumDelivered > uint64(p.cfg.MaxDeliver) {
		// Earlier deliveries were never settled: the batch probably crashes
		// or stalls the pipeline. Do not decode it again.
		out.exceeded = true
		m.agency, m.format = "_invalid", "_invalid"
		if a, f, err := ParseRawSubject(m.subject); err == nil {
			m.agency, m.format = a, f
		}
		reason := fmt.Sprintf("exceeded pipeline.max_deliver (%d): delivered %d times without being settled; the batch was not normalized again",
			p.cfg.MaxDeliver, md.NumDelivered)
		if enc := h.Get(HeaderEncoding); enc != "" && enc != "identity" {
			p.deadLetterWhole(out, &m, payload, h.Get(HeaderCount), reason+" (still compressed: the first dead letter keeps the payload's start)")
			return out
		}
		var directive func([]byte) bool
		if f, ok := p.formats.Lookup(m.format); ok {
			directive = f.Directive
		}
		p.deadLetterAll(out, &m, payload, reason, directive)
		return out
	}

	agency, format, err := ParseRawSubject(m.subject)
	if err != nil {
		m.agency, m.format = "_invalid", "_invalid"
		p.deadLetterAll(out, &m, payload, err.Error(), nil)
		return out
	}
	m.agency, m.format = agency, format

	decode := p.stage(ctx, SpanDecode)
	defer decode.End() // ended here unless a dead-letter path returns first
	switch enc := h.Get(HeaderEncoding); enc {
	case "", "identity":
	case "zstd":
		dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxDecodedBatchBytes), zstd.WithDecoderConcurrency(1))
		if err == nil {
			payload, err = dec.DecodeAll(payload, nil)
			dec.Close()
		}
		if err != nil {
			reason := fmt.Sprintf("decode zstd batch: %v", err)
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				reason = fmt.Sprintf("decompressed batch exceeds the limit of %d bytes (ingest.MaxDecodedBatchBytes): %v", MaxDecodedBatchBytes, err)
			}
			p.deadLetterWhole(out, &m, msg.Data(), h.Get(HeaderCount), reason)
			return out
		}
	default:
		p.deadLetterWhole(out, &m, payload, h.Get(HeaderCount), fmt.Sprintf("unsupported %s %q: want zstd or none", HeaderEncoding, truncate(enc, 64)))
		return out
	}

	f, ok := p.formats.Lookup(format)
	if !ok {
		p.deadLetterAll(out, &m, payload, fmt.Sprintf("unknown format %q: registered formats are %v", format, p.formats.Names()), nil)
		return out
	}
	oversize, err := ParseOversize(h.Get(HeaderOversize))
	if err != nil {
		p.log.Warn("ignoring bad header", "subject", m.subject, "batch", m.msgID, "err", err)
	}
	cut := make(map[int]int, len(oversize))
	for _, o := range oversize {
		cut[o.Index] = o.Size
	}

	decode.End()
	// Size the events once from the sensor's count; the count is the
	// client's word, so it only bounds a hint, never an allocation it forces.
	if n, err := strconv.Atoi(h.Get(HeaderCount)); err == nil && n > 0 {
		out.events = make([]schemas.Event, 0, min(n, maxEventsHint))
	}
	rules := p.rules.Load().r
	normalizeSpan := p.stage(ctx, SpanNormalize)
	dec := f.NewDecoder(normalize.BatchInfo{Received: m.received})
	idx := 0
	_ = ForEachLine(payload, func(line []byte) error {
		if f.Directive(line) {
			if err := dec.Directive(line); err != nil {
				p.log.Warn("bad directive", "subject", m.subject, "batch", m.msgID, "err", err)
			}
			return nil
		}
		i := idx
		idx++
		if i >= MaxBatchRecords {
			out.deadLetters = append(out.deadLetters, m.deadLetter(i, line,
				fmt.Sprintf("batch holds more than %d records (ingest.MaxBatchRecords); record %d is over the limit", MaxBatchRecords, i)))
			return nil
		}
		if size, ok := cut[i]; ok {
			out.deadLetters = append(out.deadLetters, m.deadLetter(i, line,
				fmt.Sprintf("record of %d bytes exceeds the sensor limit of %d bytes; the first %d bytes are kept", size, MaxRecordBytes, len(line))))
			return nil
		}
		if len(line) > MaxRecordBytes {
			out.deadLetters = append(out.deadLetters, m.deadLetter(i, line[:OversizePrefix],
				fmt.Sprintf("record of %d bytes exceeds the limit of %d bytes; the first %d bytes are kept", len(line), MaxRecordBytes, OversizePrefix)))
			return nil
		}
		if !utf8.Valid(line) {
			out.deadLetters = append(out.deadLetters, m.deadLetter(i, line,
				fmt.Sprintf("record is not valid UTF-8 (first bad byte at offset %d)", firstInvalidUTF8(line))))
			return nil
		}
		out.events = append(out.events, schemas.Event{})
		ev := &out.events[len(out.events)-1]
		if err := dec.Record(line, ev); err != nil {
			out.events = out.events[:len(out.events)-1]
			out.deadLetters = append(out.deadLetters, m.deadLetter(i, line, err.Error()))
			return nil
		}
		ev.ID = schemas.EventID(m.msgID, i)
		ev.Agency, ev.Sensor, ev.Format = m.agency, m.sensor, m.format
		if ev.Raw == "" {
			ev.Raw = string(line)
		}
		return nil
	})
	normalizeSpan.End()
	detectSpan := p.stage(ctx, SpanDetect)
	if ce, ok := rules.(CorrEvaluator); ok && p.corr != nil {
		for i := range out.events {
			out.findings, out.corrInputs = ce.EvalCorr(&out.events[i], out.findings, out.corrInputs)
		}
	} else {
		for i := range out.events {
			out.findings = rules.Eval(&out.events[i], out.findings)
		}
	}
	detectSpan.End()
	if len(out.findings) > 0 {
		// Page analysts now rather than when the batch's flush settles: at
		// a second or more per flush that wait was most of the
		// publish→detection latency. A failure is left to settle, which
		// publishes again (same Nats-Msg-Id) before the ack.
		publish := p.stage(ctx, SpanPublish)
		pctx, cancel := context.WithTimeout(ctx, earlyPublishTimeout)
		err := p.findings.Publish(pctx, out.findings)
		cancel()
		publish.End()
		out.published = err == nil
		if err != nil {
			p.log.Debug("early publish of findings failed; retried when the batch settles", "subject", m.subject, "batch", m.msgID, "err", err)
		}
	}
	if p.corr != nil && len(out.corrInputs) > 0 {
		// Correlation inputs likewise: their owner decides sooner.
		pctx, cancel := context.WithTimeout(ctx, earlyPublishTimeout)
		err := p.corr.Publish(pctx, out.corrInputs)
		cancel()
		out.corrPublished = err == nil
		if err != nil {
			p.log.Debug("early publish of correlation inputs failed; retried when the batch settles", "subject", m.subject, "batch", m.msgID, "err", err)
		}
	}
	out.records = idx
	if want := h.Get(HeaderCount); want != "" && want != strconv.Itoa(idx) {
		p.log.Warn("batch record count differs from its header", "subject", m.subject, "batch", m.msgID, "header", want, "records", idx)
	}
	return out
}

func (m *batchMeta) deadLetter(i int, raw []byte, reason string) schemas.DeadLetter {
	return schemas.DeadLetter{
		ID:       schemas.EventID(m.msgID, i),
		Agency:   m.agency,
		Sensor:   m.sensor,
		Format:   m.format,
		Subject:  m.subject,
		MsgID:    m.msgID,
		Index:    uint32(i),
		Reason:   reason,
		Raw:      string(raw),
		Received: m.received,
	}
}

// deadLetterAll turns every record of a batch that cannot be decoded as a
// whole (bad subject, unknown format) into a dead letter with reason.
// Lines for which directive (if not nil) is true are not records and skipped.
func (p *Pipeline) deadLetterAll(out *processed, m *batchMeta, payload []byte, reason string, directive func([]byte) bool) {
	i := 0
	_ = ForEachLine(payload, func(line []byte) error {
		if directive != nil && directive(line) {
			return nil
		}
		if len(line) > MaxRecordBytes {
			line = line[:OversizePrefix]
		}
		out.deadLetters = append(out.deadLetters, m.deadLetter(i, line, reason))
		i++
		return nil
	})
	out.records = i
}

// deadLetterWhole handles a payload that cannot even be split into records
// (a corrupt compressed batch): one dead letter per record the header
// announced, the first holding the payload, so counts still add up.
func (p *Pipeline) deadLetterWhole(out *processed, m *batchMeta, payload []byte, count, reason string) {
	// Wf-Count is client-controlled: bounded, so a small corrupt message
	// cannot claim millions of rows.
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		n = 1
	}
	n = min(n, MaxBatchRecords)
	for i := 0; i < n; i++ {
		var raw []byte
		if i == 0 {
			raw = payload
			if len(raw) > OversizePrefix {
				raw = raw[:OversizePrefix]
			}
		}
		out.deadLetters = append(out.deadLetters, m.deadLetter(i, raw, reason))
	}
	out.records = n
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
