package detect

import (
	"math/bits"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// byteSeq runs, on ASCII input, a regular expression that is a fixed
// sequence of byte sets (literals and classes, a repetition of fixed count,
// ^ and $ at its ends): "somewhere, byte i+k is in set k for each k".
// Many Sigma regexes are that once existsForm has cut their optional tails
// (SigmaHQ's svchost flag check "-k\s\w{1,64}(...)?" is "-k", a space, a
// word byte), and Go's regexp pays for each call a setup and a walk of its
// program per input byte that cost ten times this loop. The search jumps
// from one occurrence of the sequence's rarest single byte to the next
// (IndexByte is a SIMD loop), or tests each start when every set is wide.
//
// Input with a non-ASCII byte goes to the regexp: a class or "." matches a
// rune there, not a byte.
type byteSeq struct {
	sets       []byteSet
	key        int  // index of the one-byte set the search jumps by, -1 when none
	keyByte    byte // that set's byte
	begin, end bool // anchored at the start (^, \A) or the end ($, \z)
}

type byteSet [4]uint64

func (s *byteSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }
func (s *byteSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *byteSet) count() (n int) {
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// maxByteSeq bounds the sequence; a longer one is left to the regexp.
const maxByteSeq = 64

// newByteSeq returns the sequence re is, or ok false when it is not one.
func newByteSeq(re *regexp.Regexp) (*byteSeq, bool) {
	p, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return nil, false
	}
	p = p.Simplify()
	subs := []*syntax.Regexp{p}
	if p.Op == syntax.OpConcat {
		subs = p.Sub
	}
	q := &byteSeq{key: -1}
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		q.begin, subs = true, subs[1:]
	}
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		q.end, subs = true, subs[:n-1]
	}
	for _, s := range subs {
		if !q.appendSets(s) {
			return nil, false
		}
	}
	if len(q.sets) == 0 {
		return nil, false
	}
	best := 3
	for i := range q.sets {
		n := q.sets[i].count()
		if n == 0 {
			return nil, false // matches no ASCII input: leave it to the regexp
		}
		if n == 1 {
			b := firstByte(&q.sets[i])
			if c := byteCost(b); c < best || q.key < 0 {
				q.key, q.keyByte, best = i, b, c
			}
		}
	}
	return q, true
}

func firstByte(s *byteSet) byte {
	for i, w := range s {
		if w != 0 {
			return byte(i*64 + bits.TrailingZeros64(w))
		}
	}
	return 0
}

// appendSets appends the byte sets of one item of the sequence.
func (q *byteSeq) appendSets(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r >= utf8.RuneSelf {
				return false
			}
			var s byteSet
			s.add(byte(r))
			if re.Flags&syntax.FoldCase != 0 {
				s.add(lowerASCII(byte(r)))
				s.add(upperASCII(byte(r)))
			}
			q.sets = append(q.sets, s)
		}
	case syntax.OpCharClass:
		var s byteSet
		for i := 0; i+1 < len(re.Rune); i += 2 {
			// Only the ASCII part can match ASCII input.
			for r := re.Rune[i]; r <= min(re.Rune[i+1], utf8.RuneSelf-1); r++ {
				s.add(byte(r))
			}
		}
		q.sets = append(q.sets, s)
	case syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		var s byteSet
		for b := range utf8.RuneSelf {
			if b != '\n' || re.Op == syntax.OpAnyChar {
				s.add(byte(b))
			}
		}
		q.sets = append(q.sets, s)
	case syntax.OpCapture:
		return q.appendSets(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !q.appendSets(s) {
				return false
			}
		}
	case syntax.OpRepeat:
		if re.Min != re.Max || re.Min < 1 {
			return false
		}
		for range re.Min {
			if !q.appendSets(re.Sub[0]) {
				return false
			}
		}
	default:
		return false
	}
	return len(q.sets) <= maxByteSeq
}

func upperASCII(b byte) byte {
	if b >= 'a' && b <= 'z' {
		return b - ('a' - 'A')
	}
	return b
}

// match reports whether s, ASCII, holds the sequence.
func (q *byteSeq) match(s string) bool {
	n, m := len(s), len(q.sets)
	if n < m {
		return false
	}
	last := n - m // the last start
	first := 0
	switch {
	case q.begin && q.end:
		if n != m {
			return false
		}
	case q.begin:
		last = 0
	case q.end:
		first = last
	}
	if q.key >= 0 && last > first {
		for i := first; i <= last; {
			j := strings.IndexByte(s[i+q.key:last+q.key+1], q.keyByte)
			if j < 0 {
				return false
			}
			if q.at(s, i+j) {
				return true
			}
			i += j + 1
		}
		return false
	}
	for i := first; i <= last; i++ {
		if q.at(s, i) {
			return true
		}
	}
	return false
}

func (q *byteSeq) at(s string, i int) bool {
	for k := range q.sets {
		if !q.sets[k].has(s[i+k]) {
			return false
		}
	}
	return true
}
