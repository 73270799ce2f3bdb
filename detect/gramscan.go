package detect

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
)

// gramIndex finds which of a set of literals (the prefilter's atoms: ASCII,
// lower-cased, 1..maxAtomLit bytes) occur in a value, in one pass.
//
// It replaced an Aho-Corasick automaton. With the SigmaHQ Windows rules the
// CommandLine automaton had 15,000 states × 70 byte classes, a 2 MB table
// indexed at random by every input byte. Here the loop touches, for an input
// position that starts no literal, one bitmap that stays in L1: literals of
// four bytes or more are keyed by a hash of their least common four-byte
// gram (their anchor). A set bit costs the probe of a small open-addressed
// table whose entries hold the literal's window of up to eight bytes packed
// in a uint64, so that verifying it is one masked compare with the input at
// the anchor's offset (and, for a longer literal, one compare of the rest).
// Literals of one to three bytes are tested once each, against the set of
// bytes present: a one-byte literal by that alone, a longer one by a search
// in the values that hold its rarest byte. This is the filter-then-verify
// design of Hyperscan's FDR and Wu–Manber, without SIMD.
//
// The scanner reads a folded copy of the value (see foldValue): ASCII
// lower-cased, the two non-ASCII runes that fold to ASCII letters replaced
// by them, every other non-ASCII rune by the byte 0x80, which no literal
// holds, and gramPad bytes of 0x80 so that the eight-byte loads never leave
// the buffer.
type gramIndex struct {
	one     [256]gramSlot // byte → the literals of one to three bytes keyed on it
	oneKeys []uint8       // the bytes that key a literal

	four  []uint64 // hashed anchors of the longer literals
	shift uint     // hash → bit of four
	tab4  gramTable

	entries []gramEntry
}

type gramEntry struct {
	lit  uint64 // the literal's window, little-endian, zero-padded
	mask uint64 // its bytes
	off  int32  // offset of the key in the window
	pat  int32  // index of the literal
	// A literal longer than maxAtom is found by its window (atomWindow),
	// then compared whole: full is the literal, foff its window's offset.
	// A literal of two or three bytes is keyed on its rarest byte and
	// searched for, whole, in values that hold that byte: full is the
	// literal, off the offset of the key byte in it.
	full string
	foff int32
}

// gramSlot is a range of gramIndex.entries; end == 0 means empty.
type gramSlot struct{ start, end int32 }

// gramTable is an open-addressed map from a key to its entries: the keys are
// few and fixed, and a probe must cost less than a Go map access.
type gramTable struct {
	keys  []uint32
	slots []gramSlot
	mask  uint32
}

// gramPad is the padding foldValue appends: an eight-byte load at the last
// position of the value stays inside the buffer.
const gramPad = 8

// gramHashMul is Knuth's multiplicative constant (2^32 / φ).
const gramHashMul = 0x9E3779B1

func newGramIndex(lits []string) *gramIndex {
	g := &gramIndex{}
	var ones [256][]gramEntry
	type keyed struct {
		key uint32
		e   gramEntry
	}
	var long []keyed
	// How many literals hold each four-byte gram: a gram many literals share
	// is a common piece of text (rules quote "system32", "program files" or
	// ".exe" because events are full of them), and as an anchor it would
	// both turn up in most values and cost a verify per sharing literal.
	windows := make([]string, len(lits))
	woffs := make([]int, len(lits))
	// A long literal is keyed on a window of maxAtom bytes: atomWindow's
	// pick from its own bytes, unless another window holds a gram fewer
	// of the set's literals hold ("\psexec_windows.exe" and nine other
	// impacket tools share "_windows"; "psex" is theirs alone).
	litShared := gramSharing(lits)
	for id, l := range lits {
		if len(l) > maxAtom {
			woffs[id] = distinctWindow(l, atomWindow(l), litShared)
			windows[id] = l[woffs[id] : woffs[id]+maxAtom]
		} else {
			windows[id] = l
		}
	}
	shared := map[uint32]int32{}
	for _, w := range windows {
		if len(w) < 4 || w == nonASCIIAtom {
			continue
		}
		var seen [5]uint32
		for i := 0; i+4 <= len(w); i++ {
			k := binary.LittleEndian.Uint32([]byte(w[i:]))
			if !slices.Contains(seen[:i], k) {
				shared[k]++
			}
			seen[i] = k
		}
	}
	for id, w := range windows {
		if w == nonASCIIAtom || w == "" {
			continue // the non-ASCII pseudo-literal is found by foldValue
		}
		var b [8]byte
		copy(b[:], w)
		e := gramEntry{lit: binary.LittleEndian.Uint64(b[:]), mask: ^uint64(0) >> (64 - 8*len(w)), pat: int32(id)}
		if l := lits[id]; len(l) > maxAtom {
			e.full, e.foff = l, int32(woffs[id])
		}
		switch {
		case len(w) == 1:
			ones[w[0]] = append(ones[w[0]], e)
		case len(w) < 4:
			k := rarestByte(w)
			e.full, e.off = w, int32(strings.IndexByte(w, k))
			ones[k] = append(ones[k], e)
		default:
			e.off = int32(anchorOffset(w, shared))
			long = append(long, keyed{binary.LittleEndian.Uint32([]byte(w[e.off:])), e})
		}
	}
	for b, es := range ones {
		if len(es) > 0 {
			start := int32(len(g.entries))
			g.entries = append(g.entries, es...)
			g.one[b] = gramSlot{start, int32(len(g.entries))}
			g.oneKeys = append(g.oneKeys, uint8(b))
		}
	}
	// group makes the entries of one key contiguous, in literal order.
	group := func(ks []keyed) (keys []uint32, slots []gramSlot) {
		idx := map[uint32]int{}
		var lists [][]gramEntry
		for _, k := range ks {
			i, ok := idx[k.key]
			if !ok {
				i = len(lists)
				idx[k.key] = i
				keys = append(keys, k.key)
				lists = append(lists, nil)
			}
			lists[i] = append(lists[i], k.e)
		}
		for _, l := range lists {
			start := int32(len(g.entries))
			g.entries = append(g.entries, l...)
			slots = append(slots, gramSlot{start, int32(len(g.entries))})
		}
		return keys, slots
	}
	keys, slots := group(long)
	// About 32 bits per key (2^10 to 2^20): a window that is no anchor finds
	// its bit clear with probability ~97%.
	b := max(10, min(20, bits.Len(uint(len(keys)*32))))
	g.shift = uint(32 - b)
	g.four = make([]uint64, 1<<b/64)
	for _, k := range keys {
		h := (k * gramHashMul) >> g.shift
		g.four[h>>6] |= 1 << (h & 63)
	}
	g.tab4 = newGramTable(keys, slots)
	return g
}

func newGramTable(keys []uint32, slots []gramSlot) gramTable {
	size := 1 << bits.Len(uint(2*len(keys)))
	t := gramTable{keys: make([]uint32, size), slots: make([]gramSlot, size), mask: uint32(size - 1)}
	for i, k := range keys {
		j := (k * gramHashMul) >> 16 & t.mask
		for t.slots[j].end != 0 {
			j = (j + 1) & t.mask
		}
		t.keys[j], t.slots[j] = k, slots[i]
	}
	return t
}

func (t *gramTable) get(k uint32) gramSlot {
	for j := (k * gramHashMul) >> 16 & t.mask; ; j = (j + 1) & t.mask {
		if s := t.slots[j]; s.end == 0 || t.keys[j] == k {
			return s
		}
	}
}

// gramSharing counts, for each four-byte gram, the literals that hold it.
func gramSharing(lits []string) map[uint32]int32 {
	n := map[uint32]int32{}
	seen := map[uint32]bool{}
	for _, l := range lits {
		clear(seen)
		for i := 0; i+4 <= len(l); i++ {
			k := binary.LittleEndian.Uint32([]byte(l[i:]))
			if !seen[k] {
				seen[k] = true
				n[k]++
			}
		}
	}
	return n
}

// distinctWindow returns the offset of l's window of maxAtom bytes whose
// least shared gram is shared by fewest literals, pick when none is
// strictly better than it.
func distinctWindow(l string, pick int, shared map[uint32]int32) int {
	common := commonSpans(l)
	rarest := func(o int) int32 {
		r := int32(1 << 30)
		for i := o; i+4 <= o+maxAtom; i++ {
			if !slices.Contains(common[i:i+4], true) { // common text is in most events
				r = min(r, shared[binary.LittleEndian.Uint32([]byte(l[i:]))])
			}
		}
		return r
	}
	best, bestR := pick, rarest(pick)
	for o := 0; o+maxAtom <= len(l); o++ {
		if r := rarest(o); r < bestR {
			best, bestR = o, r
		}
	}
	return best
}

// anchorOffset picks the four-byte window of l the scan keys on: the one
// the fewest literals share, then the one of the least common bytes
// (commonBytes), the later one on a tie, as the later part of a path or
// command line is the distinctive one.
func anchorOffset(l string, shared map[uint32]int32) int {
	best, bestCost := 0, 1<<62
	for i := 0; i+4 <= len(l); i++ {
		cost := int(shared[binary.LittleEndian.Uint32([]byte(l[i:]))]) << 8
		for _, b := range []byte(l[i : i+4]) {
			cost += byteCost(b)
		}
		if cost <= bestCost {
			best, bestCost = i, cost
		}
	}
	return best
}

// foldValue appends the folded form of v to buf[:0] with its padding and
// reports whether v holds a non-ASCII rune.
func foldValue(buf []byte, v string) ([]byte, bool) {
	buf = slices.Grow(buf[:0], len(v)+gramPad)
	nonASCII := false
	i := 0
	for ; i+8 <= len(v); i += 8 { // eight ASCII bytes at a time
		x := binary.LittleEndian.Uint64([]byte(v[i : i+8]))
		if x&highBits != 0 {
			break
		}
		buf = binary.LittleEndian.AppendUint64(buf, lower8(x))
	}
	for i < len(v) {
		b := v[i]
		if b < utf8.RuneSelf {
			buf = append(buf, lowerASCII(b))
			i++
			continue
		}
		nonASCII = true
		r, size := utf8.DecodeRuneInString(v[i:])
		switch r {
		case '\u212A': // Kelvin sign folds to k
			buf = append(buf, 'k')
		case '\u017F': // long s folds to s
			buf = append(buf, 's')
		default:
			buf = append(buf, 0x80)
		}
		i += size
	}
	return append(buf, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80), nonASCII
}

// scan appends to hits the literals that occur in buf (foldValue's output),
// a literal possibly more than once.
func (g *gramIndex) scan(buf []byte, hits []int32) []int32 {
	n := len(buf) - gramPad
	if n <= 0 {
		return hits
	}
	// The literals of one to three bytes are searched for once each, from
	// one occurrence of their key byte to the next (IndexByte is a SIMD
	// loop): a branch per input byte would mispredict on the common ones,
	// and a second bitmap test per position would double the cost of the
	// loop below.
	for _, k := range g.oneKeys {
		if bytes.IndexByte(buf[:n], k) < 0 {
			continue
		}
		s := g.one[k]
		for _, e := range g.entries[s.start:s.end] {
			if e.full == "" || containsShort(buf[:n], e.full, k, int(e.off)) {
				hits = append(hits, e.pat)
			}
		}
	}
	four, shift := g.four, g.shift
	for i := 0; i < n; i++ {
		w := binary.LittleEndian.Uint64(buf[i : i+8])
		if h := (uint32(w) * gramHashMul) >> shift; four[h>>6]&(1<<(h&63)) != 0 {
			hits = g.verify4(buf, i, uint32(w), hits)
		}
	}
	return hits
}

// containsShort reports whether buf holds lit, whose byte at off is key:
// the search jumps (by IndexByte's SIMD loop) from one key byte to the next.
func containsShort(buf []byte, lit string, key byte, off int) bool {
	for i := off; i < len(buf); {
		j := bytes.IndexByte(buf[i:], key)
		if j < 0 {
			return false
		}
		s := i + j - off
		if s+len(lit) <= len(buf) && string(buf[s:s+len(lit)]) == lit {
			return true
		}
		i += j + 1
	}
	return false
}

// rarestByte is the byte of a short literal least likely in event text,
// the key it is found by.
func rarestByte(l string) byte {
	best, bestCost := l[0], 1<<30
	for _, b := range []byte(l) {
		if c := byteCost(b); c < bestCost {
			best, bestCost = b, c
		}
	}
	return best
}

// byteCost ranks a byte by how common it is in event text.
func byteCost(b byte) int {
	switch {
	case b == ' ' || b == '\\' || b == '.' || b == 'e':
		return 3
	case commonBytes[b]:
		return 2
	case b >= 'a' && b <= 'z':
		return 1
	}
	return 0
}

// fullAt reports whether the whole literal of e occurs in buf given that
// its window does at start.
func (e *gramEntry) fullAt(buf []byte, start int) bool {
	if e.full == "" {
		return true
	}
	s := start - int(e.foff)
	return s >= 0 && s+len(e.full) <= len(buf)-gramPad && string(buf[s:s+len(e.full)]) == e.full
}

// verify4 appends the long literals whose anchor is the window w at i and
// that occur around it.
func (g *gramIndex) verify4(buf []byte, i int, w uint32, hits []int32) []int32 {
	s := g.tab4.get(w)
	for k := s.start; k < s.end; k++ {
		e := &g.entries[k]
		start := i - int(e.off)
		if start >= 0 && binary.LittleEndian.Uint64(buf[start:start+8])&e.mask == e.lit && e.fullAt(buf, start) {
			hits = append(hits, e.pat)
		}
	}
	return hits
}
