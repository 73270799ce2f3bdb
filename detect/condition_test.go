package detect

import (
	"errors"
	"strings"
	"testing"
)

func TestParseCondition(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"sel", "sel"},
		{"a and b", "(a and b)"},
		{"a or b or c", "(a or b or c)"},
		{"a or b and c", "(a or (b and c))"},
		{"a and b or c", "((a and b) or c)"},
		{"not a and b", "((not a) and b)"},
		{"not a or not b", "((not a) or (not b))"},
		{"not (a or b)", "(not (a or b))"},
		{"(a or b) and c", "((a or b) and c)"},
		{"((a))", "a"},
		{"1 of sel* and not 1 of filter*", "((1 of sel*) and (not (1 of filter*)))"},
		{"all of them", "(all of them)"},
		{"any of them", "(1 of them)"},
		{"1 of them or all of sel_*_x", "((1 of them) or (all of sel_*_x))"},
		{"sel AND NOT filter", "(sel and (not filter))"},
		{"sel\n  and\tnot filter", "(sel and (not filter))"},
		{"not not a", "(not (not a))"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			n, err := ParseCondition(tt.give)
			if err != nil {
				t.Fatalf("ParseCondition(%q) error = %v", tt.give, err)
			}
			if got := n.String(); got != tt.want {
				t.Errorf("ParseCondition(%q) = %s, want %s", tt.give, got, tt.want)
			}
		})
	}
}

func TestParseConditionErrors(t *testing.T) {
	tests := []struct {
		give    string
		wantPos int
		wantMsg string
	}{
		{"", 0, "empty condition"},
		{"   ", 3, "empty condition"},
		{"a and", 5, "got end of condition"},
		{"a or or b", 5, `got "or"`},
		{"(a or b", 7, `expected ")" to close "(" at offset 0`},
		{"a b", 2, `expected "and", "or" or end of condition, got "b"`},
		{"a)", 1, `got ")"`},
		{"1 sel", 2, `expected "of" after "1"`},
		{"all of", 6, "expected a search identifier pattern"},
		{"2 of sel*", 0, `only "1 of" and "all of"`},
		{"sel | count() > 5", 4, "aggregation expressions"},
		{"not", 3, "got end of condition"},
		{"()", 1, `got ")"`},
		{strings.Repeat("(", 300) + "a" + strings.Repeat(")", 300), 200, "nested too deeply"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := ParseCondition(tt.give)
			var ce *ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseCondition(%q) error = %v, want a *ConditionError", tt.give, err)
			}
			if ce.Pos != tt.wantPos || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("ParseCondition(%q) error at %d %q, want at %d containing %q", tt.give, ce.Pos, ce.Msg, tt.wantPos, tt.wantMsg)
			}
		})
	}
}

func FuzzCondition(f *testing.F) {
	for _, s := range []string{
		"sel", "a and not b", "1 of sel* or all of them", "(a or (b and not c))", "not not (x)",
		"all of sel_* and not 1 of filter_*", "a | count() > 3", "((", "1 of", "a AND b OR NOT c",
	} {
		f.Add(s)
	}
	searches := map[string]matcher{"a": andM{}, "b": orM{}, "sel_1": andM{}, "filter_x": orM{}}
	names := []string{"a", "b", "sel_1", "filter_x"}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCondition(s)
		if err != nil {
			var ce *ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseCondition(%q) error %T is not a *ConditionError", s, err)
			}
			if ce.Pos < 0 || ce.Pos > len(s) {
				t.Fatalf("ParseCondition(%q) error position %d is outside the input", s, ce.Pos)
			}
			return
		}
		// The printed AST is itself a valid condition with the same AST.
		again, err := ParseCondition(n.String())
		if err != nil {
			t.Fatalf("ParseCondition(%q) = %s, which does not parse again: %v", s, n, err)
		}
		if again.String() != n.String() {
			t.Fatalf("round trip of %q: %s != %s", s, again, n)
		}
		// Compiling and evaluating never panics.
		if m, err := compileCond(n, s, searches, names); err == nil {
			m.match(dnsEvent("a.com"), nil)
		}
	})
}
