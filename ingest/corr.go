package ingest

import (
	"context"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/schemas"
	"github.com/watchfloor/watchfloor/sink"
)

// CorrEvaluator is a Rules that can route correlations: EvalCorr appends
// the findings of the event's detection rules (never correlation findings:
// no in-process window is fed) and the correlation inputs of its hits,
// which the pipeline publishes to the partition owners (detect/corrroute).
// A rulebook.Set and a RulesChain holding one implement it.
type CorrEvaluator interface {
	Rules
	EvalCorr(ev *schemas.Event, out []schemas.Finding, ins []detect.CorrInput) ([]schemas.Finding, []detect.CorrInput)
}

// CorrPublisher publishes correlation inputs and returns once the stream
// acknowledged them all (corrroute.Publisher).
type CorrPublisher interface {
	Publish(ctx context.Context, ins []detect.CorrInput) error
}

// RouteCorrelations switches the pipeline to routed correlations: a batch's
// correlation inputs are published with pub before its message is acked,
// after its findings. It must be called before Run. The Rules given to the
// pipeline must implement CorrEvaluator, or no input is ever routed.
func (p *Pipeline) RouteCorrelations(pub CorrPublisher) { p.corr = pub }

// EvalCorr evaluates every member, routing the correlation inputs of the
// members that are CorrEvaluators.
func (c RulesChain) EvalCorr(ev *schemas.Event, out []schemas.Finding, ins []detect.CorrInput) ([]schemas.Finding, []detect.CorrInput) {
	for _, r := range c {
		if ce, ok := r.(CorrEvaluator); ok {
			out, ins = ce.EvalCorr(ev, out, ins)
		} else {
			out = r.Eval(ev, out)
		}
	}
	return out, ins
}

var _ CorrEvaluator = RulesChain(nil)

// StoreFindings returns the handler of a correlation owner: it publishes
// the findings to soc.detections.<agency>.<level> and stores them, as
// settle does for a batch's findings. The rows are marked redelivered, so
// a finding raised again by a rebuild (same id) is not stored twice.
func StoreFindings(store Store, pub FindingPublisher) func(ctx context.Context, fs []schemas.Finding) error {
	return func(ctx context.Context, fs []schemas.Finding) error {
		if err := pub.Publish(ctx, fs); err != nil {
			return err
		}
		return store.Write(ctx, &sink.Rows{Findings: fs, Redelivered: true})
	}
}
