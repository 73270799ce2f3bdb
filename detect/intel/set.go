package intel

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Kind is what an indicator describes.
type Kind uint8

const (
	KindDomain Kind = iota + 1 // a DNS name; also matches its subdomains
	KindIP                     // one IPv4 or IPv6 address
	KindCIDR                   // an IPv4 or IPv6 prefix
)

func (k Kind) String() string {
	switch k {
	case KindDomain:
		return "domain"
	case KindIP:
		return "ip"
	case KindCIDR:
		return "cidr"
	}
	return "unknown"
}

// Match is one indicator that matched: the feed that lists it and the
// indicator as the feed wrote it (normalized: lower case, no trailing dot,
// CIDRs in canonical form).
type Match struct {
	Feed      string
	Kind      Kind
	Indicator string
}

// record is one (feed, indicator) pair. Indicator text lives in Set.arena.
type record struct {
	off  uint32 // into arena
	n    uint16 // length
	feed uint16 // index into Set.feeds
	kind Kind
	next int32 // next record with the same key (another feed), -1 at the end
}

// Set is a compiled, immutable set of indicators from any number of feeds.
// Lookups allocate nothing and cost O(labels) map probes for names and
// O(distinct prefix lengths) for addresses, independent of the number of
// indicators. Safe for concurrent use.
//
// Memory: domain keys are 64-bit xxhash values (map[uint64]int32), the text
// of every indicator is kept once in one byte arena (for verification and to
// name the indicator in a detection); an indicator costs about 50 bytes
// plus its length (see BenchmarkSetMemory).
type Set struct {
	feeds    []string
	arena    []byte
	records  []record
	domains  map[uint64]int32    // xxhash(name) → first record
	collided map[string]int32    // names whose hash another name took first
	addrs    map[prefixKey]int32 // masked prefix → first record
	bits4    []int               // distinct IPv4 prefix lengths, longest first
	bits6    []int
	psl      *PublicSuffixes
	bloom    []uint64 // split-block Bloom filter of domain hashes: 8 words (one cache line) per block
}

// Builder accumulates indicators; Build compiles them into a Set.
// Not safe for concurrent use.
type Builder struct {
	s     *Set
	feeds map[string]uint16
	seen  map[string]bool // feed + "\x00" + indicator, to drop duplicates within a feed
}

// MaxFeeds bounds the number of feeds in a Set.
const MaxFeeds = 1 << 16

// MaxIndicatorLen bounds one indicator (a DNS name is at most 253 bytes).
const MaxIndicatorLen = 253

// NewBuilder starts an empty Set. psl may be nil (parent matching then stops
// at the top-level domain). sizeHint is the expected number of indicators.
func NewBuilder(psl *PublicSuffixes, sizeHint int) *Builder {
	return &Builder{
		s: &Set{
			domains:  make(map[uint64]int32, sizeHint),
			collided: map[string]int32{},
			addrs:    map[prefixKey]int32{},
			psl:      psl,
			records:  make([]record, 0, sizeHint),
			arena:    make([]byte, 0, sizeHint*16),
		},
		feeds: map[string]uint16{},
	}
}

var (
	errEmpty    = errors.New("empty indicator")
	errTooLong  = fmt.Errorf("indicator longer than %d bytes", MaxIndicatorLen)
	errBadName  = errors.New("not a domain name, IP address or CIDR")
	errTooFeeds = fmt.Errorf("more than %d feeds", MaxFeeds)
)

// Add adds one indicator of feed. value is classified: an IP address, a
// CIDR ("198.51.100.0/24"), or a domain name (a leading "*." or "." is
// dropped: every indicator already matches subdomains). Duplicates are
// ignored. The error names what is wrong with value.
func (b *Builder) Add(feed, value string) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return errEmpty
	}
	if len(value) > MaxIndicatorLen {
		return errTooLong
	}
	if a, err := netip.ParseAddr(value); err == nil {
		a = a.Unmap().WithZone("")
		return b.addPrefix(feed, netip.PrefixFrom(a, a.BitLen()), KindIP)
	}
	if strings.IndexByte(value, '/') >= 0 {
		p, err := netip.ParsePrefix(value)
		if err != nil {
			return fmt.Errorf("CIDR %q: %w", value, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return b.addPrefix(feed, p.Masked(), KindCIDR)
	}
	name, ok := normalizeName(value)
	if !ok {
		return fmt.Errorf("%q: %w", value, errBadName)
	}
	return b.addDomain(feed, name)
}

// normalizeName lower-cases a domain, drops "*." / "." prefixes and the
// trailing dot, and checks the characters (letters, digits, '-', '_').
func normalizeName(v string) (string, bool) {
	v = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(v, "*"), "."), ".")
	if v == "" || strings.Contains(v, "..") {
		return "", false
	}
	lower := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		case c >= 'A' && c <= 'Z':
			lower = false
		default:
			return "", false
		}
	}
	if !lower {
		v = strings.ToLower(v)
	}
	return v, true
}

func (b *Builder) feedID(feed string) (uint16, error) {
	if id, ok := b.feeds[feed]; ok {
		return id, nil
	}
	if len(b.s.feeds) >= MaxFeeds {
		return 0, errTooFeeds
	}
	id := uint16(len(b.s.feeds))
	b.feeds[feed] = id
	b.s.feeds = append(b.s.feeds, feed)
	return id, nil
}

func (b *Builder) newRecord(feed uint16, kind Kind, text string) int32 {
	s := b.s
	s.records = append(s.records, record{off: uint32(len(s.arena)), n: uint16(len(text)), feed: feed, kind: kind, next: -1})
	s.arena = append(s.arena, text...)
	return int32(len(s.records) - 1)
}

// chain appends record r to the chain starting at head unless head's chain
// already holds the same feed (a duplicate). It reports whether r was kept.
func (b *Builder) chain(head, r int32) bool {
	s := b.s
	for i := head; ; i = s.records[i].next {
		if s.records[i].feed == s.records[r].feed {
			return false
		}
		if s.records[i].next < 0 {
			s.records[i].next = r
			return true
		}
	}
}

func (b *Builder) addDomain(feed, name string) error {
	fid, err := b.feedID(feed)
	if err != nil {
		return err
	}
	s := b.s
	h := xxhash.Sum64String(name)
	head, ok := s.domains[h]
	if ok && s.text(head) != name {
		head, ok = s.collided[name]
		if !ok {
			s.collided[name] = b.newRecord(fid, KindDomain, name)
			return nil
		}
	}
	if !ok {
		s.domains[h] = b.newRecord(fid, KindDomain, name)
		return nil
	}
	r := b.newRecord(fid, KindDomain, name)
	if !b.chain(head, r) {
		b.drop(r)
	}
	return nil
}

// drop removes the last record (a duplicate).
func (b *Builder) drop(r int32) {
	s := b.s
	s.arena = s.arena[:s.records[r].off]
	s.records = s.records[:r]
}

func (b *Builder) addPrefix(feed string, p netip.Prefix, kind Kind) error {
	fid, err := b.feedID(feed)
	if err != nil {
		return err
	}
	s := b.s
	text := p.String()
	if kind == KindIP {
		text = p.Addr().String()
	}
	key := p.Addr()
	// The prefix length is part of the key: 10.0.0.0/8 and 10.0.0.0/16 differ.
	bits := p.Bits()
	if p.Addr().Is4() {
		s.bits4 = insertBits(s.bits4, bits)
	} else {
		s.bits6 = insertBits(s.bits6, bits)
	}
	k := prefixKey{key, uint8(bits)}
	r := b.newRecord(fid, kind, text)
	if head, ok := s.addrs[k]; ok {
		if !b.chain(head, r) {
			b.drop(r)
		}
		return nil
	}
	s.addrs[k] = r
	return nil
}

// prefixKey is a masked prefix address with its length: 10.0.0.0/8 and
// 10.0.0.0/16 are different keys.
type prefixKey struct {
	addr netip.Addr
	bits uint8
}

func insertBits(list []int, bits int) []int {
	for i, b := range list {
		if b == bits {
			return list
		}
		if b < bits {
			list = append(list, 0)
			copy(list[i+1:], list[i:])
			list[i] = bits
			return list
		}
	}
	return append(list, bits)
}

// Build returns the compiled Set. The Builder must not be used afterwards.
func (b *Builder) Build() *Set {
	s := b.s
	b.s = nil
	// ~12 bits per name: one cache line per lookup, ~0.5% false positives,
	// so a miss (most names) rarely touches the big map.
	n := len(s.domains) + len(s.collided)
	blocks := max(1, (n*12+511)/512)
	s.bloom = make([]uint64, blocks*8)
	for h := range s.domains {
		s.bloomAdd(h)
	}
	for name := range s.collided {
		s.bloomAdd(xxhash.Sum64String(name))
	}
	return s
}

// bloomBits returns the block offset and the 8 bit positions (one per word)
// a hash sets.
func (s *Set) bloomBlock(h uint64) int {
	return int((h>>32)*uint64(len(s.bloom)/8)>>32) * 8
}

func (s *Set) bloomAdd(h uint64) {
	blk := s.bloom[s.bloomBlock(h):]
	x := uint32(h)
	for i := 0; i < 8; i++ {
		x = x*0x9E3779B1 + 0x7F4A7C15
		blk[i] |= 1 << (x >> 26)
	}
}

func (s *Set) bloomHas(h uint64) bool {
	blk := s.bloom[s.bloomBlock(h):]
	x := uint32(h)
	for i := 0; i < 8; i++ {
		x = x*0x9E3779B1 + 0x7F4A7C15
		if blk[i]&(1<<(x>>26)) == 0 {
			return false
		}
	}
	return true
}

func (s *Set) equal(r int32, b []byte) bool {
	rec := &s.records[r]
	return string(s.arena[rec.off:rec.off+uint32(rec.n)]) == string(b)
}

func (s *Set) text(r int32) string {
	rec := &s.records[r]
	return string(s.arena[rec.off : rec.off+uint32(rec.n)])
}

// Len is the number of (feed, indicator) pairs.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.records)
}

// Feeds lists the feed names in the order they were first added.
func (s *Set) Feeds() []string { return append([]string(nil), s.feeds...) }

// appendChain appends a Match per record of the chain starting at r.
func (s *Set) appendChain(r int32, out []Match) []Match {
	for ; r >= 0; r = s.records[r].next {
		rec := &s.records[r]
		out = append(out, Match{Feed: s.feeds[rec.feed], Kind: rec.kind, Indicator: s.text(r)})
	}
	return out
}

// MatchDomain appends the indicators matching name: the name itself and each
// parent domain above the public suffix. name may have any case and a
// trailing dot. It allocates only when something matches.
func (s *Set) MatchDomain(name string, out []Match) []Match {
	if s == nil || len(s.domains)+len(s.collided) == 0 {
		return out
	}
	var buf [MaxIndicatorLen + 1]byte
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > MaxIndicatorLen {
		return out
	}
	lower := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	for start := 0; start < len(lower); {
		suffix := lower[start:]
		if start > 0 && s.psl.isPublicSuffix(suffix) {
			break
		}
		if h := xxhash.Sum64(suffix); len(s.bloom) > 0 && !s.bloomHas(h) {
			// not listed
		} else if r, ok := s.domains[h]; ok {
			if s.equal(r, suffix) {
				out = s.appendChain(r, out)
			} else if r, ok := s.collided[string(suffix)]; ok {
				out = s.appendChain(r, out)
			}
		}
		dot := -1
		for i := start; i < len(lower); i++ {
			if lower[i] == '.' {
				dot = i
				break
			}
		}
		if dot < 0 {
			break
		}
		start = dot + 1
	}
	return out
}

// MatchIP appends the IP and CIDR indicators containing addr.
func (s *Set) MatchIP(addr netip.Addr, out []Match) []Match {
	if s == nil || len(s.addrs) == 0 || !addr.IsValid() {
		return out
	}
	addr = addr.Unmap().WithZone("")
	bits := s.bits6
	if addr.Is4() {
		bits = s.bits4
	}
	for _, b := range bits {
		p, err := addr.Prefix(b)
		if err != nil {
			continue
		}
		if r, ok := s.addrs[prefixKey{p.Addr(), uint8(b)}]; ok {
			out = s.appendChain(r, out)
		}
	}
	return out
}
