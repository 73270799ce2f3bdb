// Package rulebook keeps Watchfloor's deployed Sigma rules in the JetStream
// KeyValue bucket soc_rules (one key per rule id, KV history as the version
// record), and turns the bucket into a live, atomically swapped rule set for
// the pipeline (Watcher). Correlation rules run in-process per Set (Eval;
// a swap starts their windows afresh) or, routed across instances, give
// their inputs to detect/corrroute (EvalCorr; see detect's package doc).
// It also runs the test sidecars (rule.tests.yml) that
// `watchfloor rules test|push` require, and generates the NATS permissions
// that let only detection engineers write the bucket (perms.go).
package rulebook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
)

// Bucket is the KeyValue bucket holding the deployed rules.
const Bucket = "soc_rules"

// MaxRuleBytes bounds one rule document stored in the bucket.
const MaxRuleBytes = 256 << 10

// maxHistory is the most revisions JetStream keeps per key.
const maxHistory = 64

// BucketConfig sizes the soc_rules bucket.
type BucketConfig struct {
	Replicas int   // 1, or 3/5 on a JetStream cluster
	History  uint8 // revisions kept per rule, 2..64
}

// DefaultBucketConfig keeps the most history JetStream allows.
func DefaultBucketConfig() BucketConfig { return BucketConfig{Replicas: 1, History: maxHistory} }

// Validate reports the first bad setting, naming its key.
func (c BucketConfig) Validate() error {
	switch {
	case c.Replicas != 1 && c.Replicas != 3 && c.Replicas != 5:
		return fmt.Errorf("rules.replicas must be 1, 3 or 5, got %d", c.Replicas)
	case c.History < 2 || c.History > maxHistory:
		return fmt.Errorf("rules.history must be between 2 and %d, got %d", maxHistory, c.History)
	}
	return nil
}

// Store reads and writes the soc_rules bucket. It is safe for concurrent use.
type Store struct {
	kv jetstream.KeyValue
}

// EnsureBucket creates or updates the bucket and returns a Store over it.
// It needs stream-management rights ($JS.API.STREAM.*.KV_soc_rules).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg BucketConfig) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       Bucket,
		Description:  "Watchfloor deployed Sigma rules: one key per rule id, history is the version record",
		MaxValueSize: MaxRuleBytes,
		History:      cfg.History,
		Replicas:     cfg.Replicas,
		Storage:      jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update KV bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// OpenStore binds to an existing bucket (read rights are enough).
func OpenStore(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("open KV bucket %s: %w", Bucket, err)
	}
	return &Store{kv: kv}, nil
}

// Open binds to the bucket, creating it when it does not exist yet.
func Open(ctx context.Context, js jetstream.JetStream, cfg BucketConfig) (*Store, error) {
	s, err := OpenStore(ctx, js)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return EnsureBucket(ctx, js, cfg)
	}
	return s, err
}

// Op is what a revision did to a rule.
type Op string

const (
	OpPut     Op = "put"     // deployed this version
	OpDisable Op = "disable" // disabled (KV delete marker; history kept)
	OpPurge   Op = "purge"   // history removed by an operator
)

// Entry is one revision of one rule.
type Entry struct {
	ID       string    `json:"id"`
	Revision uint64    `json:"revision"`
	Created  time.Time `json:"created"`
	Op       Op        `json:"op"`
	Title    string    `json:"title,omitempty"`
	Level    string    `json:"level,omitempty"`
	Body     []byte    `json:"-"`
}

func entryOf(e jetstream.KeyValueEntry) Entry {
	out := Entry{ID: e.Key(), Revision: e.Revision(), Created: e.Created().UTC(), Op: OpPut}
	switch e.Operation() {
	case jetstream.KeyValueDelete:
		out.Op = OpDisable
	case jetstream.KeyValuePurge:
		out.Op = OpPurge
	default:
		out.Body = e.Value()
		if r, err := ParseStored(out.ID, out.Revision, out.Body); err == nil {
			out.Title, out.Level = r.Title, r.Level
		}
	}
	return out
}

// ErrNotFound is returned for a rule id or revision the bucket does not hold.
var ErrNotFound = errors.New("not found")

// ParseStored parses a bucket value as the one rule keyed id. The value
// must hold exactly one rule whose id equals the key.
func ParseStored(id string, rev uint64, body []byte) (*detect.Rule, error) {
	src := fmt.Sprintf("%s/%s@%d", Bucket, id, rev)
	rules, errs := detect.ParseFile(src, body)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	switch {
	case len(rules) != 1:
		return nil, fmt.Errorf("%s: holds %d rules, want exactly one", src, len(rules))
	case rules[0].ID != id:
		return nil, fmt.Errorf("%s: rule id %q differs from its key", src, rules[0].ID)
	}
	return rules[0], nil
}

// Put deploys body (one Sigma rule document whose id is id) and returns
// the new revision. It does not test the rule: callers validate first.
func (s *Store) Put(ctx context.Context, id string, body []byte) (uint64, error) {
	if len(body) > MaxRuleBytes {
		return 0, fmt.Errorf("put rule %s: %d bytes, at most %d are allowed", id, len(body), MaxRuleBytes)
	}
	if _, err := ParseStored(id, 0, body); err != nil {
		return 0, fmt.Errorf("put rule %s: %w", id, err)
	}
	rev, err := s.kv.Put(ctx, id, body)
	if err != nil {
		return 0, fmt.Errorf("put rule %s in %s: %w", id, Bucket, err)
	}
	return rev, nil
}

// Get returns the latest revision of a rule, which may be a disable.
func (s *Store) Get(ctx context.Context, id string) (Entry, error) {
	h, err := s.History(ctx, id)
	if err != nil {
		return Entry{}, err
	}
	return h[len(h)-1], nil
}

// GetRevision returns one revision of a rule.
func (s *Store) GetRevision(ctx context.Context, id string, rev uint64) (Entry, error) {
	e, err := s.kv.GetRevision(ctx, id, rev)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// GetRevision reports a delete marker as not found too: look in history.
		h, herr := s.History(ctx, id)
		if herr == nil {
			for _, x := range h {
				if x.Revision == rev {
					return x, nil
				}
			}
		}
		return Entry{}, fmt.Errorf("rule %s revision %d: %w", id, rev, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("get rule %s revision %d: %w", id, rev, err)
	}
	return entryOf(e), nil
}

// History returns every kept revision of a rule, oldest first.
func (s *Store) History(ctx context.Context, id string) ([]Entry, error) {
	h, err := s.kv.History(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("rule %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("history of rule %s: %w", id, err)
	}
	out := make([]Entry, len(h))
	for i, e := range h {
		out[i] = entryOf(e)
	}
	return out, nil
}

// List returns the latest revision of every rule, disabled ones included,
// sorted by id.
func (s *Store) List(ctx context.Context) ([]Entry, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", Bucket, err)
	}
	defer w.Stop()
	var out []Entry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list %s: watcher closed", Bucket)
			}
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
				return out, nil
			}
			out = append(out, entryOf(e))
		case <-ctx.Done():
			return nil, fmt.Errorf("list %s: %w", Bucket, ctx.Err())
		}
	}
}

// Disable stops a rule everywhere (a KV delete marker: the history stays,
// so rollback can bring it back). It returns the marker's revision.
func (s *Store) Disable(ctx context.Context, id string) (uint64, error) {
	cur, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if cur.Op != OpPut {
		return cur.Revision, fmt.Errorf("rule %s is already disabled (revision %d)", id, cur.Revision)
	}
	if err := s.kv.Delete(ctx, id, jetstream.LastRevision(cur.Revision)); err != nil {
		return 0, fmt.Errorf("disable rule %s: %w", id, err)
	}
	last, err := s.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	return last.Revision, nil
}

// RollbackResult says what Rollback did.
type RollbackResult struct {
	ID       string `json:"id"`
	From     uint64 `json:"from_revision"`      // the revision that was current
	To       uint64 `json:"to_revision"`        // the revision whose body is live again; 0 when disabled
	Revision uint64 `json:"revision"`           // the new revision written
	Disabled bool   `json:"disabled,omitempty"` // no earlier version: the rule was disabled
}

// Rollback makes an earlier version of a rule live again by writing it as a
// new revision (history is never rewritten). to == 0 means the deployed
// version before the current one; when there is none (a rule pushed once),
// the rule is disabled. A rule that is currently disabled rolls back to
// its last deployed version.
func (s *Store) Rollback(ctx context.Context, id string, to uint64) (RollbackResult, error) {
	h, err := s.History(ctx, id)
	if err != nil {
		return RollbackResult{}, err
	}
	cur := h[len(h)-1]
	res := RollbackResult{ID: id, From: cur.Revision}
	var target *Entry
	if to != 0 {
		for i := range h {
			if h[i].Revision == to {
				target = &h[i]
			}
		}
		if target == nil {
			return res, fmt.Errorf("rule %s has no kept revision %d (kept: %s)", id, to, revisions(h))
		}
		if target.Op != OpPut {
			return res, fmt.Errorf("rule %s revision %d is a %s, not a deployed version", id, to, target.Op)
		}
	} else {
		skip := cur.Op == OpPut // the current body is what we roll back from
		for i := len(h) - 1; i >= 0; i-- {
			if h[i].Op != OpPut {
				continue
			}
			if skip {
				skip = false
				continue
			}
			if cur.Op == OpPut && bytes.Equal(h[i].Body, cur.Body) {
				continue // an identical re-push is not an earlier version
			}
			target = &h[i]
			break
		}
	}
	if target == nil {
		if cur.Op != OpPut {
			return res, fmt.Errorf("rule %s is disabled and has no earlier version to roll back to", id)
		}
		rev, err := s.Disable(ctx, id)
		if err != nil {
			return res, err
		}
		res.Revision, res.Disabled = rev, true
		return res, nil
	}
	rev, err := s.Put(ctx, id, target.Body)
	if err != nil {
		return res, err
	}
	res.To, res.Revision = target.Revision, rev
	return res, nil
}

func revisions(h []Entry) string {
	var b bytes.Buffer
	for i, e := range h {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d (%s)", e.Revision, e.Op)
	}
	return b.String()
}
