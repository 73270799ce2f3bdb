package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line progress bar: bytes read of the total and the
// rate of records read.
type progress struct {
	w     io.Writer
	total int64
	start time.Time
}

const barWidth = 30

func (p *progress) render(done int64, records uint64) {
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(done)/float64(p.total), 1)
	}
	n := int(frac * barWidth)
	rate := 0.0
	if s := time.Since(p.start).Seconds(); s > 0 {
		rate = float64(records) / s
	}
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%% %s / %s  %.0f records/s ",
		strings.Repeat("=", n), strings.Repeat(" ", barWidth-n), 100*frac, humanBytes(done), humanBytes(p.total), rate)
}

func (p *progress) finish() { fmt.Fprintln(p.w) }

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
