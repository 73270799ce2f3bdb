package detect

import (
	"strconv"

	"github.com/watchfloor/watchfloor/schemas"
)

// matcher is a compiled boolean node: a condition operator, a search, or one
// field item. Matchers are immutable and safe for concurrent use.
type matcher interface {
	match(ev *schemas.Event) bool
}

type andM []matcher

func (a andM) match(ev *schemas.Event) bool {
	for _, m := range a {
		if !m.match(ev) {
			return false
		}
	}
	return true
}

type orM []matcher

func (o orM) match(ev *schemas.Event) bool {
	for _, m := range o {
		if m.match(ev) {
			return true
		}
	}
	return false
}

type notM struct{ m matcher }

func (n notM) match(ev *schemas.Event) bool { return !n.m.match(ev) }

// source is where a field item reads its value, resolved at compile time:
// an attribute of the event struct, the event's unmapped attribute of a
// given key, or the keyword attributes.
type source struct {
	attr     *attribute
	unmapped string
	keywords []*attribute
}

// fieldMatcher is one compiled `field|modifiers: values` item.
//
// A field that is absent or empty matches null, and values that match the
// empty string (such as ”), except a bare '*' (which needs a value).
// For a multi-valued attribute any element may match; with "all" every value
// must be matched by some element.
type fieldMatcher struct {
	src     source
	values  []stringMatcher
	ints    []int64 // exact integer values, for integer attributes
	all     bool
	nullOK  bool
	emptyOK bool
	exists  int8 // 1: must be present, -1: must be absent, 0: no check
}

func (f *fieldMatcher) match(ev *schemas.Event) bool {
	switch {
	case f.src.keywords != nil:
		return f.matchKeywords(ev)
	case f.src.attr == nil:
		v, ok := ev.UnmappedValue(f.src.unmapped)
		return f.matchOne(v, ok && v != "")
	}
	a := f.src.attr
	switch a.kind {
	case kindString:
		v := a.str(ev)
		return f.matchOne(v, v != "")
	case kindStrings:
		return f.matchList(a.strs(ev))
	default:
		n, ok := a.integer(ev)
		if f.exists != 0 || !ok {
			return f.matchOne("", ok)
		}
		for _, want := range f.ints {
			if n == want {
				return true
			}
		}
		if len(f.values) == 0 {
			return false
		}
		return f.matchOne(strconv.FormatInt(n, 10), true)
	}
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
	if f.exists != 0 || !present {
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
