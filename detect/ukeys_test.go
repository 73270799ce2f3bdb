package detect

import (
	"math/rand/v2"
	"testing"

	"github.com/watchfloor/watchfloor/schemas"
)

// randKey draws keys from a small alphabet and short lengths, so that sets
// share lengths, first and last bytes: the table's hash inputs collide often.
func randKey(r *rand.Rand) string {
	const alpha = "abAB_1"
	b := make([]byte, 1+r.IntN(6))
	for i := range b {
		b[i] = alpha[r.IntN(len(alpha))]
	}
	return string(b)
}

// TestUnmappedMemoRandom checks the scratch memo against
// schemas.Event.UnmappedValue on random events: duplicate keys (the first
// wins), empty keys and values, keys no rule reads, over many events on one
// scratch (stale values of the previous event must not show).
func TestUnmappedMemoRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := 0; round < 200; round++ {
		ukeys := map[string]int32{}
		add := func(k string) {
			if _, ok := ukeys[k]; !ok {
				ukeys[k] = int32(len(ukeys)) + 1
			}
		}
		for n := r.IntN(60); len(ukeys) < n; {
			add(randKey(r))
		}
		if r.IntN(4) == 0 {
			add("")
		}
		table := newKeyTable(ukeys)
		for k, slot := range ukeys {
			if got := table.slot(k); k != "" && got != slot {
				t.Fatalf("slot(%q) = %d, want %d", k, got, slot)
			}
		}
		s := &scratch{ukeys: &table, uval: make([]string, len(ukeys)), umark: make([]uint32, len(ukeys))}
		for e := 0; e < 20; e++ {
			ev := &schemas.Event{}
			for n := r.IntN(40); n > 0; n-- {
				v := ""
				if r.IntN(5) > 0 {
					v = randKey(r)
				}
				k := randKey(r)
				if r.IntN(20) == 0 {
					k = ""
				}
				ev.AddUnmapped(k, v)
			}
			s.nextU()
			for q := 0; q < 30; q++ {
				k := randKey(r)
				if q == 29 {
					k = ""
				} else if q%3 == 0 && len(ev.Unmapped) > 0 {
					k = ev.Unmapped[r.IntN(len(ev.Unmapped))].Key
				}
				src := source{unmapped: k} // a key no rule reads has no slot
				if _, ok := ukeys[k]; ok || k == "" {
					src = (&compiler{ukeys: ukeys}).unmappedSource(k)
				}
				if k != "" && src.uslot != ukeys[k] {
					t.Fatalf("unmappedSource(%q).uslot = %d, want %d", k, src.uslot, ukeys[k])
				}
				if slot, ok := ukeys[k]; ok && table.slot(k) == 0 && k != "" {
					t.Fatalf("slot(%q) = 0, want %d", k, slot)
				}
				if _, ok := ukeys[k]; !ok && table.slot(k) != 0 {
					t.Fatalf("slot(%q) = %d for a key no rule reads", k, table.slot(k))
				}
				gv, gok := s.unmappedValue(ev, &src)
				wv, wok := ev.UnmappedValue(k)
				if gv != wv || gok != wok {
					t.Fatalf("round %d event %d: memo(%q) = %q, %v; UnmappedValue = %q, %v (event %v)", round, e, k, gv, gok, wv, wok, ev.Unmapped)
				}
			}
		}
	}
}
