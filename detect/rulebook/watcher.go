package rulebook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Base rules (a directory) that the bucket overlays; may be empty.
	Base []*detect.Rule
	// Compile configures rule compilation (mapping).
	Compile detect.Config
	// OnSwap, when set, is called with every new Set after it became
	// current (e.g. ingest.Pipeline.SetRules). It runs on the watcher's
	// goroutine and must not block for long.
	OnSwap func(*Set)
	// StartTimeout bounds the initial read of the bucket (default 30s).
	StartTimeout time.Duration
}

// Watcher keeps the current Set in step with the bucket: it compiles the
// whole set on every change and swaps it atomically. A bucket entry that
// does not parse or compile is rejected with a log line and the rule's
// previous good version stays live (push refuses such rules, but the
// bucket can be written around the CLI).
type Watcher struct {
	store *Store
	cfg   WatcherConfig
	log   *slog.Logger

	cur      atomic.Pointer[Set]
	w        jetstream.KeyWatcher
	live     map[string]kvRule
	revision uint64
	rejected atomic.Int64
	swaps    atomic.Int64
}

// NewWatcher returns a watcher; call Start, then Run.
func NewWatcher(store *Store, cfg WatcherConfig, log *slog.Logger) (*Watcher, error) {
	if store == nil || log == nil {
		return nil, errors.New("new rules watcher: store and log are required")
	}
	if err := cfg.Compile.Validate(); err != nil {
		return nil, err
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	return &Watcher{store: store, cfg: cfg, log: log, live: map[string]kvRule{}}, nil
}

// Current returns the live Set. It is nil before Start returned.
func (w *Watcher) Current() *Set { return w.cur.Load() }

// Rejected counts bucket entries that did not parse or compile.
func (w *Watcher) Rejected() int64 { return w.rejected.Load() }

// Swaps counts rule sets made current after the initial one.
func (w *Watcher) Swaps() int64 { return w.swaps.Load() }

// Start reads the bucket's current rules, compiles the first Set and makes
// it current. It fails when the base rules do not compile.
func (w *Watcher) Start(ctx context.Context) error {
	kw, err := w.store.kv.WatchAll(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("watch %s: %w", Bucket, err)
	}
	tctx, cancel := context.WithTimeout(ctx, w.cfg.StartTimeout)
	defer cancel()
	for {
		select {
		case e, ok := <-kw.Updates():
			if !ok {
				_ = kw.Stop()
				return fmt.Errorf("watch %s: closed during the initial read", Bucket)
			}
			if e == nil {
				w.w = kw
				if err := w.rebuild(); err != nil {
					_ = kw.Stop()
					return err
				}
				return nil
			}
			w.apply(e)
		case <-tctx.Done():
			_ = kw.Stop()
			return fmt.Errorf("watch %s: initial read: %w", Bucket, tctx.Err())
		}
	}
}

// Run applies bucket changes until ctx ends. Changes that arrive together
// are folded into one rebuild.
func (w *Watcher) Run(ctx context.Context) error {
	if w.w == nil {
		return errors.New("rules watcher: Run before Start")
	}
	defer func() { _ = w.w.Stop() }()
	updates := w.w.Updates()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch %s: updates closed", Bucket)
			}
			if e == nil {
				continue
			}
			changed := w.apply(e)
		drain:
			for {
				select {
				case e, ok := <-updates:
					if !ok {
						break drain
					}
					if e != nil {
						changed = w.apply(e) || changed
					}
				default:
					break drain
				}
			}
			if !changed {
				continue
			}
			if err := w.rebuild(); err != nil {
				// Every entry compiled alone, so this is a cross-rule
				// problem: keep the current set, say so loudly.
				w.log.Error("rules update not applied, keeping the current rule set", "revision", w.revision, "err", err)
				continue
			}
			w.swaps.Add(1)
		}
	}
}

// apply folds one entry into the live map; it reports whether the live
// rules changed.
func (w *Watcher) apply(e jetstream.KeyValueEntry) bool {
	id, rev := e.Key(), e.Revision()
	w.revision = max(w.revision, rev)
	lvl := slog.LevelInfo
	if w.w == nil {
		lvl = slog.LevelDebug // the initial read: one summary line follows
	}
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		w.live[id] = kvRule{revision: rev}
		w.log.Log(context.Background(), lvl, "rule disabled", "rule", id, "revision", rev)
		return true
	}
	r, err := ParseStored(id, rev, e.Value())
	if err == nil {
		err = compileOne(r, w.cfg.Compile)
	}
	if err != nil {
		w.rejected.Add(1)
		prev, ok := w.live[id]
		w.log.Error("rejected rule revision, keeping the previous one", "rule", id, "revision", rev,
			"kept_revision", prev.revision, "kept", ok && prev.rule != nil, "err", err)
		return false
	}
	w.live[id] = kvRule{rule: r, revision: rev}
	w.log.Log(context.Background(), lvl, "rule deployed", "rule", id, "revision", rev)
	return true
}

func (w *Watcher) rebuild() error {
	s, err := buildSet(w.cfg.Base, w.live, w.revision, w.cfg.Compile)
	if err != nil {
		return err
	}
	w.cur.Store(s)
	w.log.Info("rule set live", "rules", s.Len(), "revision", s.Revision())
	if w.cfg.OnSwap != nil {
		w.cfg.OnSwap(s)
	}
	return nil
}
