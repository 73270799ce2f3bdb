package detect

import (
	"strconv"

	"github.com/watchfloor/watchfloor/schemas"
)

// matcher is a compiled boolean node: a condition operator, a search, or one
// field item. Matchers are immutable and safe for concurrent use.
//
// s is the Eval's scratch, which memoizes the event's unmapped values (a
// rule set reads Image or CommandLine for dozens of candidate rules, and each
// lookup walks the event's list of vendor fields); nil outside Eval.
type matcher interface {
	match(ev *schemas.Event, s *scratch) bool
}

type andM []matcher

func (a andM) match(ev *schemas.Event, s *scratch) bool {
	for _, m := range a {
		if !m.match(ev, s) {
			return false
		}
	}
	return true
}

type orM []matcher

func (o orM) match(ev *schemas.Event, s *scratch) bool {
	for _, m := range o {
		if m.match(ev, s) {
			return true
		}
	}
	return false
}

type notM struct{ m matcher }

func (n notM) match(ev *schemas.Event, s *scratch) bool { return !n.m.match(ev, s) }

// source is where a field item reads its value, resolved at compile time:
// an attribute of the event struct (falling back to the unmapped attribute
// named unmapped when the event leaves it empty, so vendor field names stay
// reachable), the event's unmapped attribute of a given key, or the keyword
// attributes.
type source struct {
	attr     *attribute
	unmapped string
	keywords []*attribute
	// uslot is 1 + the index of unmapped among the rule set's unmapped
	// keys: the scratch slot its value is memoized in; 0 for none.
	uslot int32
}

// key identifies the source for the index.
func (s *source) key() string {
	if s.keywords != nil {
		return "keywords"
	}
	if s.attr != nil {
		return s.attr.name + "|" + s.unmapped
	}
	return "|" + s.unmapped
}

// first returns the source's value in ev (the first element of a list
// attribute) and whether it is present.
func (s *source) first(ev *schemas.Event) (string, bool) { return s.firstIn(ev, nil) }

// firstIn is first with the Eval's scratch (nil for none).
func (s *source) firstIn(ev *schemas.Event, sc *scratch) (string, bool) {
	if a := s.attr; a != nil {
		switch a.kind {
		case kindString:
			if v := a.str(ev); v != "" {
				return v, true
			}
		case kindStrings:
			for _, v := range a.strs(ev) {
				if v != "" {
					return v, true
				}
			}
		default:
			if n, ok := a.integer(ev); ok {
				return strconv.FormatInt(n, 10), true
			}
		}
	}
	if s.unmapped != "" {
		v, ok := sc.unmappedValue(ev, s)
		return v, ok && v != ""
	}
	return "", false
}

// fieldMatcher is one compiled `field|modifiers: values` item.
//
// A field that is absent or empty matches null, and values that match the
// empty string (such as ”), except a bare '*' (which needs a value).
// For a multi-valued attribute any element may match; with "all" every value
// must be matched by some element.
type fieldMatcher struct {
	field   string // the Sigma field name, for findings
	src     source
	values  []stringMatcher
	ints    []int64 // exact integer values, for integer attributes
	all     bool
	nullOK  bool
	emptyOK bool
	exists  int8 // 1: must be present, -1: must be absent, 0: no check
}

func (f *fieldMatcher) match(ev *schemas.Event, s *scratch) bool {
	if f.src.keywords != nil {
		return f.matchKeywords(ev)
	}
	if a := f.src.attr; a != nil {
		switch a.kind {
		case kindString:
			if v := a.str(ev); v != "" {
				return f.matchOne(v, true)
			}
		case kindStrings:
			if vs := a.strs(ev); hasValue(vs) {
				return f.matchList(vs)
			}
		default:
			if n, ok := a.integer(ev); ok {
				return f.matchInt(n)
			}
		}
	}
	if f.src.unmapped != "" {
		v, ok := s.unmappedValue(ev, &f.src)
		return f.matchOne(v, ok && v != "")
	}
	return f.matchOne("", false)
}

func hasValue(vs []string) bool {
	for _, v := range vs {
		if v != "" {
			return true
		}
	}
	return false
}

func (f *fieldMatcher) matchInt(n int64) bool {
	if f.exists != 0 {
		return f.exists > 0
	}
	for _, want := range f.ints {
		if n == want {
			return true
		}
	}
	if len(f.values) == 0 {
		return false
	}
	if f.all {
		for _, m := range f.values {
			if !matchIntValue(m, n) {
				return false
			}
		}
		return true
	}
	for _, m := range f.values {
		if matchIntValue(m, n) {
			return true
		}
	}
	return false
}

func matchIntValue(m stringMatcher, n int64) bool {
	if im, ok := m.(intMatcher); ok {
		return im.matchInt(n)
	}
	var buf [24]byte
	return m.matchString(string(strconv.AppendInt(buf[:0], n, 10)))
}

// fieldrefMatcher compares two fields of the same event (fieldref).
type fieldrefMatcher struct {
	field      string
	src, other source
	position   string
	fold, neq  bool
}

func (f *fieldrefMatcher) match(ev *schemas.Event, s *scratch) bool {
	v, ok := f.src.firstIn(ev, s)
	if !ok {
		return false
	}
	ref, ok := f.other.firstIn(ev, s)
	if !ok {
		return false
	}
	return compareStrings(v, ref, f.position, f.fold) != f.neq
}

// matchOne matches a single-valued field.
func (f *fieldMatcher) matchOne(v string, present bool) bool {
	if f.exists != 0 {
		return present == (f.exists > 0)
	}
	if !present {
		return f.nullOK || f.emptyOK
	}
	if f.all {
		for _, m := range f.values {
			if !m.matchString(v) {
				return false
			}
		}
		return true
	}
	for _, m := range f.values {
		if m.matchString(v) {
			return true
		}
	}
	return false
}

// matchList matches a multi-valued field.
func (f *fieldMatcher) matchList(vs []string) bool {
	present := false
	for _, v := range vs {
		if v != "" {
			present = true
			break
		}
	}
	if f.exists != 0 {
		return f.matchOne("", present)
	}
	if f.all {
		for _, m := range f.values {
			if !anyMatches(m, vs) {
				return false
			}
		}
		return true
	}
	for _, m := range f.values {
		if anyMatches(m, vs) {
			return true
		}
	}
	return false
}

func anyMatches(m stringMatcher, vs []string) bool {
	for _, v := range vs {
		if m.matchString(v) {
			return true
		}
	}
	return false
}

// matchKeywords matches a field-less search against the keyword attributes:
// each value may match in any of them.
func (f *fieldMatcher) matchKeywords(ev *schemas.Event) bool {
	if f.all {
		for _, m := range f.values {
			if !f.keywordHit(m, ev) {
				return false
			}
		}
		return true
	}
	for _, m := range f.values {
		if f.keywordHit(m, ev) {
			return true
		}
	}
	return false
}

func (f *fieldMatcher) keywordHit(m stringMatcher, ev *schemas.Event) bool {
	for _, a := range f.src.keywords {
		switch a.kind {
		case kindString:
			if v := a.str(ev); v != "" && m.matchString(v) {
				return true
			}
		case kindStrings:
			if anyMatches(m, a.strs(ev)) {
				return true
			}
		}
	}
	return false
}
