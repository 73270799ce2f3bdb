package detect

import (
	"regexp"
	"regexp/syntax"
)

// existsForm returns a regular expression that matches somewhere in
// exactly the strings re matches somewhere in, with what cannot change that
// answer cut off its ends: a trailing x? or x* (matching empty), x+ to x,
// x{2,64} to x{2}, and the same at the front. A match of P·S with S able to
// match empty is a match of P, and one of P extends to one of P·S.
//
// Sigma regexes are written to be read, and often end in such parts
// (SigmaHQ's "-k\s\w{1,64}(?:\s?(?:-p|-s))?"); Go's backtracker clears a
// bit per instruction and input byte on every call, and x{1,64} is 64
// copies of x. The rule still shows the expression as written.
func existsForm(re *regexp.Regexp) *regexp.Regexp {
	p, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return re
	}
	t := trimEnd(p, false)
	t = trimEnd(t, true)
	out, err := regexp.Compile(t.String())
	if err != nil {
		return re
	}
	return out
}

// matchesEmpty reports whether re can always match the empty string, at any
// position: x?, x*, x{0,n}, the empty match.
func matchesEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpQuest, syntax.OpStar, syntax.OpEmptyMatch:
		return true
	case syntax.OpRepeat:
		return re.Min == 0
	}
	return false
}

// trimEnd cuts what matchesEmpty off re's last (head: first) parts, and
// reduces a final repetition to its minimum.
func trimEnd(re *syntax.Regexp, head bool) *syntax.Regexp {
	switch re.Op {
	case syntax.OpConcat:
		subs := re.Sub
		for len(subs) > 1 {
			i := len(subs) - 1
			if head {
				i = 0
			}
			if !matchesEmpty(subs[i]) {
				break
			}
			if head {
				subs = subs[1:]
			} else {
				subs = subs[:i]
			}
		}
		i := len(subs) - 1
		if head {
			i = 0
		}
		subs[i] = trimEnd(subs[i], head)
		if len(subs) == 1 {
			return subs[0]
		}
		re.Sub = subs
		return re
	case syntax.OpCapture:
		return trimEnd(re.Sub[0], head) // the match's groups are never read
	case syntax.OpPlus:
		return trimEnd(re.Sub[0], head)
	case syntax.OpRepeat:
		if re.Min == 1 {
			return trimEnd(re.Sub[0], head)
		}
		if re.Min > 1 {
			re.Max = re.Min
		}
	}
	return re
}
