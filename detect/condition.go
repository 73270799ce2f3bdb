package detect

import (
	"fmt"
	"strings"
)

// Condition grammar (Sigma 2.x, loosest binding first):
//
//	expr    = andExpr { "or" andExpr }
//	andExpr = notExpr { "and" notExpr }
//	notExpr = "not" notExpr | primary
//	primary = "(" expr ")" | quant | IDENT
//	quant   = ( "1" | "any" | "all" ) "of" ( PATTERN | "them" )
//
// Keywords are case-insensitive. IDENT and PATTERN are runs of characters other
// than white space and parentheses; a PATTERN may hold `*` wildcards.
// The v1 aggregation syntax (`| count() by x > 3`, `near`) is rejected: it
// became correlation rules.

// CondNode is a node of a parsed condition. The concrete types are CondAnd,
// CondOr, CondNot, CondRef and CondOf.
type CondNode interface {
	String() string
	condNode()
}

// CondAnd is true when every argument is.
type CondAnd struct{ Args []CondNode }

// CondOr is true when any argument is.
type CondOr struct{ Args []CondNode }

// CondNot negates its argument.
type CondNot struct{ Arg CondNode }

// CondRef names one search identifier.
type CondRef struct {
	Name string
	Pos  int // byte offset in the condition
}

// CondOf is `1 of pattern` (All false) or `all of pattern`. Pattern "them"
// means every search identifier not starting with "_".
type CondOf struct {
	All     bool
	Pattern string
	Pos     int
}

func (CondAnd) condNode() {}
func (CondOr) condNode()  {}
func (CondNot) condNode() {}
func (CondRef) condNode() {}
func (CondOf) condNode()  {}

func (n CondAnd) String() string { return joinNodes("and", n.Args) }
func (n CondOr) String() string  { return joinNodes("or", n.Args) }
func (n CondNot) String() string { return "(not " + n.Arg.String() + ")" }
func (n CondRef) String() string { return n.Name }
func (n CondOf) String() string {
	if n.All {
		return "(all of " + n.Pattern + ")"
	}
	return "(1 of " + n.Pattern + ")"
}

func joinNodes(op string, args []CondNode) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.String()
	}
	return "(" + strings.Join(parts, " "+op+" ") + ")"
}

// ConditionError is a syntax or reference error in a condition, pointing at
// the offending token.
type ConditionError struct {
	Condition string
	Pos       int // byte offset of the token
	Msg       string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("condition %q: at offset %d: %s", e.Condition, e.Pos, e.Msg)
}

type tokenKind uint8

const (
	tEOF tokenKind = iota
	tLParen
	tRParen
	tAnd
	tOr
	tNot
	tOf
	tOne // "1" or "any"
	tAll
	tThem
	tPipe
	tWord
)

type token struct {
	kind tokenKind
	text string
	pos  int
}

func describe(t token) string {
	if t.kind == tEOF {
		return "end of condition"
	}
	return fmt.Sprintf("%q", t.text)
}

func lexCondition(s string) []token {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tRParen, ")", i})
			i++
		case c == '|':
			toks = append(toks, token{tPipe, "|", i})
			i++
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r()|", rune(s[j])) {
				j++
			}
			w := s[i:j]
			k := tWord
			switch strings.ToLower(w) {
			case "and":
				k = tAnd
			case "or":
				k = tOr
			case "not":
				k = tNot
			case "of":
				k = tOf
			case "1", "any":
				k = tOne
			case "all":
				k = tAll
			case "them":
				k = tThem
			}
			toks = append(toks, token{k, w, i})
			i = j
		}
	}
	return append(toks, token{tEOF, "", len(s)})
}

type condParser struct {
	src   string
	toks  []token
	i     int
	depth int
}

// maxCondDepth bounds nesting so hostile input cannot exhaust the stack.
const maxCondDepth = 200

// ParseCondition parses one condition expression into its AST.
func ParseCondition(s string) (CondNode, error) {
	p := &condParser{src: s, toks: lexCondition(s)}
	if p.peek().kind == tEOF {
		return nil, p.errAt(p.peek(), "empty condition")
	}
	n, err := p.expr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		if t.kind == tPipe {
			return nil, p.errAt(t, "aggregation expressions (| count() ...) are obsolete; use a correlation rule")
		}
		return nil, p.errAt(t, "expected \"and\", \"or\" or end of condition, got "+describe(t))
	}
	return n, nil
}

func (p *condParser) peek() token { return p.toks[p.i] }
func (p *condParser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *condParser) errAt(t token, msg string) error {
	return &ConditionError{Condition: p.src, Pos: t.pos, Msg: msg}
}

func (p *condParser) expr() (CondNode, error) {
	first, err := p.andExpr()
	if err != nil {
		return nil, err
	}
	args := []CondNode{first}
	for p.peek().kind == tOr {
		p.next()
		n, err := p.andExpr()
		if err != nil {
			return nil, err
		}
		args = append(args, n)
	}
	if len(args) == 1 {
		return first, nil
	}
	return CondOr{Args: args}, nil
}

func (p *condParser) andExpr() (CondNode, error) {
	first, err := p.notExpr()
	if err != nil {
		return nil, err
	}
	args := []CondNode{first}
	for p.peek().kind == tAnd {
		p.next()
		n, err := p.notExpr()
		if err != nil {
			return nil, err
		}
		args = append(args, n)
	}
	if len(args) == 1 {
		return first, nil
	}
	return CondAnd{Args: args}, nil
}

func (p *condParser) notExpr() (CondNode, error) {
	if p.peek().kind == tNot {
		t := p.next()
		if p.depth++; p.depth > maxCondDepth {
			return nil, p.errAt(t, "condition nested too deeply")
		}
		n, err := p.notExpr()
		p.depth--
		if err != nil {
			return nil, err
		}
		return CondNot{Arg: n}, nil
	}
	return p.primary()
}

func (p *condParser) primary() (CondNode, error) {
	t := p.next()
	switch t.kind {
	case tLParen:
		if p.depth++; p.depth > maxCondDepth {
			return nil, p.errAt(t, "condition nested too deeply")
		}
		n, err := p.expr()
		p.depth--
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, p.errAt(c, "expected \")\" to close \"(\" at offset "+fmt.Sprint(t.pos)+", got "+describe(c))
		}
		return n, nil
	case tOne, tAll:
		of := p.next()
		if of.kind != tOf {
			return nil, p.errAt(of, fmt.Sprintf("expected \"of\" after %q, got %s", t.text, describe(of)))
		}
		target := p.next()
		switch target.kind {
		case tThem:
			return CondOf{All: t.kind == tAll, Pattern: "them", Pos: t.pos}, nil
		case tWord:
			return CondOf{All: t.kind == tAll, Pattern: target.text, Pos: t.pos}, nil
		}
		return nil, p.errAt(target, "expected a search identifier pattern or \"them\" after \"of\", got "+describe(target))
	case tWord:
		if n := t.text; len(n) > 0 && n[0] >= '0' && n[0] <= '9' && p.peek().kind == tOf {
			return nil, p.errAt(t, fmt.Sprintf("only \"1 of\" and \"all of\" are supported, got %q", n))
		}
		return CondRef{Name: t.text, Pos: t.pos}, nil
	}
	return nil, p.errAt(t, "expected a search identifier, \"(\", \"not\", \"1 of\" or \"all of\", got "+describe(t))
}
