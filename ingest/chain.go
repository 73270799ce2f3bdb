package ingest

import "github.com/watchfloor/watchfloor/schemas"

// RulesChain evaluates several Rules in order on each event (the Sigma
// engine, threat-intel matching, DNS analytics), appending all findings.
// It is safe for concurrent use when its members are.
type RulesChain []Rules

var _ Rules = RulesChain(nil)

// Eval appends the findings of every member.
func (c RulesChain) Eval(ev *schemas.Event, out []schemas.Finding) []schemas.Finding {
	for _, r := range c {
		out = r.Eval(ev, out)
	}
	return out
}
