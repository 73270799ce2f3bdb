package intel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultBucket is the JetStream Object Store that holds pushed feeds.
const DefaultBucket = "soc_intel"

// HeaderFormat on an object names its feed Format; without it the format
// follows the object name's extension (FormatForPath).
const HeaderFormat = "Wf-Intel-Format"

// FileFeed is a feed read from a file at start-up.
type FileFeed struct {
	Name   string // feed name; default: the file name without extension
	Path   string
	Format Format // default: FormatForPath(Path)
}

// ParseFileFeed reads "path" or "name=path" (a --intel.feeds entry).
func ParseFileFeed(s string) FileFeed {
	f := FileFeed{Path: s}
	if name, path, ok := strings.Cut(s, "="); ok && name != "" && path != "" {
		f.Name, f.Path = name, path
	}
	if f.Name == "" {
		f.Name = FeedName(filepath.Base(f.Path))
	}
	f.Format = FormatForPath(f.Path)
	return f
}

// FeedName is the feed name of a file or object name: without extension.
func FeedName(base string) string {
	return strings.TrimSuffix(base, filepath.Ext(base))
}

// Loader builds a Set from file feeds and the feeds in an object store.
type Loader struct {
	PSL   *PublicSuffixes
	Files []FileFeed
	Now   func() time.Time
}

// Build reads every feed. A file that cannot be read is an error (start-up
// should stop); an object that cannot be read is skipped and reported in the
// returned error list, so one bad push does not unload every other feed.
// store may be nil.
func (l *Loader) Build(ctx context.Context, store jetstream.ObjectStore) (*Set, []LoadStats, []error, error) {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	b := NewBuilder(l.PSL, 1024)
	var stats []LoadStats
	for _, f := range l.Files {
		fh, err := os.Open(f.Path)
		if err != nil {
			return nil, stats, nil, fmt.Errorf("intel feed %s: %w", f.Name, err)
		}
		st, err := b.Load(f.Name, f.Format, fh, now)
		fh.Close()
		if err != nil {
			return nil, stats, nil, fmt.Errorf("intel feed %s from %s: %w", f.Name, f.Path, err)
		}
		stats = append(stats, st)
	}
	var objErrs []error
	if store != nil {
		infos, err := store.List(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
			return nil, stats, nil, fmt.Errorf("list intel objects: %w", err)
		}
		for _, info := range infos {
			if info.Deleted {
				continue
			}
			if info.Size > MaxFeedBytes {
				objErrs = append(objErrs, fmt.Errorf("intel object %s: %d bytes exceeds %d", info.Name, info.Size, MaxFeedBytes))
				continue
			}
			format := FormatForPath(info.Name)
			if h := info.Headers.Get(HeaderFormat); h != "" {
				format = Format(h)
			}
			obj, err := store.Get(ctx, info.Name)
			if err != nil {
				objErrs = append(objErrs, fmt.Errorf("get intel object %s: %w", info.Name, err))
				continue
			}
			st, err := b.Load(FeedName(info.Name), format, obj, now)
			obj.Close()
			if err != nil {
				objErrs = append(objErrs, fmt.Errorf("intel object %s: %w", info.Name, err))
				continue
			}
			stats = append(stats, st)
		}
	}
	return b.Build(), stats, objErrs, nil
}

// Reloader rebuilds the matcher's Set whenever the object store changes:
// feeds pushed with `nats object put soc_intel feed.txt` (or any client)
// take effect without a restart. Not safe to Run twice.
type Reloader struct {
	Loader   *Loader
	Store    jetstream.ObjectStore
	Matcher  *Matcher
	Log      *slog.Logger
	Debounce time.Duration // quiet time after a change before rebuilding; default 500ms
}

// Run watches the store until ctx ends. The initial contents are expected
// to be loaded already (Loader.Build at start-up); Run reacts to changes.
func (r *Reloader) Run(ctx context.Context) error {
	w, err := r.Store.Watch(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("watch intel object store: %w", err)
	}
	defer w.Stop()
	debounce := r.Debounce
	if debounce <= 0 {
		debounce = 500 * time.Millisecond
	}
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case info, ok := <-w.Updates():
			if !ok {
				return errors.New("watch intel object store: watcher closed")
			}
			if info == nil {
				continue
			}
			timer = time.After(debounce)
		case <-timer:
			timer = nil
			r.rebuild(ctx)
		}
	}
}

func (r *Reloader) rebuild(ctx context.Context) {
	start := time.Now()
	set, stats, objErrs, err := r.Loader.Build(ctx, r.Store)
	if err != nil {
		r.Log.Error("intel reload failed; keeping the previous feeds", "err", err)
		return
	}
	for _, e := range objErrs {
		r.Log.Warn("intel feed skipped", "err", e)
	}
	r.Matcher.Swap(set)
	skipped := 0
	for _, st := range stats {
		skipped += st.Skipped
	}
	r.Log.Info("intel feeds reloaded", "feeds", len(stats), "indicators", set.Len(), "skipped", skipped, "took", time.Since(start).Round(time.Millisecond))
}
