package detect

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestMultiAffixRandom compares the radix-tree walk with the literals'
// own prefix and suffix matchers, on random literal sets that share long
// runs (as path lists do) and inputs built from them, with the Kelvin sign
// and other non-ASCII runes mixed in.
func TestMultiAffixRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	pieces := []string{`c:\`, `windows\`, `system32\`, `Sys`, `a`, `b`, `K`, `k`, `.exe`, `\`, `x`}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	noise := []string{"", "\u212A", "é", "K", "k", "x", `\`}
	for round := range 400 {
		var lits []string
		for range minMultiContains + r.IntN(20) {
			lits = append(lits, word(1+r.IntN(4)))
		}
		for _, suffix := range []bool{false, true} {
			m := newMultiAffix(lits, suffix)
			for range 30 {
				in := lits[r.IntN(len(lits))]
				switch r.IntN(4) {
				case 0:
					in = word(r.IntN(6))
				case 1: // damage one byte
					if len(in) > 0 {
						b := []byte(in)
						b[r.IntN(len(b))] = 'z'
						in = string(b)
					}
				}
				extra := noise[r.IntN(len(noise))] + word(r.IntN(3))
				if suffix {
					in = extra + in
				} else {
					in += extra
				}
				if r.IntN(5) == 0 {
					in = strings.Replace(in, "k", "\u212A", 1)
				}
				if got, want := m.matchString(in), m.slow.matchString(in); got != want {
					t.Fatalf("round %d suffix=%v: %q over %q = %v, literal by literal %v", round, suffix, in, lits, got, want)
				}
			}
		}
	}
}

// TestExactSetRandom compares the set lookup with the literals' own
// equality matchers, on values built from the literals with their case
// changed, a byte damaged, the Kelvin sign or long s for k or s, or
// something appended.
func TestExactSetRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pieces := []string{"cmd", ".exe", "K", "s", "Word", `\`, "x", "MSACCESS"}
	word := func(n int) string {
		var b strings.Builder
		for range 1 + r.IntN(n) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		return b.String()
	}
	matched := 0
	for round := range 300 {
		var ms []stringMatcher
		for range minMultiContains + r.IntN(12) {
			ms = append(ms, exactMatcher{lit: word(4), fold: true})
		}
		merged := mergeExact(ms)
		set, ok := merged[0].(*exactSet)
		if !ok || len(merged) != 1 {
			t.Fatalf("round %d: mergeExact(%d exact matchers) = %T and %d more", round, len(ms), merged[0], len(merged)-1)
		}
		for range 40 {
			in := ms[r.IntN(len(ms))].(exactMatcher).lit
			switch r.IntN(6) {
			case 0:
				in = strings.ToUpper(in)
			case 1:
				in = strings.Replace(in, "k", "\u212A", 1)
				in = strings.Replace(in, "K", "\u212A", 1)
			case 2:
				in = strings.Replace(in, "s", "\u017F", 1)
			case 3:
				in += word(1)
			case 4:
				in = word(4)
			}
			got, want := set.matchString(in), orString(ms).matchString(in)
			if got != want {
				t.Fatalf("round %d: %q in %v = %v, literal by literal %v", round, in, set.slow, got, want)
			}
			if want {
				matched++
			}
		}
	}
	if matched < 1000 {
		t.Errorf("only %d matching inputs: the test hardly checks matches", matched)
	}
}
