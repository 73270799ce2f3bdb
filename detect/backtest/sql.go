// Package backtest runs a Sigma rule over the events already stored in
// ClickHouse: it compiles the rule to a WHERE clause over the events table
// with the same mapping data (detect/mapping.yaml) and the same matching
// semantics as the streaming engine, and reports hit counts per agency and
// day plus sample hits.
//
// The translation keeps the engine's rules: case-insensitive unless
// "cased" (both sides lowered with lowerUTF8, the literal by Go's
// strings.ToLower: the two agree on everything but a few exotic folds such
// as the Kelvin sign); wildcards with the specification's escapes; an
// absent field matches null and values that match the empty string; a
// multi-valued attribute matches if any element does; "re" uses match(),
// which is RE2 like Go's regexp (with `.` kept from matching a newline
// unless the rule asks for "re|s", as in Go). Every function used exists in
// ClickHouse 18.16.
package backtest

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/watchfloor/watchfloor/detect"
)

// column is how one event attribute is stored in the events table.
type column struct {
	expr    string // SQL expression of the value
	kind    string // "string", "strings" (Array(String)), "int"
	present string // for ints: when the value counts as present
}

// columns maps the engine's attribute names (detect/attributes.go) to the
// events table (schemas.EventColumns). A test checks that every attribute
// the mapping names is here.
var columns = map[string]column{
	"message":                       {expr: "message", kind: "string"},
	"raw_data":                      {expr: "raw_data", kind: "string"},
	"agency":                        {expr: "agency", kind: "string"},
	"sensor":                        {expr: "sensor", kind: "string"},
	"format":                        {expr: "format", kind: "string"},
	"class_uid":                     {expr: "class_uid", kind: "int", present: "1"},
	"activity_id":                   {expr: "activity_id", kind: "int", present: "1"},
	"severity_id":                   {expr: "severity_id", kind: "int", present: "1"},
	"status_id":                     {expr: "status_id", kind: "int", present: "1"},
	"metadata.product":              {expr: "metadata_product", kind: "string"},
	"metadata.vendor":               {expr: "metadata_vendor", kind: "string"},
	"metadata.log_name":             {expr: "metadata_log_name", kind: "string"},
	"metadata.uid":                  {expr: "metadata_uid", kind: "string"},
	"src_endpoint.ip":               {expr: "src_ip", kind: "string"},
	"src_endpoint.port":             {expr: "src_port", kind: "int", present: "src_port != 0"},
	"src_endpoint.hostname":         {expr: "src_hostname", kind: "string"},
	"dst_endpoint.ip":               {expr: "dst_ip", kind: "string"},
	"dst_endpoint.port":             {expr: "dst_port", kind: "int", present: "dst_port != 0"},
	"dst_endpoint.hostname":         {expr: "dst_hostname", kind: "string"},
	"device.hostname":               {expr: "device_hostname", kind: "string"},
	"actor.process.name":            {expr: "process_name", kind: "string"},
	"actor.process.pid":             {expr: "process_pid", kind: "int", present: "process_pid != 0"},
	"user.name":                     {expr: "user_name", kind: "string"},
	"connection_info.protocol_name": {expr: "protocol", kind: "string"},
	"query.hostname":                {expr: "dns_query_hostname", kind: "string"},
	"query.type":                    {expr: "dns_query_type", kind: "string"},
	"query.class":                   {expr: "dns_query_class", kind: "string"},
	"rcode":                         {expr: "dns_rcode", kind: "string"},
	"rcode_id":                      {expr: "dns_rcode_id", kind: "int", present: "dns_rcode_id >= 0"},
	"answers.rdata":                 {expr: "dns_answers", kind: "strings"},
}

// UnsupportedError is a rule feature the SQL translation does not cover.
type UnsupportedError struct{ Feature string }

func (e *UnsupportedError) Error() string { return e.Feature + " is not supported by backtest yet" }

func unsupported(format string, args ...any) error {
	return &UnsupportedError{Feature: fmt.Sprintf(format, args...)}
}

// Query is a rule compiled to SQL.
type Query struct {
	RuleID string
	Title  string
	Level  string
	// Where is a boolean SQL expression over one row of the events table,
	// the logsource selection included.
	Where string
	// Unrouted is true when the mapping routes the rule's logsource to no
	// events (Where is then "0"), as the streaming engine's Unrouted.
	Unrouted bool
}

// Compile checks r with the streaming compiler (so a rule the engine
// refuses is refused here with the same error), then translates it.
// m nil means detect.DefaultMapping().
func Compile(r *detect.Rule, m *detect.Mapping) (*Query, error) {
	if m == nil {
		m = detect.DefaultMapping()
	}
	if _, err := detect.Compile([]*detect.Rule{r}, detect.Config{Mapping: m}); err != nil {
		return nil, err
	}
	q := &Query{RuleID: r.ID, Title: r.Title, Level: r.Level}
	sels, overrides := m.SelectorsFor(r.Logsource)
	c := &compiler{m: m, overrides: overrides}
	if len(sels) == 0 {
		q.Where, q.Unrouted = "0", true
		return q, nil
	}
	searches := make(map[string]string, len(r.Detection.Searches))
	var names []string
	for i := range r.Detection.Searches {
		s := &r.Detection.Searches[i]
		sql, err := c.search(s)
		if err != nil {
			return nil, fmt.Errorf("rule %s: detection.%s: %w", r.ID, s.Name, err)
		}
		searches[s.Name] = sql
		names = append(names, s.Name)
	}
	var conds []string
	for _, src := range r.Detection.Conditions {
		ast, err := detect.ParseCondition(src)
		if err != nil {
			return nil, err
		}
		sql, err := cond(ast, searches, names)
		if err != nil {
			return nil, fmt.Errorf("rule %s: condition %q: %w", r.ID, src, err)
		}
		conds = append(conds, sql)
	}
	q.Where = and(selectorSQL(sels), or(conds))
	return q, nil
}

func selectorSQL(sels []detect.EventSelector) string {
	var alts []string
	for _, s := range sels {
		var parts []string
		if len(s.ClassUID) > 0 {
			ns := make([]string, len(s.ClassUID))
			for i, n := range s.ClassUID {
				ns[i] = strconv.FormatUint(uint64(n), 10)
			}
			parts = append(parts, "class_uid IN ("+strings.Join(ns, ", ")+")")
		}
		in := func(col string, vs []string) {
			if len(vs) == 0 {
				return
			}
			q := make([]string, len(vs))
			for i, v := range vs {
				q[i] = Quote(v)
			}
			parts = append(parts, col+" IN ("+strings.Join(q, ", ")+")")
		}
		if len(s.ActivityID) > 0 {
			ns := make([]string, len(s.ActivityID))
			for i, n := range s.ActivityID {
				ns[i] = strconv.FormatUint(uint64(n), 10)
			}
			parts = append(parts, "activity_id IN ("+strings.Join(ns, ", ")+")")
		}
		in("format", s.Format)
		in("metadata_product", s.Product)
		in("process_name", s.ProcessName)
		keys := make([]string, 0, len(s.Unmapped))
		for k := range s.Unmapped {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, "indexOf(unmapped_keys, "+Quote(k)+") > 0")
			in(unmappedExpr(k), s.Unmapped[k])
		}
		alts = append(alts, and(parts...))
	}
	return or(alts)
}

func cond(n detect.CondNode, searches map[string]string, names []string) (string, error) {
	switch n := n.(type) {
	case detect.CondAnd, detect.CondOr:
		var args []detect.CondNode
		isAnd := false
		if a, ok := n.(detect.CondAnd); ok {
			args, isAnd = a.Args, true
		} else {
			args = n.(detect.CondOr).Args
		}
		parts := make([]string, 0, len(args))
		for _, a := range args {
			s, err := cond(a, searches, names)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		if isAnd {
			return and(parts...), nil
		}
		return or(parts), nil
	case detect.CondNot:
		s, err := cond(n.Arg, searches, names)
		if err != nil {
			return "", err
		}
		return "NOT " + paren(s), nil
	case detect.CondRef:
		s, ok := searches[n.Name]
		if !ok {
			return "", fmt.Errorf("unknown search identifier %q", n.Name)
		}
		return s, nil
	case detect.CondOf:
		var picked []string
		if n.Pattern == "them" {
			for _, name := range names {
				if !strings.HasPrefix(name, "_") {
					picked = append(picked, searches[name])
				}
			}
		} else {
			re := regexp.MustCompile("^" + globRegexp(parseGlob(n.Pattern, false)) + "$")
			for _, name := range names {
				if re.MatchString(name) {
					picked = append(picked, searches[name])
				}
			}
		}
		if len(picked) == 0 {
			return "", fmt.Errorf("%q matches no search identifier", n.Pattern)
		}
		if n.All {
			return and(picked...), nil
		}
		return or(picked), nil
	}
	return "", fmt.Errorf("unexpected condition node %T", n)
}

type compiler struct {
	m         *detect.Mapping
	overrides []map[string]string // the rule's per-logsource field mappings
}

func unmappedExpr(key string) string {
	return "unmapped_values[indexOf(unmapped_keys, " + Quote(key) + ")]"
}

// resolve mirrors the engine's field resolution: the rule's logsource
// overrides, then the global fields, then the unmapped attribute of the
// Sigma name. A field mapped to an attribute falls back to the unmapped
// attribute of its Sigma name when the attribute is empty (fallback).
func (c *compiler) resolve(field string) (col column, fallback string, err error) {
	target, ok := "", false
	for _, o := range c.overrides {
		if target, ok = o[field]; ok {
			break
		}
	}
	if !ok {
		target, ok = c.m.Fields[field]
	}
	if !ok {
		return column{expr: unmappedExpr(field), kind: "string"}, "", nil
	}
	if k, isUnmapped := strings.CutPrefix(target, detect.UnmappedFieldPrefix); isUnmapped {
		return column{expr: unmappedExpr(k), kind: "string"}, "", nil
	}
	col, ok = columns[target]
	if !ok {
		return col, "", unsupported("attribute %q (no events column)", target)
	}
	return col, field, nil
}

func (c *compiler) search(s *detect.Search) (string, error) {
	var alts []string
	for _, fm := range s.Maps {
		var all []string
		for i := range fm {
			sql, err := c.item(&fm[i])
			if err != nil {
				return "", err
			}
			all = append(all, sql)
		}
		alts = append(alts, and(all...))
	}
	return or(alts), nil
}

type mods struct {
	position             string
	all, re, cased, cidr bool
	windash, exists      bool
	reFlags              string
}

func parseMods(list []string) (mods, error) {
	var m mods
	for _, mod := range list {
		switch mod {
		case "contains", "startswith", "endswith":
			m.position = mod
		case "all":
			m.all = true
		case "re":
			m.re = true
		case "i", "ignorecase", "m", "multiline", "s", "dotall":
			m.reFlags += mod[:1]
		case "cased":
			m.cased = true
		case "windash":
			m.windash = true
		case "cidr":
			m.cidr = true
		case "exists":
			m.exists = true
		default:
			return m, unsupported("modifier %q", mod)
		}
	}
	return m, nil
}

// val is one compiled value: a function from a string SQL expression to a
// boolean SQL expression, and whether the value matches the empty string.
type val struct {
	sql     func(x string) string
	emptyOK bool
}

func (c *compiler) item(it *detect.FieldItem) (string, error) {
	name := it.Field
	if name == "" {
		name = "keywords"
	}
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("line %d: field %q: %w", it.Line, name, err)
	}
	md, err := parseMods(it.Modifiers)
	if err != nil {
		return fail(err)
	}
	var col column
	fallback := ""
	switch {
	case it.Field == "":
		if md.exists {
			return fail(unsupported("exists on a keyword search"))
		}
		if md.position == "" && !md.re && !md.cidr {
			md.position = "contains"
		}
	default:
		var err error
		if col, fallback, err = c.resolve(it.Field); err != nil {
			return fail(err)
		}
	}
	if md.exists {
		present := presentSQL(col)
		if fallback != "" {
			if col.kind == "string" {
				return existsSQL(presentSQL(column{expr: "if(" + col.expr + " != '', " + col.expr + ", " + unmappedExpr(fallback) + ")"}), it), nil
			}
			present = or([]string{present, unmappedExpr(fallback) + " != ''"})
		}
		return existsSQL(present, it), nil
	}
	intAttr := col.kind == "int"
	plain := md.position == "" && !md.re && !md.cidr && !md.windash
	var ints []int64
	var vals []val
	nullOK, emptyOK := false, false
	for _, v := range it.Values {
		if v.Null {
			nullOK = true
			continue
		}
		if intAttr && plain {
			if n, err := strconv.ParseInt(v.Text, 10, 64); err == nil {
				ints = append(ints, n)
				continue
			}
		}
		vv, err := compileValue(v.Text, md)
		if err != nil {
			return fail(err)
		}
		emptyOK = emptyOK || vv.emptyOK
		vals = append(vals, vv)
	}
	if md.all && ints != nil {
		for _, n := range ints {
			lit := strconv.FormatInt(n, 10)
			vals = append(vals, val{sql: func(x string) string { return x + " = " + Quote(lit) }})
		}
		ints = nil
	}
	combine := or
	if md.all {
		combine = func(p []string) string { return and(p...) }
	}
	absentOK := nullOK || emptyOK
	switch {
	case it.Field == "":
		// Keywords: each value may match in any keyword attribute.
		parts := make([]string, len(vals))
		for i, v := range vals {
			var hits []string
			for _, a := range c.m.Keywords {
				kc, ok := columns[a]
				if !ok {
					return fail(unsupported("keyword attribute %q (no events column)", a))
				}
				if kc.kind == "strings" {
					hits = append(hits, "arrayExists(_v -> "+v.sql("_v")+", "+kc.expr+")")
				} else {
					hits = append(hits, and(kc.expr+" != ''", v.sql(kc.expr)))
				}
			}
			parts[i] = or(hits)
		}
		return combine(parts), nil
	case fallback != "" && col.kind == "string":
		x := "if(" + col.expr + " != '', " + col.expr + ", " + unmappedExpr(fallback) + ")"
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.sql(x)
		}
		return withPresence(x+" != ''", combine(parts), absentOK), nil
	case fallback != "":
		// A list or integer attribute: its own matching when present,
		// the unmapped attribute of the Sigma name otherwise.
		own, err := c.attrSQL(col, md, ints, vals, combine)
		if err != nil {
			return fail(err)
		}
		u := unmappedExpr(fallback)
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.sql(u)
		}
		fb := withPresence(u+" != ''", combine(parts), absentOK)
		p := presentSQL(col)
		return or([]string{and(p, own), and("NOT "+paren(p), fb)}), nil
	case col.kind == "strings" || intAttr:
		own, err := c.attrSQL(col, md, ints, vals, combine)
		if err != nil {
			return fail(err)
		}
		return withPresence(presentSQL(col), own, absentOK), nil
	default:
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.sql(col.expr)
		}
		return withPresence(presentSQL(col), combine(parts), absentOK), nil
	}
}

// attrSQL matches a present list or integer attribute.
func (c *compiler) attrSQL(col column, md mods, ints []int64, vals []val, combine func([]string) string) (string, error) {
	switch {
	case col.kind == "strings":
		var parts []string
		if md.all {
			for _, v := range vals {
				parts = append(parts, "arrayExists(_v -> "+v.sql("_v")+", "+col.expr+")")
			}
		} else {
			var ors []string
			for _, v := range vals {
				ors = append(ors, v.sql("_v"))
			}
			parts = append(parts, "arrayExists(_v -> "+or(ors)+", "+col.expr+")")
		}
		return combine(parts), nil
	case col.kind == "int":
		var parts []string
		for _, n := range ints {
			parts = append(parts, col.expr+" = "+strconv.FormatInt(n, 10))
		}
		var svals []string
		for _, v := range vals {
			svals = append(svals, v.sql("toString("+col.expr+")"))
		}
		if md.all {
			return and(svals...), nil
		}
		return or(append(parts, svals...)), nil
	}
	return "", fmt.Errorf("attribute kind %q", col.kind)
}

func existsSQL(present string, it *detect.FieldItem) string {
	if it.Values[0].Text == "false" {
		return "NOT " + paren(present)
	}
	return present
}

func presentSQL(col column) string {
	switch col.kind {
	case "int":
		return col.present
	case "strings":
		return "arrayExists(_v -> _v != '', " + col.expr + ")"
	}
	return col.expr + " != ''"
}

// withPresence applies the engine's rule for an absent field.
func withPresence(present, body string, absentOK bool) string {
	if absentOK {
		return or([]string{"NOT " + paren(present), body})
	}
	return and(present, body)
}

func compileValue(text string, md mods) (val, error) {
	switch {
	case md.re:
		// The pattern goes inside a flag group: Go's `.` does not match a
		// newline and ClickHouse's does by default, so "-s" unless the rule
		// asks for "s"; and 18.16's literal pre-filter ignores a leading
		// "(?i)" flag (match('dns', '(?i)^DNS') is 0 there) but honours a
		// group's flags.
		flags := md.reFlags
		if !strings.Contains(flags, "s") {
			flags += "-s"
		}
		pat := "(?" + flags + ":" + text + ")"
		goPat := text
		if md.reFlags != "" {
			goPat = "(?" + md.reFlags + ")" + text
		}
		goRE, err := regexp.Compile(goPat)
		if err != nil {
			return val{}, fmt.Errorf("regular expression %q: %w", text, err)
		}
		return val{sql: func(x string) string { return "match(" + x + ", " + Quote(pat) + ")" }, emptyOK: goRE.MatchString("")}, nil
	case md.cidr:
		p, err := netip.ParsePrefix(text)
		if err != nil {
			return val{}, fmt.Errorf("cidr value %q: %w", text, err)
		}
		return val{sql: cidrSQL(p.Masked())}, nil
	}
	toks := parseGlob(text, md.windash)
	switch md.position {
	case "contains":
		toks = append(append([]ptok{{kind: tokStar}}, toks...), ptok{kind: tokStar})
	case "startswith":
		toks = append(toks, ptok{kind: tokStar})
	case "endswith":
		toks = append([]ptok{{kind: tokStar}}, toks...)
	}
	toks = collapseStars(toks)
	fold := !md.cased
	if fold {
		for i := range toks {
			if toks[i].kind == tokLit {
				toks[i].r = unicode.ToLower(toks[i].r)
			}
		}
	}
	lower := func(x string) string {
		if fold {
			return "lowerUTF8(" + x + ")"
		}
		return x
	}
	general := false
	for _, t := range toks {
		if t.kind == tokOne || t.kind == tokDash {
			general = true
		}
	}
	if general {
		re := "(?s)^" + globRegexp(toks) + "$"
		return val{sql: func(x string) string { return "match(" + lower(x) + ", " + Quote(re) + ")" }}, nil
	}
	if len(toks) == 1 && toks[0].kind == tokStar {
		return val{sql: func(string) string { return "1" }}, nil // a bare '*': any present value
	}
	var lit strings.Builder
	stars := 0
	for _, t := range toks {
		if t.kind == tokStar {
			stars++
		} else {
			lit.WriteRune(t.r)
		}
	}
	l := lit.String()
	switch {
	case len(toks) == 0:
		return val{sql: func(x string) string { return x + " = ''" }, emptyOK: true}, nil
	case stars == 0:
		return val{sql: func(x string) string { return lower(x) + " = " + Quote(l) }}, nil
	case stars == 1 && toks[len(toks)-1].kind == tokStar:
		return val{sql: func(x string) string { return "startsWith(" + lower(x) + ", " + Quote(l) + ")" }}, nil
	case stars == 1 && toks[0].kind == tokStar:
		return val{sql: func(x string) string { return "endsWith(" + lower(x) + ", " + Quote(l) + ")" }}, nil
	case stars == 2 && toks[0].kind == tokStar && toks[len(toks)-1].kind == tokStar:
		return val{sql: func(x string) string { return "position(" + lower(x) + ", " + Quote(l) + ") > 0" }}, nil
	}
	pat := likePattern(toks)
	return val{sql: func(x string) string { return lower(x) + " LIKE " + Quote(pat) }}, nil
}

// cidrSQL matches an IP text against a prefix, as netip.ParseAddr and
// Prefix.Contains do for well-formed addresses.
func cidrSQL(p netip.Prefix) func(string) string {
	if p.Addr().Is4() {
		a := p.Addr().As4()
		net := uint64(a[0])<<24 | uint64(a[1])<<16 | uint64(a[2])<<8 | uint64(a[3])
		mask := uint64(0)
		if p.Bits() > 0 {
			mask = (uint64(1)<<32 - 1) &^ (uint64(1)<<(32-p.Bits()) - 1)
		}
		return func(x string) string {
			return "(match(" + x + ", '^[0-9]{1,3}(\\\\.[0-9]{1,3}){3}$') AND bitAnd(IPv4StringToNum(" + x + "), " +
				strconv.FormatUint(mask, 10) + ") = " + strconv.FormatUint(net, 10) + ")"
		}
	}
	a := p.Addr().As16()
	hex := strings.ToUpper(fmt.Sprintf("%x", a[:]))
	full := p.Bits() / 4
	rem := p.Bits() % 4
	return func(x string) string {
		h := "hex(IPv6StringToNum(" + x + "))"
		parts := []string{"position(" + x + ", ':') > 0", "IPv6StringToNum(" + x + ") != IPv6StringToNum('::') OR " + x + " IN ('::', '0::0')"}
		if full > 0 {
			parts = append(parts, "substring("+h+", 1, "+strconv.Itoa(full)+") = "+Quote(hex[:full]))
		}
		if rem > 0 {
			nib, _ := strconv.ParseUint(hex[full:full+1], 16, 8)
			var ok []string
			for v := uint64(0); v < 16; v++ {
				if v>>(4-rem) == nib>>(4-rem) {
					ok = append(ok, Quote(strings.ToUpper(strconv.FormatUint(v, 16))))
				}
			}
			parts = append(parts, "substring("+h+", "+strconv.Itoa(full+1)+", 1) IN ("+strings.Join(ok, ", ")+")")
		}
		parts[1] = paren(parts[1])
		return and(parts...)
	}
}

// Quote renders s as a ClickHouse string literal.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0:
			b.WriteString("\\0")
		case '\n':
			b.WriteString("\\n")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func likePattern(toks []ptok) string {
	var b strings.Builder
	for _, t := range toks {
		switch {
		case t.kind == tokStar:
			b.WriteByte('%')
		case t.r == '%' || t.r == '_' || t.r == '\\':
			b.WriteByte('\\')
			b.WriteRune(t.r)
		default:
			b.WriteRune(t.r)
		}
	}
	return b.String()
}

func globRegexp(toks []ptok) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case tokStar:
			b.WriteString(".*")
		case tokOne:
			b.WriteString(".")
		case tokDash:
			b.WriteString("[" + string(detect.WindashRunes()) + "]") // '-' first: literal in a class
		default:
			b.WriteString(regexp.QuoteMeta(string(t.r)))
		}
	}
	return b.String()
}

func and(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p == "1" {
			continue
		}
		if p == "0" {
			return "0"
		}
		keep = append(keep, p)
	}
	switch len(keep) {
	case 0:
		return "1"
	case 1:
		return keep[0]
	}
	for i := range keep {
		keep[i] = paren(keep[i])
	}
	return strings.Join(keep, " AND ")
}

func or(parts []string) string {
	var keep []string
	for _, p := range parts {
		if p == "1" {
			return "1"
		}
		if p == "0" {
			continue
		}
		keep = append(keep, p)
	}
	switch len(keep) {
	case 0:
		return "0"
	case 1:
		return keep[0]
	}
	for i := range keep {
		keep[i] = paren(keep[i])
	}
	return strings.Join(keep, " OR ")
}

func paren(s string) string {
	if s == "1" || s == "0" || !strings.ContainsAny(s, " ") || (strings.HasPrefix(s, "(") && balancedOuter(s)) {
		return s
	}
	return "(" + s + ")"
}

// balancedOuter reports whether s's first '(' closes at its last byte.
func balancedOuter(s string) bool {
	depth, inStr := 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '\'':
			inStr = !inStr
		case inStr:
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 && i != len(s)-1 {
				return false
			}
		}
	}
	return depth == 0 && s[len(s)-1] == ')'
}

// Sigma glob tokens, parsed as the streaming engine does (detect/match.go).
type tokKind uint8

const (
	tokLit tokKind = iota
	tokOne
	tokStar
	tokDash
)

type ptok struct {
	kind tokKind
	r    rune
}

// parseGlob is detect.ParseGlob in this file's token type.
func parseGlob(s string, windash bool) []ptok {
	var out []ptok
	for _, t := range detect.ParseGlob(s, windash) {
		k := tokLit
		switch t.Kind {
		case detect.GlobOne:
			k = tokOne
		case detect.GlobStar:
			k = tokStar
		case detect.GlobDash:
			k = tokDash
		}
		out = append(out, ptok{kind: k, r: t.Rune})
	}
	return out
}

func collapseStars(toks []ptok) []ptok {
	out := toks[:0:0]
	for _, t := range toks {
		if t.kind == tokStar && len(out) > 0 && out[len(out)-1].kind == tokStar {
			continue
		}
		out = append(out, t)
	}
	return out
}
