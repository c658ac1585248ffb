package projections

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestOverlayIsAMap: random sets (new keys and keys set again), deletes
// and sets after deletes on an overlay over a base read as one map: every
// Get, Keys, the writes it hands the commit (each, del) and its size (the
// sum of what it would commit) agree with a plain map's.
func TestOverlayIsAMap(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	base := MemKV{}
	for i := range 20 {
		base[fmt.Sprintf("k%02d", i)] = []byte(fmt.Sprint("base", i))
	}
	want := maps.Clone(map[string][]byte(base))
	o := newOverlay(base, 4)
	o.owned = rnd.IntN(2) == 0
	for step := range 2000 {
		k := fmt.Sprintf("k%02d", rnd.IntN(40))
		switch rnd.IntN(3) {
		case 0, 1:
			v := []byte(fmt.Sprint("v", step))
			if err := o.Set([]byte(k), v); err != nil {
				t.Fatal(err)
			}
			want[k] = v
		case 2:
			if err := o.Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
			delete(want, k)
		}
		probe := fmt.Sprintf("k%02d", rnd.IntN(40))
		got, found, err := o.Get([]byte(probe))
		if w, ok := want[probe]; err != nil || found != ok || string(got) != string(w) {
			t.Fatalf("step %d: Get(%s) = %q %v %v, want %q %v", step, probe, got, found, err, w, ok)
		}
	}
	var keys []string
	if err := o.Keys([]byte("k"), func(k []byte) error { keys = append(keys, string(k)); return nil }); err != nil {
		t.Fatal(err)
	}
	if wantKeys := slices.Sorted(maps.Keys(want)); !slices.Equal(keys, wantKeys) {
		t.Fatalf("Keys = %v, want %v", keys, wantKeys)
	}
	// What a commit writes over the base gives the same map.
	committed := maps.Clone(map[string][]byte(base))
	var size int64
	o.each(func(k string, v []byte) {
		committed[k] = v
		size += int64(len(k)+len(v)) + entryOverhead
	})
	for k := range o.del {
		delete(committed, k)
		size += int64(len(k)) + entryOverhead
	}
	if !maps.EqualFunc(committed, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("committed %v, want %v", committed, want)
	}
	if size != o.size || int64(len(o.set)+len(o.del)) != o.entries() {
		t.Fatalf("size %d, entries %d; the writes count %d and %d", o.size, o.entries(), size, len(o.set)+len(o.del))
	}
}
