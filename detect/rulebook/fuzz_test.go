package rulebook_test

import (
	"testing"

	"github.com/watchfloor/watchfloor/detect/rulebook"
)

func FuzzParseTestFile(f *testing.F) {
	f.Add([]byte("cases:\n  - name: a\n    format: zeek_dns\n    match: true\n    raw: '{}'\n"))
	f.Add([]byte("cases: []\n"))
	f.Add([]byte("cases:\n  - {name: x, format: syslog, match: false, raw: \"<1>x\"}\n  - 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := rulebook.ParseTestFile("fuzz.tests.yml", data)
		if err != nil {
			return
		}
		for _, c := range tf.Cases {
			if c.Name == "" || c.Format == "" || c.Match == nil || c.Raw == "" {
				t.Fatalf("accepted an incomplete case %+v", c)
			}
		}
	})
}

func FuzzParseStored(f *testing.F) {
	f.Add([]byte("title: t\nid: k\nlevel: low\nlogsource: {category: dns}\ndetection:\n  s:\n    query: x\n  condition: s\n"))
	f.Add([]byte("title: t\nid: other\nlevel: low\n---\ntitle: u\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := rulebook.ParseStored("k", 1, data)
		if err == nil && r.ID != "k" {
			t.Fatalf("accepted a rule with id %q under key k", r.ID)
		}
	})
}
