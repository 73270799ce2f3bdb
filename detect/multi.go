package detect

import (
	"encoding/binary"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// multiContains matches "contains any of these literals", case-insensitively,
// in one pass over the input: an Aho-Corasick automaton over ASCII-folded
// bytes. Large keyword lists (some SigmaHQ rules hold hundreds) cost one scan
// instead of one scan per keyword. Literals may hold non-ASCII runes that
// have no case (windash's Unicode dashes: a rule of nine windash strings
// expands to over a hundred literals); those match byte for byte.
type multiContains struct {
	classes [256]uint8 // byte (lower-cased) -> alphabet class; 0 = not in any literal
	nclass  int
	delta   []int32 // state*nclass + class -> next state
	accept  []bool
	slow    []stringMatcher
}

// minMultiContains is the number of literals from which one automaton beats
// separate searches.
const minMultiContains = 4

func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 { // eight bytes a load: it runs ahead of every regexp
		if binary.LittleEndian.Uint64([]byte(s[i:i+8]))&highBits != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// newMultiContains builds the automaton; every literal must be non-empty
// and mergeable (caselessNonASCII).
func newMultiContains(lits []string) *multiContains {
	m := &multiContains{nclass: 1}
	for _, l := range lits {
		for i := 0; i < len(l); i++ {
			b := lowerASCII(l[i])
			if m.classes[b] == 0 {
				m.classes[b] = uint8(m.nclass)
				m.nclass++
			}
		}
		m.slow = append(m.slow, containsMatcher{lit: l, fold: true})
	}
	for b := 'A'; b <= 'Z'; b++ {
		m.classes[b] = m.classes[b+'a'-'A']
	}
	// Trie: -1 marks a missing edge until the automaton is completed.
	newState := func() int32 {
		for c := 0; c < m.nclass; c++ {
			m.delta = append(m.delta, -1)
		}
		m.accept = append(m.accept, false)
		return int32(len(m.accept) - 1)
	}
	newState()
	for _, l := range lits {
		st := int32(0)
		for i := 0; i < len(l); i++ {
			c := int(m.classes[l[i]])
			nx := m.delta[int(st)*m.nclass+c]
			if nx < 0 {
				nx = newState()
				m.delta[int(st)*m.nclass+c] = nx
			}
			st = nx
		}
		m.accept[st] = true
	}
	// Breadth-first: fill missing edges from the failure state.
	fail := make([]int32, len(m.accept))
	queue := make([]int32, 0, len(m.accept))
	for c := 0; c < m.nclass; c++ {
		if nx := m.delta[c]; nx > 0 {
			fail[nx] = 0
			queue = append(queue, nx)
		} else {
			m.delta[c] = 0
		}
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		m.accept[u] = m.accept[u] || m.accept[fail[u]]
		for c := 0; c < m.nclass; c++ {
			i := int(u)*m.nclass + c
			if nx := m.delta[i]; nx >= 0 {
				fail[nx] = m.delta[int(fail[u])*m.nclass+c]
				queue = append(queue, nx)
			} else {
				m.delta[i] = m.delta[int(fail[u])*m.nclass+c]
			}
		}
	}
	return m
}

func (m *multiContains) matchString(s string) bool {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= utf8.RuneSelf {
			// The literals' non-ASCII runes are caseless, so they match
			// only themselves, byte for byte; of the input's non-ASCII
			// runes only the Kelvin sign and long s fold to an ASCII
			// letter.
			switch r, size := utf8.DecodeRuneInString(s[i:]); r {
			case '\u212A':
				b, i = 'k', i+size-1
			case '\u017F':
				b, i = 's', i+size-1
			}
		}
		st = m.delta[int(st)*m.nclass+int(m.classes[b])]
		if m.accept[st] {
			return true
		}
	}
	return false
}

// mergeContains replaces four or more case-insensitive ASCII "contains"
// matchers of an OR list by one automaton, keeping the others in order.
func mergeContains(ms []stringMatcher) []stringMatcher {
	return mergeContainsUni(mergeContainsASCII(ms))
}

// mergeContainsUni replaces four or more case-insensitive "contains"
// matchers whose literal starts with a non-ASCII rune by one matcher.
func mergeContainsUni(ms []stringMatcher) []stringMatcher {
	uni := func(sm stringMatcher) (string, bool) {
		c, ok := sm.(containsMatcher)
		return c.lit, ok && c.fold && c.lit != "" && c.lit[0] >= utf8.RuneSelf
	}
	var lits []string
	for _, sm := range ms {
		if l, ok := uni(sm); ok {
			lits = append(lits, l)
		}
	}
	if len(lits) < minMultiContains {
		return ms
	}
	out := []stringMatcher{newMultiContainsUni(lits)}
	for _, sm := range ms {
		if _, ok := uni(sm); !ok {
			out = append(out, sm)
		}
	}
	return out
}

// caselessNonASCII reports whether every non-ASCII rune of s is valid and
// has no case, so that a byte automaton that folds only ASCII matches s
// exactly: windash's Unicode dashes, for instance.
func caselessNonASCII(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && (r == utf8.RuneError || unicode.SimpleFold(r) != r) {
			return false
		}
	}
	return true
}

func mergeContainsASCII(ms []stringMatcher) []stringMatcher {
	var lits []string
	for _, sm := range ms {
		if c, ok := sm.(containsMatcher); ok && c.fold && c.lit != "" && caselessNonASCII(c.lit) {
			lits = append(lits, c.lit)
		}
	}
	if len(lits) < minMultiContains {
		return ms
	}
	out := []stringMatcher{newMultiContains(lits)}
	for _, sm := range ms {
		if c, ok := sm.(containsMatcher); ok && c.fold && c.lit != "" && caselessNonASCII(c.lit) {
			continue
		}
		out = append(out, sm)
	}
	return out
}

// multiAffix matches "ends with (or starts with) any of these literals",
// case-insensitively, with one walk of a radix tree over ASCII-folded bytes
// from the anchored end of the input. The walk is on the hot path of
// hundreds of SigmaHQ rules (Image|endswith lists, "C:\\Windows\\..." prefix
// filters): a branching node costs a probe of one open-addressed table
// keyed by (node, byte), as a Go map per node cost more than the rest of the
// rules' evaluation; the chain of single children below it ("windows\\"
// after "c:\\") is one run of bytes, compared in place.
type multiAffix struct {
	suffix bool
	accept []bool   // node → a literal ends here
	run    []string // node → the bytes after the edge into it, in walk order
	keys   []uint32
	next   []int32 // 0 = empty slot (the root is never a target)
	mask   uint32
	slow   orString // the literals one by one, for non-ASCII input
}

func newMultiAffix(lits []string, suffix bool) *multiAffix {
	m := &multiAffix{suffix: suffix}
	// A plain trie of the literals in walk order first.
	type tnode struct {
		kids   map[byte]int
		accept bool
	}
	trie := []tnode{{kids: map[byte]int{}}}
	for _, l := range lits {
		if suffix {
			m.slow = append(m.slow, suffixMatcher{lit: l, fold: true})
		} else {
			m.slow = append(m.slow, prefixMatcher{lit: l, fold: true})
		}
		st := 0
		for i := range len(l) {
			b := l[i]
			if suffix {
				b = l[len(l)-1-i]
			}
			b = lowerASCII(b)
			nx, ok := trie[st].kids[b]
			if !ok {
				nx = len(trie)
				trie = append(trie, tnode{kids: map[byte]int{}})
				trie[st].kids[b] = nx
			}
			st = nx
		}
		trie[st].accept = true
	}
	// Then each edge with the chain of single children below it becomes one
	// node of the radix tree.
	edges := map[uint32]int32{}
	m.accept, m.run = []bool{trie[0].accept}, []string{""}
	var build func(t int, id int32)
	build = func(t int, id int32) {
		for _, b := range slices.Sorted(maps.Keys(trie[t].kids)) {
			v := trie[t].kids[b]
			var run []byte
			for !trie[v].accept && len(trie[v].kids) == 1 {
				for c, w := range trie[v].kids {
					run, v = append(run, c), w
				}
			}
			nid := int32(len(m.accept))
			m.accept, m.run = append(m.accept, trie[v].accept), append(m.run, string(run))
			edges[uint32(id)<<8|uint32(b)] = nid
			build(v, nid)
		}
	}
	build(0, 0)
	size := 1 << bits.Len(uint(2*len(edges)))
	m.keys, m.next, m.mask = make([]uint32, size), make([]int32, size), uint32(size-1)
	for k, nx := range edges {
		j := (k * gramHashMul) >> 8 & m.mask
		for m.next[j] != 0 {
			j = (j + 1) & m.mask
		}
		m.keys[j], m.next[j] = k, nx
	}
	return m
}

func (m *multiAffix) step(st int32, b byte) int32 {
	k := uint32(st)<<8 | uint32(b)
	for j := (k * gramHashMul) >> 8 & m.mask; ; j = (j + 1) & m.mask {
		if nx := m.next[j]; nx == 0 || m.keys[j] == k {
			return nx
		}
	}
}

func (m *multiAffix) matchString(s string) bool {
	n := len(s)
	// at is the i-th byte in walk order.
	at := func(i int) byte {
		if m.suffix {
			return s[n-1-i]
		}
		return s[i]
	}
	st := int32(0)
	for i := 0; i < n; {
		b := at(i)
		if b >= utf8.RuneSelf {
			return m.slow.matchString(s)
		}
		if st = m.step(st, lowerASCII(b)); st == 0 {
			return false
		}
		i++
		run := m.run[st]
		if len(run) > n-i {
			return false // each byte of the run needs a byte of input
		}
		for k := 0; k < len(run); k++ {
			c := at(i + k)
			if c >= utf8.RuneSelf {
				return m.slow.matchString(s)
			}
			if lowerASCII(c) != run[k] {
				return false
			}
		}
		i += len(run)
		if m.accept[st] {
			return true
		}
	}
	return false
}

// mergeAffixes replaces four or more case-insensitive ASCII prefix (or
// suffix) matchers of an OR list by one trie.
func mergeAffixes(ms []stringMatcher) []stringMatcher {
	lit := func(sm stringMatcher) (string, bool, bool) { // literal, suffix, mergeable
		switch c := sm.(type) {
		case suffixMatcher:
			return c.lit, true, c.fold && c.lit != "" && isASCII(c.lit)
		case prefixMatcher:
			return c.lit, false, c.fold && c.lit != "" && isASCII(c.lit)
		}
		return "", false, false
	}
	var sufs, pres []string
	for _, sm := range ms {
		if l, suffix, ok := lit(sm); ok && suffix {
			sufs = append(sufs, l)
		} else if ok {
			pres = append(pres, l)
		}
	}
	mergeSuf, mergePre := len(sufs) >= minMultiContains, len(pres) >= minMultiContains
	if !mergeSuf && !mergePre {
		return ms
	}
	var out []stringMatcher
	if mergeSuf {
		out = append(out, newMultiAffix(sufs, true))
	}
	if mergePre {
		out = append(out, newMultiAffix(pres, false))
	}
	for _, sm := range ms {
		if _, suffix, ok := lit(sm); ok && (suffix && mergeSuf || !suffix && mergePre) {
			continue
		}
		out = append(out, sm)
	}
	return out
}

// multiContainsUni matches "contains any of these literals" for literals
// that start with a non-ASCII rune (homoglyph lists hold hundreds): the
// literals are grouped by the case-folded class of their first rune, and
// one pass over the input tries only the literals whose first rune folds
// like the input's rune at that position. ASCII input bytes that start no
// literal cost one table look-up.
type multiContainsUni struct {
	asciiStart [utf8.RuneSelf]bool
	byFirst    map[rune][]string
	slow       []stringMatcher
}

// foldClass is a canonical member of r's simple case-folding orbit.
func foldClass(r rune) rune {
	if r < utf8.RuneSelf {
		return rune(lowerASCII(byte(r)))
	}
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	if m < utf8.RuneSelf {
		return rune(lowerASCII(byte(m)))
	}
	return m
}

func newMultiContainsUni(lits []string) *multiContainsUni {
	m := &multiContainsUni{byFirst: map[rune][]string{}}
	for _, l := range lits {
		r, _ := utf8.DecodeRuneInString(l)
		c := foldClass(r)
		m.byFirst[c] = append(m.byFirst[c], l)
		if c < utf8.RuneSelf {
			m.asciiStart[c] = true
			m.asciiStart[unicode.ToUpper(c)] = true
		}
		m.slow = append(m.slow, containsMatcher{lit: l, fold: true})
	}
	return m
}

func (m *multiContainsUni) matchString(s string) bool {
	for i := 0; i < len(s); {
		b := s[i]
		var r rune
		size := 1
		if b < utf8.RuneSelf {
			if !m.asciiStart[b] {
				i++
				continue
			}
			r = rune(b)
		} else {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		for _, l := range m.byFirst[foldClass(r)] {
			if _, ok := prefixFold(s[i:], l); ok {
				return true
			}
		}
		i += size
	}
	return false
}

// exactSet matches "equals any of these literals", case-insensitively, with
// one lookup of the lower-cased value: SigmaHQ lists a renamed binary's
// OriginalFileName among dozens, and each EqualFold is a call and a loop.
type exactSet struct {
	lits   map[string]struct{} // lower-cased
	maxLen int
	slow   orString // the literals one by one, for non-ASCII input
}

// maxExactSetKey bounds the value lower-cased on the stack; a longer one
// equals no literal of the set or is compared one by one.
const maxExactSetKey = 128

func (m *exactSet) matchString(s string) bool {
	if len(s) > utf8.UTFMax*m.maxLen {
		return false // more runes than every literal
	}
	var buf [maxExactSetKey]byte
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= utf8.RuneSelf {
			return m.slow.matchString(s) // the Kelvin sign and long s fold to ASCII letters
		}
		if i == m.maxLen { // longer than every literal, unless runes follow
			return !isASCII(s[i:]) && m.slow.matchString(s)
		}
		buf[i] = lowerASCII(b)
	}
	_, ok := m.lits[string(buf[:len(s)])]
	return ok
}

// mergeExact replaces four or more case-insensitive ASCII equality matchers
// of an OR list by one exactSet.
func mergeExact(ms []stringMatcher) []stringMatcher {
	mergeable := func(sm stringMatcher) (exactMatcher, bool) {
		e, ok := sm.(exactMatcher)
		return e, ok && e.fold && e.lit != "" && len(e.lit) <= maxExactSetKey && isASCII(e.lit)
	}
	n := 0
	for _, sm := range ms {
		if _, ok := mergeable(sm); ok {
			n++
		}
	}
	if n < minMultiContains {
		return ms
	}
	set := &exactSet{lits: make(map[string]struct{}, n)}
	out := []stringMatcher{set}
	for _, sm := range ms {
		e, ok := mergeable(sm)
		if !ok {
			out = append(out, sm)
			continue
		}
		set.lits[strings.ToLower(e.lit)] = struct{}{}
		set.maxLen = max(set.maxLen, len(e.lit))
		set.slow = append(set.slow, e)
	}
	return out
}
