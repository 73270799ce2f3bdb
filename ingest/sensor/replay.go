package sensor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
)

// FileKey is the source key of a replayed file: 8 hex digits of the SHA-256
// of its absolute path. With Source.Positional the message ids of a replay
// are then "<sensor-id>:<FileKey>-<offset of the batch's first line>", the
// same on every run over the same file, so a re-run is deduplicated by the
// stream (within its duplicate window, and with the same batch settings).
func FileKey(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("file key of %s: %w", path, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:4]), nil
}

// Replay adds every line of r to pub, from the start to EOF, including an
// unterminated last line. If progress is not nil it is kept at the number of
// bytes read. Replay does not flush pub.
func Replay(ctx context.Context, r io.Reader, pub *Publisher, progress *atomic.Int64) error {
	lr := NewLineReader(r, 0)
	for n := 0; ; n++ {
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if progress != nil {
				progress.Store(lr.Offset())
			}
		}
		l, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay: read at offset %d: %w", lr.Offset(), err)
		}
		if err := pub.Add(ctx, l); err != nil {
			return err
		}
	}
	if l, ok := lr.Rest(); ok {
		if err := pub.Add(ctx, l); err != nil {
			return err
		}
	}
	if progress != nil {
		progress.Store(lr.Offset())
	}
	return nil
}
