package sink

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/watchfloor/watchfloor/schemas"
)

// The append functions fill a batch column by column (clickhouse-go's
// columnar API), which avoids the per-row reflection of Batch.Append. The
// order of the columns follows schemas.EventColumns & co; TestColumnsMatchTable
// checks it against the live table.

type columnWriter struct {
	b   driver.Batch
	i   int
	err error
}

func (w *columnWriter) add(v any) {
	if w.err != nil {
		return
	}
	if err := w.b.Column(w.i).Append(v); err != nil {
		w.err = fmt.Errorf("append column %d (%T): %w", w.i, v, err)
	}
	w.i++
}

func strs[T any](rows []T, f func(*T) string) []string {
	out := make([]string, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

func col[T any, V any](rows []T, f func(*T) V) []V {
	out := make([]V, len(rows))
	for i := range rows {
		out[i] = f(&rows[i])
	}
	return out
}

func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func appendEvents(b driver.Batch, evs []schemas.Event) error {
	w := &columnWriter{b: b}
	type E = schemas.Event
	w.add(col(evs, func(e *E) uuid.UUID { return uuid.UUID(e.ID) }))
	w.add(strs(evs, func(e *E) string { return e.Agency }))
	w.add(strs(evs, func(e *E) string { return e.Sensor }))
	w.add(strs(evs, func(e *E) string { return e.Format }))
	w.add(col(evs, func(e *E) time.Time { return ms(e.Time) }))
	w.add(col(evs, func(e *E) uint32 { return e.ClassUID }))
	w.add(col(evs, func(e *E) uint32 { return e.CategoryUID }))
	w.add(col(evs, func(e *E) uint32 { return e.ActivityID }))
	w.add(col(evs, func(e *E) uint32 { return e.TypeUID() }))
	w.add(col(evs, func(e *E) uint8 { return e.SeverityID }))
	w.add(col(evs, func(e *E) uint8 { return e.StatusID }))
	w.add(strs(evs, func(e *E) string { return e.Message }))
	w.add(strs(evs, func(e *E) string { return e.Metadata.Product }))
	w.add(strs(evs, func(e *E) string { return e.Metadata.Vendor }))
	w.add(strs(evs, func(e *E) string { return e.Metadata.LogName }))
	w.add(strs(evs, func(e *E) string { return e.Metadata.OriginalTime }))
	w.add(strs(evs, func(e *E) string { return e.Metadata.UID }))
	w.add(strs(evs, func(e *E) string { return e.Src.IP }))
	w.add(col(evs, func(e *E) uint16 { return e.Src.Port }))
	w.add(strs(evs, func(e *E) string { return e.Src.Hostname }))
	w.add(strs(evs, func(e *E) string { return e.Dst.IP }))
	w.add(col(evs, func(e *E) uint16 { return e.Dst.Port }))
	w.add(strs(evs, func(e *E) string { return e.Dst.Hostname }))
	w.add(strs(evs, func(e *E) string { return e.DeviceHostname }))
	w.add(strs(evs, func(e *E) string { return e.ProcessName }))
	w.add(col(evs, func(e *E) uint32 { return e.ProcessPID }))
	w.add(strs(evs, func(e *E) string { return e.UserName }))
	w.add(strs(evs, func(e *E) string { return e.Protocol }))
	w.add(strs(evs, func(e *E) string { return e.DNS.QueryHostname }))
	w.add(strs(evs, func(e *E) string { return e.DNS.QueryType }))
	w.add(strs(evs, func(e *E) string { return e.DNS.QueryClass }))
	w.add(strs(evs, func(e *E) string { return e.DNS.RCode }))
	w.add(col(evs, func(e *E) int32 { return e.DNS.RCodeID }))
	w.add(col(evs, func(e *E) uint32 { return e.DNS.TransactionID }))
	w.add(col(evs, func(e *E) []string { return nonNil(e.DNS.Answers) }))
	w.add(col(evs, func(e *E) []uint32 { return nonNil(e.DNS.TTLs) }))
	w.add(col(evs, func(e *E) float64 { return e.DNS.RTT }))
	w.add(nested(evs, func(e *E) int { return len(e.Observables) }, func(e *E, i int) uint8 { return e.Observables[i].TypeID }))
	w.add(nested(evs, func(e *E) int { return len(e.Observables) }, func(e *E, i int) string { return e.Observables[i].Name }))
	w.add(nested(evs, func(e *E) int { return len(e.Observables) }, func(e *E, i int) string { return e.Observables[i].Value }))
	w.add(nested(evs, func(e *E) int { return len(e.Unmapped) }, func(e *E, i int) string { return e.Unmapped[i].Key }))
	w.add(nested(evs, func(e *E) int { return len(e.Unmapped) }, func(e *E, i int) string { return e.Unmapped[i].Value }))
	w.add(strs(evs, func(e *E) string { return e.Raw }))
	w.add(strs(evs, func(e *E) string { return e.Network.Direction }))
	w.add(col(evs, func(e *E) uint64 { return e.Network.BytesIn }))
	w.add(col(evs, func(e *E) uint64 { return e.Network.BytesOut }))
	w.add(col(evs, func(e *E) uint64 { return e.Network.PacketsIn }))
	w.add(col(evs, func(e *E) uint64 { return e.Network.PacketsOut }))
	w.add(strs(evs, func(e *E) string { return e.HTTP.Method }))
	w.add(strs(evs, func(e *E) string { return e.HTTP.URL }))
	w.add(strs(evs, func(e *E) string { return e.HTTP.Hostname }))
	w.add(col(evs, func(e *E) uint16 { return e.HTTP.StatusCode }))
	w.add(strs(evs, func(e *E) string { return e.HTTP.UserAgent }))
	w.add(strs(evs, func(e *E) string { return e.HTTP.Referrer }))
	w.add(strs(evs, func(e *E) string { return e.Auth.Protocol }))
	w.add(strs(evs, func(e *E) string { return e.Auth.LogonType }))
	w.add(strs(evs, func(e *E) string { return e.Auth.Service }))
	w.add(strs(evs, func(e *E) string { return e.Process.CmdLine }))
	w.add(strs(evs, func(e *E) string { return e.Process.Path }))
	w.add(strs(evs, func(e *E) string { return e.Process.ParentName }))
	w.add(col(evs, func(e *E) uint32 { return e.Process.ParentPID }))
	if w.err == nil && w.i != len(schemas.EventColumns) {
		return fmt.Errorf("events: wrote %d columns, table has %d", w.i, len(schemas.EventColumns))
	}
	return w.err
}

// nested builds an Array column with one backing array for the whole batch
// (two allocations per column instead of one per row).
func nested[T any, V any](rows []T, n func(*T) int, get func(*T, int) V) [][]V {
	total := 0
	for i := range rows {
		total += n(&rows[i])
	}
	flat := make([]V, 0, total)
	out := make([][]V, len(rows))
	for i := range rows {
		start := len(flat)
		for j, k := 0, n(&rows[i]); j < k; j++ {
			flat = append(flat, get(&rows[i], j))
		}
		out[i] = flat[start:len(flat):len(flat)]
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func appendFindings(b driver.Batch, fs []schemas.Finding) error {
	w := &columnWriter{b: b}
	type F = schemas.Finding
	w.add(col(fs, func(f *F) uuid.UUID { return uuid.UUID(f.ID) }))
	w.add(col(fs, func(f *F) uuid.UUID { return uuid.UUID(f.EventID) }))
	w.add(strs(fs, func(f *F) string { return f.Agency }))
	w.add(col(fs, func(f *F) time.Time { return ms(f.Time) }))
	w.add(strs(fs, func(f *F) string { return f.RuleID }))
	w.add(strs(fs, func(f *F) string { return f.RuleTitle }))
	w.add(strs(fs, func(f *F) string { return f.RuleLevel }))
	w.add(col(fs, func(f *F) uint64 { return f.RuleRevision }))
	w.add(col(fs, func(f *F) uint8 { return f.SeverityID }))
	w.add(col(fs, func(f *F) uint32 { return f.EventClass }))
	w.add(col(fs, func(f *F) []string { return nonNil(f.Tags) }))
	if w.err == nil && w.i != len(schemas.FindingColumns) {
		return fmt.Errorf("detections: wrote %d columns, table has %d", w.i, len(schemas.FindingColumns))
	}
	return w.err
}

func appendDeadLetters(b driver.Batch, ds []schemas.DeadLetter) error {
	w := &columnWriter{b: b}
	type D = schemas.DeadLetter
	w.add(col(ds, func(d *D) uuid.UUID { return uuid.UUID(d.ID) }))
	w.add(strs(ds, func(d *D) string { return d.Agency }))
	w.add(strs(ds, func(d *D) string { return d.Sensor }))
	w.add(strs(ds, func(d *D) string { return d.Format }))
	w.add(strs(ds, func(d *D) string { return d.Subject }))
	w.add(strs(ds, func(d *D) string { return d.MsgID }))
	w.add(col(ds, func(d *D) uint32 { return d.Index }))
	w.add(strs(ds, func(d *D) string { return d.Reason }))
	w.add(strs(ds, func(d *D) string { return d.Raw }))
	w.add(col(ds, func(d *D) time.Time { return ms(d.Received) }))
	if w.err == nil && w.i != len(schemas.DeadLetterColumns) {
		return fmt.Errorf("dead_letters: wrote %d columns, table has %d", w.i, len(schemas.DeadLetterColumns))
	}
	return w.err
}
