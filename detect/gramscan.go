package detect

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// gramIndex finds which of a set of short literals (the prefilter's atoms:
// ASCII, lower-cased, 1..maxAtom bytes) occur in a value, in one pass.
//
// It replaced an Aho-Corasick automaton. With the SigmaHQ Windows rules the
// CommandLine automaton had 15,000 states × 70 byte classes, a 2 MB table
// indexed at random by every input byte. Here the loop touches, for an input
// position that starts no literal, two bitmaps that stay in L1: literals of
// four bytes or more are keyed by a hash of their least common four-byte
// gram (their anchor), two- and three-byte literals by their first two
// bytes. A set bit costs the probe of a small open-addressed table whose
// entries hold the literal itself, packed in a uint64, so that verifying it
// is one masked compare with the input at the anchor's offset. One-byte
// literals are tested once each against the set of bytes present. This is
// the filter-then-verify design of Hyperscan's FDR and Wu–Manber, without
// SIMD.
//
// The scanner reads a folded copy of the value (see foldValue): ASCII
// lower-cased, the two non-ASCII runes that fold to ASCII letters replaced
// by them, every other non-ASCII rune by the byte 0x80, which no literal
// holds, and gramPad bytes of 0x80 so that the eight-byte loads never leave
// the buffer.
type gramIndex struct {
	one     [256]gramSlot // byte → its one-byte literals
	oneKeys []uint8       // the bytes of one-byte literals

	two   [1 << 16 / 64]uint64 // first two bytes of the 2- and 3-byte literals
	four  []uint64             // hashed anchors of the longer literals
	shift uint                 // hash → bit of four
	tab2  gramTable
	tab4  gramTable

	entries []gramEntry
}

type gramEntry struct {
	lit  uint64 // the literal, little-endian, zero-padded
	mask uint64 // its bytes
	off  int32  // offset of the key in the literal
	pat  int32  // index of the literal
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
	var short, long []keyed
	for id, l := range lits {
		if l == nonASCIIAtom || l == "" || len(l) > 8 {
			continue // the non-ASCII pseudo-literal is found by foldValue
		}
		var b [8]byte
		copy(b[:], l)
		e := gramEntry{lit: binary.LittleEndian.Uint64(b[:]), mask: ^uint64(0) >> (64 - 8*len(l)), pat: int32(id)}
		switch {
		case len(l) == 1:
			ones[l[0]] = append(ones[l[0]], e)
		case len(l) < 4:
			short = append(short, keyed{uint32(l[0]) | uint32(l[1])<<8, e})
		default:
			e.off = int32(anchorOffset(l))
			long = append(long, keyed{binary.LittleEndian.Uint32([]byte(l[e.off:])), e})
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
	keys, slots := group(short)
	for _, k := range keys {
		g.two[k>>6] |= 1 << (k & 63)
	}
	g.tab2 = newGramTable(keys, slots)
	keys, slots = group(long)
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

// anchorOffset picks the four-byte window of l the scan keys on: the one of
// the least common bytes (commonBytes), the later one on a tie, as the later
// part of a path or command line is the distinctive one.
func anchorOffset(l string) int {
	best, bestCost := 0, 1<<30
	for i := 0; i+4 <= len(l); i++ {
		cost := 0
		for _, b := range []byte(l[i : i+4]) {
			switch {
			case b == ' ' || b == '\\' || b == '.' || b == 'e':
				cost += 3
			case commonBytes[b]:
				cost += 2
			case b >= 'a' && b <= 'z':
				cost++
			}
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
	// Eight ASCII bytes at a time: a byte b in 'A'..'Z' is the one for which
	// b+(0x80-'A') has its top bit set and b+(0x80-'Z'-1) has not; no sum
	// carries into the next byte as every byte is below 0x80.
	for ; i+8 <= len(v); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(v[i : i+8]))
		if x&0x8080808080808080 != 0 {
			break
		}
		upper := ((x + 0x3F3F3F3F3F3F3F3F) ^ (x + 0x2525252525252525)) & 0x8080808080808080
		buf = binary.LittleEndian.AppendUint64(buf, x|upper>>2)
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
	if len(g.oneKeys) > 0 {
		// One-byte literals are tested once each against the bytes present:
		// a branch per input byte would mispredict on the common ones.
		var present [4]uint64
		for _, b := range buf[:n] {
			present[b>>6] |= 1 << (b & 63)
		}
		for _, k := range g.oneKeys {
			if present[k>>6]&(1<<(k&63)) != 0 {
				s := g.one[k]
				for _, e := range g.entries[s.start:s.end] {
					hits = append(hits, e.pat)
				}
			}
		}
	}
	four, shift := g.four, g.shift
	if len(g.tab2.keys) == 1 && g.tab2.slots[0].end == 0 {
		// No two- or three-byte literals (the common case once weak clauses
		// are dropped): the loop tests one bitmap.
		for i := 0; i < n; i++ {
			w := binary.LittleEndian.Uint64(buf[i : i+8])
			if h := (uint32(w) * gramHashMul) >> shift; four[h>>6]&(1<<(h&63)) != 0 {
				hits = g.verify4(buf, i, w, hits)
			}
		}
		return hits
	}
	for i := 0; i < n; i++ {
		w := binary.LittleEndian.Uint64(buf[i : i+8])
		if k := uint32(w) & 0xFFFF; g.two[k>>6]&(1<<(k&63)) != 0 {
			s := g.tab2.get(k)
			for _, e := range g.entries[s.start:s.end] {
				if w&e.mask == e.lit {
					hits = append(hits, e.pat)
				}
			}
		}
		if h := (uint32(w) * gramHashMul) >> shift; four[h>>6]&(1<<(h&63)) != 0 {
			hits = g.verify4(buf, i, w, hits)
		}
	}
	return hits
}

// verify4 appends the long literals whose anchor is the window w at i and
// that occur around it.
func (g *gramIndex) verify4(buf []byte, i int, w uint64, hits []int32) []int32 {
	s := g.tab4.get(uint32(w))
	for _, e := range g.entries[s.start:s.end] {
		start := i - int(e.off)
		if start >= 0 && binary.LittleEndian.Uint64(buf[start:start+8])&e.mask == e.lit {
			hits = append(hits, e.pat)
		}
	}
	return hits
}
