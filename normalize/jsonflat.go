package normalize

import (
	"fmt"
	"strings"
)

// flatField is one leaf of a JSON record flattened by jsonFlattener: name is
// the dotted path ("alert.signature"), value the scalar's text (strings
// unquoted, booleans "true"/"false"). An array of scalars becomes its
// elements joined by ","; an array holding objects or arrays keeps its raw
// JSON text with kind jsonArray.
type flatField struct {
	name  string
	value string
	kind  jsonKind
}

// Limits on what one JSON record may hold, so that a hostile record cannot
// make a decoder grow without bound.
const (
	maxFlatFields = 4096
	maxFlatNames  = 8192 // distinct dotted names interned per decoder
)

// jsonFlattener turns one JSON object into flat fields without allocating
// in the common case: names and values are substrings of the input, and
// dotted names of nested objects are interned per decoder (a map keyed by
// the (prefix, key) pair, looked up without building the string).
// A jsonFlattener is not safe for concurrent use.
type jsonFlattener struct {
	arena  byteArena
	names  map[[2]string]string
	fields []flatField
	// last caches the dotted name built at each nested-name position of
	// the previous record: records of one kind repeat their layout, so most
	// look-ups are two short string compares instead of a map probe.
	last []nameSlot
	pos  int
}

type nameSlot struct{ prefix, key, name string }

const maxNameSlots = 512

// flatten parses s, which must be one JSON object, into f.fields (replacing
// what the previous call left). JSON null values are left out (unset).
func (f *jsonFlattener) flatten(s string) error {
	f.fields = f.fields[:0]
	f.pos = 0
	p := jsonScanner{s: s, arena: &f.arena}
	if err := f.object(&p, "", 0); err != nil {
		return err
	}
	if p.peek() != 0 {
		return p.errorf("unexpected %s after the object", p.got())
	}
	return nil
}

func (f *jsonFlattener) name(prefix, key string) string {
	if prefix == "" {
		return key
	}
	pos := f.pos
	f.pos++
	if pos < len(f.last) {
		if sl := &f.last[pos]; sl.prefix == prefix && sl.key == key {
			return sl.name
		}
	}
	n := f.lookup(prefix, key)
	switch {
	case pos < len(f.last):
		f.last[pos] = nameSlot{prefix: n[:len(prefix)], key: n[len(prefix)+1:], name: n}
	case pos == len(f.last) && pos < maxNameSlots:
		f.last = append(f.last, nameSlot{prefix: n[:len(prefix)], key: n[len(prefix)+1:], name: n})
	}
	return n
}

// lookup returns the interned prefix+"."+key.
func (f *jsonFlattener) lookup(prefix, key string) string {
	k := [2]string{prefix, key}
	if n, ok := f.names[k]; ok {
		return n
	}
	n := prefix + "." + key
	if f.names == nil {
		f.names = make(map[[2]string]string)
	}
	if len(f.names) < maxFlatNames {
		f.names[[2]string{strings.Clone(prefix), strings.Clone(key)}] = n
	}
	return n
}

func (f *jsonFlattener) add(name, value string, kind jsonKind) error {
	if len(f.fields) >= maxFlatFields {
		return fmt.Errorf("record has more than %d fields", maxFlatFields)
	}
	f.fields = append(f.fields, flatField{name: name, value: value, kind: kind})
	return nil
}

func (f *jsonFlattener) object(p *jsonScanner, prefix string, depth int) error {
	if depth > maxJSONDepth {
		return p.errorf("nesting deeper than %d", maxJSONDepth)
	}
	if err := p.expect('{'); err != nil {
		return err
	}
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		key, err := p.str()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		name := f.name(prefix, key)
		switch k := p.kind(); k {
		case jsonObject:
			if err := f.object(p, name, depth+1); err != nil {
				return err
			}
		case jsonArray:
			v, kind, err := f.array(p, depth+1)
			if err != nil {
				return fieldErr(name, err)
			}
			if err := f.add(name, v, kind); err != nil {
				return err
			}
		case jsonNull:
			_ = p.literal("null")
		default:
			k, v, err := p.scalar()
			if err != nil {
				return fieldErr(name, err)
			}
			if err := f.add(name, v, k); err != nil {
				return err
			}
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.errorf("want ',' or '}' after field %q, got %s", name, p.got())
		}
	}
}

// array reads an array value: scalars are joined by "," (kind jsonString),
// anything holding objects or arrays is returned as raw JSON (kind jsonArray).
func (f *jsonFlattener) array(p *jsonScanner, depth int) (string, jsonKind, error) {
	p.ws()
	start := p.i
	p.i++ // '['
	if p.peek() == ']' {
		p.i++
		return "", jsonString, nil
	}
	var first string
	var b []byte
	n, nested := 0, false
	for {
		switch p.kind() {
		case jsonArray, jsonObject:
			if _, err := p.skip(depth + 1); err != nil {
				return "", 0, err
			}
			nested = true
		case jsonNull:
			if err := p.literal("null"); err != nil {
				return "", 0, err
			}
		default:
			_, v, err := p.scalar()
			if err != nil {
				return "", 0, err
			}
			if !nested {
				switch n {
				case 0:
					first = v
				case 1:
					b = append(b, first...)
					fallthrough
				default:
					b = append(b, ',')
					b = append(b, v...)
				}
				n++
			}
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			if nested {
				return p.s[start:p.i], jsonArray, nil
			}
			if n <= 1 {
				return first, jsonString, nil
			}
			return string(b), jsonString, nil
		default:
			return "", 0, p.errorf("want ',' or ']', got %s", p.got())
		}
	}
}

// get returns the value of the first field named name.
func (f *jsonFlattener) get(name string) (string, bool) {
	for i := range f.fields {
		if f.fields[i].name == name {
			return f.fields[i].value, true
		}
	}
	return "", false
}
