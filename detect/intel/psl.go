package intel

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// PublicSuffixes is the Public Suffix List (publicsuffix.org): the names
// under which anyone may register a domain ("com", "co.uk", "github.io").
// Parent-domain matching stops above them, so a feed listing "evil.co.uk"
// matches "www.evil.co.uk" but a (mistaken) indicator "co.uk" matches
// nothing but itself. It is read-only after ParsePublicSuffixes and safe for
// concurrent use.
type PublicSuffixes struct {
	rules map[string]pslRule
}

type pslRule uint8

const (
	pslNormal    pslRule = 1 << iota // "co.uk"
	pslWildcard                      // "*.ck": every child of ck is a suffix
	pslException                     // "!www.ck": www.ck is not one
)

// ParsePublicSuffixes reads public_suffix_list.dat (ICANN and PRIVATE
// sections alike). Names are lower-cased; IDN rules stay in Unicode as the
// file writes them (query names arrive in punycode and never match those,
// which only makes matching stop one label later for them).
func ParsePublicSuffixes(r io.Reader) (*PublicSuffixes, error) {
	p := &PublicSuffixes{rules: make(map[string]pslRule, 10000)}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "//") {
			continue
		}
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			line = line[:i]
		}
		line = strings.ToLower(line)
		switch {
		case strings.HasPrefix(line, "!"):
			p.rules[line[1:]] |= pslException
		case strings.HasPrefix(line, "*."):
			p.rules[line[2:]] |= pslWildcard
		default:
			p.rules[line] |= pslNormal
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read public suffix list: %w", err)
	}
	if len(p.rules) == 0 {
		return nil, fmt.Errorf("read public suffix list: no rules")
	}
	return p, nil
}

// Len is the number of rules.
func (p *PublicSuffixes) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// IsPublicSuffix reports whether the lower-case name s is a public suffix.
// With a nil list, single-label names (top-level domains) are.
func (p *PublicSuffixes) IsPublicSuffix(s string) bool {
	if p == nil {
		return strings.IndexByte(s, '.') < 0
	}
	r := p.rules[s]
	if r&pslException != 0 {
		return false
	}
	if r&pslNormal != 0 {
		return true
	}
	parent := s
	if i := strings.IndexByte(s, '.'); i >= 0 {
		parent = s[i+1:]
	} else {
		return true // an unlisted TLD is still a suffix ("*" default rule)
	}
	return p.rules[parent]&pslWildcard != 0
}

// isPublicSuffix is IsPublicSuffix on bytes, without allocating.
func (p *PublicSuffixes) isPublicSuffix(s []byte) bool {
	dot := -1
	for i, c := range s {
		if c == '.' {
			dot = i
			break
		}
	}
	if p == nil {
		return dot < 0
	}
	r := p.rules[string(s)]
	if r&pslException != 0 {
		return false
	}
	if r&pslNormal != 0 || dot < 0 {
		return true
	}
	return p.rules[string(s[dot+1:])]&pslWildcard != 0
}
