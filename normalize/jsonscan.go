package normalize

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// jsonScanner is a small strict JSON reader for flat log records such as
// Zeek's JSON lines. It reads from a string (the event's Raw copy) and
// returns substrings of it wherever a value needs no unescaping, so a
// typical record decodes without allocating.
type jsonScanner struct {
	s string
	i int
	// arena, when set, holds unescaped strings (one allocation per chunk).
	arena *byteArena
}

type jsonKind uint8

const (
	jsonString jsonKind = iota + 1
	jsonNumber
	jsonTrue
	jsonFalse
	jsonNull
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	switch k {
	case jsonString:
		return "string"
	case jsonNumber:
		return "number"
	case jsonTrue, jsonFalse:
		return "boolean"
	case jsonNull:
		return "null"
	case jsonArray:
		return "array"
	case jsonObject:
		return "object"
	}
	return "nothing"
}

// maxJSONDepth bounds nesting in values the scanner skips.
const maxJSONDepth = 64

var errJSONEnd = errors.New("unexpected end of input")

func (p *jsonScanner) errorf(format string, args ...any) error {
	if p.i >= len(p.s) {
		return fmt.Errorf("offset %d: %w", p.i, errJSONEnd)
	}
	return fmt.Errorf("offset %d: "+format, append([]any{p.i}, args...)...)
}

func (p *jsonScanner) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (p *jsonScanner) peek() byte {
	p.ws()
	if p.i >= len(p.s) {
		return 0
	}
	return p.s[p.i]
}

// expect consumes byte c after optional white space.
func (p *jsonScanner) expect(c byte) error {
	if p.peek() != c {
		return p.errorf("want %q, got %s", c, p.got())
	}
	p.i++
	return nil
}

func (p *jsonScanner) got() string {
	if p.i >= len(p.s) {
		return "end of input"
	}
	return strconv.QuoteRune(rune(p.s[p.i]))
}

// kind reports the kind of the value that starts at the next non-space byte.
func (p *jsonScanner) kind() jsonKind {
	switch c := p.peek(); {
	case c == '"':
		return jsonString
	case c == '-' || (c >= '0' && c <= '9'):
		return jsonNumber
	case c == 't':
		return jsonTrue
	case c == 'f':
		return jsonFalse
	case c == 'n':
		return jsonNull
	case c == '[':
		return jsonArray
	case c == '{':
		return jsonObject
	}
	return 0
}

// str reads a string value, decoding escapes only when present.
func (p *jsonScanner) str() (string, error) {
	if p.peek() != '"' {
		return "", p.errorf("want string, got %s", p.got())
	}
	p.i++
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			return v, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return "", p.errorf("control character %q in string", c)
		}
		p.i++
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonScanner) strSlow(start int) (string, error) {
	var b []byte
	if p.arena != nil {
		b = p.arena.room(p.i - start + 16)
	} else {
		b = make([]byte, 0, p.i-start+16)
	}
	b = append(b, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			if p.arena != nil {
				return p.arena.string(b), nil
			}
			// b is never written again: share it instead of copying.
			return unsafe.String(unsafe.SliceData(b), len(b)), nil
		case c < 0x20:
			return "", p.errorf("control character %q in string", c)
		case c != '\\':
			b = append(b, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			p.i++
			return "", p.errorf("unterminated string")
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					if lo, ok := p.hex4(); ok {
						if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
							r2 = d
						} else {
							p.i = save
						}
					} else {
						return "", p.errorf("invalid \\u escape")
					}
				}
				r = r2
			}
			b = utf8.AppendRune(b, r)
		default:
			p.i -= 1
			return "", p.errorf("invalid escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonScanner) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		v, ok := unhex(p.s[p.i+k])
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(v)
	}
	p.i += 4
	return r, true
}

// num reads a number value per the JSON grammar and returns its text.
func (p *jsonScanner) num() (string, error) {
	p.ws()
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.i < len(p.s) && p.s[p.i] >= '1' && p.s[p.i] <= '9':
		p.digits()
	default:
		return "", p.errorf("want number, got %s", p.got())
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return "", p.errorf("want digit after decimal point, got %s", p.got())
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return "", p.errorf("want digit in exponent, got %s", p.got())
		}
	}
	return p.s[start:p.i], nil
}

func (p *jsonScanner) digits() int {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

func (p *jsonScanner) literal(word string) error {
	p.ws()
	if !strings.HasPrefix(p.s[p.i:], word) {
		return p.errorf("invalid literal, want %s", word)
	}
	p.i += len(word)
	return nil
}

// scalar reads a string, number, boolean or null and returns its kind and
// text: strings unquoted, numbers as written, booleans as "true"/"false",
// null as "". Arrays and objects are an error.
func (p *jsonScanner) scalar() (jsonKind, string, error) {
	k := p.kind()
	var err error
	var v string
	switch k {
	case jsonString:
		v, err = p.str()
	case jsonNumber:
		v, err = p.num()
	case jsonTrue:
		v, err = "true", p.literal("true")
	case jsonFalse:
		v, err = "false", p.literal("false")
	case jsonNull:
		err = p.literal("null")
	case jsonArray, jsonObject:
		return k, "", p.errorf("want a single value, got %s", k)
	default:
		return 0, "", p.errorf("want a value, got %s", p.got())
	}
	return k, v, err
}

// skip reads any value and returns its raw JSON text.
func (p *jsonScanner) skip(depth int) (string, error) {
	if depth > maxJSONDepth {
		return "", p.errorf("nesting deeper than %d", maxJSONDepth)
	}
	k := p.kind()
	start := p.i
	switch k {
	case jsonArray:
		p.i++
		if p.peek() == ']' {
			p.i++
			return p.s[start:p.i], nil
		}
		for {
			if _, err := p.skip(depth + 1); err != nil {
				return "", err
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return p.s[start:p.i], nil
			default:
				return "", p.errorf("want ',' or ']', got %s", p.got())
			}
		}
	case jsonObject:
		p.i++
		if p.peek() == '}' {
			p.i++
			return p.s[start:p.i], nil
		}
		for {
			if _, err := p.str(); err != nil {
				return "", err
			}
			if err := p.expect(':'); err != nil {
				return "", err
			}
			if _, err := p.skip(depth + 1); err != nil {
				return "", err
			}
			switch p.peek() {
			case ',':
				p.i++
			case '}':
				p.i++
				return p.s[start:p.i], nil
			default:
				return "", p.errorf("want ',' or '}', got %s", p.got())
			}
		}
	}
	if _, _, err := p.scalar(); err != nil {
		return "", err
	}
	return p.s[start:p.i], nil
}

// elems calls f for each scalar element of an array value. An element
// that is itself an array or object is an error.
func (p *jsonScanner) elems(f func(k jsonKind, v string) error) error {
	if p.kind() != jsonArray {
		return p.errorf("want array, got %s", p.kindOrByte())
	}
	p.i++
	if p.peek() == ']' {
		p.i++
		return nil
	}
	for {
		k, v, err := p.scalar()
		if err != nil {
			return err
		}
		if err := f(k, v); err != nil {
			return err
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return nil
		default:
			return p.errorf("want ',' or ']', got %s", p.got())
		}
	}
}

// kindOrByte names the next value's kind for error messages.
func (p *jsonScanner) kindOrByte() string {
	if k := p.kind(); k != 0 {
		return k.String()
	}
	return p.got()
}
