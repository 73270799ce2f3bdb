package normalize

import "unsafe"

// byteArena hands out strings carved from large shared chunks, so that a
// decoder's per-record copies (the raw record, unescaped JSON strings) cost
// one allocation per chunk instead of one per string. Bytes are only ever
// appended past what was handed out, never rewritten, so every string stays
// valid for as long as anything references it (the GC keeps its chunk).
// A byteArena is not safe for concurrent use.
type byteArena struct {
	buf []byte
}

const arenaChunk = 16 << 10

// room returns an empty slice with at least n bytes of capacity at the end
// of the current chunk; append to it, then call string on the result.
func (a *byteArena) room(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, 0, n) // large: its own allocation
	}
	if cap(a.buf)-len(a.buf) < n {
		a.buf = make([]byte, 0, arenaChunk)
	}
	return a.buf[len(a.buf):len(a.buf)]
}

// string returns b as a string; when b still lies at the end of the current
// chunk (it did not outgrow the room it was given) the chunk advances past it.
func (a *byteArena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if n := len(a.buf); n < cap(a.buf) && unsafe.SliceData(b) == unsafe.SliceData(a.buf[n:n+1]) {
		a.buf = a.buf[:n+len(b)]
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// copy returns a string copy of b from the arena.
func (a *byteArena) copy(b []byte) string {
	return a.string(append(a.room(len(b)), b...))
}
