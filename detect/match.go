package detect

import (
	"encoding/binary"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the string matchers a compiled value becomes: a Sigma value
// with its wildcards and escapes is parsed once into tokens, and the common
// shapes (exact, prefix, suffix, substring, star-separated literals) get a
// specialised matcher. Every matcher works on the event's string as it is:
// case-insensitive matching folds rune by rune, so nothing is allocated.

// tokKind is the kind of one pattern token.
type tokKind uint8

const (
	tokLit  tokKind = iota // one literal rune
	tokOne                 // ? : exactly one rune
	tokStar                // * : any run of runes
	tokDash                // windash: one of - / – — ―
)

type ptok struct {
	kind tokKind
	r    rune
}

// windashRunes are the characters the windash modifier treats as alike.
var windashRunes = [...]rune{'-', '/', '–', '—', '―'}

// parseGlob turns a Sigma value into tokens following the specification's
// escaping rules: `*` and `?` are wildcards; `\*`, `\?` and `\\` are a
// literal `*`, `?` and `\`; a `\` before anything else is a plain backslash.
// With windash, a `-` or `/` that starts a word (after a non-word character
// or at the start, before a word character) matches any dash.
func parseGlob(s string, windash bool) []ptok {
	toks := make([]ptok, 0, len(s))
	prevWord := false // was the previous raw rune a word character
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			toks = append(toks, ptok{kind: tokLit, r: rune(s[i+1])})
			prevWord = false
			i += 2
			continue
		case r == '*':
			toks = append(toks, ptok{kind: tokStar})
		case r == '?':
			toks = append(toks, ptok{kind: tokOne})
		case windash && (r == '-' || r == '/') && !prevWord && i+1 < len(s) && isWordByte(s[i+1]):
			toks = append(toks, ptok{kind: tokDash, r: r})
		default:
			toks = append(toks, ptok{kind: tokLit, r: r})
		}
		prevWord = r < utf8.RuneSelf && isWordByte(byte(r)) || r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
		i += size
	}
	// Collapse runs of stars: they mean the same and slow the general matcher.
	out := toks[:0]
	for _, t := range toks {
		if t.kind == tokStar && len(out) > 0 && out[len(out)-1].kind == tokStar {
			continue
		}
		out = append(out, t)
	}
	return out
}

func isWordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// stringMatcher matches one event string against one compiled value.
type stringMatcher interface {
	matchString(s string) bool
}

// newGlobMatcher compiles tokens into the cheapest matcher that is exact for
// them. fold selects case-insensitive matching.
func newGlobMatcher(toks []ptok, fold bool) stringMatcher {
	general := false
	for _, t := range toks {
		if t.kind == tokOne || t.kind == tokDash {
			general = true
			break
		}
	}
	if general {
		return &globMatcher{toks: toks, fold: fold}
	}
	// Only literals and stars: split into literal segments.
	var segs []string
	var cur []rune
	leadingStar := len(toks) > 0 && toks[0].kind == tokStar
	trailingStar := len(toks) > 0 && toks[len(toks)-1].kind == tokStar
	for _, t := range toks {
		if t.kind == tokStar {
			if len(cur) > 0 {
				segs = append(segs, string(cur))
				cur = cur[:0]
			}
			continue
		}
		cur = append(cur, t.r)
	}
	if len(cur) > 0 {
		segs = append(segs, string(cur))
	}
	switch {
	case len(segs) == 0 && leadingStar:
		return anyMatcher{}
	case len(segs) == 0:
		return exactMatcher{lit: "", fold: fold}
	case len(segs) == 1 && !leadingStar && !trailingStar:
		return exactMatcher{lit: segs[0], fold: fold}
	case len(segs) == 1 && !leadingStar:
		return prefixMatcher{lit: segs[0], fold: fold}
	case len(segs) == 1 && !trailingStar:
		return suffixMatcher{lit: segs[0], fold: fold}
	case len(segs) == 1:
		return containsMatcher{lit: segs[0], fold: fold}
	}
	return segmentsMatcher{segs: segs, anchorStart: !leadingStar, anchorEnd: !trailingStar, fold: fold}
}

type anyMatcher struct{}

func (anyMatcher) matchString(string) bool { return true }

type exactMatcher struct {
	lit  string
	fold bool
}

func (m exactMatcher) matchString(s string) bool {
	if m.fold {
		return strings.EqualFold(s, m.lit)
	}
	return s == m.lit
}

type prefixMatcher struct {
	lit  string
	fold bool
}

func (m prefixMatcher) matchString(s string) bool {
	if m.fold {
		_, ok := prefixFold(s, m.lit)
		return ok
	}
	return strings.HasPrefix(s, m.lit)
}

type suffixMatcher struct {
	lit  string
	fold bool
}

func (m suffixMatcher) matchString(s string) bool {
	if m.fold {
		return hasSuffixFold(s, m.lit)
	}
	return strings.HasSuffix(s, m.lit)
}

type containsMatcher struct {
	lit  string
	fold bool
}

func (m containsMatcher) matchString(s string) bool {
	if m.fold {
		_, _, ok := indexFold(s, m.lit)
		return ok
	}
	return strings.Contains(s, m.lit)
}

// segmentsMatcher matches lit1*lit2*...*litN, optionally anchored at either
// end. Greedy leftmost search is exact for star-only globs.
type segmentsMatcher struct {
	segs                   []string
	anchorStart, anchorEnd bool
	fold                   bool
}

func (m segmentsMatcher) matchString(s string) bool {
	segs := m.segs
	if m.anchorStart {
		n, ok := m.prefix(s, segs[0])
		if !ok {
			return false
		}
		s, segs = s[n:], segs[1:]
	}
	var last string
	if m.anchorEnd {
		last, segs = segs[len(segs)-1], segs[:len(segs)-1]
	}
	for _, seg := range segs {
		_, end, ok := m.index(s, seg)
		if !ok {
			return false
		}
		s = s[end:]
	}
	if m.anchorEnd {
		if m.fold {
			return hasSuffixFold(s, last)
		}
		return strings.HasSuffix(s, last)
	}
	return true
}

func (m segmentsMatcher) prefix(s, p string) (int, bool) {
	if m.fold {
		return prefixFold(s, p)
	}
	if strings.HasPrefix(s, p) {
		return len(p), true
	}
	return 0, false
}

func (m segmentsMatcher) index(s, p string) (int, int, bool) {
	if m.fold {
		return indexFold(s, p)
	}
	i := strings.Index(s, p)
	if i < 0 {
		return 0, 0, false
	}
	return i, i + len(p), true
}

// globMatcher is the general wildcard matcher (?, windash classes): the
// classic linear-time star backtracking over runes.
type globMatcher struct {
	toks []ptok
	fold bool
}

func (m *globMatcher) matchOne(t ptok, r rune) bool {
	switch t.kind {
	case tokOne:
		return true
	case tokDash:
		for _, d := range windashRunes {
			if r == d {
				return true
			}
		}
		return false
	}
	if m.fold {
		return foldEq(t.r, r)
	}
	return t.r == r
}

func (m *globMatcher) matchString(s string) bool {
	toks := m.toks
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(toks) && toks[p].kind == tokStar {
			starP, starI = p, i
			p++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if p < len(toks) && m.matchOne(toks[p], r) {
			p++
			i += size
			continue
		}
		if starP < 0 {
			return false
		}
		_, skip := utf8.DecodeRuneInString(s[starI:])
		starI += skip
		p, i = starP+1, starI
	}
	for p < len(toks) && toks[p].kind == tokStar {
		p++
	}
	return p == len(toks)
}

// foldEq reports whether runes a and b are equal under Unicode simple case
// folding (the relation strings.EqualFold uses).
func foldEq(a, b rune) bool {
	if a == b {
		return true
	}
	if a < utf8.RuneSelf && b < utf8.RuneSelf {
		return lowerASCII(byte(a)) == lowerASCII(byte(b))
	}
	for r := unicode.SimpleFold(a); r != a; r = unicode.SimpleFold(r) {
		if r == b {
			return true
		}
	}
	return false
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// prefixFold reports whether s starts with p under case folding, and how
// many bytes of s the match covers (folding can change a rune's length).
func prefixFold(s, p string) (int, bool) {
	i, j := 0, 0
	// Eight ASCII bytes a compare; at a non-ASCII byte the loop below
	// takes over, rune by rune.
	for ; j+8 <= len(p) && j+8 <= len(s); i, j = i+8, j+8 {
		x, y := binary.LittleEndian.Uint64([]byte(s[j:j+8])), binary.LittleEndian.Uint64([]byte(p[j:j+8]))
		if (x|y)&highBits != 0 {
			break
		}
		if lower8(x) != lower8(y) {
			return 0, false
		}
	}
	for j < len(p) {
		if i >= len(s) {
			return 0, false
		}
		a, b := s[i], p[j]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if lowerASCII(a) != lowerASCII(b) {
				return 0, false
			}
			i++
			j++
			continue
		}
		ra, na := utf8.DecodeRuneInString(s[i:])
		rb, nb := utf8.DecodeRuneInString(p[j:])
		if !foldEq(ra, rb) {
			return 0, false
		}
		i += na
		j += nb
	}
	return i, true
}

func hasSuffixFold(s, p string) bool {
	i, j := len(s), len(p)
	for ; j >= 8 && i >= 8; i, j = i-8, j-8 {
		x, y := binary.LittleEndian.Uint64([]byte(s[i-8:i])), binary.LittleEndian.Uint64([]byte(p[j-8:j]))
		if (x|y)&highBits != 0 {
			break
		}
		if lower8(x) != lower8(y) {
			return false
		}
	}
	for j > 0 {
		if i <= 0 {
			return false
		}
		a, b := s[i-1], p[j-1]
		if a < utf8.RuneSelf && b < utf8.RuneSelf {
			if lowerASCII(a) != lowerASCII(b) {
				return false
			}
			i--
			j--
			continue
		}
		ra, na := utf8.DecodeLastRuneInString(s[:i])
		rb, nb := utf8.DecodeLastRuneInString(p[:j])
		if !foldEq(ra, rb) {
			return false
		}
		i -= na
		j -= nb
	}
	return true
}

// indexFold finds the first case-folded occurrence of p in s and returns its
// start and end in s. Candidate starts are found with strings.IndexByte
// (vectorised) for each byte a match can begin with: both ASCII cases of
// p's first letter, plus the lead byte of the two non-ASCII runes that fold
// to ASCII letters (U+212A KELVIN SIGN to k, U+017F LONG S to s).
func indexFold(s, p string) (int, int, bool) {
	if p == "" {
		return 0, 0, true
	}
	if k := rareByteOffset(p); k > 0 {
		return indexFoldAt(s, p, k)
	}
	first := p[0]
	if first >= utf8.RuneSelf {
		return indexFoldSlow(s, p)
	}
	var starts [3]byte
	n := 0
	lf := lowerASCII(first)
	starts[n], n = lf, n+1
	if uf := lf - ('a' - 'A'); 'a' <= lf && lf <= 'z' {
		starts[n], n = uf, n+1
		switch lf {
		case 'k':
			starts[n], n = 0xE2, n+1
		case 's':
			starts[n], n = 0xC5, n+1
		}
	}
	var next [3]int // next candidate offset for each start byte, -1 when none left
	for k := 0; k < n; k++ {
		next[k] = strings.IndexByte(s, starts[k])
	}
	for {
		i := -1
		for k := 0; k < n; k++ {
			if next[k] >= 0 && (i < 0 || next[k] < i) {
				i = next[k]
			}
		}
		if i < 0 {
			return 0, 0, false
		}
		if m, ok := prefixFold(s[i:], p); ok {
			return i, i + m, true
		}
		for k := 0; k < n; k++ {
			if next[k] == i {
				if j := strings.IndexByte(s[i+1:], starts[k]); j >= 0 {
					next[k] = i + 1 + j
				} else {
					next[k] = -1
				}
			}
		}
	}
}

// byteRank orders bytes by how common they are in command lines, paths and
// log text: 0 for the rarest (every byte not listed), higher for commoner.
var byteRank = func() (t [256]uint8) {
	const common = ` e\tasoirnl.cm-dxp/u"hg:wfby0123456789v=k_,'` // commonest first
	for i := 0; i < len(common); i++ {
		t[common[i]] = uint8(len(common) - i)
		if b := common[i]; 'a' <= b && b <= 'z' {
			t[b-'a'+'A'] = t[b]
		}
	}
	return t
}()

// rareByteOffset is the offset in p of the byte indexFold should search
// for: the rarest of p's leading ASCII bytes, so that a pattern starting
// with a space or a backslash does not stop at every one in s. Only bytes
// before any k or s count: those letters also match the multi-byte Kelvin
// sign and long s, after which offsets in s no longer equal offsets in p.
func rareByteOffset(p string) int {
	best, rank := 0, uint8(255)
	for k := 0; k < len(p); k++ {
		b := lowerASCII(p[k])
		if b >= utf8.RuneSelf || b == 'k' || b == 's' {
			break
		}
		if byteRank[b] < rank {
			best, rank = k, byteRank[b]
		}
	}
	return best
}

// indexFoldAt is indexFold keyed on the byte at offset k of p (0 < k and
// p[:k+1] is ASCII without k or s).
func indexFoldAt(s, p string, k int) (int, int, bool) {
	lo := lowerASCII(p[k])
	up := lo
	if 'a' <= lo && lo <= 'z' {
		up = lo - ('a' - 'A')
	}
	// next finds the next occurrence of c from i on, -1 when none.
	next := func(i int, c byte) int {
		if j := strings.IndexByte(s[i:], c); j >= 0 {
			return i + j
		}
		return -1
	}
	if k >= len(s) {
		return 0, 0, false
	}
	nlo, nup := next(k, lo), -1
	if up != lo {
		nup = next(k, up)
	}
	for nlo >= 0 || nup >= 0 {
		i := nlo
		if i < 0 || nup >= 0 && nup < i {
			i = nup
		}
		if m, ok := prefixFold(s[i-k:], p); ok {
			return i - k, i - k + m, true
		}
		if i == nlo {
			nlo = next(i+1, lo)
		} else {
			nup = next(i+1, up)
		}
	}
	return 0, 0, false
}

// indexFoldSlow handles a pattern that starts with a non-ASCII rune:
// candidate starts are the occurrences (found with strings.Index) of the
// UTF-8 encodings of every rune that case-folds to that first rune.
func indexFoldSlow(s, p string) (int, int, bool) {
	r0, _ := utf8.DecodeRuneInString(p)
	var bufs [4][utf8.UTFMax]byte
	var lens [4]int
	nv := 0
	for r := r0; nv < len(bufs); {
		lens[nv] = utf8.EncodeRune(bufs[nv][:], r)
		nv++
		if r = unicode.SimpleFold(r); r == r0 {
			break
		}
	}
	var next [4]int
	for k := 0; k < nv; k++ {
		next[k] = strings.Index(s, string(bufs[k][:lens[k]]))
	}
	for {
		i, ki := -1, -1
		for k := 0; k < nv; k++ {
			if next[k] >= 0 && (i < 0 || next[k] < i) {
				i, ki = next[k], k
			}
		}
		if i < 0 {
			return 0, 0, false
		}
		if m, ok := prefixFold(s[i:], p); ok {
			return i, i + m, true
		}
		step := i + lens[ki]
		if j := strings.Index(s[step:], string(bufs[ki][:lens[ki]])); j >= 0 {
			next[ki] = step + j
		} else {
			next[ki] = -1
		}
	}
}

const highBits = 0x8080808080808080

// lower8 lower-cases eight ASCII bytes: a byte b in 'A'..'Z' is the one for
// which b+(0x80-'A') has its top bit set and b+(0x80-'Z'-1) has not; no sum
// carries into the next byte as every byte is below 0x80.
func lower8(x uint64) uint64 {
	return x | ((x+0x3F3F3F3F3F3F3F3F)^(x+0x2525252525252525))&highBits>>2
}
