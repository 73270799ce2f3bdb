package detect

import (
	"path/filepath"
	"strings"
)

// This file exports the few engine internals that other packages
// (detect/rulebook, detect/backtest) need, without touching the engine's
// own files.

// TestFileSuffixes are the name endings of rule test sidecars
// (rule.tests.yml next to rule.yml). LoadDir skips them.
var testFileSuffixes = []string{".tests.yml", ".tests.yaml"}

// IsTestFile reports whether path names a rule test sidecar
// (`<rule>.tests.yml`), which LoadDir does not read as a rule.
func IsTestFile(path string) bool {
	base := strings.ToLower(filepath.Base(path))
	for _, s := range testFileSuffixes {
		if strings.HasSuffix(base, s) {
			return true
		}
	}
	return false
}

// ParseFile parses every YAML document of one rule file (path is used in
// errors and as Rule.Source). It returns the rules that parsed and one
// *RuleError per problem.
func ParseFile(path string, data []byte) ([]*Rule, []error) {
	return parseFile(path, data)
}

// ParseDir parses every rule file under dir, recursively and in lexical
// order, skipping test sidecars. It returns the rules that parsed and one
// error per problem.
func ParseDir(dir string) ([]*Rule, []error) {
	return parseDir(dir)
}

// SelectorsFor returns the event selectors (ORed) a rule's logsource applies
// to under m, nil when the mapping routes it nowhere, and the per-logsource
// field overrides of the selected entries (the first that names a field
// wins over Mapping.Fields). The streaming engine and the backtest compiler
// both use it, so they select the same events and read the same fields.
func (m *Mapping) SelectorsFor(ls Logsource) ([]EventSelector, []map[string]string) {
	return m.selectorsFor(ls)
}

// UnmappedFieldPrefix marks a field mapping target that names an unmapped
// attribute ("unmapped:<key>") instead of an event attribute.
const UnmappedFieldPrefix = unmappedPrefix

// AttributeKind reports the shape of a named event attribute: "string",
// "strings" (multi-valued) or "int"; ok is false for an unknown name.
func AttributeKind(name string) (kind string, ok bool) {
	a, ok := lookupAttribute(name)
	if !ok {
		return "", false
	}
	switch a.kind {
	case kindStrings:
		return "strings", true
	case kindInt:
		return "int", true
	}
	return "string", true
}

// GlobKind is the kind of one token of a Sigma value.
type GlobKind uint8

// The token kinds of ParseGlob.
const (
	GlobLiteral GlobKind = GlobKind(tokLit)  // one literal rune
	GlobOne     GlobKind = GlobKind(tokOne)  // ? : exactly one rune
	GlobStar    GlobKind = GlobKind(tokStar) // * : any run of runes
	GlobDash    GlobKind = GlobKind(tokDash) // windash: any of WindashRunes
)

// GlobToken is one token of a Sigma value.
type GlobToken struct {
	Kind GlobKind
	Rune rune // the literal rune, or the dash as written
}

// WindashRunes are the characters the windash modifier treats as alike.
func WindashRunes() []rune { return append([]rune(nil), windashRunes[:]...) }

// ParseGlob tokenizes a Sigma value by the specification's escaping rules
// (runs of stars collapsed), exactly as the streaming engine does, so that
// the backtest compiler reads values the same way.
func ParseGlob(s string, windash bool) []GlobToken {
	toks := parseGlob(s, windash)
	out := make([]GlobToken, len(toks))
	for i, t := range toks {
		out[i] = GlobToken{Kind: GlobKind(t.kind), Rune: t.r}
	}
	return out
}
