package detect

import (
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// naiveGrams is the oracle: the literals that occur in the folded value.
func naiveGrams(lits []string, v string) []int32 {
	folded, nonASCII := naiveFold(v)
	var out []int32
	for i, l := range lits {
		if l == nonASCIIAtom {
			if nonASCII {
				out = append(out, int32(i))
			}
			continue
		}
		if strings.Contains(folded, l) {
			out = append(out, int32(i))
		}
	}
	return out
}

// naiveFold is foldValue's specification, rune by rune.
func naiveFold(v string) (string, bool) {
	var b strings.Builder
	nonASCII := false
	for _, r := range v {
		switch {
		case r < utf8.RuneSelf:
			b.WriteByte(lowerASCII(byte(r)))
			continue
		case r == '\u212A':
			b.WriteByte('k')
		case r == '\u017F':
			b.WriteByte('s')
		default:
			b.WriteByte(0x80)
		}
		nonASCII = true
	}
	return b.String(), nonASCII
}

func TestFoldValue(t *testing.T) {
	for _, v := range []string{"", "A", "ABCDEFGH", "@[`{AZaz09", "Hello, WORLD! \\Windows\\System32", "ÄBCDEFGHIJ", "abcdefgh\u212Aijklmnop", "\xff\xfeAB", strings.Repeat("Zz@[", 9)} {
		buf, nonASCII := foldValue([]byte("junk"), v)
		want, wantNon := naiveFold(v)
		if got := string(buf[:len(buf)-gramPad]); got != want || nonASCII != wantNon {
			t.Errorf("foldValue(%q) = %q, %v; want %q, %v", v, got, nonASCII, want, wantNon)
		}
		if pad := string(buf[len(buf)-gramPad:]); pad != strings.Repeat("\x80", gramPad) {
			t.Errorf("foldValue(%q) padding = %q", v, pad)
		}
	}
}

func gramHits(g *gramIndex, lits []string, v string) []int32 {
	buf, nonASCII := foldValue(nil, v)
	hits := g.scan(buf, nil)
	for i, l := range lits {
		if l == nonASCIIAtom && nonASCII {
			hits = append(hits, int32(i))
		}
	}
	slices.Sort(hits)
	return slices.Compact(hits)
}

func TestGramIndex(t *testing.T) {
	lits := []string{"-", "/c", " -e", "cmd.", "\\cmd.exe", "powershe", "-enc", "ll.exe", "aaaa", "aaab", "q", "\x80", "\x00\x01"}
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"C:\\Windows\\System32\\CMD.EXE /C whoami", []string{"/c", "cmd.", "\\cmd.exe"}},
		{"POWERSHELL.EXE -Enc AAAAB", []string{"-", " -e", "powershe", "-enc", "ll.exe", "aaaa", "aaab"}},
		{"aaa", nil},                   // shorter than every long literal
		{"-", []string{"-"}},           // a one-byte value
		{"/", nil},                     // a prefix of a two-byte literal
		{"\\cmd.ex", []string{"cmd."}}, // truncated long literal at the end
		{"Kelvin \u212Aey q", []string{"q", "\x80"}},
		{"\u017Fomething /\u212A", []string{"\x80"}}, // long s and Kelvin fold, but stay non-ASCII
		{"nul \x00\x01 end", []string{"\x00\x01"}},
		{"é/c", []string{"/c", "\x80"}},
	}
	g := newGramIndex(lits)
	for _, tt := range tests {
		var want []int32
		for _, w := range tt.want {
			want = append(want, int32(slices.Index(lits, w)))
		}
		slices.Sort(want)
		if got := gramHits(g, lits, tt.in); !slices.Equal(got, want) {
			t.Errorf("scan(%q) = %v, want %v", tt.in, names(lits, got), tt.want)
		}
		if got := naiveGrams(lits, tt.in); !slices.Equal(got, want) {
			t.Errorf("oracle(%q) = %v, want %v (the table is wrong)", tt.in, names(lits, got), tt.want)
		}
	}
}

func names(lits []string, ids []int32) []string {
	var out []string
	for _, i := range ids {
		out = append(out, lits[i])
	}
	return out
}

// TestGramIndexRandom compares the scanner with the oracle on random
// literal sets over a small alphabet, so that literals overlap, share
// anchors and occur at every offset, including the value's ends.
func TestGramIndexRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const alpha = "abcAB -\\.é@[Z"
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(string([]rune(alpha)[r.IntN(len([]rune(alpha)))]))
		}
		return b.String()
	}
	for round := range 300 {
		var lits []string
		seen := map[string]bool{}
		values := make([]string, 20)
		for i := range values {
			values[i] = word(r.IntN(70))
		}
		for range 1 + r.IntN(60) {
			l := strings.ToLower(word(1 + r.IntN(maxAtom)))
			if r.IntN(4) == 0 {
				// A literal longer than a window, often taken from a value
				// and changed in one byte, so that its window occurs but
				// not always the whole of it.
				l = strings.ToLower(word(maxAtom + 1 + r.IntN(maxAtomLit-maxAtom)))
				if v := strings.ToLower(values[r.IntN(len(values))]); r.IntN(3) > 0 && len(v) > maxAtom+1 {
					i := r.IntN(len(v) - maxAtom - 1)
					l = v[i : i+maxAtom+1+r.IntN(min(len(v)-i-maxAtom, maxAtomLit-maxAtom))]
					if r.IntN(2) == 0 {
						b := []byte(l)
						b[r.IntN(len(b))] = 'z'
						l = string(b)
					}
				}
			}
			if round%2 == 0 && len(l) > 1 && len(l) < 4 {
				continue // half the rounds take scan's path for no short literals
			}
			if !isASCII(l) {
				l = nonASCIIAtom
			}
			if !seen[l] {
				seen[l] = true
				lits = append(lits, l)
			}
		}
		g := newGramIndex(lits)
		for _, v := range values {
			if got, want := gramHits(g, lits, v), naiveGrams(lits, v); !slices.Equal(got, want) {
				t.Fatalf("round %d: scan(%q) over %q = %v, want %v", round, v, lits, names(lits, got), names(lits, want))
			}
		}
	}
}

func FuzzGramIndex(f *testing.F) {
	f.Add("cmd.,-enc,/c,x", "C:\\Windows\\CMD.exe /c -ENC")
	f.Add("aaaa,aa,a", "aaaaaaaa")
	f.Fuzz(func(t *testing.T, litList, v string) {
		var lits []string
		seen := map[string]bool{}
		for _, l := range strings.Split(strings.ToLower(litList), ",") {
			if l == "" || len(l) > maxAtomLit || !isASCII(l) || seen[l] {
				continue
			}
			seen[l] = true
			lits = append(lits, l)
		}
		g := newGramIndex(lits)
		if got, want := gramHits(g, lits, v), naiveGrams(lits, v); !slices.Equal(got, want) {
			t.Fatalf("scan(%q) over %q = %v, want %v", v, lits, names(lits, got), names(lits, want))
		}
	})
}

// TestIndexFoldRandom compares indexFold (keyed on a rare byte of the
// pattern) with trying every start, on random text over an alphabet with
// the multi-byte runes that fold to ASCII.
func TestIndexFoldRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alpha := []rune("aA kKsS\\.%\u212A\u017Fé")
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	naive := func(s, p string) (int, int, bool) {
		for i := 0; i <= len(s); i++ {
			if m, ok := prefixFold(s[i:], p); ok {
				return i, i + m, true
			}
		}
		return 0, 0, false
	}
	for range 20000 {
		s, p := word(r.IntN(30)), word(1+r.IntN(5))
		i, j, ok := indexFold(s, p)
		wi, wj, wok := naive(s, p)
		if i != wi || j != wj || ok != wok {
			t.Fatalf("indexFold(%q, %q) = %d, %d, %v; want %d, %d, %v", s, p, i, j, ok, wi, wj, wok)
		}
	}
}

// TestMultiContainsRandom compares the merged "contains any" automaton with
// its literals matched one by one, on literals with windash's Unicode
// dashes and input with the runes that fold to ASCII letters.
func TestMultiContainsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alpha := []rune("aAkKsS -/\u2013\u2014\u212A\u017Fé")
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	merged := 0
	for range 3000 {
		var ms []stringMatcher
		for range 4 + r.IntN(6) {
			ms = append(ms, containsMatcher{lit: word(1 + r.IntN(4)), fold: true})
		}
		out := mergeContains(ms)
		if len(out) < len(ms) {
			merged++
		}
		for range 10 {
			s := word(r.IntN(20))
			want := false
			for _, m := range ms {
				want = want || m.matchString(s)
			}
			got := false
			for _, m := range out {
				got = got || m.matchString(s)
			}
			if got != want {
				t.Fatalf("merged %v on %q = %v, one by one %v", ms, s, got, want)
			}
		}
	}
	if merged == 0 {
		t.Fatal("no list was merged: the test proves nothing")
	}
}

// TestRegexLiteralGate checks that skipping the regular expression when a
// required literal is absent never changes the answer.
func TestRegexLiteralGate(t *testing.T) {
	res := []string{`\s-\s*<`, `(?i)cmd(\.exe)?\s+/c`, `ab+c|xyz`, `(?i)^[a-z]:\\\\users\\\\[^\\\\]+\\\\appdata`,
		`K`, `(?i)k`, `(?s)a.b`, `(?m)^x$`, `é+a`, `(a|b)c{2,}`, `a?b*`, `\d{3}-\d{4}`}
	r := rand.New(rand.NewPCG(7, 8))
	alpha := []rune("abcxyzkK <-\\/:.\n\t0159\u212Aé")
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alpha[r.IntN(len(alpha))])
		}
		return b.String()
	}
	for _, src := range res {
		re := regexp.MustCompile(src)
		m := newRegexMatcher(re)
		for range 3000 {
			s := word(r.IntN(24))
			if got, want := m.matchString(s), re.MatchString(s); got != want {
				t.Fatalf("%s on %q: gated %v, regexp %v (need %q)", src, s, got, want, m.need)
			}
		}
	}
	if m := newRegexMatcher(regexp.MustCompile(`\s-\s*<`)); len(m.need) == 0 {
		t.Error(`\s-\s*< needs no literal: the gate is off`)
	}
}

// BenchmarkGramScan scans benign command lines with the CommandLine scanner
// of the SigmaHQ Windows process-creation rules (some 3,800 literals).
func BenchmarkGramScan(b *testing.B) {
	_, all := loadCorpus(b, filepath.Join(sigmaCorpus, "windows"))
	rs, err := Compile(all, Config{})
	if err != nil {
		b.Fatal(err)
	}
	var g *gramIndex
	for gi := range rs.groups {
		if ix := rs.groups[gi].index; ix != nil {
			for i := range ix.fields {
				if f := &ix.fields[i]; f.src.key() == "|CommandLine" && (g == nil || len(f.atomRules) > len(g.entries)) {
					g = f.grams
				}
			}
		}
	}
	var bufs [][]byte
	var total int
	for _, ev := range winProcEvents() {
		v, _ := ev.UnmappedValue("CommandLine")
		buf, _ := foldValue(nil, v)
		bufs = append(bufs, buf)
		total += len(v)
	}
	b.SetBytes(int64(total / len(bufs)))
	var hits []int32
	i := 0
	for b.Loop() {
		hits = g.scan(bufs[i%len(bufs)], hits[:0])
		i++
	}
}

func TestDistinctWindow(t *testing.T) {
	tools := []string{"atexec", "dcomexec", "psexec", "smbexec", "wmiexec", "getst", "secretsdump", "ticketer"}
	var lits []string
	for _, tool := range tools {
		lits = append(lits, `\`+tool+`_windows.exe`)
	}
	shared := gramSharing(lits)
	for _, l := range lits {
		o := distinctWindow(l, atomWindow(l), shared)
		w := l[o : o+maxAtom]
		if strings.Contains(w, "_windows") || strings.Contains(w, "windows.") {
			t.Errorf("%s: window %q is the part all %d literals share", l, w, len(lits))
		}
	}
	// Common text is no anchor, however few literals share it.
	l := `c:\program files\zzzzzzzz`
	o := distinctWindow(l, atomWindow(l), gramSharing([]string{l, "zzzzzzzz1", "zzzzzzzz2", "zzzzzzzz3"}))
	if w := l[o : o+maxAtom]; !strings.Contains(w, "zz") {
		t.Errorf("%s: window %q lies in common text", l, w)
	}
}
