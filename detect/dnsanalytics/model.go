package dnsanalytics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/watchfloor/watchfloor/detect/intel"
)

// Character classes of the language model: a-z, 0-9, '-', and start/end.
const (
	symStart = 37
	symEnd   = 38
	nSym     = 39
)

func sym(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= '0' && c <= '9':
		return 26 + int(c-'0')
	}
	return 36 // '-', '_' and anything else
}

// Model is a character trigram language model of popular domain labels:
// how likely each character is after the two before it, in names people
// chose. Algorithmically generated labels are improbable under it. A Model
// is read-only after TrainModel and safe for concurrent use.
type Model struct {
	logp  [nSym][nSym][nSym]float32 // log2 P(c | a b), add-k smoothed
	names int
	known map[uint64]struct{} // xxhash of the registrable domains trained on
}

// Known reports whether the registrable domain was in the training list
// (a popular domain is never scored as generated).
func (m *Model) Known(registrable string) bool {
	_, ok := m.known[xxhash.Sum64String(registrable)]
	return ok
}

// Names is the number of labels the model was trained on.
func (m *Model) Names() int { return m.names }

// MaxTrainingNames bounds the training list.
const MaxTrainingNames = 5_000_000

// TrainModel builds a Model from a list of popular domains, one per line;
// lines may be "rank,domain" CSV (the Alexa/Tranco/Umbrella layout) and
// a header line is skipped. The registrable label of each name is what is
// learned ("google" for www.google.co.uk, with psl; without, the label left
// of the last one).
func TrainModel(r io.Reader, psl *intel.PublicSuffixes) (*Model, error) {
	var counts [nSym][nSym][nSym]uint32
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	m := &Model{known: make(map[uint64]struct{}, 1<<16)}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.LastIndexByte(line, ','); i >= 0 {
			line = line[i+1:]
		}
		if line == "" || line == "domain" || line[0] == '#' {
			continue
		}
		p := Split(strings.ToLower(line), psl)
		if p.Label == "" {
			continue
		}
		m.names++
		m.known[xxhash.Sum64String(p.Registrable)] = struct{}{}
		if m.names > MaxTrainingNames {
			return nil, fmt.Errorf("train DGA model: more than %d names", MaxTrainingNames)
		}
		a, b := symStart, symStart
		for i := 0; i <= len(p.Label); i++ {
			c := symEnd
			if i < len(p.Label) {
				c = sym(p.Label[i])
			}
			counts[a][b][c]++
			a, b = b, c
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("train DGA model: %w", err)
	}
	if m.names < 1000 {
		return nil, errors.New("train DGA model: need at least 1000 domains")
	}
	const k = 0.1 // add-k smoothing
	for a := range counts {
		for b := range counts[a] {
			var total float64
			for c := range counts[a][b] {
				total += float64(counts[a][b][c])
			}
			for c := range counts[a][b] {
				m.logp[a][b][c] = float32(math.Log2((float64(counts[a][b][c]) + k) / (total + k*nSym)))
			}
		}
	}
	return m, nil
}

// Surprise is the mean number of bits per character label costs under the
// model (its cross-entropy): about 3 for chosen names, 4.5 and more for
// random ones.
func (m *Model) Surprise(label string) float64 {
	if label == "" {
		return 0
	}
	a, b := symStart, symStart
	var sum float64
	for i := 0; i <= len(label); i++ {
		c := symEnd
		if i < len(label) {
			c = sym(label[i])
		}
		sum -= float64(m.logp[a][b][c])
		a, b = b, c
	}
	return sum / float64(len(label)+1)
}

// Entropy is the Shannon entropy of s's characters in bits.
func Entropy(s string) float64 {
	if s == "" {
		return 0
	}
	var counts [256]uint16
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// Parts is a name split around its registrable domain.
type Parts struct {
	Sub         string // labels below the registrable domain ("a.b" in a.b.example.co.uk)
	Label       string // the registrable label ("example")
	Registrable string // "example.co.uk"
	Suffix      string // the public suffix ("co.uk")
}

// Split splits a lower-case name without trailing dot. With a nil psl the
// public suffix is the last label.
func Split(name string, psl *intel.PublicSuffixes) Parts {
	name = strings.TrimSuffix(name, ".")
	// Find the longest suffix that is public: walk from the left.
	suffixStart := -1
	for start := 0; start < len(name); {
		if psl.IsPublicSuffix(name[start:]) {
			suffixStart = start
			break
		}
		dot := strings.IndexByte(name[start:], '.')
		if dot < 0 {
			break
		}
		start += dot + 1
	}
	if suffixStart <= 0 {
		// The whole name is a suffix (or no rule matched): no registrable part.
		return Parts{Suffix: name}
	}
	rest := name[:suffixStart-1]
	p := Parts{Suffix: name[suffixStart:]}
	if dot := strings.LastIndexByte(rest, '.'); dot >= 0 {
		p.Sub, p.Label = rest[:dot], rest[dot+1:]
	} else {
		p.Label = rest
	}
	p.Registrable = name[len(p.Sub):]
	p.Registrable = strings.TrimPrefix(p.Registrable, ".")
	return p
}
