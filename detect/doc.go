// Package detect is Watchfloor's Sigma rule engine: it turns Sigma rules
// into a RuleSet that matches schemas.Event values and raises
// schemas.Finding values.
//
// # Design
//
// Rules go through three stages, each a plain function of the previous one:
//
//  1. Parse (ParseRule, LoadDir): YAML → Rule, an AST of the document: meta
//     data, searches (Search → FieldMap → FieldItem with its modifier chain and
//     values) and the condition strings. ParseCondition turns a condition into
//     a CondNode tree with a recursive-descent parser whose errors point at the
//     offending token (ConditionError.Pos).
//  2. Compile (Compile): Rule → matcher tree. Every field name is resolved once
//     against the Mapping to an accessor over the event struct (attributes.go),
//     or to the event's unmapped attribute of that name; every value is
//     compiled once into the cheapest exact matcher (exact, prefix, suffix,
//     substring, star-separated segments, general wildcard, regexp, CIDR), and
//     long OR lists of literals into one automaton (multi.go). Unknown
//     modifiers are errors, valid but unimplemented ones are UnsupportedError:
//     nothing is silently ignored.
//  3. Evaluate (RuleSet.Eval): rules are grouped by the events their logsource
//     selects (the Mapping's logsources, as data in mapping.yaml); an event is
//     checked against each group's selector once and meets only that group's
//     rules. Eval reads the event in place, allocates nothing unless a rule
//     matches, does no I/O and is safe for concurrent use.
//
// Matching follows the Sigma 2.x specification: case-insensitive unless
// "cased" (regular expressions are case-sensitive unless "re|i"); `*` and `?`
// wildcards with `\` escapes; a list of values is OR ("all" makes it AND); a
// list of maps is OR, a map is AND; `null` matches an absent or empty field;
// a keyword (field-less) search matches anywhere in the Mapping's keyword
// attributes (the message by default). An absent field is treated as empty:
// it matches null and values that match the empty string, except a bare
// '*', which needs a value. A multi-valued attribute (DNS answers) matches if
// any element does.
//
// Supported modifiers: contains, startswith, endswith, all, cased, re (with
// i, m, s), windash, cidr, exists. Rejected as not supported yet: base64,
// base64offset, utf16*/wide, lt/lte/gt/gte/neq, fieldref, expand, the time
// modifiers; correlation and filter documents. Regular expressions use Go's
// RE2 syntax; PCRE-only constructs (look-around, back references) are
// rejected when the rule is compiled.
//
// # How it grows
//
// New modifiers are a case in parseModifiers plus a stringMatcher (or a
// value transformation before the glob compiler, as base64offset needs);
// fieldref and numeric comparisons get their own matcher kinds next to
// fieldMatcher. New event attributes are one line in attributes.go and names
// in mapping.yaml. Correlation rules compile to a stage after Eval that keys
// findings by group-by fields and windows them; filters wrap a rule's
// condition as "condition and not filter" at compile time. Indexing beyond the
// logsource groups (a shared automaton per attribute across all rules of a
// group, so each event string is scanned once for every rule) replaces the
// per-rule automata without touching the parser or the API.
package detect
