package backtest

import (
	"strings"
	"testing"

	"github.com/watchfloor/watchfloor/detect"
)

func TestEveryMappedAttributeHasAColumn(t *testing.T) {
	m := detect.DefaultMapping()
	for f, a := range m.Fields {
		col, ok := columns[a]
		if !ok {
			t.Errorf("mapping field %s -> attribute %s has no events column: add it to columns in detect/backtest/sql.go", f, a)
			continue
		}
		kind, _ := detect.AttributeKind(a)
		if kind != col.kind {
			t.Errorf("attribute %s: column kind %s, engine kind %s", a, col.kind, kind)
		}
	}
	for _, a := range m.Keywords {
		if _, ok := columns[a]; !ok {
			t.Errorf("keyword attribute %s has no events column", a)
		}
	}
}

func TestCompileSQL(t *testing.T) {
	tests := []struct {
		name, give string
		want       []string // substrings of the WHERE clause
	}{
		{"exact folds", "query: WPAD", []string{"lowerUTF8(if(dns_query_hostname != '', dns_query_hostname, unmapped_values[indexOf(unmapped_keys, 'query')])) = 'wpad'"}},
		{"unmapped field", "VendorField|endswith: x", []string{"endsWith(lowerUTF8(unmapped_values[indexOf(unmapped_keys, 'VendorField')]), 'x')"}},
		{"cased prefix", "query|cased|startswith: 'A_'", []string{"startsWith(if(dns_query_hostname != '', dns_query_hostname, unmapped_values[indexOf(unmapped_keys, 'query')]), 'A_')"}},
		{"like escapes", "query: 'a%b*c_d*e'", []string{`LIKE 'a\\%b%c\\_d%e'`}},
		{"question mark is a regexp", "query: 'a?c'", []string{`, '(?s)^a.c$')`}},
		{"regex flag group", "query|re|i: '^x'", []string{`, '(?i-s:^x)')`}},
		{"quote", `query: "it's"`, []string{`'it\'s'`}},
		{"cidr4", "src_ip|cidr: 10.0.0.0/8", []string{"4278190080) = 167772160"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "title: t\nid: t\nlevel: low\nlogsource: {category: dns}\ndetection:\n  sel:\n    " + tt.give + "\n  condition: sel\n"
			r, err := detect.ParseRule([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			q, err := Compile(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(q.Where, w) {
					t.Errorf("Where = %s\nwant it to contain %s", q.Where, w)
				}
			}
		})
	}
}

func TestCompileUnroutedAndRefused(t *testing.T) {
	r, err := detect.ParseRule([]byte("title: t\nid: t\nlevel: low\nlogsource: {product: windows}\ndetection:\n  sel:\n    Image: x\n  condition: sel\n"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := Compile(r, nil)
	if err != nil || !q.Unrouted || q.Where != "0" {
		t.Errorf("Compile(unrouted) = %+v, %v", q, err)
	}
	r, _ = detect.ParseRule([]byte("title: t\nid: t\nlevel: low\nlogsource: {category: dns}\ndetection:\n  sel:\n    query|re: '(?<=a)b'\n  condition: sel\n"))
	if _, err := Compile(r, nil); err == nil {
		t.Error("Compile(PCRE look-behind): error = nil, want the engine's refusal")
	}
}
