package normalize

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCEFGolden(t *testing.T) {
	goldenDir(t, CEF(), "testdata/cef/*.log", "cef_", map[string]int{"handwritten.log": 5})
}

func TestCEFExtensionEscaping(t *testing.T) {
	tests := []struct {
		name string
		give string
		want []string // unmapped keys and values after the header fields
	}{
		{"spaces in values", `CEF:0|V|P|1|s|n|1|msg=hello big world src=10.0.0.1`, []string{"msg = hello big world", "src = 10.0.0.1"}},
		{"escaped equals and backslash", `CEF:0|V|P|1|s|n|1|request=/a?b\=c d=C:\\temp\\x`, []string{"request = /a?b=c", `d = C:\temp\x`}},
		{"newline escape", `CEF:0|V|P|1|s|n|1|msg=a\nb`, []string{"msg = a\nb"}},
		{"custom label", `CEF:0|V|P|1|s|n|1|cs1=gold cs1Label=tier`, []string{"cs1 = gold", "cs1Label = tier", "tier = gold"}},
		{"empty extension", `CEF:0|V|P|1|s|n|1|`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, errText := decodeOne(t, CEF(), tt.give)
			if errText != "" {
				t.Fatal(errText)
			}
			got := ev.Unmapped[7:]
			if len(got) == 0 {
				got = nil
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLEEFDelimiters(t *testing.T) {
	for _, give := range []string{
		"LEEF:2.0|V|P|1|e|^|src=10.0.0.1^dst=10.0.0.2",
		"LEEF:2.0|V|P|1|e|x5E|src=10.0.0.1^dst=10.0.0.2",
		"LEEF:2.0|V|P|1|e|0x5e|src=10.0.0.1^dst=10.0.0.2",
		"LEEF:2.0|V|P|1|e||src=10.0.0.1\tdst=10.0.0.2",
		"LEEF:1.0|V|P|1|e|src=10.0.0.1\tdst=10.0.0.2",
	} {
		ev, errText := decodeOne(t, LEEF(), give)
		if errText != "" {
			t.Errorf("%q: %s", give, errText)
			continue
		}
		if ev.Src == nil || ev.Src.IP != "10.0.0.1" || ev.Dst == nil || ev.Dst.IP != "10.0.0.2" {
			t.Errorf("%q: got src %+v dst %+v", give, ev.Src, ev.Dst)
		}
	}
}

func FuzzCEF(f *testing.F) {
	fuzzSeeds(f, CEF(), "testdata/cef/*.log", 20)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, CEF(), data) })
}

func BenchmarkCEF(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/cef/handwritten.log", func(l []byte) bool {
		return strings.HasPrefix(string(l), "<134>") || strings.HasPrefix(string(l), "LEEF:1.0")
	})
	benchDecode(b, CEF(), dirs, recs)
}
