package sensor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func appendLines(t *testing.T, path string, ls ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range ls {
		if _, err := f.WriteString(l); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTail(t *testing.T) {
	_, js := newJS(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "eve.json")
	appendLines(t, path, "old-1\n", "old-2\n") // before start: skipped (tail starts at the end)

	cfg := testConfig()
	cfg.Linger = 50 * time.Millisecond
	p := newPub(t, js, cfg, Source{Format: lookup(t, "fake_plain")})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var tailErr error
	wg.Go(func() {
		tailErr = Tail(ctx, TailConfig{Path: path, Poll: 20 * time.Millisecond}, p, testLogger(t))
	})
	defer func() {
		cancel()
		wg.Wait()
		if tailErr != nil {
			t.Errorf("Tail = %v", tailErr)
		}
	}()
	time.Sleep(100 * time.Millisecond) // let Tail open the file and seek to its end

	want := []string{}
	step := func(name string, f func()) {
		t.Helper()
		f()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := allRecords(t, readStream(t, js), true)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: records = %q, want %q", name, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	step("append", func() {
		appendLines(t, path, "a-1\n", "a-2\n", "a-3 part")
		want = append(want, "a-1", "a-2")
	})
	step("complete a partial line", func() {
		appendLines(t, path, "ial\n")
		want = append(want, "a-3 partial")
	})
	step("rename rotation", func() {
		appendLines(t, path, "b-1\n", "b-last-unterminated")
		time.Sleep(60 * time.Millisecond) // one poll reads b-1 before the rename
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		appendLines(t, path, "c-1\n", "c-2\n")
		want = append(want, "b-1", "b-last-unterminated", "c-1", "c-2")
	})
	step("copytruncate", func() {
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
		appendLines(t, path, "d-1\n")
		want = append(want, "d-1")
	})
	step("append after copytruncate", func() {
		appendLines(t, path, "d-2\n")
		want = append(want, "d-2")
	})
	cancel()
	wg.Wait()
	closePub(t, p)
}

func TestTailFromStartWaitsForFile(t *testing.T) {
	_, js := newJS(t)
	path := filepath.Join(t.TempDir(), "later.log")
	p := newPub(t, js, testConfig(), Source{Format: lookup(t, "fake_plain")})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = Tail(ctx, TailConfig{Path: path, FromStart: true, Poll: 20 * time.Millisecond}, p, nil) })
	time.Sleep(50 * time.Millisecond)
	appendLines(t, path, "x-1\n", "x-2\n")
	waitStream(t, js, 1, 5*time.Second)
	cancel()
	wg.Wait()
	closePub(t, p)
	if got := allRecords(t, readStream(t, js), true); !slices.Equal(got, []string{"x-1", "x-2"}) {
		t.Errorf("records = %q", got)
	}
}
