package detect

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

func TestByteSeq(t *testing.T) {
	tests := []struct {
		expr   string
		isSeq  bool
		match  []string
		differ []string
	}{
		{`-k\s\w`, true, []string{"svchost.exe -k netsvcs", "-k\tx", "a -k _"}, []string{"-k", "-k  x", "-K x", "k x"}},
		{`(?i)-k\s\w`, true, []string{"-K x"}, []string{"-k -"}},
		{`^ab.c$`, true, []string{"abxc", "ab c"}, []string{"abxcd", "zabxc", "ab\nc"}},
		{`(?s)^ab.c$`, true, []string{"ab\nc"}, nil},
		{`^cmd`, true, []string{"cmd.exe"}, []string{" cmd"}},
		{`exe$`, true, []string{"a.exe"}, []string{"a.exe "}},
		{`[0-9a-f]{4}-x`, true, []string{"00af-x", "zz1234-x"}, []string{"12g4-x", "123-x"}},
		{`(?i)[a-z]{2}\d`, true, []string{"Ab1"}, []string{"a11"}},
		{`\\\\[^\\]\\`, true, []string{`\\a\`}, []string{`\\\\`}},
		// Not a fixed sequence: left to the regexp.
		{`a+b`, false, nil, nil},
		{`ab|cd`, false, nil, nil},
		{`a|b`, true, []string{"b"}, []string{"c"}}, // one class
		{`a?b`, false, nil, nil},
		{`(?m)^a`, false, nil, nil},
		{`\bword`, false, nil, nil},
		{`é`, false, nil, nil},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.expr)
		q, ok := newByteSeq(re)
		if ok != tt.isSeq {
			t.Errorf("%s: newByteSeq ok = %v, want %v", tt.expr, ok, tt.isSeq)
			continue
		}
		if !ok {
			continue
		}
		for _, s := range tt.match {
			if !re.MatchString(s) {
				t.Fatalf("%s: test input %q does not match the regexp", tt.expr, s)
			}
			if !q.match(s) {
				t.Errorf("%s: %q does not match the sequence", tt.expr, s)
			}
		}
		for _, s := range tt.differ {
			if re.MatchString(s) {
				t.Fatalf("%s: test input %q matches the regexp", tt.expr, s)
			}
			if q.match(s) {
				t.Errorf("%s: %q matches the sequence", tt.expr, s)
			}
		}
	}
}

// TestByteSeqCorpus checks the sequence of every SigmaHQ expression that
// has one against the expression, on ASCII inputs built from the rules'
// values and from the expression's own text.
func TestByteSeqCorpus(t *testing.T) {
	res, values := corpusRegexes(t)
	rnd := rand.New(rand.NewPCG(3, 4))
	seqs, matched := 0, 0
	for _, it := range res {
		ex := existsForm(it.re)
		q, ok := newByteSeq(ex)
		if !ok {
			continue
		}
		seqs++
		for i := range 400 {
			s := values[rnd.IntN(len(values))]
			switch i % 4 {
			case 0:
				s = it.re.String()
			case 1:
				s = editPiece(rnd, s)
			}
			if !isASCII(s) {
				continue
			}
			got, want := q.match(s), it.re.MatchString(s)
			if got != want {
				t.Fatalf("%s: %s on %q = %v, its byte sequence = %v", it.src, it.re, s, want, got)
			}
			if want {
				matched++
			}
		}
	}
	if seqs < 20 {
		t.Fatalf("only %d of %d expressions are byte sequences", seqs, len(res))
	}
	t.Logf("%d of %d expressions are byte sequences; %d matching inputs", seqs, len(res), matched)
}

// FuzzByteSeq: for any expression that is a byte sequence and any ASCII
// input, the sequence matches exactly when the expression does.
func FuzzByteSeq(f *testing.F) {
	f.Add(`-k\s\w`, `svchost.exe -k netsvcs -p`)
	f.Add(`(?i)^ab.c$`, "ABxC")
	f.Add(`[0-9a-f]{4}-x`, "00af-x")
	f.Add(`(?s)a.b`, "a\nb")
	f.Fuzz(func(t *testing.T, expr, s string) {
		if len(expr) > 200 || len(s) > 400 || !isASCII(s) {
			return
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return
		}
		q, ok := newByteSeq(re)
		if !ok {
			return
		}
		if got, want := q.match(s), re.MatchString(s); got != want {
			t.Fatalf("%s on %q = %v; its byte sequence = %v", expr, s, want, got)
		}
	})
}

// BenchmarkByteSeq runs SigmaHQ's svchost flag expression, in its exists
// form, on a svchost command line, with the regexp and as a byte sequence.
func BenchmarkByteSeq(b *testing.B) {
	ex := existsForm(regexp.MustCompile(`-k\s\w{1,64}(?:\s?(?:-p|-s))?`))
	q, ok := newByteSeq(ex)
	if !ok {
		b.Fatalf("%s is no byte sequence", ex)
	}
	const cl = `"C:\Windows\System32\svchost.exe" -k netsvcs -p -s Schedule`
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			if !ex.MatchString(cl) {
				b.Fatal("no match")
			}
		}
	})
	b.Run("byte-sequence", func(b *testing.B) {
		for b.Loop() {
			if !q.match(cl) {
				b.Fatal("no match")
			}
		}
	})
}
