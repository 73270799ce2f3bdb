package detect

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// TestRegexLiteralsSound checks the prefilter's reading of regular
// expressions: for every input the expression matches, every clause must
// have an atom that occurs in the lower-cased input; and the clauses must be
// no weaker than the expression allows.
func TestRegexLiteralsSound(t *testing.T) {
	tests := []struct {
		re      string
		matches []string
		minLen  int // shortest atom of the best clause at least
	}{
		{`arp\s+-a`, []string{"arp -a", "ARP\t\t-a", "x arp\n-a"}, 4},
		{`ipconfig\s+/all`, []string{"ipconfig /all", "IPCONFIG\r/ALL"}, 8},
		{`"(?:\{\d\})+"\s*-f`, []string{`"{0}{1}"-f`, `x "{2}" -f 'a'`}, 3},
		{`net\s+config`, []string{"net config", "NET  CONFIG"}, 6},
		{`[ab]cd[0-3]`, []string{"acd0", "BCD3"}, 4},
		{`\\x[0-9a-f]{2}`, []string{`\x4f`}, 2},
		{`(?i)\$\{` + "`" + `?e` + "`" + `?n`, []string{"${en", "${`e`N"}, 1},
		{`-k\s\w{1,64}(\s?(-p|-s))?`, []string{"svchost -k netsvcs -p"}, 2},
		{`a+bc`, []string{"abc", "aaabc"}, 2},
		{`(?:ab)+cd`, []string{"abcd", "ababcd"}, 2},
		{`x\d{2,}y`, []string{"x12y", "x123y"}, 1},
		{`Invoke-[A-Z]{3}`, []string{"invoke-ABC"}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.re, func(t *testing.T) {
			rx := regexp.MustCompile("(?i)" + tt.re)
			re, err := syntax.Parse(tt.re, syntax.Perl)
			if err != nil {
				t.Fatal(err)
			}
			cs, ok := regexLiterals(re.Simplify())
			if !ok {
				t.Fatalf("no clauses")
			}
			for _, in := range tt.matches {
				if !rx.MatchString(in) {
					t.Fatalf("test input %q does not match", in)
				}
				low := strings.ToLower(in)
				for _, c := range cs {
					found := false
					for _, a := range c {
						found = found || strings.Contains(low, a)
					}
					if !found {
						t.Errorf("input %q: clause %q has no atom in it", in, c)
					}
				}
			}
			best := bestLits(cs)
			for _, a := range best {
				if len(a) < tt.minLen {
					t.Errorf("best clause %q has atom %q, want at least %d bytes", best, a, tt.minLen)
				}
			}
		})
	}
}

// TestAtomLiteral checks the atom a literal is found by.
func TestAtomLiteral(t *testing.T) {
	long := strings.Repeat("abcdefgh", 10)
	tests := []struct{ in, want string }{
		{"Find-InterestingDocuments", "find-interestingdocuments"}, // whole, verified past its window
		{" –ma ", nonASCIIAtom},                                    // windash's en dash: three ASCII bytes are weaker than non-ASCII
		{" –keyiso", " keyiso"[1:]},                                // a long enough ASCII run wins
		{"ü", nonASCIIAtom},
		{"é.exe", nonASCIIAtom},      // ".exe" is in every image path, é is not
		{"⠀⠀⠀⠀⠀⠀.exe", nonASCIIAtom}, // Braille blanks (U+2800), a double-extension trick
		{"é.docx", ".docx"},
		{"ABC", "abc"},
	}
	for _, tt := range tests {
		if got := atomLiteral(tt.in); got != tt.want {
			t.Errorf("atomLiteral(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	got := atomLiteral(long)
	if len(got) != maxAtomLit || !strings.Contains(long, got) {
		t.Errorf("atomLiteral of %d bytes = %q: want a %d-byte piece of it", len(long), got, maxAtomLit)
	}
}

// TestIndexRandomConditions compiles random rules (selections of contains,
// startswith, endswith and equality over two fields, joined by and/or/not
// and "1 of"/"all of") over a small alphabet, so that values collide with
// events often, and checks the indexed evaluation against every rule
// evaluated in full: the prefilter (clausesOf, its distribution of OR over
// AND, the gram scan) may only ever over-approximate. It also checks the
// candidates themselves against their definition (candidatesByClauses):
// a prefilter that let through more rules than it should would still give
// the right hits.
func TestIndexRandomConditions(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	word := func() string {
		// Non-ASCII runes with and without ASCII folds (é, K and the
		// Kelvin sign, Braille blank) exercise the non-ASCII atom.
		alpha := []rune("ab\\.éK\u212a\u2800")
		b := make([]rune, 1+r.IntN(5))
		for i := range b {
			b[i] = alpha[r.IntN(len(alpha))]
		}
		return string(b)
	}
	fields := []string{"Image", "CommandLine"}
	mods := []string{"", "|contains", "|startswith", "|endswith", "|contains|all"}
	hits, cands := 0, 0
	for round := 0; round < 40; round++ {
		var docs []string
		for i := 0; i < 3*minIndexedGroup; i++ {
			var det strings.Builder
			nsel := 1 + r.IntN(3)
			for s := 0; s < nsel; s++ {
				fmt.Fprintf(&det, "sel_%d:\n", s)
				pick := 1 + r.IntN(3) // bit set of fields: never empty
				for fi, f := range fields {
					if pick&(1<<fi) == 0 {
						continue
					}
					mod := mods[r.IntN(len(mods))]
					fmt.Fprintf(&det, "  %s%s:\n", f, mod)
					n := 1 + r.IntN(3)
					if strings.HasSuffix(mod, "|all") {
						n = 2 + r.IntN(2)
					}
					for v := n; v > 0; v-- {
						fmt.Fprintf(&det, "    - '%s'\n", word())
					}
				}
			}
			conds := []string{"1 of sel_*", "all of sel_*", "sel_0", "sel_0 and not 1 of sel_*",
				"(sel_0 or 1 of sel_*) and 1 of sel_*", "not sel_0 or all of sel_*", "1 of them"}
			fmt.Fprintf(&det, "condition: %s\n", conds[r.IntN(len(conds))])
			docs = append(docs, testRule(fmt.Sprintf("00000000-0000-0000-0000-%012d", i), "category: process_creation\nproduct: windows", det.String()))
		}
		rs := mustCompile(t, docs...)
		for e := 0; e < 300; e++ {
			ev := procEvent("Image", word()+word()+word(), "CommandLine", word()+" "+word()+word())
			got := rs.EvalHits(ev, nil)
			want := bruteForceHits(rs, ev)
			sortHits(got)
			hits += len(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, event %v: indexed hits %v, brute force %v", round, ev.Unmapped, got, want)
			}
			for gi := range rs.groups {
				g := &rs.groups[gi]
				if g.index == nil {
					continue
				}
				s := rs.getScratch()
				s.nextU()
				got := slices.Clone(g.index.candidates(ev, s))
				if want := candidatesByClauses(g, ev, s); !slices.Equal(got, want) {
					t.Fatalf("round %d, event %v: candidates %v, by their clauses %v", round, ev.Unmapped, got, want)
				}
				cands += len(got)
			}
		}
	}
	if hits < 1000 {
		t.Errorf("only %d hits: the alphabet no longer makes rules match", hits)
	}
	if cands <= hits {
		t.Errorf("%d candidates for %d hits: the check of candidates sees no over-approximation", cands, hits)
	}
	t.Logf("%d hits, indexed = brute force; %d candidates, as their clauses say", hits, cands)
}

// candidatesByClauses is what groupIndex.candidates returns, by definition:
// the rules with no clauses, and those each of whose prefilter clauses has
// an atom whose literal is in the folded value of the atom's field (the
// non-ASCII atom: whose value holds a non-ASCII rune).
func candidatesByClauses(g *ruleGroup, ev *schemas.Event, s *scratch) []int32 {
	var out []int32
	for pos, r := range g.rules {
		cs, ok := clausesOf(r.cond)
		if !ok {
			out = append(out, int32(pos))
			continue
		}
		all := true
		for _, c := range strongClauses(cs) {
			found := false
			for _, a := range c {
				if v, ok := a.src.firstIn(ev, s); ok {
					low, nonASCII := foldValue(nil, v)
					found = found || strings.Contains(string(low[:len(low)-gramPad]), a.lit) ||
						a.lit == nonASCIIAtom && nonASCII // any rune, the Kelvin sign too
				}
			}
			all = all && found
		}
		if all {
			out = append(out, int32(pos))
		}
	}
	return out
}
