package main

import (
	"context"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/watchfloor/watchfloor/detect"
	"github.com/watchfloor/watchfloor/detect/rulebook"
)

// startRulesWatcher opens (or creates) the soc_rules bucket and returns a
// watcher whose current set is ready. onSwap receives every later set.
func startRulesWatcher(ctx context.Context, js jetstream.JetStream, base []*detect.Rule, onSwap func(*rulebook.Set), log *slog.Logger) (*rulebook.Watcher, error) {
	store, err := rulebook.Open(ctx, js, rulebook.DefaultBucketConfig())
	if err != nil {
		return nil, err
	}
	w, err := rulebook.NewWatcher(store, rulebook.WatcherConfig{Base: base, Compile: detect.DefaultConfig(), OnSwap: onSwap}, log)
	if err != nil {
		return nil, err
	}
	if err := w.Start(ctx); err != nil {
		return nil, err
	}
	return w, nil
}
