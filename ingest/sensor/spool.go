package sensor

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
)

// SpoolPolicy says what a full spool does with a new batch.
type SpoolPolicy string

// Spool policies.
const (
	// SpoolDropOldest deletes the oldest spooled batches to make room, with
	// a log line and Stats.Dropped counting their records.
	SpoolDropOldest SpoolPolicy = "drop-oldest"
	// SpoolBlock makes Add wait until batches are acknowledged: reading
	// pauses, nothing is dropped by the sensor.
	SpoolBlock SpoolPolicy = "block"
)

// SpoolConfig configures the on-disk queue of a Publisher. Every closed
// batch is written there before it is published and deleted once the stream
// acknowledged it, so batches survive a NATS outage and a sensor restart
// (kill -9 included) and are resent, in order, with their original ids.
type SpoolConfig struct {
	Dir      string      // sensor.spool_dir (--spool-dir): "" turns the spool off
	MaxBytes int64       // sensor.spool_max_bytes (--spool-max-bytes): size limit of one publisher's spool
	Policy   SpoolPolicy // sensor.spool_policy (--spool-policy): drop-oldest or block when full
	Sync     bool        // sensor.spool_sync (--spool-sync): fsync every entry (survives power loss, slower)
}

// DefaultSpoolConfig is a 1 GiB drop-oldest spool; Dir must still be set.
func DefaultSpoolConfig() SpoolConfig {
	return SpoolConfig{MaxBytes: 1 << 30, Policy: SpoolDropOldest}
}

// Validate reports the first bad setting, naming its key.
func (c SpoolConfig) Validate() error {
	if c.Dir == "" {
		return nil
	}
	switch {
	case c.MaxBytes < 4<<20 || c.MaxBytes > 1<<40:
		return fmt.Errorf("sensor.spool_max_bytes must be between 4194304 and 1099511627776, got %d", c.MaxBytes)
	case c.Policy != SpoolDropOldest && c.Policy != SpoolBlock:
		return fmt.Errorf("sensor.spool_policy must be %q or %q, got %q", SpoolDropOldest, SpoolBlock, c.Policy)
	}
	return nil
}

// Entry file layout (little endian):
//
//	"WFSP1" | u32 body length | body | u32 CRC-32C of body
//	body: u32 records | u16 subject length | subject | u16 header count |
//	      (u16 key length | key | u16 value length | value)* | data
const (
	spoolMagic  = "WFSP1"
	entrySuffix = ".wfb"
	badSuffix   = ".bad"
	metaFile    = "meta"
	idBlock     = 4096 // batch sequence numbers reserved per meta write
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errTorn marks an entry whose length or checksum does not match.
var errTorn = errors.New("torn spool entry")

type spoolEntry struct {
	seq     uint64
	size    int64
	records int
}

// spool is a directory of entry files named by a 20-digit sequence number.
// It is safe for concurrent use.
type spool struct {
	cfg SpoolConfig
	dir string
	log *slog.Logger

	putMu   sync.Mutex // one put at a time, so entries appear in seq order
	mu      sync.Mutex
	entries []spoolEntry // ascending seq
	bytes   int64
	next    uint64 // seq of the next Put
	cursor  uint64 // Next returns entries with seq >= cursor
	changed chan struct{}
	torn    int

	key      string
	batchSeq uint64 // next batch sequence number handed out
	reserved uint64 // batchSeq values below this are covered by the meta file
}

// openSpool opens (creating) dir, removes half-written temporary files,
// quarantines torn entries as *.bad, and loads the index. key is the
// source key to use if dir has none yet ("" makes a random one).
func openSpool(cfg SpoolConfig, dir, key string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	s := &spool{cfg: cfg, dir: dir, log: log, changed: make(chan struct{})}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open spool %s: %w", dir, err)
	}
	for _, de := range des {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, ".tmp-"):
			_ = os.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, entrySuffix):
			seq, err := strconv.ParseUint(strings.TrimSuffix(name, entrySuffix), 10, 64)
			if err != nil {
				continue
			}
			_, records, size, err := s.read(seq)
			if err != nil {
				s.quarantine(seq, err)
				continue
			}
			s.entries = append(s.entries, spoolEntry{seq: seq, size: size, records: records})
			s.bytes += size
			s.next = max(s.next, seq+1)
		}
	}
	slices.SortFunc(s.entries, func(a, b spoolEntry) int { return cmpU64(a.seq, b.seq) })
	if err := s.loadMeta(key); err != nil {
		return nil, err
	}
	return s, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *spool) path(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, entrySuffix))
}

// loadMeta reads "key batchSeq" from the meta file, or creates it.
func (s *spool) loadMeta(key string) error {
	p := filepath.Join(s.dir, metaFile)
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		f := strings.Fields(string(b))
		if len(f) != 2 {
			return fmt.Errorf("open spool %s: meta file is %q, want \"key seq\"", s.dir, b)
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || ValidateSensorID(f[0]) != nil {
			return fmt.Errorf("open spool %s: meta file is %q, want \"key seq\"", s.dir, b)
		}
		s.key, s.batchSeq, s.reserved = f[0], n, n
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if key == "" {
			var r [4]byte
			_, _ = crand.Read(r[:])
			key = hex.EncodeToString(r[:])
		}
		s.key = key
		return s.writeMeta(0)
	default:
		return fmt.Errorf("open spool %s: %w", s.dir, err)
	}
}

func (s *spool) writeMeta(reserved uint64) error {
	p := filepath.Join(s.dir, metaFile)
	tmp := filepath.Join(s.dir, ".tmp-meta")
	if err := writeFileSync(tmp, []byte(s.key+" "+strconv.FormatUint(reserved, 10)+"\n"), true); err != nil {
		return fmt.Errorf("write spool meta %s: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write spool meta %s: %w", p, err)
	}
	s.reserved = reserved
	return nil
}

// nextBatchSeq hands out batch sequence numbers that are never reused, even
// across a crash: blocks of idBlock are reserved in the meta file first.
func (s *spool) nextBatchSeq() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batchSeq >= s.reserved {
		if err := s.writeMeta(s.batchSeq + idBlock); err != nil {
			return 0, err
		}
	}
	n := s.batchSeq
	s.batchSeq++
	return n, nil
}

func writeFileSync(path string, b []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func encodeEntry(m *nats.Msg, records int) []byte {
	n := len(m.Subject) + len(m.Data) + 64
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	b := make([]byte, 0, n)
	b = append(b, spoolMagic...)
	b = binary.LittleEndian.AppendUint32(b, 0) // body length, set below
	start := len(b)
	b = binary.LittleEndian.AppendUint32(b, uint32(records))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(m.Subject)))
	b = append(b, m.Subject...)
	keys := make([]string, 0, len(m.Header))
	count := 0
	for k, vs := range m.Header {
		keys = append(keys, k)
		count += len(vs)
	}
	slices.Sort(keys)
	b = binary.LittleEndian.AppendUint16(b, uint16(count))
	for _, k := range keys {
		for _, v := range m.Header[k] {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(k)))
			b = append(b, k...)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
			b = append(b, v...)
		}
	}
	b = append(b, m.Data...)
	binary.LittleEndian.PutUint32(b[len(spoolMagic):], uint32(len(b)-start))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], crcTable))
}

func decodeEntry(b []byte) (*nats.Msg, int, error) {
	hl := len(spoolMagic) + 4
	if len(b) < hl+4 || string(b[:len(spoolMagic)]) != spoolMagic {
		return nil, 0, fmt.Errorf("%w: bad magic or %d bytes too short", errTorn, len(b))
	}
	n := int(binary.LittleEndian.Uint32(b[len(spoolMagic):]))
	if n != len(b)-hl-4 {
		return nil, 0, fmt.Errorf("%w: body of %d bytes announced, %d present", errTorn, n, len(b)-hl-4)
	}
	body := b[hl : hl+n]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[hl+n:]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", errTorn)
	}
	r := reader{b: body}
	records := int(r.u32())
	m := &nats.Msg{Subject: string(r.bytes(int(r.u16()))), Header: nats.Header{}}
	for i, c := 0, int(r.u16()); i < c && !r.bad; i++ {
		k := string(r.bytes(int(r.u16())))
		v := string(r.bytes(int(r.u16())))
		m.Header.Add(k, v)
	}
	if r.bad {
		return nil, 0, fmt.Errorf("%w: body structure", errTorn)
	}
	m.Data = r.b
	return m, records, nil
}

type reader struct {
	b   []byte
	bad bool
}

func (r *reader) bytes(n int) []byte {
	if r.bad || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *reader) u16() uint16 {
	if v := r.bytes(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}
func (r *reader) u32() uint32 {
	if v := r.bytes(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (s *spool) read(seq uint64) (*nats.Msg, int, int64, error) {
	b, err := os.ReadFile(s.path(seq))
	if err != nil {
		return nil, 0, 0, err
	}
	m, records, err := decodeEntry(b)
	return m, records, int64(len(b)), err
}

// quarantine renames a torn entry to *.bad so it is kept for inspection
// and never read again.
func (s *spool) quarantine(seq uint64, err error) {
	s.torn++
	p := s.path(seq)
	bad := strings.TrimSuffix(p, entrySuffix) + badSuffix
	_ = os.Rename(p, bad)
	s.log.Error("spool entry is torn; its batch is lost and the file is kept as "+filepath.Base(bad), "spool", s.dir, "entry", seq, "err", err)
}

func (s *spool) signalLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// put writes m as the newest entry. When the spool is full it drops the
// oldest entries (returned, for accounting) or, with SpoolBlock, waits for
// room until ctx ends.
func (s *spool) put(ctx context.Context, m *nats.Msg, records int) (seq uint64, dropped []spoolEntry, err error) {
	b := encodeEntry(m, records)
	size := int64(len(b))
	s.putMu.Lock()
	defer s.putMu.Unlock()
	s.mu.Lock()
	for s.bytes+size > s.cfg.MaxBytes && len(s.entries) > 0 {
		if s.cfg.Policy == SpoolDropOldest {
			e := s.entries[0]
			s.entries = s.entries[1:]
			s.bytes -= e.size
			_ = os.Remove(s.path(e.seq))
			dropped = append(dropped, e)
			continue
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, dropped, ctx.Err()
		}
		s.mu.Lock()
	}
	seq = s.next
	s.next++
	s.mu.Unlock()

	tmp := filepath.Join(s.dir, ".tmp-"+strconv.FormatUint(seq, 10))
	if err := writeFileSync(tmp, b, s.cfg.Sync); err != nil {
		_ = os.Remove(tmp)
		return 0, dropped, fmt.Errorf("spool batch %s: %w", m.Header.Get("Nats-Msg-Id"), err)
	}
	if err := os.Rename(tmp, s.path(seq)); err != nil {
		_ = os.Remove(tmp)
		return 0, dropped, fmt.Errorf("spool batch %s: %w", m.Header.Get("Nats-Msg-Id"), err)
	}
	s.mu.Lock()
	s.entries = append(s.entries, spoolEntry{seq: seq, size: size, records: records})
	s.bytes += size
	s.signalLocked()
	s.mu.Unlock()
	return seq, dropped, nil
}

// next returns the oldest entry not returned before, waiting for one until
// ctx ends. A torn entry is quarantined and reported through tornRecords
// (its record count is unknown: -1) so the caller can account for it.
func (s *spool) nextEntry(ctx context.Context) (seq uint64, m *nats.Msg, records int, err error) {
	for {
		s.mu.Lock()
		i, _ := slices.BinarySearchFunc(s.entries, s.cursor, func(e spoolEntry, t uint64) int { return cmpU64(e.seq, t) })
		if i < len(s.entries) {
			e := s.entries[i]
			s.cursor = e.seq + 1
			s.mu.Unlock()
			m, _, _, err := s.read(e.seq)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // dropped meanwhile
				}
				s.mu.Lock()
				s.removeLocked(e.seq)
				s.quarantine(e.seq, err)
				s.mu.Unlock()
				return e.seq, nil, e.records, err
			}
			return e.seq, m, e.records, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, nil, 0, ctx.Err()
		}
	}
}

// remove deletes an acknowledged entry. It reports whether the entry was
// still there (false: dropped to make room meanwhile).
func (s *spool) remove(seq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removeLocked(seq) {
		return false
	}
	_ = os.Remove(s.path(seq))
	return true
}

func (s *spool) removeLocked(seq uint64) bool {
	i, ok := slices.BinarySearchFunc(s.entries, seq, func(e spoolEntry, t uint64) int { return cmpU64(e.seq, t) })
	if !ok {
		return false
	}
	s.bytes -= s.entries[i].size
	s.entries = slices.Delete(s.entries, i, i+1)
	s.signalLocked()
	return true
}

// stats returns the entries and bytes spooled and the torn entries seen.
func (s *spool) stats() (entries int, bytes int64, torn int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries), s.bytes, s.torn
}

// records is the number of records in the spool.
func (s *spool) records() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.entries {
		n += e.records
	}
	return n
}
