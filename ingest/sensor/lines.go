package sensor

import (
	"bufio"
	"errors"
	"io"

	"github.com/watchfloor/watchfloor/ingest"
)

// lineBufSize is the bufio buffer of a LineReader: lines up to this size are
// returned without a copy.
const lineBufSize = 64 << 10

// LineReader splits a byte stream into lines in bounded memory. A line longer
// than ingest.MaxRecordBytes is read in chunks and only its first
// ingest.OversizePrefix bytes are kept (Line.Size tells the original size),
// so no line is ever held whole beyond MaxRecordBytes.
//
// At the end of the input an unterminated line is not returned by Next: it
// is kept, and a later Next continues it if more data arrives (a file being
// appended to). Rest returns it when the input is known to be complete.
//
// A LineReader is not safe for concurrent use.
type LineReader struct {
	br       *bufio.Reader
	off      int64 // offset of the next unread byte
	inLine   bool  // a line has started and not ended
	start    int64 // offset of the current line
	size     int   // bytes of the current line so far
	part     []byte
	maxLine  int
	keepLine int
}

// NewLineReader reads r, whose first byte is at offset off of its source.
func NewLineReader(r io.Reader, off int64) *LineReader {
	lr := &LineReader{maxLine: ingest.MaxRecordBytes, keepLine: ingest.OversizePrefix}
	lr.br = bufio.NewReaderSize(r, lineBufSize)
	lr.Reset(r, off)
	return lr
}

// Reset discards all state, including a partial line, and reads r from off.
func (lr *LineReader) Reset(r io.Reader, off int64) {
	lr.br.Reset(r)
	lr.off = off
	lr.inLine = false
	lr.size = 0
	lr.part = lr.part[:0]
}

// Offset is the source offset just after the last byte read.
func (lr *LineReader) Offset() int64 { return lr.off }

// Next returns the next complete line, without "\n" or "\r\n". Empty lines
// are returned too (Publisher.Add skips them). At the end of the input Next
// returns io.EOF. The line's Data is valid until the next call.
func (lr *LineReader) Next() (Line, error) {
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(chunk) > 0 && !lr.inLine {
			lr.inLine = true
			lr.start = lr.off
			lr.size = 0
			lr.part = lr.part[:0]
		}
		lr.off += int64(len(chunk))
		switch {
		case err == nil:
			data := chunk[:len(chunk)-1]
			if lr.size == 0 { // whole line in the buffer: no copy
				lr.inLine = false
				return Line{Data: trimCR(data), Size: len(trimCR(data)), Offset: lr.start}, nil
			}
			lr.appendPart(data)
			return lr.finish(true), nil
		case errors.Is(err, bufio.ErrBufferFull):
			lr.appendPart(chunk)
		case errors.Is(err, io.EOF):
			lr.appendPart(chunk)
			return Line{}, io.EOF
		default:
			lr.appendPart(chunk)
			return Line{}, err
		}
	}
}

// Rest returns the unterminated line at the end of the input, if any, and
// forgets it.
func (lr *LineReader) Rest() (Line, bool) {
	if !lr.inLine {
		return Line{}, false
	}
	return lr.finish(false), true
}

func (lr *LineReader) appendPart(b []byte) {
	lr.size += len(b)
	if lr.size <= lr.maxLine {
		lr.part = append(lr.part, b...)
		return
	}
	// Oversize: keep the prefix only, and stop growing.
	if n := len(lr.part); n < lr.keepLine {
		lr.part = append(lr.part, b[:min(lr.keepLine-n, len(b))]...)
	}
	lr.part = lr.part[:min(len(lr.part), lr.keepLine)]
}

func (lr *LineReader) finish(terminated bool) Line {
	lr.inLine = false
	data, size := lr.part, lr.size
	if size <= lr.maxLine {
		if terminated {
			data = trimCR(data)
		}
		size = len(data)
	}
	return Line{Data: data, Size: size, Offset: lr.start}
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
