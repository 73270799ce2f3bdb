package backtest_test

import (
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/backtest"
)

// FuzzCompile feeds rule values and modifiers through both compilers: a
// value the engine accepts must translate without panicking, and the SQL
// must not let the value escape its string literal.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{"query|contains", "query|re", "src_ip|cidr", "answer|endswith|all", "Foo|startswith|cased", "query|windash"} {
		f.Add(s, "a*b?c", "x'y\\z")
	}
	f.Fuzz(func(t *testing.T, key, v1, v2 string) {
		if strings.ContainsAny(key, ":\n#'\"{}[]&*!|>%@`") && !strings.Contains(key, "|") {
			return
		}
		doc := "title: f\nid: f\nlevel: low\nlogsource: {category: dns}\ndetection:\n  sel:\n    " + key + ": [" +
			yamlQuote(v1) + ", " + yamlQuote(v2) + "]\n  condition: sel\n"
		r, err := detect.ParseRule([]byte(doc))
		if err != nil {
			return
		}
		q, err := backtest.Compile(r, nil)
		if err != nil {
			return
		}
		if !balanced(q.Where) {
			t.Fatalf("unbalanced SQL: %s", q.Where)
		}
	})
}

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// balanced reports whether every string literal of sql is terminated and
// the parentheses outside literals balance.
func balanced(sql string) bool {
	depth, in := 0, false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case in && c == '\\':
			i++
		case c == '\'':
			in = !in
		case in:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return !in && depth == 0
}
