package detect

import (
	"strings"
	"testing"
)

// foldAffixRef is what prefixFold and hasSuffixFold compute, by definition:
// the length of a rune-aligned prefix (suffix) of s that equals p under
// Unicode case folding.
func foldAffixRef(s, p string, suffix bool) (int, bool) {
	edges := []int{len(s)} // rune boundaries as Go decodes s: an invalid byte is a rune
	for i := range s {
		edges = append(edges, i)
	}
	for _, e := range edges {
		part, k := s[:e], e
		if suffix {
			part, k = s[e:], len(s)-e
		}
		if strings.EqualFold(part, p) {
			return k, true
		}
	}
	return 0, false
}

// FuzzAffixFold checks the eight-bytes-a-compare prefix and suffix tests
// against their definition, on any input: ASCII runs of either case longer
// than eight bytes, with runes (the Kelvin sign, long s, invalid UTF-8)
// anywhere in them.
func FuzzAffixFold(f *testing.F) {
	f.Add(`C:\Windows\System32\SVCHOST.exe`, `\svchost.exe`)
	f.Add(`c:\windows\system32\cmd.exe`, `C:\WINDOWS\`)
	f.Add("\u212Aeyboard layout files", "keyboard LAYOUT")
	f.Add("xx\u017Fvchost.exe", "SVCHOST.EXE")
	f.Add("abcdefgh\xffabcdefgh", "abcdefgh\xff")
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 300 || len(p) > 100 {
			return
		}
		m, ok := prefixFold(s, p)
		if _, want := foldAffixRef(s, p, false); ok != want {
			t.Fatalf("prefixFold(%q, %q) = %v, want %v", s, p, ok, want)
		}
		if ok && !strings.EqualFold(s[:m], p) {
			t.Fatalf("prefixFold(%q, %q) = %d: %q does not fold to the pattern", s, p, m, s[:m])
		}
		if _, want := foldAffixRef(s, p, true); hasSuffixFold(s, p) != want {
			t.Fatalf("hasSuffixFold(%q, %q) = %v, want %v", s, p, !want, want)
		}
	})
}
