package normalize

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Small allocation-free helpers shared by the parsers. They work on strings
// that are substrings of ev.Raw, so that values kept in the event cost no
// extra copy.

var (
	errEmptyValue  = errors.New("empty value")
	errNotInteger  = errors.New("not an unsigned integer")
	errOutOfRange  = errors.New("out of range")
	errNotDecimal  = errors.New("not a decimal number")
	errNotFinite   = errors.New("not a finite number")
	errNotAnEpoch  = errors.New("not epoch seconds or an RFC 3339 time")
	errNegativeNum = errors.New("negative")
)

// parseUint parses a decimal unsigned integer no larger than max.
func parseUint(s string, max uint64) (uint64, error) {
	if s == "" {
		return 0, errEmptyValue
	}
	if len(s) > 20 {
		return 0, errOutOfRange
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errNotInteger
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, errOutOfRange
		}
		n = n*10 + d
	}
	if n > max {
		return 0, errOutOfRange
	}
	return n, nil
}

// parseFloat parses a finite decimal number (JSON or Zeek interval text).
func parseFloat(s string) (float64, error) {
	if s == "" {
		return 0, errEmptyValue
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, errNotDecimal
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, errNotFinite
	}
	return f, nil
}

// parseSeconds parses a non-negative interval in seconds ("36.000000", 17.0)
// into whole seconds, dropping the fraction (DNS TTLs are whole seconds).
func parseSeconds(s string) (uint32, error) {
	// Fast path for Zeek's "36.000000" and JSON's 17.0 / 17.
	var n uint64
	i := 0
	for ; i < len(s) && i < 10 && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + uint64(s[i]-'0')
	}
	if i > 0 && n <= math.MaxUint32 {
		j := i
		if j < len(s) && s[j] == '.' {
			j++
			for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			}
			if j == i+1 {
				j = -1 // "36." is not a number
			}
		}
		if j == len(s) {
			return uint32(n), nil
		}
	}
	f, err := parseFloat(s)
	if err != nil {
		return 0, err
	}
	if f < 0 {
		return 0, errNegativeNum
	}
	if f > math.MaxUint32 {
		return 0, errOutOfRange
	}
	return uint32(f), nil
}

// maxEpochSeconds bounds accepted epoch times (year 5138) so that
// conversions cannot overflow.
const maxEpochSeconds = 1e11

// parseEpoch parses epoch seconds with an optional fraction
// ("1575413122.764317") into a UTC time truncated to milliseconds. The
// plain decimal form is parsed digit by digit so that no float rounding can
// move the millisecond; other number forms (exponents) go through float64.
func parseEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errEmptyValue
	}
	var sec, ms int64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		sec = sec*10 + int64(s[i]-'0')
		if sec > maxEpochSeconds {
			return time.Time{}, errOutOfRange
		}
	}
	plain := i > 0
	if plain && i < len(s) && s[i] == '.' {
		i++
		start := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if i-start < 3 {
				ms = ms*10 + int64(s[i]-'0')
			}
		}
		for d := i - start; d < 3; d++ {
			ms *= 10
		}
		plain = i > start
	}
	if plain && i == len(s) {
		return time.UnixMilli(sec*1000 + ms).UTC(), nil
	}
	f, err := parseFloat(s)
	if err != nil {
		return time.Time{}, errNotAnEpoch
	}
	if f < 0 || f > maxEpochSeconds {
		return time.Time{}, errOutOfRange
	}
	return time.UnixMilli(int64(math.Floor(f * 1000))).UTC(), nil
}

// parseRFC3339 parses an RFC 3339 time into UTC with millisecond precision.
func parseRFC3339(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC().Truncate(time.Millisecond), nil
}

// unhex returns the value of the hexadecimal digit c.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescapeHex decodes Zeek's \xNN escapes in s. With printableOnly, only
// escapes of printable ASCII (0x20-0x7e: escaped separators, a literal "-")
// are decoded and the others are kept as text, which is also how Zeek's JSON
// writer shows non-printable bytes. s is returned unchanged (no allocation)
// when there is nothing to decode.
func unescapeHex(s string, printableOnly bool) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b []byte
	last := 0
	for i := 0; i+3 < len(s); i++ {
		if s[i] != '\\' || s[i+1] != 'x' {
			continue
		}
		hi, ok1 := unhex(s[i+2])
		lo, ok2 := unhex(s[i+3])
		if !ok1 || !ok2 {
			continue
		}
		c := hi<<4 | lo
		if printableOnly && (c < 0x20 || c > 0x7e) {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[last:i]...)
		b = append(b, c)
		last = i + 4
		i += 3
	}
	if b == nil {
		return s
	}
	b = append(b, s[last:]...)
	return string(b)
}

// excerpt returns a short quoted prefix of s for error messages, so that a
// dead letter's reason stays readable without repeating the whole record.
func excerpt(s string) string {
	const max = 32
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// trimEOL drops a trailing CR/LF left by the framing (CRLF files).
func trimEOL(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
