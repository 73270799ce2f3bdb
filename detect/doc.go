// Package detect is Watchfloor's Sigma rule engine: it turns Sigma rules
// (detection rules, correlation rules and filters, specification 2.x) into
// a RuleSet that matches schemas.Event values and raises schemas.Finding
// values (OCSF Detection Finding: rule id, title, level → severity, tags and
// the ATT&CK technique ids parsed out of attack.tNNNN tags, the Sigma fields
// that matched, and for correlations the events that made up the match).
//
// # Stages
//
// Rules go through three stages, each a plain function of the previous one:
//
//  1. Parse (ParseRule, LoadDir, CheckDir): YAML → Rule, an AST of the
//     document: meta data, searches (Search → FieldMap → FieldItem with its
//     modifier chain and values) and the condition strings; or a
//     CorrelationSpec, or a FilterSpec. ParseCondition turns a condition into
//     a CondNode tree with a recursive-descent parser whose errors point at
//     the offending token (ConditionError.Pos).
//  2. Compile (Compile): Rule → matcher tree. Every field name is resolved
//     once against the Mapping (mapping.yaml: per-logsource overrides, then
//     global fields, then the event's unmapped attribute of that name, so a
//     vendor field name is always reachable) to an accessor over the event
//     struct (attributes.go); every value is compiled once into the cheapest
//     exact matcher (exact, prefix, suffix, substring, star-separated
//     segments, general wildcard, RE2 regexp, CIDR, number), and long OR
//     lists of literals into one automaton, radix tree or set (multi.go).
//     Unknown modifiers are errors, valid but unimplemented features are
//     *UnsupportedError, undefined placeholders *PlaceholderError: nothing
//     is silently ignored,
//     and every error names the file, the rule, the line and the field.
//  3. Evaluate (RuleSet.Eval, EvalHits): rules are grouped by the events their
//     logsource selects; an event is checked against each group's selector
//     once. Inside a group a literal prefilter (index.go) picks the rules to
//     evaluate: each rule's condition is reduced at compile time to an AND
//     of up to eight clauses, each an OR of (field, literal) atoms that must
//     occur (ASCII case-folded) for the rule to match; every field's atoms
//     across all rules of the group form one multi-literal scanner
//     (gramscan.go: hashed four-byte anchors, filter then verify), so each
//     field value is scanned once for all rules, and only rules whose every
//     clause was hit are evaluated in full (OR distributes over AND, so
//     "1 of selection_*" keeps each selection's rare atoms). NOT, null,
//     exists, numbers, fieldref and literal-free regexps give no atoms; a
//     rule with none is evaluated for every event of its group. The
//     prefilter only over-approximates (TestIndexMatchesBruteForce checks it
//     against the whole SigmaHQ set, TestIndexRandomConditions on random
//     nested conditions). An event's vendor fields are filed by slot in one
//     pass on its first lookup (ukeys.go), and regexps run in their exists
//     form (regexsimp.go), as a plain byte-set sequence when that is what
//     the form is and the input is ASCII (regexseq.go). Eval reads the
//     event in place, allocates nothing unless a rule matches (scratch state is pooled), does no I/O and is
//     safe for concurrent use; a new rule set is swapped in by replacing an
//     atomic pointer.
//
// # Matching semantics
//
// Case-insensitive unless "cased" (regular expressions are case-sensitive
// unless "re|i"); `*` and `?` wildcards with `\` escapes as the
// specification's table says; a list of values is OR ("all" makes it AND); a
// list of maps is OR, a map is AND; `null` matches an absent or empty field;
// a keyword (field-less) search is a case-insensitive substring search of the
// Mapping's keyword attributes (the message by default). An absent field is
// treated as empty: it matches null and values that match the empty string,
// except a bare '*', which needs a value. A multi-valued attribute (DNS
// answers) matches if any element does.
//
// Modifiers: contains, startswith, endswith, all, cased, exists, re (i, m,
// s and their long names), cidr (IPv4 and IPv6, v4-mapped addresses
// unmapped), windash (-, /, en dash, em dash, horizontal bar at the start of
// an option), base64, base64offset (the three aligned encodings with the
// unstable edge characters cut, as pySigma does), utf16le/wide, utf16be,
// utf16 (with BOM), expand (%name% from Config.Placeholders, `\%` escapes;
// an undefined placeholder rejects the rule), fieldref (with contains,
// startswith, endswith, cased, neq), lt/lte/gt/gte/neq, and the 2.1 time
// parts minute/hour/day/week/month/year. Transformations apply in chain
// order; encoding a value with wildcards is an error. Regular expressions
// use Go's RE2 syntax; PCRE-only constructs (look-around, back references)
// are rejected when the rule is compiled. Not supported (rejected with
// UnsupportedError): the value_sum/value_avg/value_percentile correlation
// metrics.
//
// # Filters and correlations
//
// A filter document (filter: {rules: [...], searches, condition}) adds "and
// not <filter>" to the condition of each rule it names, resolving the
// filter's fields as that rule's are.
//
// Correlation rules (event_count, value_count, temporal, temporal_ordered,
// with group-by, aliases, timespan, condition and generate; chaining a
// correlation on another) are compiled with the rule set and evaluated by a
// Correlator, the only stateful part: feed it RuleSet.EvalHits of each event
// (or use Correlating, whose Eval does both).
// Windows follow event time. The watermark is the newest event time minus
// CorrelatorConfig.Lateness: an event older than the watermark is dropped
// (Stats.Late); matches arriving out of order within the lateness are
// inserted in time order. A window is [t, t+timespan] inclusive, starting at
// any match of the group. A condition with only lower bounds (gt, gte) fires
// as soon as a window holding the new match satisfies it, and the window's
// matches are consumed so the next finding needs fresh ones; a condition
// with an upper bound (lt, lte, eq, neq, ranges) is decided when the window
// closes (the watermark passes its end, Correlator.Advance moves the
// watermark on idle streams). Groups are keyed by agency and the group-by
// values (agencies never mix); their count and size are bounded
// (Stats.Overflow). A rule referenced by a correlation without generate:
// true raises no finding of its own. The finding id is a hash of the first
// event id and the correlation id and group, so a replay of the same events
// gives the same finding and ClickHouse dedupes it.
//
// # Correlations across instances
//
// Several `watchfloor run` instances share the SOC_RAW consumer, so the
// matches of one group key arrive at different instances. Correlation state
// must have one owner per group key. `watchfloor run --corr.mode routed`
// (chosen by the default, auto, when the NATS server has priority groups,
// 2.11+) routes only the hits that correlations need through JetStream;
// package detect/corrroute implements it:
//
//  1. Each instance evaluates detection rules as before, but without
//     in-process windows (rulebook.Set.EvalCorr: RuleSet.EvalHits, Findings
//     and CorrInputs from one match). For every hit of a rule referenced by
//     a correlation it publishes a small record (CorrInput: correlation id,
//     agency, group-by values, value_count value, event id, event time, rule
//     position) to soc.corr.<agency>.<p>, where p = fnv32(correlation id,
//     agency and group values) mod P (--corr.partitions, fixed per
//     deployment) and Nats-Msg-Id = <event id>:<correlation id>:<rule
//     position>, so a redelivered raw batch publishes duplicates that the
//     stream's duplicate window drops. The raw batch is acked only after
//     these publishes are acknowledged, like its findings.
//  2. Stream SOC_CORR (file storage, replicas as the other streams,
//     MaxAge ≥ the longest timespan + lateness, --corr.max-age) holds them.
//     For each partition p there is one durable pull consumer corr-p
//     filtering soc.corr.*.<p>, with PriorityPolicy "pinned_client" (NATS
//     2.11+ priority groups): every instance pulls from every partition
//     consumer, and the server delivers each partition to exactly one pinned
//     instance at a time, moving the pin when that instance stops pulling
//     (--corr.pinned-ttl). This is the engine's own ownership mechanism: no
//     home-made election.
//  3. The owner of a partition runs one Correlator for it (ObserveInputs
//     with the records). Its watermark follows event time, as a single
//     in-process Correlator's does, so a backlog processed after an outage
//     still counts; the price is that a window with an upper-bound condition
//     closes when a newer match reaches the partition, not on a timer
//     (corrroute.OwnerConfig.AdvanceWithClock trades the other way). Its
//     findings are published to soc.detections.<agency>.<level> and stored
//     through the sink, as the pipeline's are (ingest.StoreFindings; rows
//     marked redelivered, so an id already stored is skipped); the records
//     are acked only after that succeeded (a failing store is retried, the
//     records stay unacked). A record whose payload names another agency
//     than its subject is dropped (the subject is what publish permissions
//     control). Records already observed (same id) are skipped: a duplicate
//     that outlived the duplicate window, or a record both replayed and
//     redelivered, counts once.
//  4. An instance notices that it gained a partition when a delivery carries
//     a Nats-Pin-Id it has not built state under (start, failover, a pin that
//     timed out). Before using that delivery it rebuilds the partition: a new
//     Correlator fed, through a temporary consumer with DeliverByStartTime,
//     every record stored since now − (2 × longest timespan + lateness), so
//     matches acked by the previous owner still count. (One span covers the
//     windows still open; the second the matches that windows which fired
//     just before consumed, so they are not counted into a second finding.
//     A group that fired back to back for longer than that may still see
//     one finding raised again under another id.) Findings re-raised
//     during the rebuild carry the ids the previous owner raised: the sink
//     skips them and ClickHouse's ReplacingMergeTree collapses any that
//     slip in. A rebuild must finish within the pin TTL (it logs a warning
//     past half of it). A partition lost (pin mismatch) drops its state.
//
// A rule swap (KV bucket change) hands the new RuleSet to the owner, which
// rebuilds every partition it holds by replaying the same span under the new
// rules: windows of unchanged correlations survive the swap (findings they
// already raised are re-raised with the same ids), records of a correlation
// the new set no longer has are ignored, and a new correlation starts with
// the matches published after the swap. A correlation changed under the same
// id has its records replayed as they were published (group values and rule
// positions of the old definition): those whose group-by arity no longer
// fits are ignored, the others count; give a correlation whose group-by or
// rules list changes a new id to start it afresh. Only hits of
// correlation-referenced rules cross JetStream, so the extra hop costs
// nothing for the bulk of events. --corr.mode local keeps Correlating inside
// the pipeline's Eval: correct for a single instance only (a new rule set
// starts its windows afresh).
//
// # How it grows
//
// New modifiers are a case in parseModifiers plus a stringMatcher or a value
// transformation (modifiers.go). New event attributes are one line in
// attributes.go and names in mapping.yaml; new logsources are entries in
// mapping.yaml (events selected by class, format, product or unmapped
// values such as Channel and EventID, with per-logsource field overrides).
package detect
