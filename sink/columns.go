package sink

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"

	"github.com/watchfloor/watchfloor/schemas"
)

// The append functions fill one block column by column (clickhouse-go's
// columnar API), which avoids the per-row reflection of Batch.Append. The
// order of the columns follows schemas.EventColumns & co; TestColumnsMatchTable
// checks it against the live table.

// columnWriter fills one block column by column. Its scratch slices are
// owned by the Sink (pooled, one per concurrent insert) and reused for every
// column of every block: clickhouse-go copies what Append is given, so no
// slice is allocated per column or per batch.
type columnWriter struct {
	b   driver.Batch
	sc  *scratch
	i   int
	err error
}

// scratch holds the reusable column buffers of one insert.
type scratch struct {
	strs []string
	// Array rows: a *string boxes without allocating (a string does not),
	// and each row slice is passed boxed from boxedRows.
	ptrs  boxedRows[*string]
	u8s   boxedRows[uint8]
	u32s  boxedRows[*uint32]
	u8    []uint8
	u16   []uint16
	u32   []uint32
	u64   []uint64
	i32   []int32
	f64   []float64
	times []time.Time
	uuids []uuid.UUID
}

// release drops the references to the rows' strings so a pooled scratch does
// not keep a batch alive.
func (sc *scratch) release() {
	clear(sc.strs[:cap(sc.strs)])
	sc.strs = sc.strs[:0]
	clear(sc.ptrs.buf)
	clear(sc.u32s.buf)
}

// boxedRows passes Array rows to clickhouse-go's AppendRow(any) without an
// allocation per row: converting a slice to an interface copies its header
// to the heap, so the interface of each length is made once, over one
// reused backing array whose contents change from row to row.
type boxedRows[V any] struct {
	buf   []V
	boxes []any // boxes[n] holds buf[:n]
}

// row returns a buffer for a row of n values and the interface that holds
// it; the buffer is valid until the next call.
func (b *boxedRows[V]) row(n int) ([]V, any) {
	if n > len(b.buf) {
		b.buf = make([]V, max(n, 2*len(b.buf), 16))
		b.boxes = b.boxes[:0]
	}
	for len(b.boxes) <= n {
		b.boxes = append(b.boxes, nil)
	}
	if b.boxes[n] == nil {
		b.boxes[n] = b.buf[:n:n]
	}
	return b.buf[:n], b.boxes[n]
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

// addStrings appends an Array(String) column through pointers to the
// rows' strings: clickhouse-go boxes every array element into an
// interface, which costs an allocation per string but none per pointer.
func addStrings[T any](w *columnWriter, rows []T, n func(*T) int, get func(*T, int) *string) {
	addBoxed(w, &w.sc.ptrs, rows, n, get)
}

// addBoxed appends an Array column, one row per element of rows, with rows
// passed through b (see boxedRows).
func addBoxed[T any, V any](w *columnWriter, b *boxedRows[V], rows []T, n func(*T) int, get func(*T, int) V) {
	if w.err != nil {
		return
	}
	c := w.b.Column(w.i)
	for i := range rows {
		r := &rows[i]
		k := n(r)
		buf, boxed := b.row(k)
		for j := 0; j < k; j++ {
			buf[j] = get(r, j)
		}
		if err := c.AppendRow(boxed); err != nil {
			w.err = fmt.Errorf("append column %d row %d: %w", w.i, i, err)
			return
		}
	}
	w.i++
}

// fill writes f of every row into the scratch slice *buf and returns it.
func fill[T any, V any](buf *[]V, rows []T, f func(*T) V) []V {
	out := (*buf)[:0]
	for i := range rows {
		out = append(out, f(&rows[i]))
	}
	*buf = out
	return out
}

func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

func appendEvents(b driver.Batch, sc *scratch, evs []schemas.Event) error {
	w := &columnWriter{b: b, sc: sc}
	type E = schemas.Event
	w.add(fill(&w.sc.uuids, evs, func(e *E) uuid.UUID { return uuid.UUID(e.ID) }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Agency }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Sensor }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Format }))
	w.add(fill(&w.sc.times, evs, func(e *E) time.Time { return ms(e.Time) }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.ClassUID }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.CategoryUID }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.ActivityID }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.TypeUID() }))
	w.add(fill(&w.sc.u8, evs, func(e *E) uint8 { return e.SeverityID }))
	w.add(fill(&w.sc.u8, evs, func(e *E) uint8 { return e.StatusID }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Message }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Metadata.Product }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Metadata.Vendor }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Metadata.LogName }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Metadata.OriginalTime }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Metadata.UID }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Src.IP }))
	w.add(fill(&w.sc.u16, evs, func(e *E) uint16 { return e.Src.Port }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Src.Hostname }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Dst.IP }))
	w.add(fill(&w.sc.u16, evs, func(e *E) uint16 { return e.Dst.Port }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Dst.Hostname }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.DeviceHostname }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.ProcessName }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.ProcessPID }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.UserName }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Protocol }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.DNS.QueryHostname }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.DNS.QueryType }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.DNS.QueryClass }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.DNS.RCode }))
	w.add(fill(&w.sc.i32, evs, func(e *E) int32 { return e.DNS.RCodeID }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.DNS.TransactionID }))
	addStrings(w, evs, func(e *E) int { return len(e.DNS.Answers) }, func(e *E, i int) *string { return &e.DNS.Answers[i] })
	addBoxed(w, &w.sc.u32s, evs, func(e *E) int { return len(e.DNS.TTLs) }, func(e *E, i int) *uint32 { return &e.DNS.TTLs[i] })
	w.add(fill(&w.sc.f64, evs, func(e *E) float64 { return e.DNS.RTT }))
	addBoxed(w, &w.sc.u8s, evs, func(e *E) int { return len(e.Observables) }, func(e *E, i int) uint8 { return e.Observables[i].TypeID })
	addStrings(w, evs, func(e *E) int { return len(e.Observables) }, func(e *E, i int) *string { return &e.Observables[i].Name })
	addStrings(w, evs, func(e *E) int { return len(e.Observables) }, func(e *E, i int) *string { return &e.Observables[i].Value })
	addStrings(w, evs, func(e *E) int { return len(e.Unmapped) }, func(e *E, i int) *string { return &e.Unmapped[i].Key })
	addStrings(w, evs, func(e *E) int { return len(e.Unmapped) }, func(e *E, i int) *string { return &e.Unmapped[i].Value })
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Raw }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Network.Direction }))
	w.add(fill(&w.sc.u64, evs, func(e *E) uint64 { return e.Network.BytesIn }))
	w.add(fill(&w.sc.u64, evs, func(e *E) uint64 { return e.Network.BytesOut }))
	w.add(fill(&w.sc.u64, evs, func(e *E) uint64 { return e.Network.PacketsIn }))
	w.add(fill(&w.sc.u64, evs, func(e *E) uint64 { return e.Network.PacketsOut }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.HTTP.Method }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.HTTP.URL }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.HTTP.Hostname }))
	w.add(fill(&w.sc.u16, evs, func(e *E) uint16 { return e.HTTP.StatusCode }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.HTTP.UserAgent }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.HTTP.Referrer }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Auth.Protocol }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Auth.LogonType }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Auth.Service }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Process.CmdLine }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Process.Path }))
	w.add(fill(&w.sc.strs, evs, func(e *E) string { return e.Process.ParentName }))
	w.add(fill(&w.sc.u32, evs, func(e *E) uint32 { return e.Process.ParentPID }))
	if w.err == nil && w.i != len(schemas.EventColumns) {
		return fmt.Errorf("events: wrote %d columns, table has %d", w.i, len(schemas.EventColumns))
	}
	return w.err
}

func appendFindings(b driver.Batch, sc *scratch, fs []schemas.Finding) error {
	w := &columnWriter{b: b, sc: sc}
	type F = schemas.Finding
	w.add(fill(&w.sc.uuids, fs, func(f *F) uuid.UUID { return uuid.UUID(f.ID) }))
	w.add(fill(&w.sc.uuids, fs, func(f *F) uuid.UUID { return uuid.UUID(f.EventID) }))
	w.add(fill(&w.sc.strs, fs, func(f *F) string { return f.Agency }))
	w.add(fill(&w.sc.times, fs, func(f *F) time.Time { return ms(f.Time) }))
	w.add(fill(&w.sc.strs, fs, func(f *F) string { return f.RuleID }))
	w.add(fill(&w.sc.strs, fs, func(f *F) string { return f.RuleTitle }))
	w.add(fill(&w.sc.strs, fs, func(f *F) string { return f.RuleLevel }))
	w.add(fill(&w.sc.u64, fs, func(f *F) uint64 { return f.RuleRevision }))
	w.add(fill(&w.sc.u8, fs, func(f *F) uint8 { return f.SeverityID }))
	w.add(fill(&w.sc.u32, fs, func(f *F) uint32 { return f.EventClass }))
	addStrings(w, fs, func(f *F) int { return len(f.Tags) }, func(f *F, i int) *string { return &f.Tags[i] })
	if w.err == nil && w.i != len(schemas.FindingColumns) {
		return fmt.Errorf("detections: wrote %d columns, table has %d", w.i, len(schemas.FindingColumns))
	}
	return w.err
}

func appendDeadLetters(b driver.Batch, sc *scratch, ds []schemas.DeadLetter) error {
	w := &columnWriter{b: b, sc: sc}
	type D = schemas.DeadLetter
	w.add(fill(&w.sc.uuids, ds, func(d *D) uuid.UUID { return uuid.UUID(d.ID) }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.Agency }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.Sensor }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.Format }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.Subject }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.MsgID }))
	w.add(fill(&w.sc.u32, ds, func(d *D) uint32 { return d.Index }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.Reason }))
	w.add(fill(&w.sc.strs, ds, func(d *D) string { return d.Raw }))
	w.add(fill(&w.sc.times, ds, func(d *D) time.Time { return ms(d.Received) }))
	if w.err == nil && w.i != len(schemas.DeadLetterColumns) {
		return fmt.Errorf("dead_letters: wrote %d columns, table has %d", w.i, len(schemas.DeadLetterColumns))
	}
	return w.err
}
