package detect

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
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
		{"é.exe", ".exe"},
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
