package normalize

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// goldenDir runs format f over every file matching glob and compares the
// output with testdata/golden/<prefix><file>.json. wantErrors lists, per
// file base name, how many records are expected to fail (default none).
func goldenDir(t *testing.T, f Format, glob, prefix string, wantErrors map[string]int) {
	t.Helper()
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples match %s: %v", glob, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeLines(t, f, BatchInfo{Received: goldenReceived}, data)
			errs := 0
			for _, r := range got {
				if r.Error != "" {
					errs++
					if wantErrors[filepath.Base(file)] == 0 {
						t.Errorf("line %d: unexpected error: %s", r.Line, r.Error)
					}
				}
			}
			if want := wantErrors[filepath.Base(file)]; want != 0 && errs != want {
				t.Errorf("got %d errors, want %d", errs, want)
			}
			checkGolden(t, prefix+goldenName(file), got)
		})
	}
}

// fuzzSeeds adds the lines of the files matching glob as seeds, each
// preceded by the file's directive lines (so TSV records have a header).
func fuzzSeeds(f *testing.F, format Format, glob string, max int) {
	files, _ := filepath.Glob(glob)
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		var hdr [][]byte
		n := 0
		for _, l := range bytes.Split(data, []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			if format.Directive(l) {
				hdr = append(hdr, l)
				continue
			}
			f.Add(bytes.Join(append(hdr[:len(hdr):len(hdr)], l), []byte("\n")))
			if n++; n >= max {
				break
			}
		}
	}
}

// fuzzFormat decodes data line by line with format and checks what every
// accepted record must satisfy.
func fuzzFormat(t *testing.T, format Format, data []byte) {
	dec := format.NewDecoder(BatchInfo{Received: goldenReceived})
	var ev schemas.Event
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if format.Directive(line) {
			_ = dec.Directive(line)
			continue
		}
		ev.Reset()
		if err := dec.Record(line, &ev); err != nil {
			if err.Error() == "" {
				t.Errorf("empty error text for %q", line)
			}
			continue
		}
		if ev.Time.IsZero() || ev.Raw == "" {
			t.Errorf("accepted %q with incomplete event %+v", line, ev)
		}
		if ev.Time.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("time %v not at millisecond precision", ev.Time)
		}
		if ev.ClassUID != 0 && ev.CategoryUID != ev.ClassUID%100000/1000 {
			t.Errorf("class %d with category %d", ev.ClassUID, ev.CategoryUID)
		}
	}
}

func bytesContains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
