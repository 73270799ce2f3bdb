package detect

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/watchfloor/watchfloor/schemas"
)

// This file is the literal prefilter that keeps the cost per event from
// growing with the number of rules.
//
// At compile time every rule's condition is reduced to a necessary
// condition: up to maxClauses clauses of (field, literal) atoms such that, if
// the rule matches an event, every clause has an atom whose literal occurs
// (ASCII case-folded) in that field's value. AND keeps the most selective
// clauses of its children, OR distributes over them ((A and B) or C needs
// A or C, and B or C); NOT, null, exists, CIDR, numbers and fieldref give
// no atoms, regular expressions the literals they cannot match without,
// and a rule whose condition reduces to nothing is
// evaluated for every event of its group. All atoms of a group that read the
// same field go into one scanner (gramIndex), so each field value of an
// event is scanned once for all rules; only the rules whose atoms occur are
// then evaluated in full. A rule is reached only through the atoms of its
// most selective clause (its trigger): a common atom ("medium" of
// IntegrityLevel) would otherwise walk every rule that names it on every
// event holding it. The other clauses of a triggered rule are then checked
// against the patterns the scan saw. The prefilter only ever
// over-approximates: the full evaluation decides.

// maxAtom is the longest window of an atom's literal the scanner keys on:
// eight bytes are one load and one masked compare.
const maxAtom = 8

// minIndexedGroup is the rule count from which a group is prefiltered.
const minIndexedGroup = 8

type atom struct {
	src source
	lit string // ASCII, lower-cased, 1..maxAtomLit bytes
}

// A clause is an OR of atoms; a rule's prefilter is an AND of clauses (at
// most maxClauses): the rule is a candidate when every clause has an atom
// that occurs in the event.
type clause []atom

const maxClauses = 8

// clausesOf returns the necessary clauses of m, or ok false when m can
// match without any literal occurring.
func clausesOf(m matcher) ([]clause, bool) {
	switch m := m.(type) {
	case andM:
		var all []clause
		for _, c := range m {
			if cs, ok := clausesOf(c); ok {
				all = append(all, cs...)
			}
		}
		return bestClauses(all), len(all) > 0
	case orM:
		// OR over ANDs distributes: (A and B) or C needs (A or C) and
		// (B or C). Keeping every product clause (up to maxClauses) lets a
		// rule like "1 of selection_*" with a common atom in one selection
		// ("\windows\" in Image) still be narrowed by its rarer one.
		prod := []clause{nil}
		for _, c := range m {
			cs, ok := clausesOf(c)
			if !ok || len(cs) == 0 {
				return nil, false
			}
			next := make([]clause, 0, len(prod)*len(cs))
			for _, p := range prod {
				for _, q := range cs {
					next = append(next, append(p[:len(p):len(p)], q...))
				}
			}
			prod = bestClauses(next)
		}
		return prod, len(prod) > 0 && len(prod[0]) > 0
	case *fieldMatcher:
		return m.clauses()
	}
	return nil, false
}

// bestClauses keeps the maxClauses most selective clauses.
func bestClauses(cs []clause) []clause {
	if len(cs) <= maxClauses {
		return cs
	}
	slices.SortStableFunc(cs, func(a, b clause) int {
		switch {
		case betterClause(a, b):
			return -1
		case betterClause(b, a):
			return 1
		}
		return 0
	})
	return cs[:maxClauses]
}

func bestClause(cs []clause) clause { return cs[bestClauseIndex(cs)] }

func bestClauseIndex(cs []clause) int {
	best := 0
	for i := range cs[1:] {
		if betterClause(cs[i+1], cs[best]) {
			best = i + 1
		}
	}
	return best
}

// betterClause reports whether a is more selective than b: a longer
// shortest literal, then fewer atoms.
func betterClause(a, b clause) bool {
	sa, sb := clauseScore(a), clauseScore(b)
	if sa != sb {
		return sa > sb
	}
	return len(a) < len(b)
}

func clauseScore(c clause) int {
	s := maxAtom + 1
	for _, a := range c {
		s = min(s, atomLen(a.lit))
	}
	return s
}

// nonASCIIAtom is the pseudo-literal of a literal that holds a rune whose
// case folds are all non-ASCII: any non-ASCII byte in the value hits it.
const nonASCIIAtom = "\x80"

// atomLen is an atom's selectivity score: its length, of which the scanner
// keys on at most maxAtom bytes.
func atomLen(lit string) int {
	if lit == nonASCIIAtom {
		return 4 // rarer than most short literals in typical, mostly-ASCII logs
	}
	if isCommonToken(lit) {
		return 3 // in most events: no better than a three-byte literal
	}
	return min(len(lit), maxAtom)
}

// strictNonASCII reports whether s holds a rune none of whose case folds is
// ASCII (so a string matching s under folding has a non-ASCII byte).
func strictNonASCII(s string) bool {
	for _, r := range s {
		if r >= utf8.RuneSelf && r != utf8.RuneError && foldClass(r) >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func (f *fieldMatcher) clauses() ([]clause, bool) {
	if f.exists != 0 || f.nullOK || f.emptyOK || len(f.ints) > 0 || len(f.values) == 0 {
		return nil, false
	}
	if f.src.attr != nil && f.src.attr.kind == kindInt {
		return nil, false
	}
	mk := func(lits [][]string) []clause {
		out := make([]clause, len(lits))
		for i, l := range lits {
			for _, lit := range l {
				out[i] = append(out[i], atom{src: f.src, lit: lit})
			}
		}
		return out
	}
	if f.all {
		// Every value must match: every value's clauses are necessary.
		var all []clause
		for _, v := range f.values {
			if lits, ok := literalsOf(v); ok {
				all = append(all, mk(lits)...)
			}
		}
		return bestClauses(all), len(all) > 0
	}
	var u clause
	for _, v := range f.values {
		lits, ok := literalsOf(v)
		if !ok {
			return nil, false
		}
		u = append(u, bestClause(mk(lits))...)
	}
	return []clause{u}, true
}

// literalsOf returns the necessary literal clauses of a string matcher:
// in any string sm matches, one literal of every clause occurs.
func literalsOf(sm stringMatcher) ([][]string, bool) {
	one := func(s string) ([][]string, bool) {
		a := atomLiteral(s)
		return [][]string{{a}}, a != ""
	}
	switch m := sm.(type) {
	case exactMatcher:
		return one(m.lit)
	case prefixMatcher:
		return one(m.lit)
	case suffixMatcher:
		return one(m.lit)
	case containsMatcher:
		return one(m.lit)
	case segmentsMatcher:
		var out [][]string
		for _, s := range m.segs {
			if a := atomLiteral(s); a != "" {
				out = append(out, []string{a})
			}
		}
		return out, len(out) > 0
	case *globMatcher:
		var out [][]string
		var cur []rune
		flush := func() {
			if a := atomLiteral(string(cur)); a != "" {
				out = append(out, []string{a})
			}
			cur = cur[:0]
		}
		for _, t := range m.toks {
			if t.kind == tokLit {
				cur = append(cur, t.r)
				continue
			}
			flush()
		}
		flush()
		return out, len(out) > 0
	case regexMatcher:
		re, err := syntax.Parse(m.re.String(), syntax.Perl)
		if err != nil {
			return nil, false
		}
		return regexLiterals(re.Simplify())
	case orString:
		return unionLiterals(m)
	case *multiContains:
		return unionLiterals(m.slow)
	case *multiAffix:
		return unionLiterals(m.slow)
	case *exactSet:
		return unionLiterals(m.slow)
	case *multiContainsUni:
		return unionLiterals(m.slow)
	}
	return nil, false
}

// unionLiterals is one clause: the best clause of each matcher, ORed.
func unionLiterals(ms []stringMatcher) ([][]string, bool) {
	var u []string
	for _, s := range ms {
		lits, ok := literalsOf(s)
		if !ok {
			return nil, false
		}
		u = append(u, bestLits(lits)...)
	}
	return [][]string{u}, len(u) > 0
}

func bestLits(ls [][]string) []string {
	score := func(l []string) int {
		s := maxAtom + 1
		for _, x := range l {
			s = min(s, atomLen(x))
		}
		return s*1000 - len(l)
	}
	best := ls[0]
	for _, l := range ls[1:] {
		if score(l) > score(best) {
			best = l
		}
	}
	return best
}

// regexLiterals returns necessary literal clauses of a regular expression.
func regexLiterals(re *syntax.Regexp) ([][]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		a := atomLiteral(string(re.Rune))
		return [][]string{{a}}, a != ""
	case syntax.OpCapture, syntax.OpPlus:
		return regexLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return regexLiterals(re.Sub[0])
		}
	case syntax.OpConcat:
		// Adjacent literals and small character classes make one clause of
		// their products: `arp\s+-a` gives "arp " and its four other
		// whitespace forms, not the three bytes "arp", which hold in most
		// command lines. A repetition of at least one adds one instance
		// and ends the run, the next one starting with that instance.
		var out [][]string
		run, lit := []string{""}, false
		flush := func() {
			if lit {
				var c []string
				for _, r := range run {
					a := atomLiteral(r)
					if a == "" {
						c = nil
						break
					}
					if !slices.Contains(c, a) {
						c = append(c, a)
					}
				}
				if len(c) > 0 {
					out = append(out, c)
				}
			}
			run, lit = []string{""}, false
		}
		for _, s := range re.Sub {
			if ps, isLit, ok := regexPieces(s); ok && len(run)*len(ps) <= maxRegexRun {
				run, lit = crossJoin(run, ps), lit || isLit
				continue
			}
			inner := s
			if (s.Op == syntax.OpPlus || s.Op == syntax.OpRepeat && s.Min >= 1) && len(s.Sub) == 1 {
				inner = s.Sub[0]
			}
			if ps, isLit, ok := regexPieces(inner); ok && inner != s {
				if len(run)*len(ps) <= maxRegexRun {
					run, lit = crossJoin(run, ps), lit || isLit
				}
				flush()
				run, lit = ps, isLit
				continue
			}
			flush()
			if ls, ok := regexLiterals(s); ok {
				out = append(out, ls...)
			}
		}
		flush()
		if len(out) > maxClauses {
			out = out[:maxClauses]
		}
		return out, len(out) > 0
	case syntax.OpAlternate:
		var u []string
		for _, s := range re.Sub {
			ls, ok := regexLiterals(s)
			if !ok {
				return nil, false
			}
			u = append(u, bestLits(ls)...)
		}
		return [][]string{u}, len(u) > 0
	}
	return nil, false
}

// maxRegexRun bounds the strings a run of a regular expression's literals
// and classes expands to.
const maxRegexRun = 16

// regexPieces returns the strings that one occurrence of re spells when re
// is a literal or a class of a few ASCII characters; isLit reports a
// literal.
func regexPieces(re *syntax.Regexp) (ps []string, isLit, ok bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return []string{string(re.Rune)}, true, true
	case syntax.OpCharClass:
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			if hi >= utf8.RuneSelf {
				return nil, false, false
			}
			if n += int(hi-lo) + 1; n > maxRegexRun {
				return nil, false, false
			}
		}
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				if p := string(lowerASCII(byte(r))); !slices.Contains(ps, p) {
					ps = append(ps, p)
				}
			}
		}
		return ps, false, len(ps) > 0
	}
	return nil, false, false
}

// crossJoin returns every string of a followed by one of b.
func crossJoin(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

// commonBytes are frequent in event text; atoms avoid them when they can.
var commonBytes = func() (t [256]bool) {
	for _, b := range []byte(" \\/.-_:=\"'0123456789eaiosnrtlcdx") {
		t[b] = true
	}
	return t
}()

// commonTokens occur in most Windows and Linux events of the fields rules
// look at; an atom made of them would select nearly every event.
var commonTokens = []string{
	`c:\`, `\windows\`, `\system32\`, `\syswow64\`, `\program files`, ` (x86)\`, `\programdata\`,
	`\users\`, `\appdata\`, `\local\`, `\roaming\`, `\temp\`, `microsoft`, `\windowspowershell\`,
	`\v1.0\`, `.exe`, `.dll`, `/usr/`, `/bin/`, `/lib/`, `/tmp/`, `/home/`, `hklm\`, `\software\`,
	`\currentversion\`, `\services\`, `\controlset001\`, `\currentcontrolset\`, `nt authority\`,
}

func isCommonToken(lit string) bool { return slices.Contains(commonTokens, lit) }

// atomLiteral picks the atom for a literal: its longest ASCII run, lower
// cased, of at most maxAtomLit bytes around its best window (atomWindow).
// A literal with a rune that folds to no ASCII byte and an ASCII run of less
// than four bytes (windash's " –ma ") or of a common token only gets the
// non-ASCII pseudo-literal: in mostly-ASCII logs that is rarer than "ma ",
// and a three-byte literal costs the scan a search per value. "" when the
// literal has no ASCII byte.
func atomLiteral(s string) string {
	bs, be := 0, 0
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] < utf8.RuneSelf {
			j++
		}
		if j-i > be-bs {
			bs, be = i, j
		}
		for j < len(s) && s[j] >= utf8.RuneSelf {
			j++
		}
		i = j
	}
	run := s[bs:be]
	b := []byte(run)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	// A run of a common token (".exe" of "⠀⠀⠀.exe", Braille blanks) is in
	// nearly every value; the rune is not.
	if (len(b) < 4 || isCommonToken(string(b))) && strictNonASCII(s) {
		return nonASCIIAtom
	}
	if len(b) > maxAtomLit {
		w := atomWindow(string(b))
		start := max(0, min(w-(maxAtomLit-maxAtom)/2, len(b)-maxAtomLit))
		b = b[start : start+maxAtomLit]
	}
	return string(b)
}

// maxAtomLit caps an atom's literal: the scanner finds it by a window of
// maxAtom bytes (atomWindow) and verifies the rest, so a longer literal
// costs a compare only where its window occurs, and spares the full
// evaluation of the rules whose literal merely shares the window
// ("ocuments" of "Find-InterestingDocuments" in "C:\Users\alice\Documents").
const maxAtomLit = 64

// commonSpans marks the bytes of low that lie in a common token.
func commonSpans(low string) []bool {
	common := make([]bool, len(low))
	for _, tok := range commonTokens {
		for i := 0; ; {
			j := strings.Index(low[i:], tok)
			if j < 0 {
				break
			}
			for k := i + j; k < i+j+len(tok); k++ {
				common[k] = true
			}
			i += j + 1
		}
	}
	return common
}

// atomWindow returns the offset in low (lower-cased ASCII) of the window of
// maxAtom bytes that the scanner keys a longer literal on: the one of the
// most uncommon bytes. Bytes inside tokens found in most events of their
// field are worth nothing, frequent bytes little; the later window wins a
// tie, as paths and command lines are distinctive at their end.
func atomWindow(low string) int {
	if len(low) <= maxAtom {
		return 0
	}
	common := commonSpans(low)
	best, bestScore := 0, -1
	for i := 0; i+maxAtom <= len(low); i++ {
		score := 0
		for k := i; k < i+maxAtom; k++ {
			switch {
			case common[k]:
			case commonBytes[low[k]]:
				score++
			default:
				score += 2
			}
		}
		if score >= bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// strongClauses drops the clauses that select little when the rule has
// better ones: a clause whose shortest literal is one to three bytes ("-",
// " /c") occurs in most command lines, so it hardly narrows the rule's
// candidacy, yet each of its occurrences costs the scan a report and the
// index a walk over every rule sharing the literal.
func strongClauses(cs []clause) []clause {
	best := 0
	for _, c := range cs {
		best = max(best, clauseScore(c))
	}
	floor := 2
	if best >= 4 {
		floor = 4
	}
	out := cs[:0:0]
	for _, c := range cs {
		if clauseScore(c) >= floor {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return cs
	}
	return out
}

// groupIndex is the prefilter of one rule group.
type groupIndex struct {
	fields []fieldIndex
	always []int32 // rules (positions in the group) evaluated for every event
	// A rule is reached by the atoms of its most selective clause only
	// (the pairs a hit walks stay few); rest holds its other clauses, as
	// OR lists of global patterns (fieldIndex.base + pattern) checked for
	// the rules that clause reached, once the event is scanned.
	rest     [][][]int32
	patterns int
}

type fieldIndex struct {
	src       source
	grams     *gramIndex
	atomRules [][]int32 // pattern → the rules it triggers (positions in the group)
	nonASCII  int32     // the pattern of nonASCIIAtom, -1 when none
	base      int32     // the global number of pattern 0
}

func buildGroupIndex(rules []*compiledRule) *groupIndex {
	gi := &groupIndex{}
	type fieldLits struct {
		src   source
		ids   map[string]int32
		lits  []string
		rules [][]int32
		base  int32 // the global number of its pattern 0
	}
	type litRef struct {
		fl *fieldLits
		id int32
	}
	byKey := map[string]*fieldLits{}
	var order []string
	rest := make([][][]litRef, len(rules)) // rule → its clauses but the trigger
	for pos, r := range rules {
		cs, ok := clausesOf(r.cond)
		if !ok {
			gi.always = append(gi.always, int32(pos))
			continue
		}
		strong := strongClauses(cs)
		trig := bestClauseIndex(strong)
		for ci, c := range strong {
			var refs []litRef
			for _, a := range c {
				k := a.src.key()
				fl, ok := byKey[k]
				if !ok {
					fl = &fieldLits{src: a.src, ids: map[string]int32{}}
					byKey[k] = fl
					order = append(order, k)
				}
				id, ok := fl.ids[a.lit]
				if !ok {
					id = int32(len(fl.lits))
					fl.ids[a.lit] = id
					fl.lits = append(fl.lits, a.lit)
					fl.rules = append(fl.rules, nil)
				}
				if ci != trig {
					refs = append(refs, litRef{fl, id})
				} else if !slices.Contains(fl.rules[id], int32(pos)) {
					fl.rules[id] = append(fl.rules[id], int32(pos))
				}
			}
			if ci != trig {
				rest[pos] = append(rest[pos], refs)
			}
		}
	}
	for _, k := range order {
		fl := byKey[k]
		na, ok := fl.ids[nonASCIIAtom]
		if !ok {
			na = -1
		}
		fl.base = int32(gi.patterns)
		gi.fields = append(gi.fields, fieldIndex{src: fl.src, grams: newGramIndex(fl.lits), atomRules: fl.rules, nonASCII: na, base: fl.base})
		gi.patterns += len(fl.lits)
	}
	gi.rest = make([][][]int32, len(rules))
	for pos, cls := range rest {
		for _, refs := range cls {
			var c []int32
			for _, r := range refs {
				if p := r.fl.base + r.id; !slices.Contains(c, p) {
					c = append(c, p)
				}
			}
			gi.rest[pos] = append(gi.rest[pos], c)
		}
	}
	return gi
}

func (gi *groupIndex) maxPatterns() int { return gi.patterns }

// scratch is per-call state of Eval, pooled by the RuleSet.
type scratch struct {
	rmark  []uint32 // rule position → epoch it was triggered in
	pmark  []uint32 // pattern → epoch it was seen
	repoch uint32
	pepoch uint32
	cand   []int32
	trig   []int32 // rules their most selective clause reached
	hits   []int32
	fold   []byte  // the folded value being scanned
	found  []int32 // literals the scan found in it

	// The event's unmapped values, by source.uslot-1, present where umark
	// holds uepoch; filled on the event's first lookup (ufilled).
	ukeys   *keyTable
	uval    []string
	umark   []uint32
	uepoch  uint32
	ufilled bool
}

func (s *scratch) nextR() uint32 {
	if s.repoch++; s.repoch == 0 {
		clear(s.rmark)
		s.repoch = 1
	}
	return s.repoch
}

func (s *scratch) nextP() uint32 {
	if s.pepoch++; s.pepoch == 0 {
		clear(s.pmark)
		s.pepoch = 1
	}
	return s.pepoch
}

// candidates returns, in rule order, the positions of the group's rules
// whose necessary literals occur in ev.
func (gi *groupIndex) candidates(ev *schemas.Event, s *scratch) []int32 {
	s.cand, s.trig = s.cand[:0], s.trig[:0]
	re := s.nextR()
	pe := s.nextP()
	for i := range gi.fields {
		f := &gi.fields[i]
		src := &f.src
		if src.keywords != nil {
			for _, a := range src.keywords {
				switch a.kind {
				case kindString:
					gi.scan(f, a.str(ev), s, re, pe)
				case kindStrings:
					for _, v := range a.strs(ev) {
						gi.scan(f, v, s, re, pe)
					}
				}
			}
			continue
		}
		if a := src.attr; a != nil {
			switch a.kind {
			case kindString:
				if v := a.str(ev); v != "" {
					gi.scan(f, v, s, re, pe)
					continue
				}
			case kindStrings:
				if vs := a.strs(ev); hasValue(vs) {
					for _, v := range vs {
						gi.scan(f, v, s, re, pe)
					}
					continue
				}
			}
		}
		if src.unmapped != "" {
			if v, ok := s.unmappedValue(ev, src); ok {
				gi.scan(f, v, s, re, pe)
			}
		}
	}
	for _, r := range s.trig {
		if gi.restHit(r, s, pe) {
			s.cand = append(s.cand, r)
		}
	}
	s.cand = append(s.cand, gi.always...)
	slices.Sort(s.cand)
	return s.cand
}

func (gi *groupIndex) scan(f *fieldIndex, v string, s *scratch, re, pe uint32) {
	if v == "" {
		return
	}
	var nonASCII bool
	s.fold, nonASCII = foldValue(s.fold, v)
	if nonASCII && f.nonASCII >= 0 && s.pmark[f.base+f.nonASCII] != pe {
		gi.hit(f, f.nonASCII, s, re, pe)
	}
	s.found = f.grams.scan(s.fold, s.found[:0])
	for _, p := range s.found {
		if s.pmark[f.base+p] != pe {
			gi.hit(f, p, s, re, pe)
		}
	}
}

// hit records that pattern p occurs and triggers the rules whose most
// selective clause it is in; candidates checks their other clauses.
func (gi *groupIndex) hit(f *fieldIndex, p int32, s *scratch, re, pe uint32) {
	s.pmark[f.base+p] = pe
	for _, r := range f.atomRules[p] {
		if s.rmark[r] != re {
			s.rmark[r] = re
			s.trig = append(s.trig, r)
		}
	}
}

// restHit reports whether every other clause of rule r has a pattern seen
// in the event.
func (gi *groupIndex) restHit(r int32, s *scratch, pe uint32) bool {
	for _, c := range gi.rest[r] {
		hit := false
		for _, p := range c {
			if s.pmark[p] == pe {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}
