package detect

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
)

func canonical(t *testing.T, expr string) string {
	t.Helper()
	p, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		t.Fatal(err)
	}
	return p.String()
}

// TestExistsFormAgrees checks existsForm against the expression it came
// from on random strings over each expression's own alphabet, and that it
// does cut what it should.
func TestExistsFormAgrees(t *testing.T) {
	tests := []struct {
		expr, want string // want: the existsForm, "" for unchanged
	}{
		{`-k\s\w{1,64}(?:\s?(?:-p|-s))?`, `-k\s\w`},
		{`a+b*`, `a`},
		{`(?:ab)+c?`, `ab`},
		{`x{2,5}`, `x{2}`},
		{`x{3,}y?`, `x{3}`},
		{`^a+`, `^a`},
		{`a+$`, `a$`}, // the front's a+ is a
		{`\ba+`, `\ba`},
		{`a+\b`, `a\b`},
		{`(a|b+)c*`, `a|b+`},
		{`.*foo.*`, `foo`},
		{`(?i)ab+c?`, `(?i:ab)`},
		{`(?m)^a+$`, ``},
		{`a?`, ``},
		{`[a-c]{1,3}-[0-9]+`, `[a-c]-[0-9]`},
		{`(?s)a.{0,10}b`, `a(?s:.){0,10}b`},
	}
	r := rand.New(rand.NewPCG(9, 9))
	for _, tt := range tests {
		re := regexp.MustCompile(tt.expr)
		ex := existsForm(re)
		want := tt.want
		if want == "" {
			want = tt.expr
		}
		if got := canonical(t, ex.String()); got != canonical(t, want) {
			t.Errorf("existsForm(%s) = %s, want %s", tt.expr, got, want)
		}
		// The alphabet: the expression's own bytes and a few others.
		alpha := []byte(tt.expr + "ab- \nxyz019")
		for i := 0; i < 3000; i++ {
			var b strings.Builder
			for n := r.IntN(12); n > 0; n-- {
				b.WriteByte(alpha[r.IntN(len(alpha))])
			}
			s := b.String()
			if re.MatchString(s) != ex.MatchString(s) {
				t.Fatalf("%s on %q: %v; its existsForm %s: %v", tt.expr, s, re.MatchString(s), ex, ex.MatchString(s))
			}
		}
	}
}

// corpusRegexes returns the regular expressions of the SigmaHQ corpus (with
// their rule's path) and every value the corpus's rules name, as inputs.
func corpusRegexes(t *testing.T) ([]reItem, []string) {
	t.Helper()
	_, rules := loadCorpus(t, sigmaCorpus)
	var values []string
	var res []reItem
	for _, r := range rules {
		for _, s := range r.Detection.Searches {
			for _, fm := range s.Maps {
				for _, it := range fm {
					flags := ""
					isRe := false
					for _, m := range it.Modifiers {
						switch m {
						case "re":
							isRe = true
						case "i", "m", "s":
							flags += m
						}
					}
					for _, v := range it.Values {
						values = append(values, v.Text)
						if !isRe {
							continue
						}
						expr := v.Text
						if flags != "" {
							expr = "(?" + flags + ")" + expr
						}
						if re, err := regexp.Compile(expr); err == nil {
							res = append(res, reItem{r.Source, re})
						}
					}
				}
			}
		}
	}
	if len(res) < 100 {
		t.Fatalf("only %d regular expressions in the corpus", len(res))
	}
	return res, values
}

type reItem struct {
	src string
	re  *regexp.Regexp
}

// editPiece cuts a random piece out of s or repeats it once or twice: the
// rules' values edited, as inputs near what the expressions were written
// against.
func editPiece(rnd *rand.Rand, s string) string {
	a, b := rnd.IntN(len(s)+1), rnd.IntN(len(s)+1)
	a, b = min(a, b), max(a, b)
	return s[:a] + strings.Repeat(s[a:b], rnd.IntN(3)) + s[b:]
}

// TestExistsFormCorpus checks existsForm on every regular expression of
// the SigmaHQ rules against the original, on the rules' own values (which
// the expressions were written against) and on edits of them.
func TestExistsFormCorpus(t *testing.T) {
	res, values := corpusRegexes(t)
	rnd := rand.New(rand.NewPCG(1, 1))
	changed, matched := 0, 0
	for _, it := range res {
		ex := existsForm(it.re)
		if ex.String() != it.re.String() {
			changed++
		}
		for i := 0; i < 300; i++ {
			s := values[rnd.IntN(len(values))]
			if i%3 == 0 && len(s) > 2 {
				s = editPiece(rnd, s)
			}
			if i%5 == 0 { // the expression's own text often matches it
				s = it.re.String()
			}
			got, want := ex.MatchString(s), it.re.MatchString(s)
			if got != want {
				t.Fatalf("%s: %s on %q = %v, its existsForm %s = %v", it.src, it.re, s, want, ex, got)
			}
			if want {
				matched++
			}
		}
	}
	t.Logf("%d expressions, %d shortened, %d matching inputs", len(res), changed, matched)
}

// BenchmarkExistsForm runs SigmaHQ's svchost flag expression on a svchost
// command line, as written and in its existsForm.
func BenchmarkExistsForm(b *testing.B) {
	re := regexp.MustCompile(`-k\s\w{1,64}(?:\s?(?:-p|-s))?`)
	const cl = `"C:\Windows\System32\svchost.exe" -k netsvcs -p -s Schedule`
	for _, c := range []struct {
		name string
		re   *regexp.Regexp
	}{{"as-written", re}, {"exists-form", existsForm(re)}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if !c.re.MatchString(cl) {
					b.Fatal("no match")
				}
			}
		})
	}
}

// FuzzExistsForm: for any expression Go compiles and any input, the
// exists form matches exactly when the expression does.
func FuzzExistsForm(f *testing.F) {
	f.Add(`-k\s\w{1,64}(?:\s?(?:-p|-s))?`, `svchost.exe -k netsvcs -p`)
	f.Add(`(?m)^a+$`, "b\naa\n")
	f.Add(`(?i)x{2,}y*\b`, "XXy z")
	f.Add(`(a|b+)c*`, "bbc")
	f.Fuzz(func(t *testing.T, expr, s string) {
		if len(expr) > 200 || len(s) > 400 {
			return
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return
		}
		ex := existsForm(re)
		if got, want := ex.MatchString(s), re.MatchString(s); got != want {
			t.Fatalf("%s on %q = %v; its existsForm %s = %v", expr, s, want, ex, got)
		}
	})
}
