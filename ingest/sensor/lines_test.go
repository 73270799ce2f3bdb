package sensor

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/watchfloor/watchfloor/ingest"
)

type gotLine struct {
	data string
	size int
	off  int64
}

func readAllLines(t *testing.T, r io.Reader) (got []gotLine) {
	t.Helper()
	lr := NewLineReader(r, 0)
	for {
		l, err := lr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, gotLine{string(l.Data), l.Size, l.Offset})
	}
	if l, ok := lr.Rest(); ok {
		got = append(got, gotLine{string(l.Data), l.Size, l.Offset})
	}
	return got
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("L", ingest.MaxRecordBytes+1)
	exact := strings.Repeat("E", ingest.MaxRecordBytes)
	mid := strings.Repeat("M", 3*lineBufSize+7) // longer than the buffer, under the limit
	tests := []struct {
		name string
		give string
		want []gotLine
	}{
		{name: "plain", give: "a\nbb\n", want: []gotLine{{"a", 1, 0}, {"bb", 2, 2}}},
		{name: "crlf", give: "a\r\nb\r\n", want: []gotLine{{"a", 1, 0}, {"b", 1, 3}}},
		{name: "empty lines", give: "\n\na\n", want: []gotLine{{"", 0, 0}, {"", 0, 1}, {"a", 1, 2}}},
		{name: "unterminated", give: "a\nrest", want: []gotLine{{"a", 1, 0}, {"rest", 4, 2}}},
		{name: "over buffer", give: mid + "\nz\n", want: []gotLine{{mid, len(mid), 0}, {"z", 1, int64(len(mid) + 1)}}},
		{name: "exactly max", give: exact + "\n", want: []gotLine{{exact, len(exact), 0}}},
		{name: "oversize", give: long + "\nz\n", want: []gotLine{
			{long[:ingest.OversizePrefix], len(long), 0}, {"z", 1, int64(len(long) + 1)},
		}},
		{name: "oversize unterminated", give: long, want: []gotLine{{long[:ingest.OversizePrefix], len(long), 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []io.Reader{strings.NewReader(tt.give), iotest.OneByteReader(strings.NewReader(tt.give))} {
				got := readAllLines(t, r)
				if len(got) != len(tt.want) {
					t.Fatalf("got %d lines, want %d", len(got), len(tt.want))
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("line %d = {%.20q %d %d}, want {%.20q %d %d}", i,
							got[i].data, got[i].size, got[i].off, tt.want[i].data, tt.want[i].size, tt.want[i].off)
					}
				}
			}
		})
	}
}

// A line cut by EOF is continued once more data is readable (a growing file).
func TestLineReaderContinues(t *testing.T) {
	var src growing
	lr := NewLineReader(&src, 0)
	src.data = []byte("par")
	if _, err := lr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want EOF", err)
	}
	src.data = append(src.data, "tial\nnext"...)
	l, err := lr.Next()
	if err != nil || string(l.Data) != "partial" {
		t.Fatalf("Next = %q, %v; want partial", l.Data, err)
	}
	if _, err := lr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next = %v, want EOF", err)
	}
}

// growing is a reader whose data can grow after it returned EOF.
type growing struct {
	data []byte
	pos  int
}

func (g *growing) Read(p []byte) (int, error) {
	if g.pos >= len(g.data) {
		return 0, io.EOF
	}
	n := copy(p, g.data[g.pos:])
	g.pos += n
	return n, nil
}
