// Package normalize turns raw telemetry records into schemas.Event values.
//
// Each source format is registered under a name — the last token of the
// subject soc.raw.<agency>.<format>. A Format tells the sensor which lines are
// framing directives rather than records (Zeek TSV "#fields" headers), and
// gives the pipeline a per-batch Decoder, because some formats carry state
// from one line to the next.
//
// Every error a Decoder returns means the record itself is bad: the pipeline
// turns it into a dead letter with the error text as the reason and goes on.
package normalize

import (
	"fmt"
	"sort"
	"time"

	"github.com/watchfloor/watchfloor/schemas"
)

// BatchInfo is what a decoder may know about the batch besides its records.
type BatchInfo struct {
	// Received is when the batch was stored in the stream. It is the same on
	// every redelivery, so sources that omit the year (RFC 3164) get a stable
	// event time from it.
	Received time.Time
}

// Decoder normalizes the records of one batch in order.
// A Decoder is not safe for concurrent use; use one per batch and goroutine.
type Decoder interface {
	// Directive consumes a framing line (see Format.IsDirective).
	Directive(line []byte) error
	// Record fills ev, which the caller has Reset, from one record.
	// rec is valid only during the call: the decoder must copy what it keeps.
	Record(rec []byte, ev *schemas.Event) error
}

// Format describes one registered source format.
type Format struct {
	Name        string
	Description string
	// IsDirective reports whether line is framing metadata rather than a
	// record. Nil means every non-empty line is a record.
	IsDirective func(line []byte) bool
	// NewDecoder returns a decoder for one batch.
	NewDecoder func(BatchInfo) Decoder
}

// Directive reports whether line is a framing directive of format f.
func (f *Format) Directive(line []byte) bool {
	return f.IsDirective != nil && f.IsDirective(line)
}

// Registry maps format names to formats. It is read-only after construction
// and safe for concurrent use.
type Registry struct {
	formats map[string]Format
}

// NewRegistry builds a registry from formats; a duplicate name is an error.
func NewRegistry(formats ...Format) (*Registry, error) {
	r := &Registry{formats: make(map[string]Format, len(formats))}
	for _, f := range formats {
		if f.Name == "" || f.NewDecoder == nil {
			return nil, fmt.Errorf("register format %q: name and NewDecoder are required", f.Name)
		}
		if _, dup := r.formats[f.Name]; dup {
			return nil, fmt.Errorf("register format %q: already registered", f.Name)
		}
		r.formats[f.Name] = f
	}
	return r, nil
}

// Builtin returns a registry holding every format this package implements.
func Builtin() *Registry {
	r, err := NewRegistry(builtinFormats()...)
	if err != nil {
		panic(err) // a programming error in the built-in list, caught by tests
	}
	return r
}

// Lookup returns the format registered under name.
func (r *Registry) Lookup(name string) (*Format, bool) {
	f, ok := r.formats[name]
	if !ok {
		return nil, false
	}
	return &f, true
}

// Names lists the registered format names in order.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.formats))
	for n := range r.formats {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
