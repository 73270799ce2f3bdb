package detect

import (
	"math/bits"

	"github.com/watchfloor/watchfloor/schemas"
)

// keyTable finds the memo slot of an unmapped key: an open-addressing hash
// table over the rule set's unmapped keys, hashed on the key's length and
// three of its bytes. An event carries its vendor fields as a list (a Sysmon
// event thirty of them); the rule set reads a dozen of them per event, and a
// lookup by name walks the list, so one pass over the list that files each
// value under its slot costs a third of the lookups it replaces.
type keyTable struct {
	keys  []string // "" for an empty cell
	slots []int32  // source.uslot of keys[i]
	shift uint8
}

func newKeyTable(ukeys map[string]int32) keyTable {
	size := 16
	for size < 4*len(ukeys) {
		size *= 2
	}
	t := keyTable{keys: make([]string, size), slots: make([]int32, size), shift: uint8(64 - bits.TrailingZeros(uint(size)))}
	for k, slot := range ukeys {
		if k == "" {
			continue // never looked up by the pass; first() falls back to a scan
		}
		i := t.home(k)
		for t.keys[i] != "" {
			i = (i + 1) & (len(t.keys) - 1)
		}
		t.keys[i], t.slots[i] = k, slot
	}
	return t
}

func (t *keyTable) home(k string) int {
	n := len(k)
	x := uint64(n) | uint64(k[0])<<8 | uint64(k[n-1])<<16 | uint64(k[n/2])<<24 | uint64(k[n/3])<<32
	return int((x * 0x9E3779B97F4A7C15) >> t.shift)
}

// slot returns k's source.uslot, 0 when no rule reads k.
func (t *keyTable) slot(k string) int32 {
	if k == "" || len(t.keys) == 0 {
		return 0
	}
	for i := t.home(k); ; i = (i + 1) & (len(t.keys) - 1) {
		c := t.keys[i]
		if c == "" {
			return 0
		}
		if len(c) == len(k) && c == k {
			return t.slots[i]
		}
	}
}

// fillUnmapped files ev's unmapped values under their slots, the first
// value of a key winning as in schemas.Event.UnmappedValue.
func (s *scratch) fillUnmapped(ev *schemas.Event) {
	s.ufilled = true
	for i := range ev.Unmapped {
		kv := &ev.Unmapped[i]
		if slot := s.ukeys.slot(kv.Key); slot != 0 {
			if j := slot - 1; s.umark[j] != s.uepoch {
				s.umark[j], s.uval[j] = s.uepoch, kv.Value
			}
		}
	}
}

// nextU starts a new event: every memoized unmapped value is stale.
func (s *scratch) nextU() {
	s.ufilled = false
	if s.uepoch++; s.uepoch == 0 {
		clear(s.umark)
		s.uepoch = 1
	}
}

// unmappedValue returns the event's unmapped value of src, from s's memo
// when s is given: the first lookup of an event files all its unmapped
// values by slot (fillUnmapped), the others read their slot.
func (s *scratch) unmappedValue(ev *schemas.Event, src *source) (string, bool) {
	if s == nil || src.uslot == 0 || int(src.uslot) > len(s.umark) {
		return ev.UnmappedValue(src.unmapped)
	}
	if !s.ufilled {
		s.fillUnmapped(ev)
	}
	i := src.uslot - 1
	if s.umark[i] == s.uepoch {
		return s.uval[i], true
	}
	return "", false
}
