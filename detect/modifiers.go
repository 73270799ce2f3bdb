package detect

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// modifiers is the parsed modifier chain of one field item.
type modifiers struct {
	position   string   // "", contains, startswith, endswith
	transforms []string // value transformations in chain order: expand, wide, utf16le, utf16be, utf16, base64, base64offset, windash
	all        bool
	re         bool
	reFlags    string
	cased      bool
	cidr       bool
	exists     bool
	fieldref   bool
	neq        bool
	cmp        string // "", lt, lte, gt, gte
	timePart   string // "", minute, hour, day, week, month, year
}

func (m *modifiers) has(t string) bool { return oneOf(t, m.transforms) }

// encodes reports whether the chain holds a byte encoding (wide, base64, ...).
func (m *modifiers) encodes() bool {
	for _, t := range m.transforms {
		if t != "expand" && t != "windash" {
			return true
		}
	}
	return false
}

func parseModifiers(mods []string) (modifiers, error) {
	var m modifiers
	for _, mod := range mods {
		switch mod {
		case "contains", "startswith", "endswith":
			if m.position != "" {
				return m, fmt.Errorf("modifier %q cannot follow %q", mod, m.position)
			}
			m.position = mod
		case "all":
			m.all = true
		case "re":
			m.re = true
		case "i", "ignorecase", "m", "multiline", "s", "dotall":
			if !m.re {
				return m, fmt.Errorf("regular expression flag modifier %q needs a preceding \"re\"", mod)
			}
			m.reFlags += mod[:1]
		case "cased":
			m.cased = true
		case "windash", "expand", "base64", "base64offset", "utf16le", "wide", "utf16be", "utf16":
			if mod == "wide" {
				mod = "utf16le"
			}
			if m.position != "" && mod != "windash" && mod != "expand" {
				return m, fmt.Errorf("modifier %q must come before %q (it encodes the value that is then searched for)", mod, m.position)
			}
			m.transforms = append(m.transforms, mod)
		case "cidr":
			m.cidr = true
		case "exists":
			m.exists = true
		case "fieldref":
			m.fieldref = true
		case "neq":
			m.neq = true
		case "lt", "lte", "gt", "gte":
			if m.cmp != "" {
				return m, fmt.Errorf("modifier %q cannot follow %q", mod, m.cmp)
			}
			m.cmp = mod
		case "minute", "hour", "day", "week", "month", "year":
			m.timePart = mod
		default:
			return m, fmt.Errorf("unknown modifier %q", mod)
		}
	}
	numeric := m.cmp != "" || m.timePart != ""
	enc := m.encodes()
	switch {
	case m.exists && (m.position != "" || m.re || m.cidr || len(m.transforms) > 0 || m.cased || m.all || m.fieldref || m.neq || numeric):
		return m, errors.New("modifier \"exists\" cannot be combined with other modifiers")
	case m.re && (m.position != "" || m.cidr || len(m.transforms) > 0 || m.fieldref || numeric):
		return m, errors.New("modifier \"re\" cannot be combined with contains, startswith, endswith, cidr, fieldref, numeric or encoding modifiers")
	case m.cidr && (m.position != "" || len(m.transforms) > 0 || m.fieldref || numeric):
		return m, errors.New("modifier \"cidr\" cannot be combined with contains, startswith, endswith, fieldref, numeric or encoding modifiers")
	case numeric && (m.position != "" || len(m.transforms) > 0 || m.fieldref || m.cased):
		return m, errors.New("numeric modifiers (lt, lte, gt, gte, minute ... year) cannot be combined with string modifiers")
	case m.fieldref && (enc || m.has("windash") || m.has("expand")):
		return m, errors.New("modifier \"fieldref\" cannot be combined with value transformations")
	}
	return m, nil
}

// PlaceholderError is returned for an `expand` value naming a placeholder
// that Config.Placeholders does not define. The specification requires
// rejecting such rules.
type PlaceholderError struct{ Name string }

func (e *PlaceholderError) Error() string {
	return fmt.Sprintf("placeholder %%%s%% is not defined (give its values in the placeholders file)", e.Name)
}

// maxAlternatives bounds how many values one Sigma value may expand into
// (placeholders, base64offset, windash permutations before an encoding).
const maxAlternatives = 4096

func (c *compiler) compileItem(it *FieldItem) (matcher, error) {
	name := it.Field
	if name == "" {
		name = "keywords"
	}
	fail := func(err error) (matcher, error) {
		return nil, fmt.Errorf("line %d: field %q: %w", it.Line, name, err)
	}
	mods, err := parseModifiers(it.Modifiers)
	if err != nil {
		return fail(err)
	}
	fm := &fieldMatcher{all: mods.all, field: it.Field}
	switch {
	case it.Field == "":
		if mods.exists || mods.fieldref {
			return fail(errors.New("\"exists\" and \"fieldref\" need a field name"))
		}
		fm.src = source{keywords: c.keywords}
		if mods.position == "" && !mods.re && !mods.cidr {
			mods.position = "contains" // keyword searches match anywhere in the text
		}
	default:
		fm.src = c.resolve(it.Field)
	}
	if mods.exists {
		if len(it.Values) != 1 || it.Values[0].Null || (it.Values[0].Text != "true" && it.Values[0].Text != "false") {
			return fail(errors.New("\"exists\" takes a single true or false"))
		}
		fm.exists = 1
		if it.Values[0].Text == "false" {
			fm.exists = -1
		}
		return fm, nil
	}
	if mods.all && len(it.Values) < 2 {
		return fail(errors.New("modifier \"all\" needs a list of at least two values"))
	}
	if mods.fieldref {
		return c.compileFieldref(it, fm, &mods, fail)
	}
	intAttr := fm.src.attr != nil && fm.src.attr.kind == kindInt
	plain := mods.position == "" && !mods.re && !mods.cidr && len(mods.transforms) == 0 && !mods.neq && mods.cmp == "" && mods.timePart == ""
	for _, v := range it.Values {
		if v.Null {
			if mods.all {
				return fail(errors.New("null cannot be used with \"all\""))
			}
			if mods.neq || mods.cmp != "" || mods.timePart != "" {
				return fail(errors.New("null cannot be compared with neq, lt, lte, gt, gte or a time part"))
			}
			fm.nullOK = true
			continue
		}
		if intAttr && plain {
			if n, err := strconv.ParseInt(v.Text, 10, 64); err == nil {
				fm.ints = append(fm.ints, n)
				continue
			}
		}
		sm, err := c.compileValue(v.Text, &mods)
		if err != nil {
			return fail(err)
		}
		if mods.neq {
			sm = notString{sm}
		}
		if _, isAny := sm.(anyMatcher); !isAny && sm.matchString("") {
			fm.emptyOK = true
		}
		if alts, ok := sm.(orString); ok && !fm.all {
			fm.values = append(fm.values, alts...)
			continue
		}
		fm.values = append(fm.values, sm)
	}
	if !fm.all {
		fm.values = mergeExact(mergeAffixes(mergeContains(fm.values)))
	}
	if fm.all && fm.ints != nil {
		// Keep "all" simple: every value goes through the string path.
		for _, n := range fm.ints {
			fm.values = append(fm.values, exactMatcher{lit: strconv.FormatInt(n, 10)})
		}
		fm.ints = nil
	}
	return fm, nil
}

// compileValue compiles one Sigma value under the item's modifiers. A value
// that expands into several alternatives (placeholders, base64offset) gives
// an orString.
func (c *compiler) compileValue(text string, mods *modifiers) (stringMatcher, error) {
	switch {
	case mods.re:
		flags := ""
		if mods.reFlags != "" {
			flags = "(?" + mods.reFlags + ")"
		}
		re, err := regexp.Compile(flags + text)
		if err != nil {
			return nil, unsupported(fmt.Sprintf("regular expression syntax (%v)", reason(err)))
		}
		return newRegexMatcher(re), nil
	case mods.cidr:
		p, err := netip.ParsePrefix(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("cidr value %q: %w", text, err)
		}
		return cidrMatcher{p.Masked()}, nil
	case mods.timePart != "" || mods.cmp != "":
		want, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
		if err != nil || math.IsNaN(want) {
			return nil, fmt.Errorf("%s value %q is not a number", orStr(mods.cmp, mods.timePart), text)
		}
		op := mods.cmp
		if op == "" {
			op = "eq"
		}
		return numMatcher{op: op, want: want, timePart: mods.timePart}, nil
	}
	alts, globDash, err := c.transform(text, mods)
	if err != nil {
		return nil, err
	}
	var out orString
	for _, a := range alts {
		toks := parseGlob(a, globDash)
		star := []ptok{{kind: tokStar}}
		switch mods.position {
		case "contains":
			toks = append(append(star, toks...), star...)
		case "startswith":
			toks = append(toks, star...)
		case "endswith":
			toks = append(star, toks...)
		}
		out = append(out, newGlobMatcher(collapseStars(toks), !mods.cased))
	}
	if len(out) == 1 {
		return out[0], nil
	}
	return out, nil
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// transform applies the value transformations in chain order and returns
// the resulting Sigma strings (wildcards and escapes intact), and whether
// windash is left to the glob matcher (it is when no encoding follows it).
func (c *compiler) transform(text string, mods *modifiers) ([]string, bool, error) {
	alts := []string{text}
	globDash := false
	for i, t := range mods.transforms {
		var next []string
		switch t {
		case "expand":
			for _, a := range alts {
				ex, err := c.expand(a)
				if err != nil {
					return nil, false, err
				}
				next = append(next, ex...)
			}
		case "windash":
			encodedLater := false
			for _, u := range mods.transforms[i+1:] {
				encodedLater = encodedLater || (u != "expand" && u != "windash")
			}
			if !encodedLater {
				// A value with one or two dashes becomes its 5 or 25
				// literals: a list of them then joins one automaton (nine
				// PsExec flag strings cost 17 µs as dash-class globs). More
				// dashes stay one glob with a dash class.
				if vs, ok := windashAll(alts, 25); ok {
					next = vs
					break
				}
				globDash = true
				next = alts
				break
			}
			vs, ok := windashAll(alts, maxAlternatives)
			if !ok {
				return nil, false, fmt.Errorf("value %q expands into more than %d alternatives", text, maxAlternatives)
			}
			next = vs
		default: // encodings
			for _, a := range alts {
				lit, ok := globLiteral(a)
				if !ok {
					return nil, false, fmt.Errorf("modifier %q cannot encode value %q: it holds wildcards", t, a)
				}
				for _, e := range encode(t, lit) {
					next = append(next, escapeGlob(e))
				}
			}
		}
		if len(next) > maxAlternatives {
			return nil, false, fmt.Errorf("value %q expands into more than %d alternatives", text, maxAlternatives)
		}
		alts = next
	}
	return alts, globDash, nil
}

// expand replaces every %name% placeholder of a Sigma string by each of its
// values (the cartesian product when there are several); `\%` is a literal
// percent sign.
func (c *compiler) expand(s string) ([]string, error) {
	out := []string{""}
	for i := 0; i < len(s); {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '%':
			for k := range out {
				out[k] += "%"
			}
			i += 2
			continue
		case s[i] == '%':
			j := strings.IndexByte(s[i+1:], '%')
			if j < 0 {
				break
			}
			name := s[i+1 : i+1+j]
			vals, ok := c.placeholders[name]
			if !ok || len(vals) == 0 {
				return nil, &PlaceholderError{Name: name}
			}
			var next []string
			for _, o := range out {
				for _, v := range vals {
					next = append(next, o+v)
				}
			}
			if len(next) > maxAlternatives {
				return nil, fmt.Errorf("value %q expands into more than %d alternatives", s, maxAlternatives)
			}
			out = next
			i += j + 2
			continue
		}
		for k := range out {
			out[k] += s[i : i+1]
		}
		i++
	}
	return out, nil
}

// globLiteral returns the literal text of a Sigma string without wildcards,
// resolving escapes; ok is false when it holds a wildcard.
// It works on bytes, so encoded (non-UTF-8) text survives.
func globLiteral(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s) && (s[i+1] == '*' || s[i+1] == '?' || s[i+1] == '\\'):
			b.WriteByte(s[i+1])
			i++
		case c == '*' || c == '?':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// escapeGlob escapes a literal so parseGlob reads it back unchanged.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// encode applies one encoding modifier to a literal value.
func encode(mod, s string) []string {
	switch mod {
	case "utf16le", "utf16be", "utf16":
		u := utf16.Encode([]rune(s))
		b := make([]byte, 0, 2*len(u)+2)
		if mod == "utf16" {
			b = append(b, 0xFF, 0xFE) // byte order mark, little-endian
		}
		for _, c := range u {
			if mod == "utf16be" {
				b = append(b, byte(c>>8), byte(c))
			} else {
				b = append(b, byte(c), byte(c>>8))
			}
		}
		return []string{string(b)}
	case "base64":
		return []string{base64.StdEncoding.EncodeToString([]byte(s))}
	case "base64offset":
		return base64Offsets(s)
	}
	panic("detect: unknown encoding " + mod)
}

// base64Offsets returns the three base64 encodings of s as it appears at
// offsets 0, 1 and 2 of a longer encoded text, with the characters that
// depend on the neighbouring bytes cut off (the pySigma reference
// algorithm).
func base64Offsets(s string) []string {
	start := [3]int{0, 2, 3}
	endTrim := [3]int{0, 3, 2}
	out := make([]string, 0, 3)
	for i := 0; i < 3; i++ {
		e := base64.StdEncoding.EncodeToString(append(make([]byte, i, i+len(s)), s...))
		end := len(e) - endTrim[(len(s)+i)%3]
		if start[i] >= end {
			continue
		}
		out = append(out, e[start[i]:end])
	}
	return out
}

// windashVariants returns every permutation of the dash characters at the
// positions windash applies to, as literal Sigma strings.
// windashAll returns the windash variants of every string of alts, or
// false when one string has more than limit.
func windashAll(alts []string, limit int) ([]string, bool) {
	var out []string
	for _, a := range alts {
		vs, ok := windashVariants(a, limit)
		if !ok {
			return nil, false
		}
		out = append(out, vs...)
	}
	return out, true
}

// windashVariants returns s with its dashes replaced by every combination
// of windashRunes, or false when there are more than limit.
func windashVariants(s string, limit int) ([]string, bool) {
	toks := parseGlob(s, true)
	out := []string{""}
	for _, t := range toks {
		var add []string
		switch t.kind {
		case tokDash:
			for _, d := range windashRunes {
				add = append(add, string(d))
			}
		case tokStar:
			add = []string{"*"}
		case tokOne:
			add = []string{"?"}
		default:
			add = []string{escapeGlob(string(t.r))}
		}
		next := make([]string, 0, len(out)*len(add))
		for _, o := range out {
			for _, a := range add {
				next = append(next, o+a)
			}
		}
		if len(next) > limit {
			return nil, false
		}
		out = next
	}
	return out, true
}

// orString matches when any of its matchers does (one value's alternatives).
type orString []stringMatcher

func (o orString) matchString(s string) bool {
	for _, m := range o {
		if m.matchString(s) {
			return true
		}
	}
	return false
}

// notString is the neq modifier.
type notString struct{ m stringMatcher }

func (n notString) matchString(s string) bool { return !n.m.matchString(s) }

// numMatcher compares a field's numeric value (or, with timePart, a
// component of its time value) with a constant. A value that is not a
// number (or a time) never matches.
type numMatcher struct {
	op       string // eq, lt, lte, gt, gte
	want     float64
	timePart string
}

func (m numMatcher) matchString(s string) bool {
	var v float64
	if m.timePart != "" {
		n, ok := timeComponent(s, m.timePart)
		if !ok {
			return false
		}
		v = float64(n)
	} else {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return false
		}
		v = f
	}
	return m.cmp(v)
}

func (m numMatcher) matchInt(n int64) bool {
	if m.timePart != "" {
		return false
	}
	return m.cmp(float64(n))
}

func (m numMatcher) cmp(v float64) bool {
	switch m.op {
	case "lt":
		return v < m.want
	case "lte":
		return v <= m.want
	case "gt":
		return v > m.want
	case "gte":
		return v >= m.want
	}
	return v == m.want
}

// intMatcher is a stringMatcher that can also match an integer attribute
// without formatting it.
type intMatcher interface{ matchInt(n int64) bool }

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02"}

// timeComponent extracts a part of a time value (no time zone conversion,
// as the specification says).
func timeComponent(s, part string) (int, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		t, err := time.Parse(l, s)
		if err != nil {
			continue
		}
		switch part {
		case "minute":
			return t.Minute(), true
		case "hour":
			return t.Hour(), true
		case "day":
			return t.Day(), true
		case "week":
			_, w := t.ISOWeek()
			return w, true
		case "month":
			return int(t.Month()), true
		default:
			return t.Year(), true
		}
	}
	return 0, false
}

// compileFieldref compiles `field|fieldref: other`: the field's value is
// compared with the other field's value in the same event (exact, or with
// contains/startswith/endswith; case-insensitive unless cased; neq negates).
func (c *compiler) compileFieldref(it *FieldItem, fm *fieldMatcher, mods *modifiers, fail func(error) (matcher, error)) (matcher, error) {
	if mods.re || mods.cidr || mods.cmp != "" || mods.timePart != "" {
		return fail(errors.New("modifier \"fieldref\" cannot be combined with re, cidr or numeric modifiers"))
	}
	var refs []matcher
	for _, v := range it.Values {
		if v.Null || v.Text == "" {
			return fail(errors.New("\"fieldref\" values name fields; null and empty are not allowed"))
		}
		refs = append(refs, &fieldrefMatcher{field: it.Field, src: fm.src, other: c.resolve(v.Text), position: mods.position, fold: !mods.cased, neq: mods.neq})
	}
	if len(refs) == 1 {
		return refs[0], nil
	}
	if mods.all {
		return andM(refs), nil
	}
	return orM(refs), nil
}

// fold-aware string comparisons for fieldref.
func compareStrings(v, ref, position string, fold bool) bool {
	switch position {
	case "contains":
		if fold {
			_, _, ok := indexFold(v, ref)
			return ok
		}
		return strings.Contains(v, ref)
	case "startswith":
		if fold {
			_, ok := prefixFold(v, ref)
			return ok
		}
		return strings.HasPrefix(v, ref)
	case "endswith":
		if fold {
			return hasSuffixFold(v, ref)
		}
		return strings.HasSuffix(v, ref)
	}
	if fold {
		return strings.EqualFold(v, ref)
	}
	return v == ref
}
