package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
	"github.com/watchfloor/watchfloor/ingest"
	"github.com/watchfloor/watchfloor/schemas"
)

const routedRules = `title: sshd invalid user
id: t-invalid-user
level: low
logsource: {product: linux, service: sshd}
detection:
  sel: {app: sshd, message|startswith: 'Invalid user '}
  condition: sel
---
title: SSH user guessing
id: t-guessing
level: high
correlation: {type: event_count, rules: [t-invalid-user], group-by: [host], timespan: 10m, condition: {gte: 2}}
`

// flakyCorrPublisher fails its first calls, then records the inputs; each
// call checks that the raw batch is still unacknowledged.
type flakyCorrPublisher struct {
	mu       sync.Mutex
	fail     int
	calls    int
	got      []detect.CorrInput
	unacked  []int
	pendings func() int
}

func (f *flakyCorrPublisher) Publish(_ context.Context, ins []detect.CorrInput) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.unacked = append(f.unacked, f.pendings())
	if f.calls <= f.fail {
		return errors.New("SOC_CORR unavailable")
	}
	f.got = append(f.got, ins...)
	return nil
}

// TestPipelineRoutesCorrelationInputs runs a pipeline in routed mode: the
// batch's correlation inputs are published (retried while the publisher
// fails) before its message is acked, and no correlation fires in-process.
func TestPipelineRoutesCorrelationInputs(t *testing.T) {
	h := newHarness(t)
	rr, err := detect.ParseRules([]byte(routedRules))
	if err != nil {
		t.Fatal(err)
	}
	set, err := rulebook.StaticSet(rr, detect.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cons := ingest.DefaultPipelineConfig().Durable
	pub := &flakyCorrPublisher{fail: 2, pendings: func() int {
		c, err := h.js.Consumer(context.Background(), ingest.StreamRaw, cons)
		if err != nil {
			return -1
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return -1
		}
		return info.NumAckPending
	}}
	stop := h.runWith(t, ingest.RulesChain{set}, pub)
	now := time.Now().UTC()
	var lines []string
	for k := 0; k < 3; k++ {
		lines = append(lines, fmt.Sprintf("%s bastion01.agency.example sshd[%d]: Invalid user u%d from 198.51.100.7 port 4000", now.Format(time.Stamp), 100+k, k))
	}
	lines = append(lines, now.Format(time.Stamp)+" bastion01.agency.example sshd[200]: Accepted publickey for deploy from 192.0.2.10 port 4000 ssh2")
	h.publish(t, "doj", "syslog", "routed:1", lines, nil)
	h.waitStored(t, 15*time.Second)
	stop()

	pub.mu.Lock()
	defer pub.mu.Unlock()
	if pub.calls != 3 {
		t.Errorf("Publish called %d times, want 3 (two failures, then success)", pub.calls)
	}
	for i, n := range pub.unacked {
		if n != 1 {
			t.Errorf("Publish call %d saw %d unacked raw messages, want 1 (inputs go out before the ack)", i+1, n)
		}
	}
	ids := map[schemas.ID]bool{}
	for _, in := range pub.got {
		ids[in.Event] = true
		if in.Corr != "t-guessing" || in.Agency != "doj" || len(in.Group) != 1 || in.Group[0] != "bastion01.agency.example" {
			t.Errorf("input %+v: want corr t-guessing, agency doj, group [bastion01.agency.example]", in)
		}
	}
	if len(pub.got) != 3 || len(ids) != 3 {
		t.Errorf("published %d inputs for %d events, want 3 for 3", len(pub.got), len(ids))
	}
	if n := h.count(t, "SELECT count() FROM $db.detections"); n != 0 {
		t.Errorf("%d detections stored by the pipeline, want 0: the correlation is its owner's to raise, the rule feeds it only", n)
	}
}
