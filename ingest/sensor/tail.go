package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"
)

// TailConfig says which file to follow and how.
type TailConfig struct {
	Path      string
	FromStart bool          // read the file from its start instead of its end (--from-start)
	Poll      time.Duration // how often to look for appends, rotation and truncation (default 250ms)
}

// Tail follows cfg.Path and adds every new line to pub until ctx ends, then
// returns nil (the caller closes pub, which flushes). It handles rotation by
// rename+create (the old file is read to its end, including an
// unterminated last line, then the new file from its start) and copytruncate
// (the file shrinks below the read offset: reading restarts at 0). A file
// that does not exist yet is waited for.
//
// Known limits: a copytruncate that refills the file past the read offset
// within one poll is not noticed; lines written to a renamed file after Tail
// has moved to the new one are not read.
func Tail(ctx context.Context, cfg TailConfig, pub *Publisher, log *slog.Logger) error {
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("path", cfg.Path)
	t := &tailer{cfg: cfg, pub: pub, log: log}
	err := t.run(ctx)
	if t.f != nil {
		_ = t.f.Close()
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type tailer struct {
	cfg TailConfig
	pub *Publisher
	log *slog.Logger
	f   *os.File
	fi  os.FileInfo
	lr  *LineReader
}

func (t *tailer) run(ctx context.Context) error {
	if err := t.open(ctx, !t.cfg.FromStart); err != nil {
		return err
	}
	for {
		if err := t.readLines(ctx); err != nil {
			return err
		}
		if !sleep(ctx, t.cfg.Poll) {
			return nil
		}
		fi, err := os.Stat(t.cfg.Path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // renamed away, not re-created yet: keep reading the old file
		case err != nil:
			return fmt.Errorf("tail %s: %w", t.cfg.Path, err)
		case !os.SameFile(t.fi, fi):
			// Rotated by rename+create: finish the old file, then the new one from its start.
			if err := t.readLines(ctx); err != nil {
				return err
			}
			if l, ok := t.lr.Rest(); ok {
				if err := t.pub.Add(ctx, l); err != nil {
					return err
				}
			}
			_ = t.f.Close()
			t.f = nil
			t.log.Info("file rotated, reading the new one")
			if err := t.open(ctx, false); err != nil {
				return err
			}
		case fi.Size() < t.lr.Offset():
			t.log.Info("file truncated, reading from its start", "size", fi.Size(), "offset", t.lr.Offset())
			if _, err := t.f.Seek(0, io.SeekStart); err != nil {
				return fmt.Errorf("tail %s: seek: %w", t.cfg.Path, err)
			}
			t.fi = fi
			t.lr.Reset(t.f, 0)
		}
	}
}

// open opens the path, waiting for it to exist; atEnd starts at its end.
func (t *tailer) open(ctx context.Context, atEnd bool) error {
	waiting := false
	for {
		f, err := os.Open(t.cfg.Path)
		if err == nil {
			fi, err := f.Stat()
			if err != nil {
				_ = f.Close()
				return fmt.Errorf("tail %s: %w", t.cfg.Path, err)
			}
			var off int64
			if atEnd {
				if off, err = f.Seek(0, io.SeekEnd); err != nil {
					_ = f.Close()
					return fmt.Errorf("tail %s: seek: %w", t.cfg.Path, err)
				}
			}
			t.f, t.fi = f, fi
			if t.lr == nil {
				t.lr = NewLineReader(f, off)
			} else {
				t.lr.Reset(f, off)
			}
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("tail: %w", err)
		}
		if !waiting {
			t.log.Info("waiting for file to appear")
			waiting = true
		}
		// A file created after start-up is read from its start.
		atEnd = false
		if !sleep(ctx, t.cfg.Poll) {
			return ctx.Err()
		}
	}
}

// readLines adds every complete line up to the current end of the file.
func (t *tailer) readLines(ctx context.Context) error {
	for n := 1; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		l, err := t.lr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tail %s: read: %w", t.cfg.Path, err)
		}
		if err := t.pub.Add(ctx, l); err != nil {
			return err
		}
	}
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
