package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/watchfloor/watchfloor/normalize"
)

// Sample limits for --format auto.
const (
	detectLines = 200
	detectBytes = 256 << 10
)

// formatFor returns format, or when it is nil (--format auto) the format
// detected from the first lines of the file at path.
func formatFor(reg *normalize.Registry, format *normalize.Format, path string) (*normalize.Format, error) {
	if format != nil {
		return format, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--format auto: %w", err)
	}
	defer f.Close()
	lines, err := sampleLines(f)
	if err != nil {
		return nil, fmt.Errorf("--format auto: read %s: %w", path, err)
	}
	d, err := reg.Detect(lines)
	if err != nil {
		return nil, fmt.Errorf("--format auto: %s: %w; name the format with --format", path, err)
	}
	got, ok := reg.Lookup(d.Format)
	if !ok {
		return nil, fmt.Errorf("--format auto: %s: detected %q is not registered", path, d.Format)
	}
	return got, nil
}

func sampleLines(r io.Reader) ([][]byte, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, detectBytes), 64<<10)
	var lines [][]byte
	for len(lines) < detectLines {
		l, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return lines, nil
}
