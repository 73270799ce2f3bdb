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
				if got, want := m.matchString(in), m.matchSlow(in); got != want {
					t.Fatalf("round %d suffix=%v: %q over %q = %v, literal by literal %v", round, suffix, in, lits, got, want)
				}
			}
		}
	}
}
